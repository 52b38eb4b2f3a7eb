"""The OCI labels a build of HEAD should carry (``tagger labels``), as pure functions.

- revision: HEAD's full SHA; version: V, else T (both checked by provenance.py);
- created: the commit's time (or ``SOURCE_DATE_EPOCH``) in RFC 3339 UTC, never the
  clock, so a rebuild of one commit gets the same labels;
- source: the repository's web URL, from the CI's variables or the ``origin`` remote
  made https, never with the credentials a remote URL can hold.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from datetime import datetime, timezone

from .errors import ConfigError
from .provenance import REVISION, VERSION

CREATED = "org.opencontainers.image.created"
SOURCE = "org.opencontainers.image.source"

# scp-like syntax: [user@]host:path, the colon before any slash (git's own rule)
_SCP = re.compile(r"^(?:(?P<user>[^/@]+)@)?(?P<host>\[[^\]/]+\]|[^:/\[\]]+):(?P<path>.*)$")
_SSH_SCHEMES = ("ssh", "git+ssh", "ssh+git", "git")
_WEB_SCHEMES = ("http", "https")


def _clean_path(path: str) -> str:
    path = path.split("?", 1)[0].split("#", 1)[0].strip("/")
    path = path.removesuffix(".git").rstrip("/")
    return re.sub(r"/{2,}", "/", path)


def _web(scheme: str, host: str, port: int | None, path: str) -> str | None:
    path = _clean_path(path)
    if not host or not path or any(c.isspace() or ord(c) < 32 for c in host + path):
        return None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    netloc = f"{host}:{port}" if port else host
    return f"{scheme}://{netloc}/{path}"


def web_url(remote: str) -> str | None:
    """The web URL of a git remote URL, without its credentials, port of ssh or
    ``.git``; None for what has no web page (a local path, ``file://``)."""
    remote = remote.strip()
    if "://" not in remote:
        m = _SCP.match(remote)
        if m is None or remote.startswith(("/", ".")):
            return None
        return _web("https", m["host"].lower(), None, m["path"])
    try:
        parts = urllib.parse.urlsplit(remote)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme in _WEB_SCHEMES:  # already a web address: keep its scheme and port
        return _web(scheme, host, port, parts.path)
    if scheme in _SSH_SCHEMES:  # the ssh port is not the web server's
        return _web("https", host, None, parts.path)
    return None


def url_secrets(remote: str) -> list[str]:
    """What in a remote URL is secret: its whole userinfo, the password, and a
    username that stands alone in an http(s) URL (``https://TOKEN@host/…``)."""
    remote = remote.strip()
    if "://" not in remote:
        m = _SCP.match(remote)
        user = m["user"] if m and m["user"] else ""
        return [user, user.partition(":")[2]] if ":" in user else []
    try:
        parts = urllib.parse.urlsplit(remote)
    except ValueError:
        return []
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    if not userinfo:
        return []
    user, colon, password = userinfo.partition(":")
    out = [userinfo]
    if colon:
        out += [password, urllib.parse.unquote(password)]
    elif parts.scheme.lower() in _WEB_SCHEMES:
        out += [user, urllib.parse.unquote(user)]
    return [s for s in out if s]


def source_url_from_env(env: Mapping[str, str]) -> str | None:
    """The web URL the CI names: GitHub Actions' (in a job: ``GITHUB_ACTIONS=true``),
    else GitLab CI's; None elsewhere."""
    repo = env.get("GITHUB_REPOSITORY", "").strip("/")
    if repo and env.get("GITHUB_ACTIONS") == "true":
        server = env.get("GITHUB_SERVER_URL") or "https://github.com"
        return web_url(f"{server.rstrip('/')}/{repo}")
    if env.get("CI_PROJECT_URL"):
        return web_url(env["CI_PROJECT_URL"])
    return None


def source_date_epoch(env: Mapping[str, str]) -> int | None:
    """``SOURCE_DATE_EPOCH`` when set (whole seconds since 1970), else None."""
    value = env.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) > 253402300799:  # 9999-12-31T23:59:59Z
        raise ConfigError(
            f"SOURCE_DATE_EPOCH={value!r} is not a time",
            "set it to whole seconds since 1970 (git log -1 --pretty=%ct), or unset it",
        )
    return int(value)


def rfc3339(epoch: int) -> str:
    """``2024-02-03T02:05:06Z``."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make(*, commit: str, version: str, created: int, source: str | None) -> dict[str, str]:
    """The labels, in the order they are printed; no source label without a URL."""
    out = {REVISION: commit, VERSION: version, CREATED: rfc3339(created)}
    if source:
        out[SOURCE] = source
    return out
