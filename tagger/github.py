"""GitHub Actions specifics, and only those: pull requests, step outputs, the step
summary and error annotations.

Everything here is active only inside a GitHub Actions job (``GITHUB_ACTIONS=true``,
which the runner sets for every step) and does nothing elsewhere:

- a ``release`` for a pull request (``GITHUB_EVENT_NAME`` ``pull_request`` or
  ``pull_request_target``, or ``GITHUB_REF`` ``refs/pull/N/…``) pushes nothing unless
  ``--allow-pr`` is given: it reports the plan from git tags, contacts no registry, and
  exits 0;
- every result is written to the step's outputs (``GITHUB_OUTPUT``: ``version``,
  ``tag``, ``tags``, ``digest``, ``json``) and as a Markdown table to the step summary
  (``GITHUB_STEP_SUMMARY``);
- errors and warnings are printed as ``::error title=tagger::…`` /
  ``::warning title=tagger::…`` workflow commands, which the runner turns into
  annotations.

Tags pushed from a shallow clone without tags are handled by the generic CI hints in
gitstate.py (``GITHUB_REF`` / ``GITHUB_SHA``), not here.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TextIO

if TYPE_CHECKING:
    from .config import Config
    from .errors import TaggerError
    from .release import Identity, Result

PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")
_PULL_REF = re.compile(r"refs/pull/(\d+)/")
OUTPUT_NAMES = ("version", "tag", "tags", "digest", "json")


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


def held_release(
    cfg: Config, ident: Identity, env: Mapping[str, str], *, allow_pr: bool
) -> Result | None:
    """For a pull request without ``--allow-pr``: the plan from git tags, with a note
    that nothing was pushed. None when the release should go ahead."""
    pr = pull_request(env)
    if pr is None or allow_pr:
        return None
    from .release import plan_offline, target_images

    note = f"{pr}: nothing pushed (pass --allow-pr to publish from a pull request)"
    return plan_offline(cfg, ident, target_images(cfg), note)


# --- outputs ---------------------------------------------------------------------
def written_tags(result: Result) -> list[str]:
    """``image:tag`` of every tag that points at the image after the run (created,
    moved, or already there), one per image and tag, in write order. For a dry run or
    a pull request: the tags a release would leave on it. A refused release: none."""
    if any(t.action == "refused" for i in result.images for t in i.tags):
        return []
    out = []
    for image in result.images:
        if image.ref is None:
            continue
        for t in image.tags:
            if t.action in ("create", "move", "unchanged") and t.status in (None, "done"):
                out.append(f"{image.name}:{t.tag}")
    return out


def outputs(result: Result) -> dict[str, str]:
    """The step outputs of a result (``version`` is empty for a SHA build)."""
    return {
        "version": str(result.version) if result.version else "",
        "tag": result.immutable_tag or "",
        "tags": "\n".join(written_tags(result)),
        "digest": result.digest or "",
        "json": json.dumps(result.to_json()),
    }


def _format_output(name: str, value: str) -> str:
    if "\n" not in value and "\r" not in value:
        return f"{name}={value}\n"
    delimiter = f"ghadelimiter_{uuid.uuid4()}"  # as @actions/core does
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def _append(path: str | None, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)


# --- the step summary ------------------------------------------------------------
def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _digest(d: str | None) -> str:
    from .reference import short_digest

    return f"`{short_digest(d)}`" if d else "-"


def summary(result: Result) -> str:
    """A Markdown report: what was published, and one table row per image and tag."""
    lines = []
    if result.command == "reconcile":
        lines.append("### tagger reconcile" + (" (dry run)" if result.dry_run else ""))
    else:
        what = f"version {result.version}" if result.version else "SHA build, no release version"
        dry = " (dry run: nothing written)" if result.dry_run else ""
        lines.append(f"### tagger {result.command}: `{result.immutable_tag}`{dry}")
        lines.append("")
        facts = [what, f"commit `{(result.commit or '')[:12]}`"]
        if result.source:
            digest = f" ({_digest(result.digest)})" if result.digest else ""
            facts.append(f"source `{result.source}`{digest}")
        lines.append(" · ".join(facts))
    for note in result.notes:
        lines += ["", f"> {_cell(note)}"]
    for warning in result.warnings:
        lines += ["", f"> **warning:** {_cell(warning)}"]
    lines += ["", "| image | tag | action | from → to | reason |", "|---|---|---|---|---|"]
    for image in result.images:
        for t in image.tags:
            status = f" ({t.status})" if t.status not in (None, "done") else ""
            lines.append(
                f"| `{_cell(image.name)}` | `{_cell(t.tag)}` | {t.action}{_cell(status)} | "
                f"{_digest(t.from_digest)} → {_digest(t.to_digest)} | {_cell(t.reason)} |"
            )
    return "\n".join(lines) + "\n\n"


# --- reporting -------------------------------------------------------------------
def report(result: Result, env: Mapping[str, str]) -> None:
    """Write the step outputs and the step summary (inside GitHub Actions only)."""
    if not active(env):
        return
    _append(
        env.get("GITHUB_OUTPUT"),
        "".join(_format_output(k, v) for k, v in outputs(result).items()),
    )
    _append(env.get("GITHUB_STEP_SUMMARY"), summary(result))


def report_error(error: TaggerError, env: Mapping[str, str]) -> None:
    """An error with no plan to show: ``json`` is the error object, the summary says
    what failed (the annotation is printed by :func:`annotate`)."""
    if not active(env):
        return
    doc: dict[str, Any] = {"error": str(error), "exit_code": error.exit_code}
    _append(env.get("GITHUB_OUTPUT"), _format_output("json", json.dumps(doc)))
    text = _cell(str(error))
    _append(
        env.get("GITHUB_STEP_SUMMARY"),
        f"### tagger failed (exit code {error.exit_code})\n\n{text}\n\n",
    )


def _escape_data(text: str) -> str:
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
