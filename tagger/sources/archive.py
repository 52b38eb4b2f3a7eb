"""``docker-archive:FILE[:NAME[:TAG]|:@N]``: a tarball written by ``docker save``, or
by kaniko (``--tar-path``) and other go-containerregistry tools.

The tarball's ``manifest.json`` names each image's config file and layer files (some
may be symlinks to other members). It is converted into an OCI image manifest
deterministically, so the same tarball always gives the same digest D before anything
is written: the config and every layer are published with their exact bytes
(``docker save`` layers are uncompressed tars, ``application/vnd.oci.image.layer.v1.tar``;
gzip- or zstd-compressed layers, as kaniko writes them, keep their compression and
get the matching media type), and the manifest is compact JSON with a fixed key order.
The tarball is read in place: members are located once, then read by offset.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PolicyRefusal, UsageError
from ..oci import OCI_CONFIG, OCI_MANIFEST, Manifest, sha256_digest
from ..reference import parse_reference
from .base import CHUNK, MAX_MANIFEST, MAX_SMALL, Source

if TYPE_CHECKING:
    import tarfile

LAYER_TYPES = {
    b"\x1f\x8b": "application/vnd.oci.image.layer.v1.tar+gzip",
    b"\x28\xb5\x2f\xfd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


class ArchiveSource(Source):
    def __init__(self, path: Path, selector: str | None, name: str) -> None:
        self.path = path
        self.selector = selector
        self.name = name
        self._members: dict[str, tarfile.TarInfo] = {}
        self._blobs: dict[str, str] = {}  # digest -> member name

    # --- the tarball ------------------------------------------------------------
    def _index(self) -> None:
        if not self.path.is_file():
            raise PolicyRefusal(
                f"{self.name}: no such file {self.path}",
                "write the image there first (docker save -o FILE IMAGE)",
            )
        with self.path.open("rb") as f:
            if f.read(2) == b"\x1f\x8b":
                raise UsageError(
                    f"{self.name}: {self.path} is gzip-compressed",
                    "decompress it first (gunzip), then publish the .tar",
                )
        import tarfile  # only for this source

        try:
            with tarfile.open(self.path, "r:") as tar:
                self._members = {posixpath.normpath(m.name): m for m in tar.getmembers()}
        except (OSError, tarfile.TarError) as e:
            raise UsageError(
                f"{self.name}: cannot read {self.path} as a tar archive ({e})",
                "give a tarball written by docker save or kaniko --tar-path",
            ) from None

    def _member(self, name: str, depth: int = 0) -> tarfile.TarInfo:
        m = self._members.get(posixpath.normpath(name))
        if m is not None and m.issym() and depth < 8:
            target = posixpath.join(posixpath.dirname(m.name), m.linkname)
            return self._member(target, depth + 1)
        if m is None or not m.isfile():
            raise UsageError(
                f"{self.name}: the archive has no file {name!r}",
                "the tarball is incomplete; write it again with docker save",
            )
        return m

    def _read_member(self, name: str, limit: int) -> bytes:
        """A small member (manifest.json, a config), its size checked before it is read."""
        m = self._member(name)
        if m.size > limit:
            raise UsageError(
                f"{self.name}: {name} in {self.path} has {m.size} bytes, more than the"
                f" {limit >> 20} MiB a {'manifest' if limit == MAX_MANIFEST else 'config'}"
                " may have",
                "give a tarball written by docker save or kaniko --tar-path",
            )
        with self.path.open("rb") as f:
            f.seek(m.offset_data)
            return f.read(m.size)

    def _chunks(self, m: tarfile.TarInfo) -> Iterator[bytes]:
        with self.path.open("rb") as f:
            f.seek(m.offset_data)
            left = m.size
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    raise UsageError(f"{self.name}: {m.name} is truncated")
                left -= len(chunk)
                yield chunk

    def _select(self, entries: list[Any]) -> dict[str, Any]:
        if self.selector is None:
            if len(entries) != 1:
                raise UsageError(
                    f"{self.name}: the archive holds {len(entries)} images; name one",
                    "write docker-archive:FILE:NAME:TAG or docker-archive:FILE:@INDEX",
                )
            return dict(entries[0])
        if self.selector.startswith("@"):
            try:
                return dict(entries[int(self.selector[1:])])
            except (ValueError, IndexError):
                raise UsageError(
                    f"{self.name}: no image number {self.selector[1:]} in the archive",
                    f"it holds {len(entries)} (numbered from 0)",
                ) from None
        want = parse_reference(self.selector)
        for e in entries:
            for tag in e.get("RepoTags") or []:
                try:
                    if parse_reference(tag) == want:
                        return dict(e)
                except UsageError:
                    continue
        names = [t for e in entries for t in e.get("RepoTags") or []]
        raise PolicyRefusal(
            f"{self.name}: the archive has no image {self.selector!r}",
            "it holds: " + (", ".join(names) or "untagged images (use :@0)"),
        )

    # --- StoredImage ------------------------------------------------------------
    def _load(self) -> Manifest:
        self._index()
        try:
            entries = json.loads(self._read_member("manifest.json", MAX_MANIFEST))
            if not isinstance(entries, list) or not entries:
                raise ValueError
        except ValueError:
            raise UsageError(
                f"{self.name}: manifest.json in {self.path} is not a list of images",
                "give a tarball written by docker save or kaniko --tar-path",
            ) from None
        entry = self._select(entries)
        try:
            config_name = str(entry["Config"])
            layer_names = [str(n) for n in entry["Layers"]]
        except (KeyError, TypeError):
            raise UsageError(f"{self.name}: manifest.json lacks Config or Layers") from None
        config = self._read_member(config_name, MAX_SMALL)
        config_digest = sha256_digest(config)
        self._blobs[config_digest] = config_name
        layers = []
        for name in layer_names:
            digest, size, media_type = self._describe(name)
            self._blobs[digest] = name
            layers.append({"mediaType": media_type, "digest": digest, "size": size})
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": layers,
        }
        return Manifest.from_bytes(json.dumps(doc, separators=(",", ":")).encode(), OCI_MANIFEST)

    def _describe(self, name: str) -> tuple[str, int, str]:
        """Digest, size and media type of a layer file, read once."""
        m = self._member(name)
        h = hashlib.sha256()
        head = b""
        for chunk in self._chunks(m):
            if len(head) < 4:
                head += chunk[:4]
            h.update(chunk)
        media_type = next(
            (t for magic, t in LAYER_TYPES.items() if head.startswith(magic)), OCI_LAYER
        )
        return "sha256:" + h.hexdigest(), m.size, media_type

    def child(self, digest: str) -> Manifest:
        raise UsageError(f"{self.name}: a docker archive holds no index")  # pragma: no cover

    def open_blob(self, digest: str, size: int | None) -> Iterator[bytes]:
        self.manifest()
        name = self._blobs.get(digest)
        if name is None:
            raise UsageError(f"{self.name}: the archive has no blob {digest}")
        return self._chunks(self._member(name))
