"""A small HTTP proxy in front of the real registry, for what the registry cannot do
itself: page ``tags/list`` (distribution 2.8 ignores ``n``/``last``), count and log
requests, and hold requests until released."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class Proxy:
    def __init__(self, upstream: str, *, page_size: int | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.page_size = page_size
        self.log: list[tuple[str, str, int]] = []
        self.hook: Callable[[str, str], None] | None = None  # called before forwarding
        self._lock = threading.Lock()
        self._session = requests.Session()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                proxy.handle(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def count(self, method: str | None = None, contains: str = "") -> int:
        return sum(1 for m, p, _ in self.log if (method is None or m == method) and contains in p)

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        if self.hook is not None:
            self.hook(h.command, h.path)
        parsed = urllib.parse.urlsplit(h.path)
        if self.page_size and h.command == "GET" and parsed.path.endswith("/tags/list"):
            status, headers, data = self._page(parsed)
        else:
            headers_in = {k: v for k, v in h.headers.items() if k.lower() not in HOP}
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
        with self._lock:
            self.log.append((h.command, h.path, status))
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

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
