"""What every source gives the release.

``open_source`` (``__init__.py``) returns an ``Opened`` source: its labels for the
provenance check, ``locate`` (the ``Source`` to publish, once its digest D is known)
and ``push`` (write it under a tag, handing back the registry-backed ``Source``). A
source that holds its manifest and blobs itself (a registry, an OCI layout, a tarball)
is a ``Source`` at once; the docker daemon's image becomes one when it is found in a
target or pushed there (``daemon.py``).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple, Protocol

from ..errors import UsageError
from ..oci import CONFIG_TYPES, Manifest, check_digest, hasher, matches
from ..registry import RegistryClient
from . import copy

ClientFor = Callable[[str], RegistryClient]
Labels = dict[str, set[str]]  # label or annotation name -> every value found in the image

CHUNK = 256 << 10  # read size for files: one size, reused by the allocator
MAX_SMALL = 16 << 20  # an image config is never near this
MAX_MANIFEST = 4 << 20  # nor a manifest, an index or a layout's index.json (registries: 4 MiB)


class Target(NamedTuple):
    """A target repository as the plan found it."""

    client: RegistryClient
    repo: str
    has_tag: bool  # T exists there


def collect(labels: Labels, mapping: object) -> None:
    if isinstance(mapping, dict):
        for k, v in mapping.items():
            if isinstance(k, str) and isinstance(v, str):
                labels.setdefault(k, set()).add(v)


class Opened(Protocol):
    """A source as ``--source`` named it, before its digest is necessarily known."""

    name: str  # as the user wrote it, for reports

    def labels(self) -> Labels:
        """The config labels and manifest annotations of the image (every platform)."""
        ...

    def locate(self, targets: Sequence[Target], tag: str) -> Source | None:
        """The Source to publish; None when its digest is known only once pushed."""
        ...

    def push(self, client: RegistryClient, repo: str, tag: str) -> Source:
        """Write the image to ``repo`` under ``tag``; the registry-backed Source."""
        ...


class Source(ABC):
    """An image whose manifest (exact bytes, digest D) and blobs can be read;
    ``origin`` is the registry repository it lives in, when blobs can be mounted."""

    name: str
    origin: tuple[str, str] | None = None
    _top: Manifest | None = None

    @abstractmethod
    def _load(self) -> Manifest:
        """Read the manifest to publish; PolicyRefusal when there is no such image."""

    @abstractmethod
    def child(self, digest: str) -> Manifest:
        """A manifest an index lists, by digest (checked)."""

    @abstractmethod
    def open_blob(self, digest: str, size: int | None) -> Iterator[bytes]:
        """A blob's content in chunks (``size`` from its descriptor, when known); raise
        now, not while iterating, when it is missing."""

    def read_blob(self, digest: str, size: int | None, limit: int = MAX_SMALL) -> bytes:
        """A small blob (a manifest, an image config) in memory, at most ``limit`` bytes,
        checked against its digest (sha256 or sha512)."""
        if size is not None and size > limit:
            raise UsageError(f"{self.name}: {digest} is too large for a manifest or config")
        data = bytearray()
        for chunk in self.open_blob(digest, size):
            data += chunk
            if len(data) > limit:
                raise UsageError(f"{self.name}: {digest} is too large for a manifest or config")
        if not matches(bytes(data), digest):
            raise UsageError(f"{self.name}: blob {digest} does not match its digest")
        return bytes(data)

    def manifest(self) -> Manifest:
        if self._top is None:
            self._top = self._load()
        return self._top

    def locate(self, targets: Sequence[Target], tag: str) -> Source:
        self.manifest()
        return self

    def push(self, client: RegistryClient, repo: str, tag: str) -> Source:
        copy.publish(self, client, repo)
        client.put_manifest(repo, tag, self.manifest())
        return self

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


def verified(chunks: Iterator[bytes], digest: str, name: str) -> Iterator[bytes]:
    """``chunks`` checked against ``digest`` (its own algorithm) as they stream: the
    last chunk is held back until the whole content matched, so a blob that does not
    match is never completely uploaded."""
    h = hasher(digest)
    held: bytes | None = None
    for chunk in chunks:
        if held is not None:
            yield held
        h.update(chunk)
        held = chunk
    if f"{digest.partition(':')[0]}:{h.hexdigest()}" != digest:
        raise UsageError(
            f"{name}: blob {digest} does not match its digest",
            "the source is damaged or was altered; build or export the image again",
        )
    if held is not None:
        yield held


__all__ = ["ClientFor", "Labels", "Opened", "Source", "Target", "check_digest", "collect"]
