"""``oci:DIR[:TAG]``: an OCI image layout on disk, as buildx (``--output
type=oci,tar=false``), buildah, ``skopeo copy … oci:DIR:TAG`` or crane write it.

``index.json`` lists the images; TAG picks the one whose
``org.opencontainers.image.ref.name`` annotation is TAG; without TAG the layout must
hold exactly one. The manifest (an image manifest or a whole index) is published with
the exact bytes of its blob, so its digest is the one the layout names.

A layout is untrusted input: only regular files inside its directory are read (no
symlink, FIFO or device: a blob symlinked to a file elsewhere would be uploaded, a FIFO
would hang), index.json and manifests are at most 4 MiB and configs 16 MiB, and every
blob is checked against its digest, sha256 or sha512, before its last byte is sent.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import PolicyRefusal, UsageError
from ..oci import Manifest, check_digest
from .base import CHUNK, MAX_MANIFEST, Source, verified

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
        data = self.read_blob(digest, size if isinstance(size, int) else None, MAX_MANIFEST)
        return Manifest(data, Manifest.from_bytes(data, desc.get("mediaType")).media_type, digest)

    def _load(self) -> Manifest:
        if not self.path.is_dir():
            raise PolicyRefusal(
                f"{self.name}: no such directory {self.path}",
                "build the image into an OCI layout there first"
                " (docker buildx build --output type=oci,dest=DIR,tar=false)",
            )
        try:
            with self._open(self.path / "index.json", "index.json") as f:
                if os.fstat(f.fileno()).st_size > MAX_MANIFEST:
                    raise UsageError(
                        f"{self.name}: {self.path}/index.json is larger than 4 MiB",
                        "point --source oci:DIR at an OCI image layout",
                    )
                index = json.loads(f.read(MAX_MANIFEST + 1))
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

    def _open(self, path: Path, what: str) -> Any:
        """``path`` opened for reading when it is a regular file inside the layout (not a
        symlink, FIFO or device, in no directory that leads outside it); else UsageError,
        or FileNotFoundError when there is no such file."""
        root = self.path.resolve()
        parent = path.parent.resolve()
        if parent != root and root not in parent.parents:
            raise UsageError(
                f"{self.name}: {what} is outside the layout ({path.parent} leads elsewhere)",
                "an OCI layout must hold its own files; export the image again",
            )
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(path, flags)
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise FileNotFoundError(str(path)) from None
            if e.errno != errno.ELOOP:
                raise
            fd = -1
        if fd < 0 or not stat.S_ISREG(os.fstat(fd).st_mode):
            if fd >= 0:
                os.close(fd)
            raise UsageError(
                f"{self.name}: {what} is not a regular file in the layout"
                " (a symlink, FIFO or device)",
                "an OCI layout holds plain files only; export the image again",
            )
        return os.fdopen(fd, "rb")

    def open_blob(self, digest: str, size: int | None) -> Iterator[bytes]:
        path = self._blob_path(digest)
        try:
            f = self._open(path, f"blob {digest}")
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
        return verified(_chunks(f), digest, self.name)


def _chunks(f: Any) -> Iterator[bytes]:
    with f:
        while chunk := f.read(CHUNK):
            yield chunk
