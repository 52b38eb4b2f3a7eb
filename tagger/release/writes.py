"""The one write loop, shared by release, repair and reconcile.

Every write is a ``Write``: the tag it is reported under, what it is (for the stop
message) and the call. The loop checks the safe point before each write (a signal or
the deadline stops the run there), marks each tag done or failed, and attaches the
report to whatever error ends the run: in this one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import DeadlineExceeded, Interrupted, TaggerError
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
    try:
        stop.checkpoint(w.what)
        with stop.writing():
            w.call()
    except TaggerError as e:
        if not isinstance(e, (DeadlineExceeded, Interrupted)):  # stopped: not written
            w.tag.fail(e.message)
        e.result = result
        raise
    if w.completes:
        w.tag.status = Status.DONE


def stopped_short(e: TaggerError, result: Result | None = None) -> None:
    """A run that ends with an error and a result (the error's, else ``result``)
    reports per tag what happened: every tag whose write did not happen is ``not
    written`` (a refused tag has no status of its own and reads so too), the others
    ``done``; the report goes with the
    error. A dry run writes nothing by definition and gets no statuses."""
    result = e.result if e.result is not None else result
    if result is None or not result.images:
        return
    e.result = result
    if result.dry_run:
        return
    result.stopped = True
    for image in result.images:
        for t in image.tags:
            if t.status is None and t.action != "refused":  # refused: says it already
                t.status = Status.NOT_WRITTEN if t.writes else Status.DONE
