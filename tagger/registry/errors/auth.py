"""Logins: no credentials, refused credentials, no access, and broken token servers;
the hint says where the credentials came from and how to log in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ...credentials import Credentials
from ...errors import AuthError, RegistryError
from ..challenge import parse_challenge
from .words import clean

if TYPE_CHECKING:
    from ..reply import Reply


def login_hint(registry: str, creds: Credentials | None = None) -> str:
    if creds is not None and creds.withheld:  # a pull request: none were sent, on purpose
        return (
            "on a pull request a registry named only by the repository's file gets no"
            " credentials (see the note above); pass -i (or --source) to use them"
        )
    return (
        f"log in with docker login {registry}, or set TAGGER_USERNAME /"
        " TAGGER_PASSWORD (used for the --image registries)"
    )


def who(creds: Credentials | None) -> str:
    if creds and creds.username:
        return creds.username
    return "the identity token" if creds and creds.identity_token else "anonymous"


def auth_failed(
    registry: str, creds: Credentials | None, status: int | None, code: str | None = None
) -> AuthError:
    """401 from the registry or its token server: the credentials were refused (or
    there were none)."""
    if creds is None or creds.anonymous:
        none = "sent it none" if creds and creds.withheld else "found no credentials for it"
        return AuthError(
            f"{registry} requires authentication and tagger {none}",
            login_hint(registry, creds),
            status=status,
            code=code,
        )
    return AuthError(
        f"authentication to {registry} failed for {who(creds)}: check the username"
        " and the password or token",
        f"they came from {creds.source or 'the caller'}; fix them there, or log in again",
        status=status,
        code=code,
    )


def denied(
    registry: str,
    creds: Credentials | None,
    scopes: Sequence[str],
    challenge_scope: str | None,
    status: int,
    code: str | None,
) -> AuthError:
    """403, or 401 ``insufficient_scope`` after a fresh token: logged in, not allowed."""
    wanted = [s for s in (challenge_scope or "").split(" ") if s] or list(scopes)
    pushing = [s for s in wanted if s.rsplit(":", 1)[-1].split(",").count("push")]
    scope = (pushing or wanted or ["repository:?:pull"])[0]
    repo = scope.split(":", 1)[-1].rsplit(":", 1)[0]
    what = "push to" if pushing else "pull from"
    if creds is None or creds.anonymous:
        return AuthError(
            f"{registry}/{repo} refused anonymous access ({what.split()[0]})",
            login_hint(registry, creds),
            status=status,
            code=code,
        )
    return AuthError(
        f"{who(creds)} may not {what} {registry}/{repo}",
        "ask for " + ("write" if pushing else "read") + " access to the repository (a"
        " token with push rights for a release), or use other credentials",
        status=status,
        code=code,
    )


def auth_status(
    registry: str,
    resp: Reply,
    scopes: Sequence[str],
    creds: Credentials | None,
    status: int,
    code: str | None,
) -> AuthError:
    header = resp.headers.get("WWW-Authenticate", "")
    params = parse_challenge(header)[1] if header else {}
    if status == 403 or params.get("error") == "insufficient_scope":
        return denied(registry, creds, scopes, params.get("scope"), status, code)
    if params.get("error") == "invalid_token" and creds and not creds.anonymous:
        return AuthError(  # a fresh token from its own token server, refused
            f"{registry} refused the token its token server issued for"
            f" {who(creds)} ({clean(params.get('error_description') or 'invalid_token')})",
            "check this machine's clock, and the registry's token settings (issuer,"
            " service, certificate)",
            status=status,
            code=code,
        )
    return auth_failed(registry, creds, status, code)


def no_realm(registry: str) -> RegistryError:
    return RegistryError(
        f"{registry} asked for a bearer token but named no realm",
        "the registry's auth configuration is broken; ask its operators",
    )


def plain_http_realm(registry: str, realm_host: str) -> AuthError:
    return AuthError(
        f"{registry} sends logins to a plain-HTTP token server ({realm_host});"
        " tagger will not send credentials unencrypted",
        "ask the registry's operators to serve the token realm over HTTPS",
    )


def token_status(registry: str, status: int) -> RegistryError:
    return RegistryError(
        f"the token server of {registry} answered {status}",
        "try again later; if it persists, check the registry's status",
        status=status,
    )


def no_token(registry: str) -> RegistryError:
    return RegistryError(
        f"the token server of {registry} answered without a token",
        "check the registry's auth configuration",
    )
