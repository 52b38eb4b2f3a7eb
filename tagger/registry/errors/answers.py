"""Answers whose status the call did not expect: the registry's own ``errors[]``
message, shown with the hint its code calls for (immutable tags, rate limits, expired
logins, missing repositories), and answers that are not the Distribution API."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...credentials import Credentials
from ...errors import AuthError, NotFound, RegistryError
from .auth import auth_status, login_hint, who
from .words import clean, said

if TYPE_CHECKING:
    from ..reply import Reply


RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


# the hint that fits a Distribution API error code (the registry's message is shown too)
CODE_HINTS = {
    "NAME_UNKNOWN": "the repository does not exist: check its name, or create it first"
    " (ECR and Harbor, for example, do not create repositories on push)",
    "TAG_INVALID": "the registry refused the tag: check its rules for tags",
    "MANIFEST_INVALID": "the registry refused the manifest: it may not support this type",
    "MANIFEST_UNKNOWN": "check the tag or digest",
    **dict.fromkeys(("MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN"), "a blob is missing; run again"),
}


def _error_body(resp: Reply) -> tuple[str | None, str | None]:
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
    resp: Reply,
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
        if creds is None or creds.anonymous
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


def repo_not_found(registry: str, repo: str, resp: Reply) -> NotFound:
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
    resp: Reply,
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
        err = auth_status(registry, resp, scopes, creds, status, code)
        err.message += said(code, message)
        return err
    hint = (
        "the registry kept failing; try again later"
        if status in RETRY_STATUSES
        else CODE_HINTS.get(code or "", "check the image reference and the registry's message")
    )
    return RegistryError(f"{where} failed: {detail}", hint, status=status, code=code)


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
