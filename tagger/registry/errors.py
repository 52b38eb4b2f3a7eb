"""Every registry answer or exception turned into tagger's error: all registry wording
lives here, with the hint that fits (``--ca-cert``, ``--insecure-registry``,
``docker login``, ``TAGGER_USERNAME``, ``--deadline``).

Messages name the method, host and path, never a header; every message passes
through ``redact`` when the error is made (tagger/errors.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..credentials import Credentials
from ..errors import AuthError, DeadlineExceeded, NotFound, RegistryError, RegistryUnreachable
from .challenge import parse_challenge

if TYPE_CHECKING:
    import requests

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
MAX_MESSAGE = 300  # characters of a registry's message shown

# the hint that fits a Distribution API error code (the registry's message is shown too)
CODE_HINTS = {
    "NAME_UNKNOWN": "the repository does not exist: check its name, or create it first"
    " (ECR and Harbor, for example, do not create repositories on push)",
    "TAG_INVALID": "the registry refused the tag: check its rules for tags",
    "MANIFEST_INVALID": "the registry refused the manifest: it may not support this type",
    "MANIFEST_UNKNOWN": "check the tag or digest",
    **dict.fromkeys(("MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN"), "a blob is missing; run again"),
}


def tls_reason(exc: BaseException) -> str:
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


def net_reason(exc: BaseException) -> str:
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


def transport_error(
    exc: BaseException, registry: str, target: str, verify: bool | str
) -> RegistryError:
    """A request that got no answer: TLS failure, or no connection."""
    import requests

    if isinstance(exc, requests.exceptions.SSLError):
        reason = tls_reason(exc)
        if "does not speak TLS" in reason:
            hint = f"for a registry without TLS pass --insecure-registry {registry}"
        else:
            trusted = f"tagger trusted {verify}; " if isinstance(verify, str) else ""
            hint = (
                f"{trusted}pass --ca-cert FILE (or set SSL_CERT_FILE) with the CA that"
                f" signed the certificate of {target}"
            )
        return RegistryUnreachable(f"TLS verification of {target} failed: {reason}", hint)
    return RegistryUnreachable(
        f"cannot reach {target}: {net_reason(exc)}",
        "check the registry address and your network; tagger retried before giving up",
    )


def deadline_passed(method: str, registry: str, path: str) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"the run's deadline passed before {method} {registry}{path}",
        "raise --deadline, or run again: a re-run finishes the release",
    )


def login_hint(registry: str) -> str:
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
    if creds is None:
        return AuthError(
            f"{registry} requires authentication and tagger found no credentials for it",
            login_hint(registry),
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
    if creds is None:
        return AuthError(
            f"{registry}/{repo} refused anonymous access ({what.split()[0]})",
            login_hint(registry),
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


def clean(text: object, limit: int = MAX_MESSAGE) -> str:
    """Registry text is untrusted: one line, no control characters, bounded length."""
    out = _CONTROL.sub(" ", str(text)).strip()
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _error_body(resp: requests.Response) -> tuple[str | None, str | None]:
    """The first ``errors[]`` entry of a Distribution API error body: code, message
    (both cleaned: one line, no control characters)."""
    try:
        doc: Any = resp.json()
        errors = doc.get("errors") or []
        if errors and isinstance(errors[0], dict):
            code, message = errors[0].get("code"), errors[0].get("message")
            return (
                clean(code, 40) if isinstance(code, str) and code else None,
                clean(message) if isinstance(message, str) and message.strip() else None,
            )
    except (ValueError, AttributeError, TypeError):
        pass
    return None, None


def said(code: str | None, message: str | None) -> str:
    """`` (the registry said: CODE: message)``, or nothing when it said nothing."""
    text = ": ".join(x for x in (code, message) if x)
    return f" (the registry said: {text})" if text else ""


def is_immutable(status: int, code: str | None, message: str | None) -> bool:
    """A PUT refused because the tag exists in a repository with immutable tags: ECR's
    400 TAG_INVALID "... cannot be overwritten because the tag is immutable", Harbor's
    412 (a DENIED "configured as immutable"), Docker Hub's 403 naming immutability."""
    text = (message or "").lower()
    if status == 412:
        return True
    if code == "TAG_INVALID" and ("immutable" in text or "already exists" in text):
        return True
    return status in (400, 403, 409) and "immutable" in text


def immutable_tag(
    registry: str, repo: str, tag: str, status: int, code: str | None, message: str | None
) -> RegistryError:
    return RegistryError(
        f"{registry}/{repo} has immutable tags: the floating tag {tag} could not move"
        f"{said(code, message) or f' (HTTP {status})'}",
        "floating tags (X.Y, X, latest) must move; exclude them from the repository's"
        " tag-immutability rule (ECR: an exclusion filter; Harbor: a rule matching only"
        " X.Y.Z tags), or publish to a repository with mutable tags; what was written stays",
        status=status,
        code=code,
    )


