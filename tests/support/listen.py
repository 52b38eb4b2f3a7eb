"""An HTTP listener on 127.0.0.1 for the test servers (proxy, token issuer, hostile
stub): a quiet handler that passes every request to ``handle``, served from a daemon
thread. No pytest here: bench/run.py uses the proxy."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

METHODS = ("GET", "HEAD", "PUT", "POST", "PATCH", "DELETE")


def serve(
    handle: Callable[[BaseHTTPRequestHandler], None],
    methods: Iterable[str] = METHODS,
    tls: tuple[Path, Path] | None = None,
) -> ThreadingHTTPServer:
    """Start a server on 127.0.0.1 (a free port) answering ``methods`` with ``handle``;
    with ``tls`` (certificate, key) it speaks HTTPS. Stop it with ``shutdown()`` and
    ``server_close()``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out in two writes: with Nagle on, the body waits for the
        # client's delayed ACK (40 ms) on a kept-alive connection. Registries (Go's
        # net/http) set TCP_NODELAY; so do these servers.
        disable_nagle_algorithm = True

        def log_message(self, *args: object) -> None:
            pass

        def _any(self) -> None:
            handle(self)

    for method in methods:
        setattr(Handler, f"do_{method}", Handler._any)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
