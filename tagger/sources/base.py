"""What every source gives the release, and the reading side shared by the sources
that hold manifests and blobs themselves (a registry, an OCI layout, a tarball).

A source names the manifest to publish (exact bytes, digest D), the labels and
annotations the provenance check reads, and makes every blob and child manifest the
manifest refers to present in a target repository; the release then PUTs the same
bytes under each tag.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from ..errors import UsageError
from ..registry import Manifest, RegistryClient, sha256_digest

ClientFor = Callable[[str], RegistryClient]
Labels = dict[str, set[str]]  # label or annotation name -> every value found in the image

DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")
CONFIG_TYPES = (
    "application/vnd.docker.container.image.v1+json",
    "application/vnd.oci.image.config.v1+json",
)
CHUNK = 256 << 10  # read size for files: one size, reused by the allocator
MAX_SMALL = 16 << 20  # a manifest or an image config is never near this


class Source(Protocol):
    name: str  # as the user wrote it, for reports

    def manifest(self) -> Manifest:
        """The manifest to publish; raise PolicyRefusal when there is no such image."""
        ...

    def prepare(self, client: RegistryClient, repo: str) -> None:
        """Make every blob and child manifest the manifest refers to present in repo."""
        ...

    def labels(self) -> Labels:
        """The config labels and manifest annotations of the image (every platform)."""
        ...


def check_digest(digest: object, where: str) -> str:
    """A digest from a source's metadata, checked before it names a file or a URL."""
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        raise UsageError(f"{where}: {digest!r} is not a sha256 or sha512 digest")
    return digest


def collect(labels: Labels, mapping: object) -> None:
    if isinstance(mapping, dict):
        for k, v in mapping.items():
            if isinstance(k, str) and isinstance(v, str):
                labels.setdefault(k, set()).add(v)


class StoredImage(ABC):
    """A source that reads manifests and blobs itself; ``origin`` is the registry
    repository it lives in, when blobs can be mounted from there."""

    name: str
    origin: tuple[str, str] | None = None
    _top: Manifest | None = None

    @abstractmethod
    def _load(self) -> Manifest:
        """Read the manifest to publish."""

    @abstractmethod
    def child(self, digest: str) -> Manifest:
        """A manifest an index lists, by digest (checked)."""

    @abstractmethod
    def open_blob(self, digest: str, size: int | None) -> Iterator[bytes]:
        """A blob's content in chunks (``size`` from its descriptor, when known); raise
        now, not while iterating, when it is missing."""

    def read_blob(self, digest: str, size: int | None) -> bytes:
        """A small blob (a manifest, an image config) in memory, checked against its
        digest."""
        data = bytearray()
        for chunk in self.open_blob(digest, size):
            data += chunk
            if len(data) > MAX_SMALL:
                raise UsageError(f"{self.name}: {digest} is too large for a manifest or config")
        if digest.startswith("sha256:") and sha256_digest(bytes(data)) != digest:
            raise UsageError(f"{self.name}: blob {digest} does not match its digest")
        return bytes(data)

    def manifest(self) -> Manifest:
        if self._top is None:
            self._top = self._load()
        return self._top

    def prepare(self, client: RegistryClient, repo: str) -> None:
        from .transfer import publish

        publish(self, client, repo)

    def labels(self) -> Labels:
        """Annotations of the manifest (and of an index's entries and children), and the
        config labels of every image in it; children and configs are read in parallel."""
        out: Labels = {}
        top = self.manifest()
        collect(out, top.json().get("annotations"))
        images = [top]
        with ThreadPoolExecutor(8) as pool:
            if top.is_index:
                for d in top.children():
                    collect(out, d.get("annotations"))
                digests = [check_digest(d.get("digest"), self.name) for d in top.children()]
                images = list(pool.map(self.child, digests))
                for m in images:  # a nested index: its annotations, not deeper
                    collect(out, m.json().get("annotations"))
            configs = [
                c
                for c in (m.json().get("config") for m in images if not m.is_index)
                if isinstance(c, dict) and c.get("mediaType") in CONFIG_TYPES
            ]  # others are artifacts (attestations, signatures), not images
            bodies = pool.map(
                lambda c: self.read_blob(check_digest(c.get("digest"), self.name), c.get("size")),
                configs,
            )
            for body in bodies:
                doc = json.loads(body)
                if isinstance(doc, dict) and isinstance(doc.get("config"), dict):
                    collect(out, doc["config"].get("Labels"))
        return out
