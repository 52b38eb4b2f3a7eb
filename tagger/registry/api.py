"""The Distribution API's endpoints for one registry (regclient's model: an operation
builds its request; ``request`` sends it through auth and transport and checks the
status).

Written here rather than taken from a library: the Python registry clients we looked
at (docker-py talks to a daemon, not a registry; oras-py and dxf parse manifests into
objects and re-serialise them, or lack mounts and pagination) cannot promise what the
tag policy needs most: a manifest is kept as the exact bytes the registry served and
PUT back unchanged, so its digest never changes (as crane does).
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

from ..credentials import CredentialLookup, Credentials
from ..errors import NotFound, RegistryError
from ..oci import ALGORITHMS, MANIFEST_TYPES, Manifest, digest_of, manifest_problem, matches
from ..policy import DOCKER_TAG_RE
from . import errors
from .auth import Auth, no_credentials
from .body import Body
from .errors import refusals
from .transport import ERROR_LIMIT, Transport

if TYPE_CHECKING:
    from .reply import Reply

log = logging.getLogger("tagger.registry")

MANIFEST_LIMIT = 4 << 20  # as containerd: no real manifest comes near it
TAGS_LIMIT = 16 << 20  # one page of tags/list
MANIFEST_ACCEPT = ", ".join(MANIFEST_TYPES)
MOUNT_REFUSED = (401, 403, 404)  # Harbor: 401 outside the token's projects; others 403/404
REDIRECTS = (307, 308)


def pull(repo: str) -> str:
    return f"repository:{repo}:pull"


def push(repo: str) -> str:
    return f"repository:{repo}:pull,push"


def scope(repo: str, pushing: bool) -> str:
    """The scope a read needs: pull, or pull,push when the run will write too (one
    token then serves the reads and the writes)."""
    return push(repo) if pushing else pull(repo)


def _own_origin(transport: Transport, url: str) -> bool:
    """Is ``url`` the registry's own origin? Refused when it leaves HTTPS."""
    if transport.same_origin(url):
        return True
    if transport.origin[0] == "https" and not url.lower().startswith("https://"):
        raise refusals.insecure_location(transport.registry, url)
    return False


def _digest_like(data: bytes, wanted: str) -> str:
    """The digest of ``data`` in the algorithm of ``wanted`` (sha256 when unknown)."""
    algorithm = wanted.partition(":")[0]
    return digest_of(data, algorithm if algorithm in ALGORITHMS else "sha256")


