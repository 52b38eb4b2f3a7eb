"""A small HTTP proxy in front of the real registry, for what the registry cannot do
itself: page ``tags/list`` (distribution 2.8 ignores ``n``/``last``), count and log
requests (with their headers: ``seen``), hold requests until released, inject faults
(503s, 429 with Retry-After, connection resets, latency), answer in another registry's
place (``respond``) or change the registry's answer (``rewrite``). Fault decisions are
a pure function of the seed and the request (method, path, how many times it was seen),
so a run repeats whatever order parallel requests arrive in."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import requests

from support.listen import serve

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


_SHAPES = [
    (re.compile(r"^/v2/.+?/(manifests|blobs|tags)/"), r"/v2/_/\1/"),
    (re.compile(r"sha256:[0-9a-f]{64}"), "D"),
    (re.compile(r"sha-[0-9a-f]{7,40}"), "sha-X"),
    (re.compile(r"/uploads/[^/]+$"), "/uploads/X"),
]


@dataclass
class Faults:
    seed: int = 0
    error_rate: float = 0.0  # answer 503 instead of forwarding
    reset_rate: float = 0.0  # close the connection without an answer
    first_429: int = 0  # answer the first N requests 429
    retry_after: str = "1"  # the Retry-After of those 429s
    latency: float = 0.0  # seconds added to every request
    fail_all: int | None = None  # answer every request with this status


@dataclass
class Seen:
    """A request as the proxy received it, and the status it was answered with."""

    method: str
    path: str
    headers: dict[str, str]  # names as sent; a repeated header keeps its last value
    status: int = 0


@dataclass
class Reply:
    """An answer: ``headers`` as pairs, so a header may be repeated."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass
class Answer:
    """An injected answer, imitating another registry: requests whose method is
    ``method`` and whose path matches ``path`` (a regular expression, searched) get
    ``status``, ``headers`` and ``body`` instead of the registry's answer; with
    ``edit``, the registry's answer is forwarded with its body passed through ``edit``
    (and ``status``/``headers``, when given, replacing its own). ``times``: how many
    requests it answers (None: all). A declarative shorthand for ``respond``."""

    method: str
    path: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | dict[str, object] = b""
    edit: Callable[[bytes], bytes] | None = None
    times: int | None = None

    def errors(self, code: str, message: str) -> Answer:
        self.body = {"errors": [{"code": code, "message": message, "detail": None}]}
        self.headers.setdefault("Content-Type", "application/json; charset=utf-8")
        return self


class Drop(Exception):
    """Raised by a hook: close the connection without forwarding or answering."""


