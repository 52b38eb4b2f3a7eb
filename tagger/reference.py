"""Image references: parse, validate and normalise (no I/O).

``ghcr.io/acme/api``, ``127.0.0.1:5000/api:sha-1a2b3c4``, ``app@sha256:…`` and Docker
Hub's short forms (``app`` → ``registry-1.docker.io`` / ``library/app``) follow the
rules of distribution/reference, which is what ``docker`` itself accepts.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from .errors import UsageError
from .policy import DOCKER_TAG_RE

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_HOST_RE = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
)


@dataclass(frozen=True)
class ImageRef:
    """A repository on a registry, optionally with a tag or digest."""

    registry: str  # as the API is reached: host[:port], Docker Hub as registry-1.docker.io
    repository: str  # library/app for Docker Hub's official images
    tag: str | None = None
    digest: str | None = None

    @property
    def repo_ref(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What to ask the manifests endpoint for: the digest, else the tag."""
        ref = self.digest or self.tag
        if ref is None:
            raise UsageError(f"{self} names no tag or digest")
        return ref

    def with_tag(self, tag: str) -> ImageRef:
        return ImageRef(self.registry, self.repository, tag, None)

    def __str__(self) -> str:
        out = self.repo_ref
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_reference(text: str, *, allow_tag: bool = True) -> ImageRef:
    """Parse ``[registry/]path[:tag][@digest]``; raise UsageError saying what is wrong."""
    original = text
    if not text or text != text.strip():
        raise UsageError(f"invalid image reference {original!r}: it is empty or has spaces")
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST_RE.fullmatch(digest):
            raise UsageError(f"invalid digest in image reference {original!r}")
    tag = None
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not DOCKER_TAG_RE.fullmatch(tag):
            raise UsageError(
                f"invalid tag {tag!r} in {original!r}: a tag is [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
            )
    if (tag or digest) and not allow_tag:
        raise UsageError(
            f"--image takes a repository without tag or digest, got {original!r} (try {text!r})"
        )
    first, _, rest = text.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, path = first, rest
        if not _HOST_RE.fullmatch(registry):
            raise UsageError(f"invalid registry host {registry!r} in {original!r}")
        _check_port(registry, original)
    else:
        registry, path = DOCKER_HUB, text
    if registry in _HUB_ALIASES:
        registry = DOCKER_HUB_API
        if "/" not in path:
            path = f"library/{path}"
    if path != path.lower() and _PATH_RE.fullmatch(path.lower()) and len(path) <= 255:
        lower = text.lower() + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
        raise UsageError(
            f"invalid repository name {path!r} in {original!r}: repository names are"
            f" lowercase; use {lower!r}",
            "GitHub's github.repository keeps the owner's capitals (ghcr.io/Acme/app):"
            " lowercase it (the tagger action does)",
        )
    if not _PATH_RE.fullmatch(path) or len(path) > 255:
        raise UsageError(
            f"invalid repository name {path!r} in {original!r}: use lowercase letters, digits"
            " and separators (. _ - /)"
        )
    return ImageRef(registry, path, tag, digest)


def _check_port(registry: str, original: str) -> None:
    """A port is 1-65535: anything else is a typo, not a registry to retry."""
    _, colon, port = registry.rpartition(":")
    if colon and not port.endswith("]") and not 1 <= int(port) <= 65535:
        raise UsageError(f"invalid port {port} in {original!r}: a port is a number from 1 to 65535")


def validate_tag(tag: str, hint: str | None = None) -> str:
    """``tag`` if it is a valid Docker tag, else a UsageError with ``hint`` (what made it)."""
    if not DOCKER_TAG_RE.fullmatch(tag):
        raise UsageError(
            f"{tag[:60]!r}{'...' if len(tag) > 60 else ''} ({len(tag)} characters) is not a"
            " valid Docker tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
            hint,
        )
    return tag


def short_digest(digest: str | None) -> str:
    """``sha256:1a2b3c4d5e6f`` (12 hex characters) for reports; ``-`` for none."""
    if not digest:
        return "-"
    algo, _, hexpart = digest.partition(":")
    return f"{algo}:{hexpart[:12]}"


def host_of(registry: str) -> str:
    """The host without port or IPv6 brackets."""
    if registry.startswith("["):
        return registry[1 : registry.index("]")]
    return registry.rsplit(":", 1)[0] if ":" in registry else registry


def is_loopback(registry: str) -> bool:
    host = host_of(registry)
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_insecure(registry: str, insecure: frozenset[str] = frozenset()) -> bool:
    """True for loopback hosts and hosts named with --insecure-registry (HOST or
    HOST:PORT): as Docker does, tagger contacts them over HTTPS without certificate
    verification, and over plain HTTP when they do not speak TLS. Every other registry
    is HTTPS with verification."""
    return is_loopback(registry) or registry in insecure or host_of(registry) in insecure
