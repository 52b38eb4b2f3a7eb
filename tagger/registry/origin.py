"""Where a URL goes: its origin (scheme, host, port: what credentials are bound to) and
the environment's proxy for it (never for loopback; ``~/.netrc`` is never read, see
transport.py)."""

from __future__ import annotations

import urllib.parse
import urllib.request

from ..reference import is_loopback


def origin(url: str) -> tuple[str, str, int]:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def proxies_for(url: str) -> dict[str, str]:
    """The environment's proxy for ``url`` (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), none
    for loopback."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if is_loopback(host) or urllib.request.proxy_bypass(host):
        return {}
    env = urllib.request.getproxies()
    scheme = urllib.parse.urlsplit(url).scheme
    return {scheme: env[scheme]} if scheme in env else {}
