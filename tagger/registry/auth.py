"""Authentication to one registry, as its own object (regclient's model): the
challenge the registry sent, the credentials for it (looked up once, on the first
challenge), and bearer tokens per scope set, fetched once and shared by every thread.

``header(scopes)`` is what a request carries; ``answer(resp, sent, scopes)`` decides
whether a 401 is worth one more try (a new challenge, or a token to renew).

Registries as they are: a 401 without a challenge (older GCR) is explained by one
``GET /v2/``; a token is renewed before it expires (``expires_in``, 60 s when absent, as
the token spec says); a token server without OAuth2 (404/405 to the refresh-token POST)
is asked with GET and Basic credentials instead, as go-containerregistry does.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import logging
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from ..credentials import CredentialLookup, Credentials
from ..redact import register as register_secret
from . import errors
from .challenge import parse_challenge
from .errors import refusals
from .transport import Transport

if TYPE_CHECKING:
    from .reply import Reply

log = logging.getLogger("tagger.registry")

Scopes = tuple[str, ...]
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata"})  # cloud metadata names

DEFAULT_LIFETIME = 60.0  # the token spec's default for a missing expires_in
RENEW_BEFORE = 30.0  # renew when this much (at most 10% of the lifetime) is left
NO_OAUTH = (404, 405)  # a token server that has no refresh-token POST


def no_credentials(registry: str) -> Credentials | None:
    return None


class Auth:
    def __init__(
        self, transport: Transport, credentials: CredentialLookup = no_credentials
    ) -> None:
        self.transport = transport
        self.registry = transport.registry
        self._credentials = credentials
        self._creds_loaded = False
        self._creds: Credentials | None = None
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._tokens: dict[Scopes, str] = {}
        self._renew_at: dict[Scopes, float] = {}  # monotonic time to fetch a new one
        self._probed: str | None = None  # the challenge of GET /v2/, asked for once
        self._probe_lock = threading.Lock()
        self._lock = threading.Lock()
        self._token_locks: dict[Scopes, threading.Lock] = {}

    def creds(self) -> Credentials | None:
        if not self._creds_loaded:
            self._creds = self._credentials(self.registry)
            self._creds_loaded = True
        return self._creds

    def header(self, scopes: Scopes) -> str | None:
        """The Authorization value for a request needing ``scopes``, or None."""
        challenge = self._challenge
        if challenge is None:
            return None
        scheme, params = challenge
        creds = self.creds()
        if scheme == "basic":
            if creds is None or creds.username is None or creds.password is None:
                return None
            raw = f"{creds.username}:{creds.password}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        if scheme == "bearer":
            return f"Bearer {self._token(params, scopes)}"
        return None

    def answer(self, resp: Reply, sent: str | None, scopes: Scopes) -> bool:
        """A 401: learn its challenge; True when the request is worth sending again (a
        new challenge, a request that went without credentials because another thread
        learned the challenge meanwhile, or a bearer token to renew)."""
        header = resp.headers.get("WWW-Authenticate", "") or self._probe_challenge()
        challenge = parse_challenge(header) if header else None
        if not (
            challenge
            and challenge[0] in ("basic", "bearer")
            and (challenge != self._challenge or challenge[0] == "bearer" or not sent)
        ):
            return False
        with self._lock:
            key = tuple(sorted(scopes))
            if challenge[0] == "bearer" and sent == f"Bearer {self._tokens.get(key)}":
                del self._tokens[key]  # expired or revoked: fetch a new one once
            self._challenge = challenge
        return True

    def _probe_challenge(self) -> str:
        """A 401 without a challenge (older GCR): the one ``GET /v2/`` answers with."""
        with self._probe_lock:  # threads meeting such 401s together ask once
            if self._probed is None:
                resp = self.transport.send("GET", self.transport.base + "/v2/", headers={})
                resp.close()
                found = resp.headers.get("WWW-Authenticate", "")
                self._probed = found if resp.status_code == 401 else ""
            return self._probed

    def _fresh(self, key: Scopes) -> str | None:
        if key in self._tokens and time.monotonic() < self._renew_at.get(key, 0.0):
            return self._tokens[key]
        return None

    def _token(self, params: dict[str, str], scopes: Scopes) -> str:
        key = tuple(sorted(scopes))
        with self._lock:
            token = self._fresh(key)
            if token is not None:
                return token
            lock = self._token_locks.setdefault(key, threading.Lock())
        with lock:  # threads asking for one scope set share one fetch
            token = self._fresh(key)
            if token is not None:
                return token
            asked = time.monotonic()
            # in the caller's order: some registries read only the first scope
            token, lifetime = self._fetch_token(params, tuple(scopes))
            with self._lock:
                self._tokens[key] = token
                self._renew_at[key] = asked + lifetime - min(RENEW_BEFORE, lifetime / 10)
            return token

    def _fetch_token(self, params: dict[str, str], scopes: Scopes) -> tuple[str, float]:
        realm = params.get("realm")
        if not realm:
            raise errors.no_realm(self.registry)
        creds = self.creds()
        realm_host = self._check_realm(realm)
        query: list[tuple[str, str]] = []
        if "service" in params:
            query.append(("service", params["service"]))
        query.extend(("scope", s) for s in scopes)
        what = "token server " + realm_host
        resp = None
        if creds and creds.identity_token:
            form = dict(query[:1])
            form.update(
                grant_type="refresh_token",
                refresh_token=creds.identity_token,
                client_id="tagger",
                scope=" ".join(scopes),
            )
            resp = self.transport.send(
                "POST", realm, headers={}, data=form, what=what, follow=False
            )
        if resp is None or resp.status_code in NO_OAUTH:
            if resp is not None:  # no OAuth2 there: GET with Basic credentials
                log.debug("token %s -> %s to POST: GET", realm_host, resp.status_code)
                resp.close()
            resp = self.transport.send(
                "GET",
                realm,
                headers={},
                params=query,
                what=what,
                auth=_basic(creds),
                follow=False,
            )
        log.debug("token %s -> %s", realm_host, resp.status_code)
        return self._token_from(resp)

    def _check_realm(self, realm: str) -> str:
        """The realm's host, when tagger may send credentials there: HTTPS (plain HTTP
        only for a plain-HTTP registry), and not a link-local or unspecified address
        (a cloud metadata service) unless the registry itself is there."""
        parts = urllib.parse.urlsplit(realm)
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        if scheme not in ("http", "https") or not host:
            raise refusals.bad_realm(self.registry, realm, "not an http(s) URL")
        if scheme == "http" and self.transport.origin[0] == "https" and not self.transport.insecure:
            raise errors.plain_http_realm(self.registry, parts.netloc)
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if (
            (ip is not None and (ip.is_link_local or ip.is_unspecified)) or host in METADATA_HOSTS
        ) and host != self.transport.origin[1].strip("[]"):
            raise refusals.bad_realm(
                self.registry, realm, "a link-local or unspecified address (cloud metadata)"
            )
        return parts.netloc

    def _token_from(self, resp: Reply) -> tuple[str, float]:
        """The token and how many seconds it lives."""
        if 300 <= resp.status_code < 400:
            realm_host = urllib.parse.urlsplit(resp.url).netloc
            raise refusals.token_redirect(self.registry, realm_host, resp.status_code)
        if resp.status_code in (401, 403):
            raise errors.auth_failed(self.registry, self.creds(), resp.status_code)
        if resp.status_code != 200:
            raise errors.token_status(self.registry, resp.status_code)
        try:
            body = resp.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            body, token = {}, None
        if not isinstance(token, str) or not token:
            raise errors.no_token(self.registry)
        register_secret(token)
        return token, token_lifetime(body)


def _basic(creds: Credentials | None) -> tuple[str, str] | None:
    """Basic credentials for a token GET: the password, else the identity token (a
    token server without OAuth2 takes it as a password, as ACR's does)."""
    if creds is not None and creds.username and creds.password:
        return (creds.username, creds.password)
    if creds is not None and creds.identity_token:
        return (creds.username or "<token>", creds.identity_token)
    return None


def token_lifetime(body: dict[str, Any]) -> float:
    """Seconds a token lives: ``expires_in`` (60 when absent or not positive, as the
    token spec says), less its age when ``issued_at`` says it was issued earlier."""
    try:
        seconds = float(body.get("expires_in") or 0)
    except (TypeError, ValueError):
        seconds = 0.0
    if not seconds > 0:
        seconds = DEFAULT_LIFETIME
    issued = body.get("issued_at")
    if isinstance(issued, str):
        try:
            at = datetime.datetime.fromisoformat(issued.replace("Z", "+00:00"))
            age = time.time() - at.timestamp()
        except ValueError:
            age = 0.0
        if 0 < age < seconds:  # a clock far off says nothing: ignore it
            seconds -= age
    return seconds
