"""A client for the OCI Distribution API (the registry HTTP API v2).

Written here rather than taken from a library: the Python registry clients we looked
at (docker-py talks to a daemon, not a registry; oras-py and dxf parse manifests into
objects and re-serialise them, or lack mounts and pagination) cannot promise what
the tag policy needs most: a manifest is kept as the exact bytes the registry served
and PUT back unchanged, so its digest never changes (as crane does). The client is
small: requests with one pooled session per registry, urllib3's ``Retry`` for
429/5xx/connection errors (honouring ``Retry-After``), Basic and Bearer challenges,
``tags/list`` pagination through ``Link`` headers, blob existence, cross-repository
mounts, and streamed blob downloads and uploads (what is copied, in which order, is
``sources/transfer.py``'s business).

Nothing secret is ever logged or put in an error: messages name the method, host and
path; headers are never printed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from .errors import AuthError, DeadlineExceeded, NotFound, RegistryError, RegistryUnreachable
from .redact import register as register_secret
from .reference import is_loopback, scheme_for

if TYPE_CHECKING:
    import requests

log = logging.getLogger("tagger.registry")

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0
CHUNK = 1 << 20


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


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


@dataclass(frozen=True)
class Credentials:
    """What a registry login needs; ``identity_token`` is an OAuth2 refresh token."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)
    source: str = ""  # where they came from, for messages (never the secret itself)


CredentialLookup = Callable[[str], "Credentials | None"]


def _no_credentials(registry: str) -> Credentials | None:
    return None


def _retry_class() -> type[Any]:
    from urllib3.util.retry import Retry

    class CappedRetry(Retry):
        """urllib3's Retry with every Retry-After wait capped (a registry asking for an
        hour would otherwise stall the pipeline)."""

        def get_retry_after(self, response: Any) -> float | None:
            value = super().get_retry_after(response)
            return None if value is None else min(float(value), MAX_RETRY_AFTER)

    return CappedRetry


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    i = 0
    while i < len(rest):
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().strip(",").strip().lower()
        if rest[eq + 1 : eq + 2] == '"':
            end = rest.find('"', eq + 2)
            end = len(rest) if end < 0 else end
            params[key] = rest[eq + 2 : end]
            i = end + 1
        else:
            end = rest.find(",", eq + 1)
            end = len(rest) if end < 0 else end
            params[key] = rest[eq + 1 : end].strip()
            i = end
        i += 1 if i < len(rest) and rest[i] == "," else 0
    return scheme.lower(), params


def _tls_reason(exc: BaseException) -> str:
    """What went wrong in a TLS handshake, in OpenSSL's words where it has some."""
    text = str(exc)
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return "the server does not speak TLS (a plain-HTTP registry?)"
    for marker in ("certificate verify failed: ", "Hostname mismatch, "):
        if marker in text:
            rest = text.split(marker, 1)[1]
            return rest.split(" (_ssl.c")[0].split("')")[0].split('")')[0].rstrip(".")
    if "NO_CERTIFICATE_OR_CRL_FOUND" in text or "no certificate or crl found" in text:
        return "the CA file holds no certificate"
    return "the handshake failed"


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("Temporary failure in name resolution", "unknown host"),
        ("timed out", "timed out"),
        ("Read timed out", "timed out"),
        ("RemoteDisconnected", "connection closed by the registry"),
        ("Connection reset", "connection reset"),
        ("Connection aborted", "connection aborted"),
    ):
        if needle in text:
            return reason
    return type(exc).__name__


