"""Safe points for writes: SIGINT/SIGTERM and the run's deadline.

SIGINT/SIGTERM set a flag that every write checks first, so a release stops between
two writes and what is written stays consistent; a second signal exits at once.
``deadline`` (seconds from now) stops the run the same way once it has passed.

A signal that comes while no write is in flight (``writing``) stops the run at once:
the handler calls the ``on_signal`` hooks (the registry transport shuts down every
registry connection, in every thread: registry/abort.py) and raises ``Interrupted`` in
the main thread, so a read stuck on a silent or dripping registry cannot defer the
stop. During a write, the stop waits for its end (the safe point).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from ..errors import STOPPED_HINT, DeadlineExceeded, Interrupted, TaggerError


class StopFlag:
    def __init__(self, deadline: float | None = None) -> None:
        self.signum: int | None = None
        self.deadline = deadline
        self._deadline_at = None if deadline is None else time.monotonic() + deadline
        self._previous: dict[int, Any] = {}
        self._stopped = threading.Event()  # set by the first signal
        self.on_signal: list[Callable[[int], None]] = []
        self._writing = 0
        self._count_lock = threading.Lock()

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: no deadline)."""
        return None if self._deadline_at is None else self._deadline_at - time.monotonic()

    def expired(self) -> bool:
        return self._deadline_at is not None and time.monotonic() > self._deadline_at

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """A write in flight: a signal now waits for its end."""
        with self._count_lock:  # writes may run in several threads at once
            self._writing += 1
        try:
            yield
        finally:
            with self._count_lock:
                self._writing -= 1

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            os._exit(128 + signum)
        self.signum = signum
        self._stopped.set()
        name = signal.Signals(signum).name
        # os.write: a signal handler must not re-enter a buffered stream mid-write
        if self._writing:
            msg = f"tagger: {name}: stopping at the next safe point ({name} again stops at once)\n"
            os.write(2, msg.encode())
            return
        for hook in self.on_signal:
            hook(signum)
        raise Interrupted(signum, f"stopped by {name}; nothing was being written")

    def pause(self, seconds: float) -> None:
        """The transport's wait between retries and between the chunks of an upload:
        a signal ends it at once. Nothing is written meanwhile (a manifest PUT that
        got an answer is done), so stopping there is as safe as at a safe point."""
        if self._stopped.wait(max(seconds, 0.0)):
            assert self.signum is not None
            name = signal.Signals(self.signum).name
            raise Interrupted(self.signum, f"stopped by {name} while a request was retried or sent")

    def checkpoint(self, what: str) -> None:
        """Raise when a signal came or the deadline passed (the write loop attaches the
        report)."""
        err: TaggerError
        if self.signum is not None:
            name = signal.Signals(self.signum).name
            err = Interrupted(self.signum, f"stopped by {name} before {what}")
        elif self.expired():
            err = DeadlineExceeded(f"the deadline of {self.deadline:g} s passed before {what}")
        else:
            return
        err.hint = STOPPED_HINT
        raise err

    def outcome(self, err: TaggerError) -> TaggerError:
        """What a run that failed with ``err`` reports: once a signal came, the stop
        (130/143) with ``err``'s report, whatever surfaced (a library that swallowed
        the handler's exception, a request the stop cut short); else ``err``."""
        if self.signum is None or isinstance(err, Interrupted):
            return err
        name = signal.Signals(self.signum).name
        stopped = Interrupted(
            self.signum, f"stopped by {name}; the run had also failed: {err.message}"
        )
        stopped.result = err.result
        return stopped
