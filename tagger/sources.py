"""Where the image being published comes from, in skopeo's transport syntax.

A source gives the manifest to publish (exact bytes and digest D) and a way to make
everything it refers to present in a target repository, after which the release PUTs
the same bytes under each tag. ``docker://REF`` (an image already in a registry, the
"build once, promote" flow) is implemented; ``docker-daemon:``, ``oci:`` and
``docker-archive:`` are recognised and refused with a clear message until they land.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from .errors import NotFound, PolicyRefusal, UsageError
from .reference import ImageRef, parse_reference
from .registry import Manifest, RegistryClient, copy_blob

ClientFor = Callable[[str], RegistryClient]
PARALLEL = 8


class Source(Protocol):
    name: str  # as the user wrote it, for reports

    def manifest(self) -> Manifest:
        """The manifest to publish; raise PolicyRefusal when there is no such image."""
        ...

    def prepare(self, client: RegistryClient, repo: str) -> None:
        """Make every blob and child manifest the manifest refers to present in repo."""
        ...


@dataclass
class RegistrySource:
    """``docker://REF``: an image already in a registry."""

    ref: ImageRef
    client_for: ClientFor
    name: str = ""
    _manifest: Manifest | None = field(default=None, repr=False)

    @property
    def client(self) -> RegistryClient:
        return self.client_for(self.ref.registry)

    def manifest(self) -> Manifest:
        if self._manifest is None:
            try:
                self._manifest = self.client.get_manifest(self.ref.repository, self.ref.reference)
            except NotFound:
                raise PolicyRefusal(
                    f"source image {self.ref} not found",
                    "push the image CI built for this commit under that tag,"
                    " or name what to publish with --source",
                ) from None
        return self._manifest

    def prepare(self, client: RegistryClient, repo: str) -> None:
        if client.registry == self.ref.registry and repo == self.ref.repository:
            return  # retagging within the repository: everything is there already
        top = self.manifest()
        with ThreadPoolExecutor(PARALLEL) as pool:
            children: list[Manifest] = []
            if top.is_index:
                missing = [
                    str(d["digest"])
                    for d, there in zip(
                        top.children(),
                        pool.map(
                            lambda d: client.head_manifest(repo, str(d["digest"]), push=True),
                            top.children(),
                        ),
                    )
                    if there is None
                ]
                children = list(
                    pool.map(lambda d: self.client.get_manifest(self.ref.repository, d), missing)
                )
            blobs = {str(b["digest"]): b for m in (children or [top]) for b in m.blobs()}
            list(
                pool.map(
                    lambda b: copy_blob(self.client, self.ref.repository, client, repo, b),
                    blobs.values(),
                )
            )
            list(pool.map(lambda m: client.put_manifest(repo, m.digest, m), children))


def open_source(text: str, client_for: ClientFor) -> Source:
    transport, sep, rest = text.partition(":")
    if not sep:
        raise UsageError(
            f"--source {text!r} names no transport",
            "use docker://REF, docker-daemon:NAME[:TAG], oci:DIR[:TAG] or docker-archive:FILE",
        )
    if transport == "docker":
        if not rest.startswith("//"):
            raise UsageError(f"--source {text!r}: write docker://REF")
        ref = parse_reference(rest[2:])
        if ref.tag is None and ref.digest is None:
            ref = ref.with_tag("latest")
        return RegistrySource(ref, client_for, name=text)
    if transport in ("docker-daemon", "oci", "docker-archive"):
        raise UsageError(
            f"--source {transport}: is not supported by this version of tagger yet",
            "push the image to a registry and use --source docker://REF",
        )
    raise UsageError(
        f"unknown source transport {transport!r} in {text!r}",
        "use docker://REF, docker-daemon:NAME[:TAG], oci:DIR[:TAG] or docker-archive:FILE",
    )
