"""Requests that got no answer: no connection, a TLS failure, the deadline, an answer
over tagger's limit."""

from __future__ import annotations

from ...errors import DeadlineExceeded, RegistryError, RegistryUnreachable


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


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


def too_large(what: str, limit: int) -> RegistryError:
    """An answer over tagger's limit for its kind (read no further)."""
    return RegistryError(
        f"{what}: the answer is larger than tagger's limit of {_size(limit)}; not read",
        "no registry sends that much here: check the registry (see docs/security.md)",
    )
