"""The requests session a ``Transport`` sends through, built from small layers as
go-containerregistry's ``remote/transport`` is: urllib3's connection pools with
connections that register themselves (``abort_reads`` shuts them down on a signal) and
refuse to connect once the run is stopping; urllib3's ``Retry`` with ``Retry-After``
capped and its wait interruptible; requests' adapter over those pools; netrc off,
``User-Agent: tagger/VERSION``, raw bodies. requests and urllib3 are imported when
the first session is made, never at start-up."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .abort import check_aborted, track

if TYPE_CHECKING:
    import requests

MAX_RETRY_AFTER = 60.0  # seconds: a registry asking for longer is not retried


def _tracked_pools() -> dict[str, Any]:
    """urllib3's connection pools, with connections that register themselves (for
    ``abort_reads``) and refuse to connect once the run is stopping."""
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Conn(HTTPConnection):
        def connect(self) -> None:
            check_aborted(f"connecting to {self.host}")
            super().connect()
            track(self)

    class TlsConn(HTTPSConnection):
        def connect(self) -> None:
            check_aborted(f"connecting to {self.host}")
            super().connect()
            track(self)

    class Pool(HTTPConnectionPool):
        ConnectionCls = Conn

    class TlsPool(HTTPSConnectionPool):
        ConnectionCls = TlsConn

    return {"http": Pool, "https": TlsPool}


Pause = Callable[[float], None]  # wait up to N seconds; raise when the run is stopped


def retry_class(
    remaining: Callable[[], float | None] | None = None, pause: Pause | None = None
) -> type[Any]:
    from urllib3.exceptions import MaxRetryError
    from urllib3.util.retry import Retry

    class CappedRetry(Retry):
        """urllib3's Retry with every Retry-After wait capped. A registry asking for
        longer than the cap (Docker Hub's rate limit: hours), or than the run's deadline
        leaves, is not retried at all: its answer goes back to the caller at once,
        which says until when (errors/answers.py). The wait between attempts is ``pause``, so
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


def _adapter(retry: Any, pool_size: int, context: Any = None) -> Any:
    """requests' adapter over tracked connection pools (``abort_reads``); with an SSL
    ``context``, that context for every HTTPS connection."""
    from requests.adapters import HTTPAdapter

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            if context is not None:
                kwargs["ssl_context"] = context
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = _tracked_pools()

    return Adapter(max_retries=retry, pool_connections=1, pool_maxsize=pool_size)


def _unverified_adapter(retry: Any, pool_size: int) -> Any:
    """HTTPS without certificate verification, for an insecure host only. Its TLS
    context loads no CA bundle: urllib3 would load one per connection (~30 ms)."""
    import ssl
    import warnings

    from urllib3.exceptions import InsecureRequestWarning

    warnings.filterwarnings("ignore", category=InsecureRequestWarning)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return _adapter(retry, pool_size, context)


@functools.cache
def _user_agent() -> str:
    """``tagger/<version>``: read from the distribution's metadata when the first session
    is made (often in a prefetch thread), not when this module is imported."""
    from .. import __version__

    return f"tagger/{__version__}"


def new_session(retry: Any, pool_size: int, unverified: str | None = None) -> requests.Session:
    import requests

    session = requests.Session()
    session.trust_env = False  # no ~/.netrc: it would replace our Authorization header
    session.headers["User-Agent"] = _user_agent()
    session.headers["Accept-Encoding"] = "identity"  # sizes and digests are of raw bytes
    adapter = _adapter(retry, pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if unverified:  # the longest prefix wins: this host's HTTPS only
        session.mount(unverified, _unverified_adapter(retry, pool_size))
    return session
