"""Stopping every request of the run at once (SIGINT/SIGTERM while nothing is being
written): every registry connection registers itself here (transport.py's pools), and
``abort_reads`` shuts their sockets down, so a read blocked in any thread returns at
once, and no new connection is made until the next run (``arm``)."""

from __future__ import annotations

import socket
import threading
import weakref
from typing import Any

from ..errors import RegistryUnreachable

_open: weakref.WeakSet[Any] = weakref.WeakSet()  # every connection, for abort_reads
_aborted = threading.Event()


class Aborted(RegistryUnreachable):
    """The run is stopping (a signal): no request goes out any more."""


def arm() -> None:
    """A new run: requests may go out again (after an ``abort_reads``)."""
    _aborted.clear()


def abort_reads() -> None:
    """End every request in flight, in every thread, by shutting down every open
    connection's socket (a blocked read returns at once); no new connection is made
    afterwards. Called from a signal handler: no locks, only socket calls."""
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
    if _aborted.is_set():
        raise Aborted(f"stopped before {what}")
