"""``docker-daemon:NAME[:TAG]``: an image in the local Docker daemon (``docker build``),
pushed through the daemon with the docker SDK (imported only here, only for this
source; ``DOCKER_HOST`` and the Docker config's logins apply as for ``docker push``).

The daemon pushes the immutable tag T once, to the first target that needs it; every
other tag and target is then written registry-natively from that copy (floating tags
are PUTs of the same manifest bytes, other targets a mount or a cross-registry copy),
so every target gets the same digest D.

The immutable guard. The digest the daemon will push is known only after it pushed:
the daemon compresses layers while pushing. What *is* known beforehand is the image
id, the digest of the image's config (with the containerd store: of its manifest).
So before anything is written, T is read in every target: T absent everywhere → the
daemon may push it; T present as a manifest whose config (or own digest) is this image
id → it is this image, T is left as it is and D is that digest (a re-run, or a
crashed run, completes without pushing again); T present as anything else → the
release is refused and nothing is written anywhere. When the image's ``RepoDigests``
(filled by an earlier push or pull of it) name a target repository, that manifest is
used as D as well, and nothing is pushed through the daemon at all.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..credentials import Credentials
from ..errors import PolicyRefusal, RegistryError, UsageError
from ..oci import Manifest
from ..progress import Progress
from ..reference import DOCKER_HUB, DOCKER_HUB_API, ImageRef, parse_reference
from ..registry import RegistryClient
from .base import ClientFor, Labels, Source, Target, collect
from .registry import RegistrySource


def daemon_name(registry: str, repo: str) -> str:
    """How the daemon spells a repository (Docker Hub is ``docker.io``)."""
    return f"{DOCKER_HUB if registry == DOCKER_HUB_API else registry}/{repo}"


def auth_config(login: Credentials | None) -> dict[str, str] | None:
    """The login tagger resolved for the registry (flags, TAGGER_*, Docker config), as
    the daemon's push takes it; None lets docker-py read the Docker config itself."""
    if login is None:
        return None
    if login.identity_token:
        return {"identitytoken": login.identity_token}
    if login.username and login.password:
        return {"username": login.username, "password": login.password}
    return None


