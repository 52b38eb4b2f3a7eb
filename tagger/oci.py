"""OCI values: manifests as the exact bytes a registry or layout served, media types
and digests. No I/O.

A manifest is never parsed into objects and serialised again: its bytes are kept and
PUT back unchanged, so its digest never changes (go-containerregistry's raw manifests).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MANIFEST_TYPES = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
CONFIG_TYPES = (DOCKER_CONFIG, OCI_CONFIG)

DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")
ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """The digest of ``data`` with the algorithm a descriptor names."""
    return f"{algorithm}:{ALGORITHMS[algorithm](data).hexdigest()}"


def hasher(digest: str) -> Any:
    """A running hash for the algorithm of ``digest`` (sha256 or sha512)."""
    return ALGORITHMS[digest.partition(":")[0]]()


def matches(data: bytes, digest: str) -> bool:
    """Does ``data`` have this digest? Every supported algorithm is checked."""
    algorithm = digest.partition(":")[0]
    return algorithm in ALGORITHMS and digest_of(data, algorithm) == digest


def check_digest(digest: object, where: str) -> str:
    """A digest from a source's metadata, checked before it names a file or a URL."""
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        raise UsageError(f"{where}: {digest!r} is not a sha256 or sha512 digest")
    return digest


@dataclass(frozen=True)
class Manifest:
    """A manifest as the registry served it: exact bytes, media type and digest."""

    data: bytes = field(repr=False)
    media_type: str
    digest: str

    @classmethod
    def from_bytes(cls, data: bytes, content_type: str | None = None) -> Manifest:
        return cls(data, media_type_of(data, content_type), sha256_digest(data))

    def json(self) -> dict[str, Any]:
        doc = json.loads(self.data)
        if not isinstance(doc, dict):
            raise ValueError("manifest is not a JSON object")
        return doc

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def children(self) -> list[dict[str, Any]]:
        """Descriptors of the manifests an index lists."""
        return list(self.json().get("manifests", [])) if self.is_index else []

    def blobs(self) -> list[dict[str, Any]]:
        """Descriptors of the config and layers an image manifest refers to."""
        if self.is_index:
            return []
        doc = self.json()
        out = [doc["config"]] if "config" in doc else []
        return out + [
            layer
            for layer in doc.get("layers", [])
            if not layer.get("urls")  # foreign layers stay put
        ]


def manifest_problem(data: bytes, content_type: str | None) -> str | None:
    """Why these bytes are no manifest (an HTML page, broken JSON, a JSON document
    with none of a manifest's fields), or None when they look like one."""
    ct = (content_type or "").split(";")[0].strip().lower()
    head = data[:512].lstrip().lower()
    if ct == "text/html" or head.startswith((b"<!doctype", b"<html")):
        return "an HTML page"
    try:
        doc = json.loads(data)
    except ValueError:
        return "broken JSON"
    if not isinstance(doc, dict) or not isinstance(doc.get("schemaVersion"), int):
        return "not a manifest (no schemaVersion)"
    if isinstance(doc.get("manifests"), list):
        return None
    if doc.get("schemaVersion") == 1 and isinstance(doc.get("fsLayers"), list):
        return None
    if isinstance(doc.get("config"), dict) and isinstance(doc.get("layers"), list):
        return None
    return "not a manifest (neither config and layers nor manifests)"


def media_type_of(data: bytes, content_type: str | None) -> str:
    """The media type of a manifest: the registry's Content-Type when it is a manifest
    type, else the document's ``mediaType``, else inferred from its shape (an OCI
    manifest may omit ``mediaType``)."""
    ct = (content_type or "").split(";")[0].strip()
    if ct in MANIFEST_TYPES or ct.startswith("application/vnd.docker.distribution.manifest.v1"):
        return ct
    try:
        doc = json.loads(data)
    except ValueError:
        return ct or OCI_MANIFEST
    if isinstance(doc, dict):
        mt = doc.get("mediaType")
        if isinstance(mt, str) and mt:
            return mt
        if "manifests" in doc:
            return OCI_INDEX
    return OCI_MANIFEST
