"""Progress of uploads and daemon pushes, on stderr.

On a terminal a click progress bar per image; otherwise (CI logs, pipes, tests) one
line per image when it is done, so logs stay short. Both are safe to update from the
upload threads.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import click


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


class Progress:
    """One image's progress, as a context manager: ``advance`` by units of work; the
    ``summary`` set by the caller is printed when the block ends without an error (a
    bar is closed either way, so an error message starts on a line of its own)."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.summary: str | None = None
        self._lock = threading.Lock()
        self._bar: Any = None
        self._stream = sys.stderr

    def __enter__(self) -> Progress:
        if self.total > 0 and self._stream.isatty():
            self._bar = click.progressbar(
                length=self.total, label=self.label, file=self._stream, show_pos=False, width=30
            )
            self._bar.__enter__()
        return self

    def advance(self, n: int) -> None:
        if self._bar is not None and n:
            with self._lock:
                self._bar.update(n)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.__exit__(None, None, None)
                self._bar = None
        if self.summary and exc[0] is None:
            click.echo(self.summary, file=self._stream)
