"""Sending requests to one registry: the session (pooled keep-alive connections),
retries, timeouts, TLS verification and the run's deadline.

A stack of small layers, as go-containerregistry's ``remote/transport``: urllib3's
``Retry`` (429/5xx/connection errors, honouring ``Retry-After``) under requests'
session; this module adds the deadline check before each request and turns an
exception into tagger's error. Every request says ``User-Agent: tagger/VERSION``.
Authentication is ``auth.py``'s business, the API calls ``api.py``'s. requests is
imported on the first request, never at start-up.

Loopback hosts and those named with --insecure-registry are contacted as Docker does:
HTTPS without certificate verification, and plain HTTP when the first contact finds the
port does not speak TLS (decided once per host, on first use of ``base``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

from .. import __version__
from ..reference import is_insecure
from . import errors

if TYPE_CHECKING:
    import requests

log = logging.getLogger("tagger.registry")

MAX_RETRY_AFTER = 60.0
USER_AGENT = f"tagger/{__version__}"


Pause = Callable[[float], None]  # wait up to N seconds; raise when the run is stopped


def _retry_class(
    remaining: Callable[[], float | None] | None = None, pause: Pause | None = None
) -> type[Any]:
    from urllib3.exceptions import MaxRetryError
    from urllib3.util.retry import Retry

    class CappedRetry(Retry):
        """urllib3's Retry with every Retry-After wait capped. A registry asking for
        longer than the cap (Docker Hub's rate limit: hours), or than the run's deadline
        leaves, is not retried at all: its answer goes back to the caller at once,
        which says until when (errors.py). The wait between attempts is ``pause``, so
        a signal ends it at once (nothing was written meanwhile)."""

        def increment(self, method: Any = None, url: Any = None, *args: Any, **kw: Any) -> Any:
            response = kw.get("response")
            if response is not None and response.status in (429, 503):
                wait = super().get_retry_after(response)
                left = remaining() if remaining is not None else None
                if wait is not None and (
                    wait > MAX_RETRY_AFTER or (left is not None and wait > left)
                ):
                    raise MaxRetryError(kw.get("_pool"), url or "", None)  # type: ignore[arg-type]
            return super().increment(method, url, *args, **kw)

        def get_retry_after(self, response: Any) -> float | None:
            value = super().get_retry_after(response)
            return None if value is None else min(float(value), MAX_RETRY_AFTER)

        def sleep(self, response: Any = None) -> None:
            if pause is None:
                super().sleep(response)
                return
            wait = None
            if self.respect_retry_after_header and response is not None:
                wait = self.get_retry_after(response)
            pause(wait or self.get_backoff_time())

    return CappedRetry


class Body:
    """A file-like body of known length streamed from a source, so requests sends
    Content-Length and never holds a whole blob in memory."""

    def __init__(self, chunks: Iterator[bytes], length: int) -> None:
        self._chunks = chunks
        self._length = length
        self._buf = b""  # the current chunk
        self._pos = 0  # how much of it was read
        self.hash = hashlib.sha256()
        self.pause: Pause | None = None  # consulted between chunks (a signal stops it)

    def __len__(self) -> int:
        return self._length

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes, cut from the source's chunks without joining them (only
        pieces of the requested size are allocated, so memory stays flat)."""
        parts: list[bytes] = []
        want = self._length if n is None or n < 0 else n
        while want > 0:
            if self._pos >= len(self._buf):
                if self.pause is not None:
                    self.pause(0)
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._buf, self._pos = chunk, 0
            piece = self._buf[self._pos : self._pos + want]
            self._pos += len(piece)
            want -= len(piece)
            parts.append(piece)
        out = parts[0] if len(parts) == 1 else b"".join(parts)
        self.hash.update(out)
        return out


def _unverified_adapter(retry: Any, pool_size: int) -> Any:
    """HTTPS without certificate verification, for an insecure host only. Its TLS
    context loads no CA bundle: urllib3 would load one per connection (~30 ms)."""
    import ssl
    import warnings

    from requests.adapters import HTTPAdapter
    from urllib3.exceptions import InsecureRequestWarning

    warnings.filterwarnings("ignore", category=InsecureRequestWarning)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    class Unverified(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["ssl_context"] = context
            super().init_poolmanager(*args, **kwargs)

    return Unverified(max_retries=retry, pool_connections=1, pool_maxsize=pool_size)


def _session(retry: Any, pool_size: int, unverified: str | None = None) -> requests.Session:
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if unverified:  # the longest prefix wins: this host's HTTPS only
        session.mount(unverified, _unverified_adapter(retry, pool_size))
    return session


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
        retry = _retry_class(remaining, pause)(
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
        self.session = _session(retry, pool_size, self._unverified)
        # streamed uploads cannot be replayed by urllib3: a session that never retries
        self._once = _session(0, pool_size, self._unverified)

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
                    url, timeout=self.timeout, verify=False, allow_redirects=False
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

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        data: bytes | IO[bytes] | Body | dict[str, str] | None = None,
        params: dict[str, str] | list[tuple[str, str]] | None = None,
        stream: bool = False,
        retry: bool = True,
        what: str | None = None,
        auth: tuple[str, str] | None = None,
        follow: bool = True,
    ) -> requests.Response:
        """One request (retried by urllib3 unless ``retry=False``; redirects followed
        unless ``follow=False``); raises tagger's error when no answer came or the
        deadline has passed."""
        import requests

        if self._expired is not None and self._expired():
            path = urllib.parse.urlsplit(url).path
            raise errors.deadline_passed(method, self.registry, path)
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
                stream=stream,
                timeout=self.timeout,
                verify=verify,
                allow_redirects=follow,
            )
        except requests.exceptions.RequestException as e:
            target = what or self.registry
            raise errors.transport_error(e, self.registry, target, verify) from None
        log.debug("%s %s -> %s", method, urllib.parse.urlsplit(resp.url).path, resp.status_code)
        return resp