class _Body:
    """A file-like body of known length streamed from a source response, so requests
    sends Content-Length and never holds a whole blob in memory."""

    def __init__(self, chunks: Iterator[bytes], length: int) -> None:
        self._chunks = chunks
        self._length = length
        self._buf = b""  # the current chunk
        self._pos = 0  # how much of it was read
        self.hash = hashlib.sha256()

    def __len__(self) -> int:
        return self._length

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes, cut from the source's chunks without joining them (only
        pieces of the requested size are allocated, so memory stays flat)."""
        parts: list[bytes] = []
        want = self._length if n is None or n < 0 else n
        while want > 0:
            if self._pos >= len(self._buf):
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._buf, self._pos = chunk, 0
            piece = self._buf[self._pos : self._pos + want]
            self._pos += len(piece)
            want -= len(piece)
            parts.append(piece)
        out = parts[0] if len(parts) == 1 else b"".join(parts)
        self.hash.update(out)
        return out


class RegistryClient:
    """One registry host: a pooled session, its auth state and the API calls."""

    def __init__(
        self,
        registry: str,
        *,
        insecure: frozenset[str] = frozenset(),
        credentials: CredentialLookup = _no_credentials,
        verify: bool | str = True,
        retries: int = 4,
        timeout: float = 30.0,
        backoff: float = 0.5,
        pool_size: int = 16,
        expired: Callable[[], bool] | None = None,
    ) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        self.registry = registry
        self.base = f"{scheme_for(registry, insecure)}://{registry}"
        self.verify = verify
        self.timeout = timeout
        self._expired = expired
        self._credentials = credentials
        self._creds_loaded = False
        self._creds: Credentials | None = None
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._tokens: dict[tuple[str, ...], str] = {}
        self._lock = threading.Lock()
        self._token_locks: dict[tuple[str, ...], threading.Lock] = {}
        retry = _retry_class()(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            allowed_methods=None,  # every call we retry is idempotent; uploads opt out
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff,
            backoff_jitter=backoff / 2,
            backoff_max=MAX_RETRY_AFTER,
            respect_retry_after_header=True,
            raise_on_status=False,
            raise_on_redirect=False,
        )
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # streamed uploads cannot be replayed by urllib3: a session that never retries
        self._once = requests.Session()
        once = HTTPAdapter(max_retries=0, pool_connections=1, pool_maxsize=pool_size)
        self._once.mount("http://", once)
        self._once.mount("https://", once)

    def close(self) -> None:
        self.session.close()
        self._once.close()

    # --- auth -----------------------------------------------------------------
    def _creds_for(self) -> Credentials | None:
        if not self._creds_loaded:
            self._creds = self._credentials(self.registry)
            self._creds_loaded = True
        return self._creds

    def login(self) -> Credentials | None:
        """The credentials tagger uses for this registry, to hand to a Docker daemon
        that pushes to it (docker-daemon: sources). Never to be printed."""
        return self._creds_for()

    def _auth_header(self, scopes: tuple[str, ...]) -> str | None:
        challenge = self._challenge
        if challenge is None:
            return None
        scheme, params = challenge
        creds = self._creds_for()
        if scheme == "basic":
            if creds is None or creds.username is None or creds.password is None:
                return None
            import base64

            raw = f"{creds.username}:{creds.password}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        if scheme == "bearer":
            token = self._token(params, scopes)
            return f"Bearer {token}"
        return None

    def _token(self, params: dict[str, str], scopes: tuple[str, ...]) -> str:
        key = tuple(sorted(scopes))
        with self._lock:
            if key in self._tokens:
                return self._tokens[key]
            lock = self._token_locks.setdefault(key, threading.Lock())
        with lock:  # threads asking for one scope set share one fetch
            if key in self._tokens:
                return self._tokens[key]
            token = self._fetch_token(params, key)
            with self._lock:
                self._tokens[key] = token
            return token

    def _fetch_token(self, params: dict[str, str], scopes: tuple[str, ...]) -> str:
        realm = params.get("realm")
        if not realm:
            raise RegistryError(
                f"{self.registry} asked for a bearer token but named no realm",
                "the registry's auth configuration is broken; ask its operators",
            )
        import requests

        creds = self._creds_for()
        realm_host = urllib.parse.urlsplit(realm).netloc
        if (
            creds is not None
            and realm.lower().startswith("http://")
            and self.base.startswith("https://")
            and not is_loopback(realm_host)
        ):
            raise AuthError(
                f"{self.registry} sends logins to a plain-HTTP token server ({realm_host});"
                " tagger will not send credentials unencrypted",
                "ask the registry's operators to serve the token realm over HTTPS",
            )
        query: list[tuple[str, str]] = []
        if "service" in params:
            query.append(("service", params["service"]))
        query.extend(("scope", s) for s in scopes)
        try:
            if creds and creds.identity_token:
                form = dict(query[:1])
                form.update(
                    grant_type="refresh_token",
                    refresh_token=creds.identity_token,
                    client_id="tagger",
                    scope=" ".join(scopes),
                )
                resp = self.session.post(realm, data=form, timeout=self.timeout, verify=self.verify)
            else:
                auth = (
                    (creds.username, creds.password)
                    if creds and creds.username and creds.password
                    else None
                )
                resp = self.session.get(
                    realm, params=query, auth=auth, timeout=self.timeout, verify=self.verify
                )
        except requests.exceptions.RequestException as e:
            raise self._transport_error(
                e, "token server " + urllib.parse.urlsplit(realm).netloc
            ) from None
        log.debug("token %s -> %s", realm_host, resp.status_code)
        if resp.status_code in (401, 403):
            raise self._auth_failed(resp.status_code)
        if resp.status_code != 200:
            raise RegistryError(
                f"the token server of {self.registry} answered {resp.status_code}",
                "try again later; if it persists, check the registry's status",
                status=resp.status_code,
            )
        try:
            body = resp.json()
            token = body.get("token") or body.get("access_token")
        except ValueError:
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(
                f"the token server of {self.registry} answered without a token",
                "check the registry's auth configuration",
            )
        register_secret(token)
        return token

    def _login_hint(self) -> str:
        return (
            f"log in with docker login {self.registry}, or set TAGGER_USERNAME /"
            " TAGGER_PASSWORD (used for the --image registries)"
        )

    def _who(self) -> str:
        creds = self._creds_for()
        if creds and creds.username:
            return creds.username
        return "the identity token" if creds and creds.identity_token else "anonymous"

    def _auth_failed(self, status: int | None, code: str | None = None) -> AuthError:
        """401 from the registry or its token server: the credentials were refused (or
        there were none)."""
        creds = self._creds_for()
        if creds is None:
            return AuthError(
                f"{self.registry} requires authentication and tagger found no credentials for it",
                self._login_hint(),
                status=status,
                code=code,
            )
        return AuthError(
            f"authentication to {self.registry} failed for {self._who()}: check the username"
            " and the password or token",
            f"they came from {creds.source or 'the caller'}; fix them there, or log in again",
            status=status,
            code=code,
        )

    def _denied(
        self, scopes: Sequence[str], challenge_scope: str | None, status: int, code: str | None
    ) -> AuthError:
        """403, or 401 ``insufficient_scope`` after a fresh token: logged in, not allowed."""
        wanted = [s for s in (challenge_scope or "").split(" ") if s] or list(scopes)
        pushing = [s for s in wanted if s.rsplit(":", 1)[-1].split(",").count("push")]
        scope = (pushing or wanted or ["repository:?:pull"])[0]
        repo = scope.split(":", 1)[-1].rsplit(":", 1)[0]
        what = "push to" if pushing else "pull from"
        if self._creds_for() is None:
            return AuthError(
                f"{self.registry}/{repo} refused anonymous access ({what.split()[0]})",
                self._login_hint(),
                status=status,
                code=code,
            )
        return AuthError(
            f"{self._who()} may not {what} {self.registry}/{repo}",
            "ask for " + ("write" if pushing else "read") + " access to the repository (a"
            " token with push rights for a release), or use other credentials",
            status=status,
            code=code,
        )

    # --- transport ------------------------------------------------------------
    def _transport_error(self, exc: BaseException, what: str | None = None) -> RegistryError:
        import requests

        target = what or self.registry
        if isinstance(exc, requests.exceptions.SSLError):
            reason = _tls_reason(exc)
            if "does not speak TLS" in reason:
                hint = f"for a registry without TLS pass --insecure-registry {self.registry}"
            else:
                trusted = f"tagger trusted {self.verify}; " if isinstance(self.verify, str) else ""
                hint = (
                    f"{trusted}pass --ca-cert FILE (or set SSL_CERT_FILE) with the CA that"
                    f" signed the certificate of {target}"
                )
            return RegistryUnreachable(f"TLS verification of {target} failed: {reason}", hint)
        return RegistryUnreachable(
            f"cannot reach {target}: {_reason(exc)}",
            "check the registry address and your network; tagger retried before giving up",
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        scopes: Sequence[str],
        ok: Sequence[int] = (200,),
        headers: dict[str, str] | None = None,
        data: bytes | IO[bytes] | _Body | None = None,
        params: dict[str, str] | None = None,
        stream: bool = False,
        retry: bool = True,
        url: str | None = None,
    ) -> requests.Response:
        """Send one API call; answer 401 challenges once; raise on statuses not in ``ok``.
        ``retry=False`` sends it once (streamed uploads cannot be replayed)."""
        import requests

        if self._expired is not None and self._expired():
            raise DeadlineExceeded(
                f"the run's deadline passed before {method} {self.registry}{path}",
                "raise --deadline, or run again: a re-run finishes the release",
            )
        target = url or self.base + path
        session = self.session if retry else self._once
        for attempt in (1, 2):
            hdrs = dict(headers or {})
            auth = self._auth_header(tuple(scopes))
            if auth:
                hdrs["Authorization"] = auth
            try:
                resp = session.request(
                    method,
                    target,
                    headers=hdrs,
                    data=data,
                    params=params,
                    stream=stream,
                    timeout=self.timeout,
                    verify=self.verify,
                    allow_redirects=True,
                )
            except requests.exceptions.RequestException as e:
                raise self._transport_error(e) from None
            log.debug("%s %s -> %s", method, urllib.parse.urlsplit(resp.url).path, resp.status_code)
            if resp.status_code == 401 and attempt == 1 and not isinstance(data, _Body):
                header = resp.headers.get("WWW-Authenticate", "")
                challenge = _parse_challenge(header) if header else None
                # answer it once: a new challenge, a request that went without credentials
                # (another thread learned the challenge meanwhile), or a bearer token to renew
                if (
                    challenge
                    and challenge[0] in ("basic", "bearer")
                    and (challenge != self._challenge or challenge[0] == "bearer" or not auth)
                ):
                    with self._lock:
                        key = tuple(sorted(scopes))
                        if challenge[0] == "bearer" and auth == f"Bearer {self._tokens.get(key)}":
                            del self._tokens[key]  # expired or revoked: fetch a new one once
                        self._challenge = challenge
                    resp.close()
                    continue
            if resp.status_code in ok:
                return resp
            raise self._status_error(method, path, resp, scopes)
        raise AssertionError("unreachable")  # pragma: no cover

    def _status_error(
        self, method: str, path: str, resp: requests.Response, scopes: Sequence[str] = ()
    ) -> RegistryError:
        code = message = None
        try:
            errors = resp.json().get("errors") or []
            if errors:
                code = errors[0].get("code")
                message = errors[0].get("message")
        except (ValueError, AttributeError):
            pass
        detail = f"{code}: {message}" if code else f"HTTP {resp.status_code}"
        where = f"{method} {self.registry}{path}"
        status = resp.status_code
        if status == 404:
            return NotFound(f"{where}: not found ({detail})", status=status, code=code)
        if status in (401, 403):
            header = resp.headers.get("WWW-Authenticate", "")
            params = _parse_challenge(header)[1] if header else {}
            if status == 403 or params.get("error") == "insufficient_scope":
                return self._denied(scopes, params.get("scope"), status, code)
            if params.get("error") == "invalid_token" and self._creds_for() is not None:
                return AuthError(  # a fresh token from its own token server, refused
                    f"{self.registry} refused the token its token server issued for"
                    f" {self._who()} ({params.get('error_description') or 'invalid_token'})",
                    "check this machine's clock, and the registry's token settings (issuer,"
                    " service, certificate)",
                    status=status,
                    code=code,
                )
            return self._auth_failed(status, code)
        hint = (
            "the registry kept failing; try again later"
            if status in RETRY_STATUSES
            else "check the image reference and the registry's message"
        )
        return RegistryError(f"{where} failed: {detail}", hint, status=status, code=code)

    # --- API calls ------------------------------------------------------------
    @staticmethod
    def pull(repo: str) -> str:
        return f"repository:{repo}:pull"

    @staticmethod
    def push(repo: str) -> str:
        return f"repository:{repo}:pull,push"

    @classmethod
    def scope(cls, repo: str, push: bool) -> str:
        """The scope a read needs: pull, or pull,push when the run will write too (one
        token then serves the reads and the writes)."""
        return cls.push(repo) if push else cls.pull(repo)

    def ping(self, *, retry: bool = True) -> None:
        """GET /v2/: is the registry there? (401 counts as there; learns the challenge.)"""
        resp = self.request("GET", "/v2/", scopes=(), ok=(200, 401), retry=retry)
        resp.close()

    def get_manifest(self, repo: str, ref: str, *, push: bool = False) -> Manifest:
        scope = self.scope(repo, push)
        resp = self.request(
            "GET",
            f"/v2/{repo}/manifests/{ref}",
            scopes=(scope,),
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
        )
        m = Manifest.from_bytes(resp.content, resp.headers.get("Content-Type"))
        if ref.startswith("sha256:") and m.digest != ref:
            raise RegistryError(
                f"{self.registry}/{repo}@{ref} served content with digest {m.digest}",
                "the registry is corrupt or a proxy altered the manifest",
            )
        return m

    def head_manifest(self, repo: str, ref: str, *, push: bool = False) -> str | None:
        """The digest a tag points at, or None when it does not exist."""
        scope = self.scope(repo, push)
        try:
            resp = self.request(
                "HEAD",
                f"/v2/{repo}/manifests/{ref}",
                scopes=(scope,),
                headers={"Accept": ", ".join(MANIFEST_TYPES)},
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
                    scopes=(self.push(repo),),
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
            raise RegistryError(
                f"{self.registry}/{repo}:{ref} was stored with digest {served},"
                f" not {manifest.digest}",
                "the registry rewrote the manifest; it cannot be retagged byte for byte",
            )

    def list_tags(
        self, repo: str, *, page_size: int | None = None, push: bool = False
    ) -> list[str]:
        """Every tag of the repository, following ``Link: <…>; rel="next"`` pages.
        A repository that does not exist yet has no tags."""
        scope = self.scope(repo, push)
        tags: list[str] = []
        url: str | None = None
        params = {"n": str(page_size)} if page_size else None
        seen: set[str] = set()
        while True:
            try:
                resp = self.request(
                    "GET", f"/v2/{repo}/tags/list", scopes=(scope,), url=url, params=params
                )
            except NotFound:
                return tags
            body = resp.json()
            tags.extend(body.get("tags") or [])
            nxt = resp.links.get("next", {}).get("url")
            if not nxt:
                return tags
            url = urllib.parse.urljoin(resp.url, nxt)
            if url in seen:  # a broken registry must not loop forever
                return tags
            seen.add(url)
            params = None

    def blob_exists(self, repo: str, digest: str) -> bool:
        try:
            self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scopes=(self.push(repo),))
            return True
        except NotFound:
            return False

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> str | None:
        """Mount a blob from another repository of this registry. Returns None when
        mounted, else the upload URL of the session the registry opened instead."""
        resp = self.request(
            "POST",
            f"/v2/{repo}/blobs/uploads/",
            scopes=(self.push(repo), self.pull(from_repo)),
            params={"mount": digest, "from": from_repo},
            ok=(201, 202),
        )
        if resp.status_code == 201:
            return None
        return urllib.parse.urljoin(resp.url, resp.headers["Location"])

    def start_upload(self, repo: str) -> str:
        resp = self.request(
            "POST", f"/v2/{repo}/blobs/uploads/", scopes=(self.push(repo),), ok=(202,)
        )
        return urllib.parse.urljoin(resp.url, resp.headers["Location"])

    def upload_blob(
        self, repo: str, location: str, digest: str, chunks: Iterator[bytes], size: int
    ) -> None:
        """Finish an upload session with one streamed PUT (monolithic, never in memory)."""
        body = _Body(chunks, size)
        sep = "&" if "?" in location else "?"
        url = f"{location}{sep}digest={urllib.parse.quote(digest)}"
        self.request(
            "PUT",
            "/v2/" + repo + "/blobs/uploads/…",
            scopes=(self.push(repo),),
            url=url,
            data=body,
            headers={"Content-Type": "application/octet-stream"},
            ok=(201, 204),
            retry=False,
        )

    def open_blob(self, repo: str, digest: str) -> Iterator[bytes]:
        """A blob's content in chunks. The GET is sent now, so a missing blob raises
        here rather than in the middle of an upload that streams it."""
        resp = self.request(
            "GET", f"/v2/{repo}/blobs/{digest}", scopes=(self.pull(repo),), stream=True
        )

        def chunks() -> Iterator[bytes]:
            try:
                yield from resp.iter_content(CHUNK)
            finally:
                resp.close()

        return chunks()

    def read_blob(self, repo: str, digest: str, *, limit: int = 16 << 20) -> bytes:
        """A small blob (an image config) in memory, checked against its digest."""
        data = bytearray()
        for chunk in self.open_blob(repo, digest):
            data += chunk
            if len(data) > limit:
                raise RegistryError(
                    f"{self.registry}/{repo}@{digest} is larger than {limit >> 20} MB",
                    "an image config is never that large; check the image",
                )
        if sha256_digest(bytes(data)) != digest:
            raise RegistryError(
                f"{self.registry}/{repo}@{digest} served content with another digest",
                "the registry is corrupt or a proxy altered the blob",
            )
        return bytes(data)
