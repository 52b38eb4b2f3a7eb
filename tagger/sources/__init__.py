"""Where the image being published comes from, in skopeo's transport syntax:
``docker://REF`` (an image in a registry), ``oci:DIR[:TAG]`` (an OCI image layout),
``docker-archive:FILE[:REF]`` (a ``docker save`` tarball) and
``docker-daemon:NAME[:TAG]`` (the local Docker daemon).

Every source opens as an ``Opened`` (base.py): its labels for the provenance check,
and the ``Source`` to publish (exact manifest bytes, digest D, its blobs) once D is
known: at once for a registry, a layout or a tarball; for the daemon when a target
already holds the image or once the daemon has pushed T (daemon.py). Copying a
``Source`` into a target repository is copy.py's business.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..reference import parse_reference
from .archive import ArchiveSource
from .base import ClientFor, Labels, Opened, Source, Target
from .daemon import DaemonSource
from .layout import LayoutSource
from .registry import RegistrySource

__all__ = [
    "ArchiveSource",
    "ClientFor",
    "DaemonSource",
    "Labels",
    "LayoutSource",
    "Opened",
    "RegistrySource",
    "Source",
    "Target",
    "open_source",
]

TRANSPORTS = "docker://REF, docker-daemon:NAME[:TAG], oci:DIR[:TAG] or docker-archive:FILE"


def open_source(text: str, client_for: ClientFor) -> Opened:
    """The source named by ``--source``; nothing is read until it is used."""
    transport, sep, rest = text.partition(":")
    if not sep:
        raise UsageError(f"--source {text!r} names no transport", f"use {TRANSPORTS}")
    if transport == "docker":
        if not rest.startswith("//"):
            raise UsageError(f"--source {text!r}: write docker://REF")
        ref = parse_reference(rest[2:])
        if ref.tag is None and ref.digest is None:
            ref = ref.with_tag("latest")
        return RegistrySource(ref, client_for, name=text)
    if not rest:
        raise UsageError(f"--source {text!r} names nothing after {transport}:", f"use {TRANSPORTS}")
    if transport == "docker-daemon":
        return DaemonSource(rest, client_for, name=text)
    # skopeo's rule: the path ends at the first colon; what follows picks the image
    path, _, pick = rest.partition(":")
    if transport == "oci":
        return LayoutSource(Path(path), pick or None, name=text)
    if transport == "docker-archive":
        return ArchiveSource(Path(path), pick or None, name=text)
    raise UsageError(f"unknown source transport {transport!r} in {text!r}", f"use {TRANSPORTS}")
