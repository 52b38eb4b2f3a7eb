"""GitHub Actions I/O, and only that: is this a job, is it for a pull request, the
step's outputs and summary files, and workflow-command annotations. No use case is
imported here; what to write is render.py's business, when to write it cli.py's.

Everything is active only inside a GitHub Actions job (``GITHUB_ACTIONS=true``, which
the runner sets for every step) and does nothing elsewhere. A ``release`` for a pull
request (``GITHUB_EVENT_NAME`` ``pull_request`` or ``pull_request_target``, or
``GITHUB_REF`` ``refs/pull/N/…``) is held unless ``--allow-pr`` is given. Tags pushed
from a shallow clone without tags are handled by the generic CI hints in gitstate.py.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Mapping
from typing import Literal, TextIO

from .redact import printable

PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")
_PULL_REF = re.compile(r"refs/pull/(\d+)/")


def active(env: Mapping[str, str]) -> bool:
    """True inside a GitHub Actions job."""
    return env.get("GITHUB_ACTIONS") == "true"


def pull_request(env: Mapping[str, str]) -> str | None:
    """``pull request #N`` when this job runs for a pull request, else None."""
    if not active(env):
        return None
    m = _PULL_REF.match(env.get("GITHUB_REF", ""))
    if m:
        return f"pull request #{m[1]}"
    if env.get("GITHUB_EVENT_NAME") in PULL_REQUEST_EVENTS:
        return "pull request"
    return None


def format_output(name: str, value: str) -> str:
    if "\n" not in value and "\r" not in value:
        return f"{name}={value}\n"
    delimiter = f"ghadelimiter_{uuid.uuid4()}"  # as @actions/core does
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def _append(path: str | None, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)


def write_outputs(values: Mapping[str, str], env: Mapping[str, str]) -> None:
    """Append step outputs to ``GITHUB_OUTPUT`` (inside GitHub Actions only)."""
    if active(env):
        _append(env.get("GITHUB_OUTPUT"), "".join(format_output(k, v) for k, v in values.items()))


def write_summary(markdown: str, env: Mapping[str, str]) -> None:
    """Append to the job's summary page (inside GitHub Actions only)."""
    if active(env):
        _append(env.get("GITHUB_STEP_SUMMARY"), markdown)


def _escape_data(text: str) -> str:
    """A workflow command's data: control characters escaped (redact.printable), then
    ``%``, CR and LF %-encoded as the runner expects, so the command stays one line."""
    text = printable(text, lines=True)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def annotate(
    message: str,
    env: Mapping[str, str],
    stream: TextIO | None = None,
    *,
    level: Literal["error", "warning"] = "error",
) -> bool:
    """Print an error (or warning) as a ``::error title=tagger::`` workflow command (on
    stderr: the runner reads commands from both streams, and ``--json`` keeps stdout).
    Returns False, printing nothing, outside GitHub Actions."""
    if not active(env):
        return False
    out = stream or sys.stderr
    out.write(f"::{level} title=tagger::{_escape_data(message.strip())}\n")
    out.flush()
    return True
