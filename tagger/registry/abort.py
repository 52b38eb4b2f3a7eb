"""Stopping every request of the run at once (SIGINT/SIGTERM while nothing is being
written): every registry connection registers itself here (transport.py's pools), and
``abort_reads`` shuts their sockets down, so a read blocked in any thread returns at
once, and no new connection is made until the next run (``arm``). A request refused
or cut short that way is the signal's stop (``Aborted``, exit 130/143), never a
registry error: whatever the run was doing when the signal came, it ends as stopped."""

from __future__ import annotations

import signal
import socket
import threading
import weakref
from typing import Any

from ..errors import Interrupted

_open: weakref.WeakSet[Any] = weakref.WeakSet()  # every connection, for abort_reads
_aborted = threading.Event()
_signum: list[int] = []  # the signal that stopped the run


class Aborted(Interrupted):
    """The run is stopping (a signal): no request goes out any more."""


def arm() -> None:
    """A new run: requests may go out again (after an ``abort_reads``)."""
    _aborted.clear()
    _signum.clear()


def abort_reads(signum: int) -> None:
    """End every request in flight, in every thread, by shutting down every open
    connection's socket (a blocked read returns at once); no new connection is made
    afterwards. Called from a signal handler: no locks, only socket calls."""
    _signum[:] = [signum]
    _aborted.set()
    for _ in range(3):  # another thread may add a connection while we look
        try:
            conns = list(_open)
            break
        except RuntimeError:
            continue
    else:
        return
    for conn in conns:
        sock = getattr(conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def track(conn: Any) -> None:
    """A connection just made: ``abort_reads`` shuts it down."""
    _open.add(conn)


def check_aborted(what: str) -> None:
    """Raise ``Aborted`` once the run is stopping (before a request, or when one
    failed: its connection was shut down by ``abort_reads``)."""
    if _aborted.is_set():
        signum = _signum[0] if _signum else signal.SIGINT
        raise Aborted(signum, f"stopped by {signal.Signals(signum).name} before {what}")