class DaemonSource:
    def __init__(self, image: str, client_for: ClientFor, name: str) -> None:
        self.image = image
        self.client_for = client_for
        self.name = name
        self._docker: Any = None
        self._attrs: dict[str, Any] | None = None

    # --- the daemon ---------------------------------------------------------------
    def _client(self) -> Any:
        if self._docker is None:
            import docker
            from docker.errors import DockerException

            where = os.environ.get("DOCKER_HOST") or "the default socket"
            try:
                client = docker.from_env()
                client.ping()
            except DockerException as e:
                raise PolicyRefusal(
                    f"cannot reach the docker daemon at {where} to read {self.name}",
                    f"start it or set DOCKER_HOST ({type(e).__name__})",
                ) from None
            self._docker = client
        return self._docker

    @property
    def attrs(self) -> dict[str, Any]:
        if self._attrs is None:
            from docker.errors import DockerException, ImageNotFound

            try:
                self._attrs = dict(self._client().images.get(self.image).attrs)
            except ImageNotFound:
                raise PolicyRefusal(
                    f"the docker daemon has no image {self.image}",
                    f"build it first (docker build -t {self.image} .), or check DOCKER_HOST",
                ) from None
            except DockerException as e:
                raise PolicyRefusal(
                    f"the docker daemon could not inspect {self.image}: {e}",
                    "check the image name and the daemon",
                ) from None
        return self._attrs

    @property
    def image_id(self) -> str:
        return str(self.attrs["Id"])

    def is_this_image(self, m: Manifest) -> bool:
        """Is the registry's manifest this daemon image (same config, hence the same
        layers, history and labels), whatever compression the layers got?"""
        if m.digest == self.image_id:
            return True
        if m.is_index:
            return False
        config = m.json().get("config")
        return isinstance(config, dict) and config.get("digest") == self.image_id

    # --- the release ----------------------------------------------------------------
    def locate(self, targets: Sequence[Target], tag: str) -> Source | None:
        """The image, when it is already in a target: T holding this image, or a
        RepoDigest of the image naming a target repository. None: only a push tells D."""
        for client, repo, has_tag in targets:
            if has_tag:
                m = client.get_manifest(repo, tag)
                if self.is_this_image(m):
                    return self._adopt(client, repo, m)
        by_repo = {(t.client.registry, t.repo): t.client for t in targets}
        for rd in self.attrs.get("RepoDigests") or []:
            try:
                ref = parse_reference(rd)
            except UsageError:  # a RepoDigest tagger cannot parse is no candidate
                continue
            holder = by_repo.get((ref.registry, ref.repository))
            if holder is None or ref.digest is None:
                continue
            if holder.head_manifest(ref.repository, ref.digest) is None:
                continue
            m = holder.get_manifest(ref.repository, ref.digest)
            if self.is_this_image(m):
                return self._adopt(holder, ref.repository, m)
        return None

    def _adopt(self, client: RegistryClient, repo: str, m: Manifest) -> Source:
        ref = ImageRef(client.registry, repo, None, m.digest)
        return RegistrySource(ref, self.client_for, name=self.name, manifest=m)

    def push(self, client: RegistryClient, repo: str, tag: str) -> Source:
        """Push T to ``repo`` through the daemon; the image as the registry holds it."""
        from docker.errors import DockerException

        docker = self._client()
        target = daemon_name(client.registry, repo)
        local = f"{target}:{tag}"
        try:
            previous: str | None = str(docker.images.get(local).id)
        except DockerException:  # no such tag in the daemon (the usual case)
            previous = None
        layers = len((self.attrs.get("RootFS") or {}).get("Layers") or [])
        try:
            docker.api.tag(self.image_id, target, tag)
            with Progress(f"{self.name} -> {local}", layers) as progress:
                digest, pushed, there = self._stream(docker, target, tag, client.login(), progress)
                progress.summary = (
                    f"{local}: pushed through the docker daemon"
                    f" (layers: {pushed} pushed, {there} already there)"
                )
        except DockerException as e:
            raise RegistryError(
                f"the docker daemon could not push {local}: {e}",
                "check the daemon's access to the registry (docker login) and try again",
            ) from None
        finally:
            self._restore_tag(docker, target, tag, previous)
        m = client.get_manifest(repo, digest, push=True)
        if not self.is_this_image(m):
            raise RegistryError(
                f"{local} holds another image than {self.image} after the push",
                "another writer is pushing the same tag; run the release again",
            )
        return self._adopt(client, repo, m)

    def _stream(
        self,
        docker: Any,
        target: str,
        tag: str,
        login: Credentials | None,
        progress: Progress,
    ) -> tuple[str, int, int]:
        """Follow the push's JSON stream. The daemon answers 200 even when the push
        fails; the failure is an ``error``/``errorDetail`` entry in the stream."""
        digest: str | None = None
        pushed = there = 0
        for event in docker.api.push(
            target, tag=tag, stream=True, decode=True, auth_config=auth_config(login)
        ):
            if not isinstance(event, dict):
                continue
            if "error" in event or "errorDetail" in event:
                detail = event.get("errorDetail") or {}
                message = detail.get("message") if isinstance(detail, dict) else None
                raise RegistryError(
                    f"the docker daemon could not push {target}:{tag}:"
                    f" {message or event.get('error')}",
                    "check the registry address, the daemon's login (docker login) and"
                    " its insecure-registries setting, then run the release again",
                )
            status = str(event.get("status", ""))
            done = status in ("Pushed", "Layer already exists") or status.startswith("Mounted")
            if event.get("id") and done:
                progress.advance(1)
                if status == "Pushed":
                    pushed += 1
                else:
                    there += 1
            aux = event.get("aux")
            if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
                digest = aux["Digest"]
        if digest is None:
            raise RegistryError(
                f"the docker daemon reported no digest for {target}:{tag}",
                "the push may not have completed; run the release again",
            )
        return digest, pushed, there

    def _restore_tag(self, docker: Any, target: str, tag: str, previous: str | None) -> None:
        """The push needed ``target:tag`` in the daemon. It stays, as after ``docker
        push`` (removing it would also drop the image's RepoDigest for the target, which
        lets a later release find D without pushing); a tag of that name that named
        another image before is put back."""
        from docker.errors import DockerException

        if previous is not None and previous != self.image_id:
            try:
                docker.api.tag(previous, target, tag)
            except DockerException:
                pass  # the daemon's own bookkeeping; the release does not depend on it

    # --- Opened ---------------------------------------------------------------------
    def labels(self) -> Labels:
        out: Labels = {}
        collect(out, (self.attrs.get("Config") or {}).get("Labels"))
        return out
