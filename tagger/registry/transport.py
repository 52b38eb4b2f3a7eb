"""Sending requests to one registry: the session (pooled keep-alive connections),
retries, timeouts, TLS verification and the run's deadline.

A stack of small layers, as go-containerregistry's ``remote/transport``: urllib3's
``Retry`` (429/5xx/connection errors, honouring ``Retry-After``) under requests'
session, both built in sessions.py; this module adds the deadline check before each
request and turns an exception into tagger's error. Every request says
``User-Agent: tagger/VERSION``.
Authentication is ``auth.py``'s business, the API calls ``api.py``'s. requests is
imported on the first request, never at start-up.

Loopback hosts and those named with --insecure-registry are contacted as Docker does:
HTTPS without certificate verification, and plain HTTP when the first contact finds the
port does not speak TLS (decided once per host, on first use of ``base``).

What a registry (or a host it sends tagger to) cannot make tagger do (docs/security.md):

- Environment: ``~/.netrc`` is never read (``trust_env`` is off: a netrc entry would
  replace tagger's Authorization header); HTTPS_PROXY/HTTP_PROXY/NO_PROXY are still
  honoured, passed explicitly per request, and loopback is never proxied.
- Redirects are followed for GET and HEAD only; requests drops the Authorization
  header when one leads to another origin (scheme, host, port) and, without
  ``trust_env``, never adds one back. ``same_origin`` is what api.py and auth.py use to
  send credentials, and to learn challenges, for the registry's own origin only.
- Every answer is read with ``stream=True`` and a limit (``read``): a body over its
  limit is an error naming the registry and the limit, never held whole in memory.
- Time: each socket read waits at most ``min(timeout, time left before the
  deadline)``, and reading one body stops when the deadline passes, so a registry that
  drips a byte at a time cannot hold a run past ``--deadline``.
- Signals: every connection registers itself (sessions.py); ``abort_reads``
  (called by the SIGINT/SIGTERM handler when no write is in flight, release/stop.py)
  shuts their sockets down and forbids new connections, so a request stuck on a silent
  or dripping server ends at once in every thread, and the handler's ``Interrupted``
  stops the run with 130/143. (Connections through an HTTP(S) proxy are not tracked:
  a stuck request through a proxy ends at its timeout.)
- Uploads: ``body.Body`` sends exactly the manifest's ``size`` bytes and checks the digest
  before its last byte leaves (see there); a failed upload's connection is closed
  (urllib3 discards a connection on any error raised while sending).
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..reference import is_insecure
from . import errors
from .abort import check_aborted
from .body import Body
from .origin import origin, proxies_for
from .reply import Reply
from .sessions import MAX_RETRY_AFTER, Pause, new_session, retry_class

if TYPE_CHECKING:
    pass

log = logging.getLogger("tagger.registry")

STEP = 1 << 16  # one read from a socket
READS = ("GET", "HEAD")
ERROR_LIMIT = 64 << 10  # error bodies, token answers, anything not named below


class Transport:
    """One registry host's connections. ``send`` is the only way out."""

    def __init__(
        self,
        registry: str,
        *,
        insecure: frozenset[str] = frozenset(),
        verify: bool | str = True,
        retries: int = 4,
        timeout: float = 30.0,
        backoff: float = 0.5,
        pool_size: int = 16,
        expired: Callable[[], bool] | None = None,
        remaining: Callable[[], float | None] | None = None,
        pause: Pause | None = None,
    ) -> None:
        self.registry = registry
        self._pause = pause
        self.insecure = is_insecure(registry, insecure)
        self._base = None if self.insecure else f"https://{registry}"
        self._base_lock = threading.Lock()
        self._unverified = f"https://{registry}/".lower() if self.insecure else None
        self.verify = verify
        self.timeout = timeout
        self._expired = expired
        self._remaining = remaining
        retry = retry_class(remaining, pause)(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            allowed_methods=None,  # every call we retry is idempotent; uploads opt out
            status_forcelist=errors.RETRY_STATUSES,
            backoff_factor=backoff,
            backoff_jitter=backoff / 2,
            backoff_max=MAX_RETRY_AFTER,
            respect_retry_after_header=True,
            raise_on_status=False,
            raise_on_redirect=False,
        )
        self.session = new_session(retry, pool_size, self._unverified)
        # streamed uploads cannot be replayed by urllib3: a session that never retries
        self._once = new_session(0, pool_size, self._unverified)

    @property
    def base(self) -> str:
        """``https://HOST``; for an insecure host, the scheme its first contact found."""
        if self._base is not None:
            return self._base
        with self._base_lock:
            if self._base is None:
                found = self._probe()
                if found is None:  # nothing answered: plain HTTP for now, ask again later
                    return f"http://{self.registry}"
                self._base = found
            return self._base

    def _probe(self) -> str | None:
        """``GET /v2/`` over HTTPS (unverified), then plain HTTP: the first scheme that
        gets an answer, whatever its status. A TLS error means the port speaks plain
        HTTP; no answer at all (no port 443?) tries port 80, as Docker does."""
        import requests

        for scheme in ("https", "http"):
            url = f"{scheme}://{self.registry}/v2/"
            try:
                self._once.get(
                    url,
                    timeout=self._left("GET", url),
                    verify=False,
                    allow_redirects=False,
                    stream=True,  # the body is never read
                    proxies=proxies_for(url),
                ).close()
            except requests.exceptions.SSLError:
                log.debug("%s does not speak TLS: plain HTTP", self.registry)
                return f"http://{self.registry}"
            except requests.exceptions.RequestException as e:
                log.debug("probe %s: %s", url, type(e).__name__)
                continue
            log.debug("%s: %s", self.registry, scheme)
            return f"{scheme}://{self.registry}"
        return None

    def verify_for(self, url: str) -> bool | str:
        """``verify=`` for a request: off for an insecure host's own HTTPS only."""
        if self._unverified is not None and url.lower().startswith(self._unverified):
            return False
        return self.verify

    def close(self) -> None:
        self.session.close()
        self._once.close()

    @property
    def origin(self) -> tuple[str, str, int]:
        """The registry's own origin (scheme, host, port): where credentials go."""
        return origin(self.base)

    def same_origin(self, url: str) -> bool:
        """Is ``url`` the registry's own origin (scheme, host, port)?"""
        return origin(url) == self.origin

    def _left(self, method: str, url: str) -> float:
        """The timeout of the next socket operation: a read (GET, HEAD) never waits
        past the deadline; a write in flight is let finish (the next safe point stops
        the run)."""
        left = self._remaining() if self._remaining is not None else None
        expired = self._expired() if self._expired is not None else False
        if method not in READS:
            return self.timeout
        if expired or (left is not None and left <= 0):
            raise errors.deadline_passed(method, self.registry, urllib.parse.urlsplit(url).path)
        return self.timeout if left is None else max(0.05, min(self.timeout, left))

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        data: Any = None,  # bytes, a file, a body.Body, a form
        params: dict[str, str] | list[tuple[str, str]] | None = None,
        stream: bool = False,
        retry: bool = True,
        what: str | None = None,
        auth: tuple[str, str] | None = None,
        limit: int = ERROR_LIMIT,
        follow: bool = True,
    ) -> Reply:
        """One request (retried by urllib3 unless ``retry=False``; redirects followed
        for GET and HEAD unless ``follow=False``); raises tagger's error when no answer
        came or the deadline has passed. Unless ``stream``, the body is read here, up
        to ``limit`` bytes (more is an error)."""
        import requests

        check_aborted(f"{method} {what or self.registry}")
        if self._expired is not None and self._expired():
            raise errors.deadline_passed(method, self.registry, urllib.parse.urlsplit(url).path)
        timeout = self._left(method, url)
        session = self.session if retry else self._once
        verify = self.verify_for(url)
        if isinstance(data, Body):
            data.pause = self._pause
        try:
            resp = session.request(
                method,
                url,
                headers=headers,
                data=data,
                params=params,
                auth=auth,
                stream=True,
                timeout=timeout,
                verify=verify,
                allow_redirects=follow and method in READS,
                proxies=proxies_for(url),
            )
        except requests.exceptions.RequestException as e:
            target = what or self.registry
            check_aborted(f"{method} {target}")  # cut short by a signal: the stop
            raise errors.transport_error(e, self.registry, target, verify) from None
        log.debug("%s %s -> %s", method, urllib.parse.urlsplit(resp.url).path, resp.status_code)
        reply = Reply(resp)
        if stream:
            return reply
        return reply.read(self.read(reply, limit if resp.status_code < 300 else ERROR_LIMIT, what))

    def chunks(self, reply: Reply, what: str | None = None) -> Iterator[bytes]:
        """A body as it comes, raw (no content-decoding), with the deadline enforced."""
        import requests
        import urllib3

        resp = reply.response

        path = urllib.parse.urlsplit(resp.url).path
        method = resp.request.method or "GET"
        done = False
        try:
            while True:
                check_aborted(f"reading {what or path}")
                self._left(method, resp.url)
                try:
                    chunk = resp.raw.read1(STEP, decode_content=False)
                except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as e:
                    check_aborted(f"reading {what or path}")
                    self._left(method, resp.url)
                    raise errors.transport_error(
                        e, self.registry, what or self.registry, self.verify
                    ) from None
                if not chunk:
                    done = True
                    return
                yield chunk
        finally:
            if done:
                resp.raw.release_conn()  # read to its end: the connection is reusable
            else:
                resp.raw.close()  # never reuse a connection with unread bytes on it
            resp.close()

    def read(self, resp: Reply, limit: int, what: str | None = None) -> bytes:
        """A whole body, refusing one larger than ``limit`` before reading it all."""
        where = what or f"{self.registry}{urllib.parse.urlsplit(resp.url).path}"
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            resp.close()
            raise errors.too_large(where, limit)
        data = bytearray()
        for chunk in self.chunks(resp, what):
            data += chunk
            if len(data) > limit:
                resp.close()
                raise errors.too_large(where, limit)
        return bytes(data)
