"""A hostile registry (or blob store, or token server) on 127.0.0.1, for the security
tests: the test chooses every answer per request (status, headers such as Location,
Link and WWW-Authenticate, a body of any size streamed from a generator, bytes beyond
the declared length, a drip of one byte at a time, a silence), and every request it
receives is recorded with its headers (what a credential thief would keep)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from subprocess import Popen

from support.listen import serve


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | Iterable[bytes] = b""
    length: int | None = None  # Content-Length sent; None: len(body) for bytes, else none
    drip: float = 0.0  # seconds between chunks of the body
    hang: float = 0.0  # seconds of silence before answering


Route = Callable[[Seen], Answer]
NOT_FOUND = b'{"errors": [{"code": "NOT_FOUND", "message": "no such thing"}]}'


class Stub:
    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Route]] = []
        self.log: list[Seen] = []
        self.arrived = threading.Event()  # set on every request
        self._stop = threading.Event()
        self.server = serve(self._handle, tls=tls)
        self.server.handle_error = lambda *args: None  # type: ignore[method-assign]

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def on(self, method: str, pattern: str, route: Route) -> None:
        """Answer ``method`` requests (``"*"``: any method) whose path (query included)
        matches ``pattern`` (the latest route added wins)."""
        self.routes.insert(0, (method, re.compile(pattern), route))

    def close(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def wait_for(
        self, wanted: Callable[[Seen], bool], proc: Popen[str], timeout: float = 60
    ) -> None:
        """Until a request ``wanted`` has arrived, while ``proc`` (tagger) still runs."""
        deadline = time.monotonic() + timeout
        while not any(wanted(s) for s in self.log):
            assert time.monotonic() < deadline, f"no such request in {timeout} s"
            assert proc.poll() is None, proc.communicate()[1]
            self.arrived.wait(1)
            self.arrived.clear()

    def authorizations(self) -> list[str]:
        return [s.headers["authorization"] for s in self.log if "authorization" in s.headers]

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(min(length, 1 << 20)) if length else b""
        seen = Seen(h.command, h.path, {k.lower(): v for k, v in h.headers.items()}, body)
        self.log.append(seen)
        self.arrived.set()
        answer = Answer(404, {"Content-Type": "application/json"}, NOT_FOUND)
        for method, pattern, route in self.routes:
            if method in (h.command, "*") and pattern.search(h.path):
                answer = route(seen)
                break
        if answer.hang:
            self._stop.wait(answer.hang)
        try:
            self._send(h, answer)
        except OSError:  # the client went away: what a limit does
            h.close_connection = True

    def _send(self, h: BaseHTTPRequestHandler, a: Answer) -> None:
        h.send_response(a.status)
        for k, v in a.headers.items():
            h.send_header(k, v)
        length = len(a.body) if a.length is None and isinstance(a.body, bytes) else a.length
        if length is not None:
            h.send_header("Content-Length", str(length))
        else:
            h.send_header("Connection", "close")
            h.close_connection = True
        h.end_headers()
        h.wfile.flush()
        if h.command == "HEAD":
            return
        chunks = [a.body] if isinstance(a.body, bytes) else a.body
        for chunk in chunks:
            if self._stop.is_set():
                return
            h.wfile.write(chunk)
            h.wfile.flush()
            if a.drip:
                time.sleep(a.drip)


def serving(route: Route) -> Stub:
    """A stub answering every request, whatever its method and path, with ``route``."""
    stub = Stub()
    stub.on("*", "", route)
    return stub


def zeros(total: int, chunk: int = 1 << 20) -> Iterable[bytes]:
    """``total`` bytes of zeros, generated (a GiB never sits in memory)."""
    block = bytes(chunk)
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        yield block if n == chunk else bytes(n)
        sent += n


def json_answer(body: bytes, status: int = 200, **headers: str) -> Answer:
    return Answer(status, {"Content-Type": "application/json", **headers}, body)
