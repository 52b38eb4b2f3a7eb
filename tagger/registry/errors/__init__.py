"""Every registry answer or exception turned into tagger's error: all registry wording
lives in this package, with the hint that fits (``--ca-cert``, ``--insecure-registry``,
``docker login``, ``TAGGER_USERNAME``, ``--deadline``).

- ``net``: no answer (connection, TLS, deadline, size limits);
- ``auth``: logins and token servers;
- ``answers``: unexpected statuses, with the registry's own message and code;
- ``refusals``: what tagger refuses from a hostile or broken registry or source
  (docs/security.md);
- ``words``: registry text made safe to show.

Messages name the method, host and path, never a header; every message passes
through ``redact`` when the error is made (tagger/errors.py).
"""

from __future__ import annotations

from .answers import (
    CODE_HINTS,
    RETRY_STATUSES,
    altered,
    immutable_tag,
    is_immutable,
    not_the_api,
    rate_limited,
    repo_not_found,
    rewritten,
    status_error,
)
from .auth import (
    auth_failed,
    denied,
    login_hint,
    no_realm,
    no_token,
    plain_http_realm,
    token_status,
    who,
)
from .net import deadline_passed, net_reason, tls_reason, too_large, transport_error
from .words import MAX_MESSAGE, clean, said

__all__ = [
    "CODE_HINTS",
    "MAX_MESSAGE",
    "RETRY_STATUSES",
    "altered",
    "auth_failed",
    "clean",
    "deadline_passed",
    "denied",
    "immutable_tag",
    "is_immutable",
    "login_hint",
    "net_reason",
    "no_realm",
    "no_token",
    "not_the_api",
    "plain_http_realm",
    "rate_limited",
    "repo_not_found",
    "rewritten",
    "said",
    "status_error",
    "tls_reason",
    "token_status",
    "too_large",
    "transport_error",
    "who",
]
