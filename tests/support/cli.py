"""Running tagger: its entry point in the test's own process (what the ``tagger`` fixture,
support/fixtures.py, calls), and what tests that run it as a process share."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from support.git import CI_VARS

if TYPE_CHECKING:
    import pytest


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict[str, object]:
        return dict(json.loads(self.out))

    def tags(self, image: int = 0) -> dict[str, dict[str, object]]:
        images = self.json["images"]
        assert isinstance(images, list)
        return {t["tag"]: t for t in images[image]["tags"]}


def run_cli(
    main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str], *args: str
) -> Run:
    """``tagger ARGS`` through its ``main``; returns the exit code and what it printed."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return Run(code, out, err)


def child_env() -> dict[str, str]:
    """This environment for a tagger process: no CI variable, no TAGGER_ setting."""
    return {k: v for k, v in os.environ.items() if k not in CI_VARS and not k.startswith("TAGGER_")}


def stop_with(
    proc: subprocess.Popen[str], sig: signal.Signals, timeout: float = 30
) -> tuple[str, str, float]:
    """Send ``sig`` to a running tagger: what it printed (stdout, stderr) and the seconds
    it took to exit. Killed if it is still running after ``timeout``."""
    start = time.monotonic()
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return out, err, time.monotonic() - start
