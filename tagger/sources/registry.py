"""``docker://REF``: an image already in a registry ("build once, promote").

Within one repository nothing is copied; within one registry blobs are mounted; across
registries they are streamed from the source registry into the target.
"""

from __future__ import annotations

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
        return self.client.get_manifest(self.ref.repository, digest)

    def open_blob(self, digest: str, size: int | None) -> Iterator[bytes]:
        return self.client.open_blob(self.ref.repository, digest)

    def read_blob(self, digest: str, size: int | None, limit: int = 0) -> bytes:
        # the registry client caps and verifies what it reads itself
        return self.client.read_blob(self.ref.repository, digest)