class RegistryClient:
    """One registry host: its transport, its auth state and the API calls."""

    def __init__(
        self, transport: Transport, credentials: CredentialLookup = no_credentials
    ) -> None:
        self.registry = transport.registry
        self.transport = transport
        self.auth = Auth(transport, credentials)

    @classmethod
    def to(
        cls, registry: str, credentials: CredentialLookup = no_credentials, **options: Any
    ) -> RegistryClient:
        """A client for ``registry``; ``options`` are Transport's (retries, timeout…)."""
        return cls(Transport(registry, **options), credentials)

    def close(self) -> None:
        self.transport.close()

    def login(self) -> Credentials | None:
        """The credentials tagger uses for this registry, to hand to a Docker daemon
        that pushes to it (docker-daemon: sources). Never to be printed."""
        return self.auth.creds()

    def request(
        self,
        method: str,
        path: str,
        *,
        scopes: Sequence[str],
        ok: Sequence[int] = (200,),
        headers: dict[str, str] | None = None,
        data: bytes | IO[bytes] | Body | Callable[[], Body] | None = None,
        params: dict[str, str] | None = None,
        stream: bool = False,
        retry: bool = True,
        url: str | None = None,
        limit: int = ERROR_LIMIT,
    ) -> Reply:
        """Send one API call; answer 401 challenges once; raise on statuses not in ``ok``.
        Credentials only for the registry's own origin (``_own_origin``); unless
        ``stream``, the answer is read up to ``limit`` bytes.
        ``retry=False`` sends it once (streamed uploads cannot be replayed). A body
        factory (``data`` callable) opens the body anew for each attempt, so a streamed
        upload answered 401 (a token expired or revoked) or 307/308 (go elsewhere) is
        sent once more, with a fresh token or to the new location."""
        target = url or self.transport.base + path
        wanted = tuple(scopes)
        for attempt in (1, 2):
            own = _own_origin(self.transport, target)
            body = data() if callable(data) else data
            hdrs = dict(headers or {})
            sent = self.auth.header(wanted) if own else None
            if sent:
                hdrs["Authorization"] = sent
            resp = self.transport.send(
                method,
                target,
                headers=hdrs,
                data=body,
                params=params,
                stream=stream,
                retry=retry,
                follow=not callable(data),
                limit=limit,
            )
            if stream and resp.status_code not in ok:
                resp = resp.read(self.transport.read(resp, ERROR_LIMIT))
            again = attempt == 1 and not isinstance(data, Body)
            if (
                again
                and resp.status_code == 401
                and self.transport.same_origin(resp.url)  # never a redirect target's
                and self.auth.answer(resp, sent, wanted)
            ):
                resp.close()
                continue
            if again and resp.status_code in REDIRECTS and resp.headers.get("Location"):
                # a streamed body cannot follow a redirect by itself: re-open it there
                target = urllib.parse.urljoin(resp.url, resp.headers["Location"])
                resp.close()
                continue
            if resp.status_code in ok:
                return resp
            raise errors.status_error(method, self.registry, path, resp, wanted, self.auth.creds())
        raise AssertionError("unreachable")  # pragma: no cover

    # --- API calls ------------------------------------------------------------
    def ping(self, *, retry: bool = True) -> None:
        """GET /v2/: is the registry there? (401 counts as there; learns the challenge.)"""
        resp = self.request("GET", "/v2/", scopes=(), ok=(200, 401), retry=retry)
        resp.close()

    def get_manifest(self, repo: str, ref: str, *, push: bool = False) -> Manifest:
        resp = self.request(
            "GET",
            f"/v2/{repo}/manifests/{ref}",
            scopes=(scope(repo, push),),
            headers={"Accept": MANIFEST_ACCEPT},
            limit=MANIFEST_LIMIT,
        )
        problem = manifest_problem(resp.content, resp.headers.get("Content-Type"))
        if problem:
            raise errors.not_the_api(self.registry, f"GET /v2/{repo}/manifests/{ref}", problem)
        m = Manifest.from_bytes(resp.content, resp.headers.get("Content-Type"))
        if ":" in ref and not matches(m.data, ref):  # by digest: any algorithm checked
            raise errors.altered(f"{self.registry}/{repo}@{ref}", _digest_like(m.data, ref))
        return m

    def head_manifest(self, repo: str, ref: str, *, push: bool = False) -> str | None:
        """The digest a tag points at, or None when it does not exist."""
        try:
            resp = self.request(
                "HEAD",
                f"/v2/{repo}/manifests/{ref}",
                scopes=(scope(repo, push),),
                headers={"Accept": MANIFEST_ACCEPT},
            )
        except NotFound:
            return None
        digest = resp.headers.get("Docker-Content-Digest")
        return digest or self.get_manifest(repo, ref, push=push).digest

    def put_manifest(self, repo: str, ref: str, manifest: Manifest) -> None:
        """PUT the exact bytes under ``ref`` (a tag or the digest)."""
        for attempt in range(3):
            try:
                resp = self.request(
                    "PUT",
                    f"/v2/{repo}/manifests/{ref}",
                    scopes=(push(repo),),
                    ok=(200, 201, 202),
                    headers={"Content-Type": manifest.media_type},
                    data=manifest.data,
                )
                break
            except RegistryError as e:
                # distribution answers MANIFEST_BLOB_UNKNOWN while another writer re-PUTs
                # a child of the same index; a PUT is idempotent, so try again
                if e.code != "MANIFEST_BLOB_UNKNOWN" or attempt == 2:
                    raise
                time.sleep(0.2 * (attempt + 1))
        served = resp.headers.get("Docker-Content-Digest")
        if served and served != manifest.digest:
            raise errors.rewritten(f"{self.registry}/{repo}:{ref}", served, manifest.digest)

    def list_tags(
        self,
        repo: str,
        *,
        page_size: int | None = None,
        push: bool = False,
        must_exist: bool = False,
    ) -> list[str]:
        """Every tag of the repository, following ``Link: <…>; rel="next"`` pages.
        A repository that does not exist yet has no tags (``must_exist``: it is an
        error). Entries that are no valid tag (Nexus lists ``null`` and digests) are
        left out."""
        wanted = (scope(repo, push),)
        tags: list[str] = []
        url: str | None = None
        params = {"n": str(page_size)} if page_size else None
        seen: set[str] = set()
        while True:
            resp = self.request(
                "GET",
                f"/v2/{repo}/tags/list",
                scopes=wanted,
                url=url,
                params=params,
                ok=(200, 404),
                limit=TAGS_LIMIT,
            )
            if resp.status_code == 404:
                if must_exist and not tags:
                    raise errors.repo_not_found(self.registry, repo, resp)
                return tags
            tags.extend(self._tags_of(resp, f"GET /v2/{repo}/tags/list"))
            nxt = resp.links.get("next", {}).get("url")
            if not nxt:
                return tags
            url = urllib.parse.urljoin(resp.url, nxt)
            if url in seen:  # a broken registry must not loop forever
                return tags
            seen.add(url)
            params = None

    def _tags_of(self, resp: Reply, where: str) -> list[str]:
        try:
            body = resp.json()
        except ValueError:
            html = resp.headers.get("Content-Type", "").startswith("text/html")
            raise errors.not_the_api(
                self.registry, where, "an HTML page" if html else "broken JSON"
            ) from None
        listed = body.get("tags") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(listed, (list, type(None))):
            raise errors.not_the_api(self.registry, where, "not a tag list")
        return [t for t in listed or [] if isinstance(t, str) and DOCKER_TAG_RE.fullmatch(t)]

    def _location(self, resp: Reply, where: str) -> str:
        location = resp.headers.get("Location")
        if not location:
            raise errors.not_the_api(
                self.registry, where, f"{resp.status_code} without a Location header"
            )
        url = urllib.parse.urljoin(resp.url, location)
        _own_origin(self.transport, url)  # an HTTPS registry cannot send an upload to plain HTTP
        return url

    def blob_exists(self, repo: str, digest: str) -> bool:
        try:
            self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scopes=(push(repo),))
            return True
        except NotFound:
            return False

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> str | None:
        """Mount a blob from another repository of this registry. Returns None when
        mounted, else the upload URL of the session the registry opened instead, or of
        a new one when it refused the mount (401/403/404: the login may not read the
        source there), as go-containerregistry and containers/image do."""
        resp = self.request(
            "POST",
            f"/v2/{repo}/blobs/uploads/",
            scopes=(push(repo), pull(from_repo)),  # the target's first
            params={"mount": digest, "from": from_repo},
            ok=(201, 202, *MOUNT_REFUSED),
        )
        resp.close()
        if resp.status_code == 201:
            return None
        if resp.status_code in MOUNT_REFUSED:
            log.debug("mount into %s refused (%s): uploading", repo, resp.status_code)
            return self.start_upload(repo)
        return self._location(resp, f"POST /v2/{repo}/blobs/uploads/")

    def start_upload(self, repo: str) -> str:
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/", scopes=(push(repo),), ok=(202,))
        return self._location(resp, f"POST /v2/{repo}/blobs/uploads/")

    def upload_blob(
        self,
        repo: str,
        location: str,
        digest: str,
        open_chunks: Callable[[], Iterator[bytes]],
        size: int,
        *,
        source: str = "its source",
    ) -> None:
        """One streamed PUT of exactly ``size`` bytes with ``digest`` (body.Body);
        ``open_chunks`` opens the blob, again when the PUT has to be sent again."""
        what = f"blob {digest} from {source}"
        sep = "&" if "?" in location else "?"
        url = f"{location}{sep}digest={urllib.parse.quote(digest)}"
        self.request(
            "PUT",
            "/v2/" + repo + "/blobs/uploads/…",
            scopes=(push(repo),),
            url=url,
            data=lambda: Body(open_chunks(), size, digest, what),
            headers={"Content-Type": "application/octet-stream"},
            ok=(201, 204),
            retry=False,
        )

    def open_blob(self, repo: str, digest: str) -> Iterator[bytes]:
        """A blob's content in chunks. The GET is sent now, so a missing blob raises
        here rather than in the middle of an upload that streams it."""
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", scopes=(pull(repo),), stream=True)
        return self.transport.chunks(resp, f"{self.registry}/{repo}@{digest}")

    def read_blob(self, repo: str, digest: str, *, limit: int = 16 << 20) -> bytes:
        """A small blob (an image config) in memory, checked against its digest."""
        data = bytearray()
        for chunk in self.open_blob(repo, digest):
            data += chunk
            if len(data) > limit:
                raise errors.too_large(f"{self.registry}/{repo}@{digest}", limit)
        if not matches(bytes(data), digest):
            raise errors.altered(
                f"{self.registry}/{repo}@{digest}", _digest_like(bytes(data), digest)
            )
        return bytes(data)
