"""The one write loop, shared by release, repair and reconcile.

Every write is a ``Write``: the tag it is reported under, what it is (for the stop
message) and the call. The loop checks the safe point before each write (a signal or
the deadline stops the run there), marks each tag done or failed, and attaches the
report to whatever error ends the run: in this one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import DeadlineExceeded, TaggerError
from .fanout import parallel
from .report import Result, Status, TagResult
from .stop import StopFlag


@dataclass(frozen=True)
class Write:
    tag: TagResult  # reported as failed if the call fails
    what: str  # "writing IMAGE:TAG", for the stop message
    call: Callable[[], object]
    completes: bool = True  # the tag is written once the call returns


def run_writes(
    result: Result, stop: StopFlag, writes: Iterable[Write], *, together: bool = False
) -> None:
    """Each write after a safe point, in order (or all at once when ``together``);
    the report goes with any error."""
    if together:
        parallel(lambda w: _write(result, stop, w), writes)
        return
    for w in writes:
        _write(result, stop, w)


def _write(result: Result, stop: StopFlag, w: Write) -> None:
    stop.checkpoint(result, w.what)
    try:
        w.call()
    except TaggerError as e:
        if not isinstance(e, DeadlineExceeded):  # stopped before the write: not written
            w.tag.fail(e.message)
        e.result = result
        raise
    if w.completes:
        w.tag.status = Status.DONE