def rate_limited(
    where: str,
    resp: requests.Response,
    creds: Credentials | None,
    code: str | None,
    msg: str | None,
) -> RegistryError:
    """429: the registry's rate limit (Docker Hub: 100 pulls per 6 h anonymous)."""
    from urllib3.exceptions import HTTPError
    from urllib3.util.retry import Retry

    try:
        wait = Retry().parse_retry_after(resp.headers.get("Retry-After") or "")
        when = time.strftime(" until %Y-%m-%d %H:%M UTC", time.gmtime(time.time() + wait))
    except (HTTPError, ValueError, OverflowError):  # none or unparseable: say nothing of when
        when = ""
    limit, left = (
        clean(resp.headers.get(h, ""), 40) for h in ("RateLimit-Limit", "RateLimit-Remaining")
    )
    quota = f"; limit {limit}, remaining {left or '?'}" if limit else ""
    login = (
        "logging in raises the limit: docker login, or TAGGER_USERNAME / TAGGER_PASSWORD"
        if creds is None
        else f"{who(creds)} is logged in; a paid plan or a mirror raises the limit"
    )
    return RegistryError(
        f"{where}: rate limit reached{when}{quota}{said(code, msg)}",
        f"run again after that; {login}",
        status=429,
        code=code,
    )


def not_the_api(registry: str, where: str, what: str) -> RegistryError:
    """An answer that breaks the Distribution API: HTML, broken JSON, no manifest."""
    return RegistryError(
        f"{registry} answered something that is not the Distribution API: {what} ({where})",
        "check the registry address (a login page, a proxy or a web UI answered?) and"
        " that the registry speaks the OCI Distribution API",
    )


def repo_not_found(registry: str, repo: str, resp: requests.Response) -> NotFound:
    code, message = _error_body(resp)
    return NotFound(
        f"repository {registry}/{repo} not found{said(code, message)}",
        "check the repository name (a typo, or capital letters?); reconcile works on"
        " repositories that have releases",
        status=404,
        code=code,
    )


def status_error(
    method: str,
    registry: str,
    path: str,
    resp: requests.Response,
    scopes: Sequence[str],
    creds: Credentials | None,
) -> RegistryError:
    """An answer whose status the call did not expect. The registry's own message
    (cleaned) is part of every error; the hint fits its code."""
    code, message = _error_body(resp)
    detail = ": ".join(x for x in (code, message) if x) or f"HTTP {resp.status_code}"
    where = f"{method} {registry}{path}"
    status = resp.status_code
    if method == "PUT" and "/manifests/" in path and is_immutable(status, code, message):
        repo, _, tag = path[len("/v2/") :].rpartition("/manifests/")
        return immutable_tag(registry, repo, tag, status, code, message)
    if status == 429:
        return rate_limited(where, resp, creds, code, message)
    if status in (401, 403) and code == "DENIED" and "expired" in (message or "").lower():
        return AuthError(
            f"{registry} refused the login: it has expired{said(code, message)}",
            f"log in again ({login_hint(registry)}); ECR logins last 12 hours",
            status=status,
            code=code,
        )
    if status == 404:
        return NotFound(
            f"{where}: not found ({detail})", CODE_HINTS.get(code or ""), status=status, code=code
        )
    if status in (401, 403):
        err = _auth_status(registry, resp, scopes, creds, status, code)
        err.message += said(code, message)
        return err
    hint = (
        "the registry kept failing; try again later"
        if status in RETRY_STATUSES
        else CODE_HINTS.get(code or "", "check the image reference and the registry's message")
    )
    return RegistryError(f"{where} failed: {detail}", hint, status=status, code=code)


def _auth_status(
    registry: str,
    resp: requests.Response,
    scopes: Sequence[str],
    creds: Credentials | None,
    status: int,
    code: str | None,
) -> AuthError:
    header = resp.headers.get("WWW-Authenticate", "")
    params = parse_challenge(header)[1] if header else {}
    if status == 403 or params.get("error") == "insufficient_scope":
        return denied(registry, creds, scopes, params.get("scope"), status, code)
    if params.get("error") == "invalid_token" and creds is not None:
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


def altered(what: str, served: str) -> RegistryError:
    """A manifest or blob whose bytes do not have the digest it was asked for."""
    return RegistryError(
        f"{what} served content with digest {served}",
        "the registry is corrupt or a proxy altered the content",
    )


def rewritten(image: str, served: str, digest: str) -> RegistryError:
    return RegistryError(
        f"{image} was stored with digest {served}, not {digest}",
        "the registry rewrote the manifest; it cannot be retagged byte for byte",
    )


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


def too_large(what: str, limit: int) -> RegistryError:
    """An answer over tagger's limit for its kind (read no further)."""
    return RegistryError(
        f"{what}: the answer is larger than tagger's limit of {_size(limit)}; not read",
        "no registry sends that much here: check the registry (see docs/security.md)",
    )
