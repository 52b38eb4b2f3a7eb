"""Copy an image into a target repository, in the order a registry accepts: blobs
(configs and layers) first, then child manifests deepest first; the caller PUTs the
top manifest under its tags last. One way: nothing of the sources is imported here.

Blobs of another repository of the same registry are mounted at once (a mount of a
blob the target has answers 201 as well; a refused mount becomes an upload); blobs
from elsewhere that the target has are skipped (HEAD); the rest are streamed, chunk
by chunk, from the source into a monolithic PUT of known length, so no blob is ever
held in memory. Uploads run in a bounded pool; a transfer cut off by a transient error
is started again from the beginning (an upload session cannot be resumed portably).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import RegistryError, RegistryUnreachable
from ..oci import Manifest, check_digest
from ..progress import Progress, human_size
from ..registry import RegistryClient
from ..registry.errors import RETRY_STATUSES

PARALLEL = 8  # concurrent blob transfers per target
ATTEMPTS = 3


class StoredImage(Protocol):
    """What copying needs of a source (sources/base.py's Source is one)."""

    name: str
    origin: tuple[str, str] | None

    def manifest(self) -> Manifest: ...

    def child(self, digest: str) -> Manifest: ...

    def open_blob(self, digest: str, size: int | None) -> Iterator[bytes]: ...


@dataclass
class Plan:
    manifests: list[Manifest] = field(default_factory=list)  # children, deepest first
    blobs: dict[str, int] = field(default_factory=dict)  # digest -> size


def _plan(src: StoredImage, client: RegistryClient, repo: str, pool: ThreadPoolExecutor) -> Plan:
    """What the target lacks: child manifests (a present child brings its blobs) and
    the blobs of every image manifest that is not there."""
    plan = Plan()

    def walk(m: Manifest, depth: int) -> None:
        if not m.is_index:
            for b in m.blobs():
                plan.blobs[check_digest(b.get("digest"), src.name)] = int(b.get("size", 0))
            return
        if depth > 3:
            raise RegistryError(f"{src.name}: indexes nested too deep")
        digests = [check_digest(d.get("digest"), src.name) for d in m.children()]
        present = list(pool.map(lambda d: client.head_manifest(repo, d, push=True), digests))
        missing = [d for d, there in zip(digests, present) if there is None]
        for child in pool.map(src.child, missing):
            walk(child, depth + 1)
            plan.manifests.append(child)

    walk(src.manifest(), 0)
    return plan


def _counted(chunks: Iterator[bytes], progress: Progress) -> Iterator[bytes]:
    for chunk in chunks:
        progress.advance(len(chunk))
        yield chunk


def _transient(e: RegistryError) -> bool:
    return isinstance(e, RegistryUnreachable) or e.status in RETRY_STATUSES


def _upload(
    src: StoredImage,
    client: RegistryClient,
    repo: str,
    location: str,
    digest: str,
    size: int,
    progress: Progress,
) -> None:
    """Stream one blob into an upload session; the source is opened again when the
    PUT has to be sent again (a token renewed, a redirect)."""
    opened: list[Iterator[bytes]] = []

    def open_chunks() -> Iterator[bytes]:
        opened.append(src.open_blob(digest, size))
        return _counted(opened[-1], progress)

    try:
        client.upload_blob(repo, location, digest, open_chunks, size, source=src.name)
    finally:
        for chunks in opened:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()


def _transfer(
    src: StoredImage,
    client: RegistryClient,
    repo: str,
    digest: str,
    size: int,
    progress: Progress,
) -> str:
    """Mount or stream one blob the target lacks; returns ``mounted`` or ``uploaded``."""
    mount_from = src.origin[1] if src.origin and src.origin[0] == client.registry else None
    for attempt in range(1, ATTEMPTS + 1):
        location = client.mount_blob(repo, digest, mount_from) if mount_from else None
        if mount_from and location is None:
            progress.advance(size)
            return "mounted"
        location = location or client.start_upload(repo)
        try:
            _upload(src, client, repo, location, digest, size, progress)
            return "uploaded"
        except RegistryError as e:
            if attempt == ATTEMPTS or not _transient(e):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def publish(src: StoredImage, client: RegistryClient, repo: str) -> None:
    """Make everything ``src.manifest()`` refers to present in ``repo``."""
    if src.origin == (client.registry, repo):
        return  # retagging within the repository: everything is there already
    image = f"{client.registry}/{repo}"

    def exists(blob: tuple[str, int]) -> bool:
        return client.blob_exists(repo, blob[0])

    with ThreadPoolExecutor(PARALLEL) as pool:
        plan = _plan(src, client, repo, pool)
        blobs = list(plan.blobs.items())
        # within one registry a mount is asked for at once: it answers 201 for a blob
        # the target has too, so a HEAD first would only add a round trip
        mounts = bool(src.origin and src.origin[0] == client.registry)
        there = [False] * len(blobs) if mounts else list(pool.map(exists, blobs))
        needed = [b for b, exists in zip(blobs, there) if not exists]
        total = sum(size for _, size in needed)
        with Progress(f"{src.name} -> {image}", total) as progress:
            done: list[Any] = list(
                pool.map(lambda b: _transfer(src, client, repo, b[0], b[1], progress), needed)
            )
            for m in plan.manifests:
                client.put_manifest(repo, m.digest, m)
            uploaded = [b for b, how in zip(needed, done) if how == "uploaded"]
            if needed or plan.manifests:
                progress.summary = (
                    f"{image}: blobs {len(uploaded)} uploaded"
                    f" ({human_size(sum(s for _, s in uploaded))}),"
                    f" {len(needed) - len(uploaded)} mounted,"
                    f" {len(blobs) - len(needed)} already there;"
                    f" {len(plan.manifests)} child manifests"
                )