class Proxy:
    def __init__(self, upstream: str, *, page_size: int | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.page_size = page_size
        self.log: list[tuple[str, str, int]] = []
        self.times: list[tuple[float, str, str, int]] = []  # monotonic time of each answer
        # (arrival, answer) in monotonic time, in the order of ``log``: round trips that
        # overlap were in flight together (bench/run.py counts the sequential ones)
        self.spans: list[tuple[float, float]] = []
        self.hook: Callable[[str, str], None] | None = None  # called before forwarding
        # answer instead of the registry (None: forward), and change the registry's answer
        self.respond: Callable[[Seen], Reply | None] | None = None
        self.rewrite: Callable[[Seen, Reply], Reply] | None = None
        self.seen: list[Seen] = []
        self.faults = Faults()
        self.answers: list[Answer] = []  # injected answers, first match wins
        self._seen: dict[tuple[str, str], int] = {}
        self._served = 0
        self._lock = threading.Lock()
        self._session = requests.Session()
        self.server = serve(self.handle)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def count(self, method: str | None = None, contains: str = "") -> int:
        return sum(1 for m, p, _ in self.log if (method is None or m == method) and contains in p)

    def _draw(self, method: str, path: str) -> tuple[int, float]:
        with self._lock:
            n = self._seen.get((method, path), 0)
            self._seen[(method, path)] = n + 1
            self._served += 1
            served = self._served
        # the repository name and SHA/upload ids are left out, so the faults a test gets
        # do not depend on which names other tests used before it
        shape = path.split("?")[0]
        for pattern, repl in _SHAPES:
            shape = pattern.sub(repl, shape)
        key = f"{self.faults.seed}:{method}:{shape}:{n}".encode()
        return served, int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64

    def _fault(self, h: BaseHTTPRequestHandler, at: float) -> bool:
        """Answer with an injected fault instead of forwarding; True when it did."""
        f = self.faults
        if f.latency:
            time.sleep(f.latency)
        served, x = self._draw(h.command, h.path)
        status, headers = 0, {"Content-Type": "application/json"}
        if f.fail_all is not None:
            status = f.fail_all
        elif served <= f.first_429:
            status, headers["Retry-After"] = 429, f.retry_after
        elif x < f.reset_rate:
            self._record(h.command, h.path, 0, at)
            h.close_connection = True
            h.connection.shutdown(2)
            return True
        elif x < f.reset_rate + f.error_rate:
            status = 503
        if not status:
            return False
        self._record(h.command, h.path, status, at)
        data = b'{"errors": [{"code": "UNAVAILABLE", "message": "injected fault"}]}'
        _reply(h, status, list(headers.items()), data)
        return True

    def _answer(self, method: str, path: str) -> Answer | None:
        with self._lock:
            for a in self.answers:
                if a.method == method and re.search(a.path, path) and a.times != 0:
                    if a.times is not None:
                        a.times -= 1
                    return a
        return None

    def _record(self, method: str, path: str, status: int, at: float) -> None:
        now = time.monotonic()
        with self._lock:
            self.log.append((method, path, status))
            self.times.append((now, method, path, status))
            self.spans.append((at, now))

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        at = time.monotonic()
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        seen = Seen(h.command, h.path, dict(h.headers.items()))
        with self._lock:
            self.seen.append(seen)
        if self.hook is not None:
            try:
                self.hook(h.command, h.path)
            except Drop:
                h.close_connection = True
                h.connection.shutdown(2)
                return
        if self._fault(h, at):
            return
        injected = self.respond(seen) if self.respond is not None else None
        if injected is not None:
            seen.status = injected.status
            self._record(h.command, h.path, injected.status, at)
            _reply(h, injected.status, injected.headers, injected.body)
            return
        answer = self._answer(h.command, h.path)
        if answer is not None and answer.edit is None:
            data = (
                answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
            )
            self._record(h.command, h.path, answer.status or 200, at)
            _reply(h, answer.status or 200, list(answer.headers.items()), data)
            return
        parsed = urllib.parse.urlsplit(h.path)
        if self.page_size and h.command == "GET" and parsed.path.endswith("/tags/list"):
            status, headers, data = self._page(parsed)
        else:
            headers_in: dict[str, str] = {}
            for k, v in h.headers.items():  # a repeated header (skopeo's Accept) is joined
                if k.lower() not in HOP:
                    headers_in[k] = f"{headers_in[k]}, {v}" if k in headers_in else v
            r = self._session.request(
                h.command,
                self.upstream + h.path,
                headers=headers_in,
                data=body,
                allow_redirects=False,
                timeout=30,
            )
            status, data = r.status_code, r.content
            headers = {k: v for k, v in r.headers.items() if k.lower() not in HOP}
            if "Location" in headers:
                headers["Location"] = headers["Location"].replace(self.upstream, "")
        if answer is not None and answer.edit is not None:
            data = answer.edit(data)
            status = answer.status or status
            headers.update(answer.headers)
        if self.rewrite is not None:
            out = self.rewrite(seen, Reply(status, list(headers.items()), data))
            status, pairs, data = out.status, out.headers, out.body
        else:
            pairs = list(headers.items())
        seen.status = status
        self._record(h.command, h.path, status, at)
        _reply(h, status, pairs, data)

    def _page(self, parsed: urllib.parse.SplitResult) -> tuple[int, dict[str, str], bytes]:
        r = self._session.get(self.upstream + parsed.path, timeout=30)
        if r.status_code != 200:
            return r.status_code, {"Content-Type": "application/json"}, r.content
        doc = r.json()
        tags = sorted(doc.get("tags") or [])
        q = dict(urllib.parse.parse_qsl(parsed.query))
        n = min(int(q.get("n", self.page_size)), self.page_size or 10**9)
        last = q.get("last")
        rest = [t for t in tags if last is None or t > last]
        page = rest[:n]
        headers = {"Content-Type": "application/json"}
        if len(rest) > n:
            nxt = urllib.parse.urlencode({"n": n, "last": page[-1]})
            headers["Link"] = f'<{parsed.path}?{nxt}>; rel="next"'
        return 200, headers, json.dumps({"name": doc["name"], "tags": page}).encode()


def _reply(
    h: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], data: bytes
) -> None:
    h.send_response(status)
    for k, v in headers:
        if k.lower() != "content-length":
            h.send_header(k, v)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(data)
