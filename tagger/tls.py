"""Which certificate authorities tagger trusts for registries over HTTPS.

Verification is always on. The CA bundle is ``--ca-cert FILE``, else ``SSL_CERT_FILE``,
else ``REQUESTS_CA_BUNDLE``, else requests' default (certifi). The choice is passed as
``verify=`` on every request: requests lets ``REQUESTS_CA_BUNDLE`` override a session's
``verify``, but never a request's. A file given replaces the default bundle (as curl's
``--cacert`` does); to trust a private CA and the public ones, concatenate them.
Loopback hosts and ``--insecure-registry`` ones are the exception (reference.is_insecure):
HTTPS without verification, or plain HTTP (registry/transport.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .errors import UsageError

FALLBACKS = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


def ca_bundle(ca_cert: str | None, env: Mapping[str, str]) -> bool | str:
    """``verify=`` for every request: a CA file (or c_rehash'd directory), or True."""
    for name, value in [("--ca-cert", ca_cert), *((v, env.get(v)) for v in FALLBACKS)]:
        if not value:
            continue
        if not Path(value).exists():
            raise UsageError(
                f"{name} {value}: no such file",
                "name a PEM file with the CA certificate(s) that signed the registry's certificate",
            )
        return value
    return True
