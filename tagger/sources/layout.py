"""``oci:DIR[:TAG]``: an OCI image layout on disk, as buildx (``--output
type=oci,tar=false``), buildah, ``skopeo copy … oci:DIR:TAG`` or crane write it.

``index.json`` lists the images; TAG picks the one whose
``org.opencontainers.image.ref.name`` annotation is TAG; without TAG the layout must
hold exactly one. The manifest (an image manifest or a whole index) is published with
the exact bytes of its blob, so its digest is the one the layout names.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import PolicyRefusal, UsageError
from ..oci import Manifest, check_digest
from .base import CHUNK, Source

REF_NAME = "org.opencontainers.image.ref.name"


class LayoutSource(Source):
    def __init__(self, path: Path, tag: str | None, name: str) -> None:
        self.path = path
        self.tag = tag
        self.name = name

    def _blob_path(self, digest: str) -> Path:
        algo, _, hexpart = check_digest(digest, self.name).partition(":")
        return self.path / "blobs" / algo / hexpart

    def _read_manifest(self, desc: dict[str, Any]) -> Manifest:
        digest = check_digest(desc.get("digest"), f"{self.name}: index.json")
        size = desc.get("size")
        data = self.read_blob(digest, size if isinstance(size, int) else None)
        return Manifest(data, Manifest.from_bytes(data, desc.get("mediaType")).media_type, digest)

    def _load(self) -> Manifest:
        if not self.path.is_dir():
            raise PolicyRefusal(
                f"{self.name}: no such directory {self.path}",
                "build the image into an OCI layout there first"
                " (docker buildx build --output type=oci,dest=DIR,tar=false)",
            )
        index_file = self.path / "index.json"
        try:
            index = json.loads(index_file.read_bytes())
            entries = [e for e in index["manifests"] if isinstance(e, dict)]
        except (OSError, ValueError, KeyError, TypeError):
            raise UsageError(
                f"{self.name}: {self.path} is not an OCI image layout (no readable index.json)",
                "point --source oci:DIR at the directory that holds oci-layout and index.json",
            ) from None
        names = [str(e.get("annotations", {}).get(REF_NAME, "")) for e in entries]
        if self.tag is not None:
            chosen = [e for e, n in zip(entries, names) if n == self.tag]
            if not chosen:
                raise PolicyRefusal(
                    f"{self.name}: the layout has no image named {self.tag!r}",
                    "it holds: " + (", ".join(repr(n) for n in names if n) or "unnamed images"),
                )
        else:
            chosen = entries
            if len(entries) != 1:
                raise UsageError(
                    f"{self.name}: the layout holds {len(entries)} images; name one",
                    "write oci:DIR:NAME with one of: "
                    + (", ".join(repr(n) for n in names if n) or "(none are named)"),
                )
        return self._read_manifest(chosen[0])

    def child(self, digest: str) -> Manifest:
        return self._read_manifest({"digest": digest})

    def open_blob(self, digest: str, size: int | None) -> Iterator[bytes]:
        path = self._blob_path(digest)
        try:
            f = path.open("rb")
        except OSError:
            raise UsageError(
                f"{self.name}: blob {digest} is missing from the layout",
                "export the image again; an OCI layout must hold every blob it refers to",
            ) from None
        actual = os.fstat(f.fileno()).st_size
        if size is not None and actual != size:
            f.close()
            raise UsageError(
                f"{self.name}: blob {digest} has {actual} bytes, the manifest says {size}",
                "the layout is damaged; export the image again",
            )
        return _chunks(f)


def _chunks(f: Any) -> Iterator[bytes]:
    with f:
        while chunk := f.read(CHUNK):
            yield chunk
