"""The wording of what tagger refuses from a hostile or broken registry, token server
or source (docs/security.md): one module of the registry wording. Messages
name hosts, digests and sizes, never a header or a credential."""

from __future__ import annotations

from ...errors import AuthError, RegistryError


def short_source(what: str, sent: int, size: int) -> RegistryError:
    return RegistryError(
        f"{what}: the source ended after {sent} bytes, the manifest says {size};"
        " the upload was abandoned",
        "the source is damaged or not what its manifest describes; nothing was tagged",
    )


def long_source(what: str, size: int) -> RegistryError:
    return RegistryError(
        f"{what}: the source sent more than the {size} bytes its manifest says;"
        " the upload was abandoned before its end",
        "the source is damaged or hostile; nothing was tagged",
    )


def wrong_digest(what: str, served: str) -> RegistryError:
    return RegistryError(
        f"{what}: the source sent content with digest {served};"
        " the upload was abandoned before its end",
        "the source is damaged or hostile; nothing was tagged",
    )


def insecure_location(registry: str, url: str) -> RegistryError:
    return RegistryError(
        f"{registry} sent tagger to plain-HTTP {url.split('?')[0]}; refused",
        "an HTTPS registry must not send uploads over plain HTTP; ask its operators",
    )


def token_redirect(registry: str, realm_host: str, status: int) -> AuthError:
    return AuthError(
        f"the token server of {registry} ({realm_host}) answered a redirect ({status});"
        " tagger does not follow redirects with credentials",
        "configure the registry's token realm with its final URL",
        status=status,
    )


def bad_realm(registry: str, realm: str, why: str) -> AuthError:
    return AuthError(
        f"{registry} names the token realm {realm}, {why}; refused",
        "check the registry address; a registry's token realm must be an HTTPS URL"
        " on a routable host",
    )
