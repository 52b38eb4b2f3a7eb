"""``docker://REF``: an image already in a registry ("build once, promote").

Within one repository nothing is copied; within one registry blobs are mounted; across
registries they are streamed from the source registry into the target.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from ..errors import NotFound, PolicyRefusal
from ..oci import Manifest
from ..reference import ImageRef
from ..registry import RegistryClient
from .base import ClientFor, Source


class RegistrySource(Source):
    def __init__(
        self,
        ref: ImageRef,
        client_for: ClientFor,
        name: str = "",
        manifest: Manifest | None = None,
    ) -> None:
        self.ref = ref
        self.client_for = client_for
        self.name = name or f"docker://{ref}"
        self.origin = (ref.registry, ref.repository)
        self._top = manifest  # when the caller read it already
        self._children: dict[str, Manifest] = {}
        self._lock = threading.Lock()

    @property
    def client(self) -> RegistryClient:
        return self.client_for(self.ref.registry)

    def _load(self) -> Manifest:
        try:
            return self.client.get_manifest(self.ref.repository, self.ref.reference)
        except NotFound:
            raise PolicyRefusal(
                f"source image {self.ref} not found",
                "push the image CI built for this commit under that tag,"
                " or name what to publish with --source",
            ) from None

    def child(self, digest: str) -> Manifest:
        """Read once per run: the labels check and every copy use the same bytes, and
        each GET of a manifest is a pull to registries that count them (Docker Hub)."""
        with self._lock:
            cached = self._children.get(digest)
        if cached is None:
            cached = self.client.get_manifest(self.ref.repository, digest)
            with self._lock:
                self._children[digest] = cached
        return cached

    def open_blob(self, digest: str, size: int | None) -> Iterator[bytes]:
        return self.client.open_blob(self.ref.repository, digest)

    def read_blob(self, digest: str, size: int | None, limit: int = 0) -> bytes:
        # the registry client caps and verifies what it reads itself
        return self.client.read_blob(self.ref.repository, digest)
