"""Authentication to one registry, as its own object (regclient's model): the
challenge the registry sent, the credentials for it (looked up once, on the first
challenge), and bearer tokens per scope set, fetched once and shared by every thread.

``header(scopes)`` is what a request carries; ``answer(resp, sent, scopes)`` decides
whether a 401 is worth one more try (a new challenge, or a token to renew).
"""

from __future__ import annotations

import base64
import logging
import threading
import urllib.parse
from typing import TYPE_CHECKING

from ..credentials import CredentialLookup, Credentials
from ..redact import register as register_secret
from ..reference import is_loopback
from . import errors
from .challenge import parse_challenge
from .transport import Transport

if TYPE_CHECKING:
    import requests

log = logging.getLogger("tagger.registry")

Scopes = tuple[str, ...]


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

    def answer(self, resp: requests.Response, sent: str | None, scopes: Scopes) -> bool:
        """A 401: learn its challenge; True when the request is worth sending again (a
        new challenge, a request that went without credentials because another thread
        learned the challenge meanwhile, or a bearer token to renew)."""
        header = resp.headers.get("WWW-Authenticate", "")
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

    def _token(self, params: dict[str, str], scopes: Scopes) -> str:
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

    def _fetch_token(self, params: dict[str, str], scopes: Scopes) -> str:
        realm = params.get("realm")
        if not realm:
            raise errors.no_realm(self.registry)
        creds = self.creds()
        realm_host = urllib.parse.urlsplit(realm).netloc
        if (
            creds is not None
            and realm.lower().startswith("http://")
            and self.transport.base.startswith("https://")
            and not is_loopback(realm_host)
        ):
            raise errors.plain_http_realm(self.registry, realm_host)
        query: list[tuple[str, str]] = []
        if "service" in params:
            query.append(("service", params["service"]))
        query.extend(("scope", s) for s in scopes)
        what = "token server " + realm_host
        if creds and creds.identity_token:
            form = dict(query[:1])
            form.update(
                grant_type="refresh_token",
                refresh_token=creds.identity_token,
                client_id="tagger",
                scope=" ".join(scopes),
            )
            resp = self.transport.send("POST", realm, headers={}, data=form, what=what)
        else:
            auth = (
                (creds.username, creds.password)
                if creds and creds.username and creds.password
                else None
            )
            resp = self.transport.send("GET", realm, headers={}, params=query, what=what, auth=auth)
        log.debug("token %s -> %s", realm_host, resp.status_code)
        return self._token_from(resp)

    def _token_from(self, resp: requests.Response) -> str:
        if resp.status_code in (401, 403):
            raise errors.auth_failed(self.registry, self.creds(), resp.status_code)
        if resp.status_code != 200:
            raise errors.token_status(self.registry, resp.status_code)
        try:
            body = resp.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise errors.no_token(self.registry)
        register_secret(token)
        return token
