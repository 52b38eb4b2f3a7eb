"""Image references as docker accepts them, and which registries get plain HTTP."""

from __future__ import annotations

import pytest

from tagger.errors import UsageError
from tagger.reference import is_insecure, parse_reference, validate_tag

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("127.0.0.1:5000/app", "127.0.0.1:5000", "app", None, None),
        ("127.0.0.1:5000/api:sha-1a2b3c4", "127.0.0.1:5000", "api", "sha-1a2b3c4", None),
        ("ghcr.io/acme/api:1.2.3", "ghcr.io", "acme/api", "1.2.3", None),
        ("ghcr.io/acme/team/api", "ghcr.io", "acme/team/api", None, None),
        ("app", "registry-1.docker.io", "library/app", None, None),
        ("app:latest", "registry-1.docker.io", "library/app", "latest", None),
        ("acme/app", "registry-1.docker.io", "acme/app", None, None),
        ("docker.io/acme/app", "registry-1.docker.io", "acme/app", None, None),
        ("docker.io/app", "registry-1.docker.io", "library/app", None, None),
        ("index.docker.io/library/app:1", "registry-1.docker.io", "library/app", "1", None),
        ("localhost:5000/x", "localhost:5000", "x", None, None),
        ("localhost/x:V1_Beta", "localhost", "x", "V1_Beta", None),
        ("[::1]:5000/app:1.0", "[::1]:5000", "app", "1.0", None),
        ("registry.example.com:443/a.b/c_d/e__f/g-h--i", "registry.example.com:443",
         "a.b/c_d/e__f/g-h--i", None, None),
        (f"app@{DIGEST}", "registry-1.docker.io", "library/app", None, DIGEST),
        (f"ghcr.io/acme/api:1.2.3@{DIGEST}", "ghcr.io", "acme/api", "1.2.3", DIGEST),
    ],
)
def test_parse_reference(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository) == (registry, repository)
    assert (ref.tag, ref.digest) == (tag, digest)
    assert ref.repo_ref == f"{registry}/{repository}"
    # the normalised form parses back to the same reference
    assert parse_reference(str(ref)) == ref


@pytest.mark.parametrize(
    "text",
    [
        "",
        " app",
        "app ",
        "ghcr.io/Acme/api",  # uppercase repository
        "App",
        "ghcr.io/acme/api:-bad",  # a tag cannot start with "-"
        "ghcr.io/acme/api:.bad",
        "ghcr.io/acme/api:1.0.0+build",  # "+" is not allowed in a tag
        "ghcr.io/acme/api:",
        "ghcr.io/acme/api:" + "a" * 129,
        "ghcr.io/acme//api",
        "ghcr.io/acme/api/",
        "ghcr.io/-acme/api",
        "ghcr.io/acme/api@sha256:short",
        "ghcr.io/acme/api@" + "0123456789abcdef" * 4,  # digest without algorithm
        "bad_host.io/acme/api",
    ],
)
def test_invalid_references_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_reference(text)
    assert e.value.exit_code == 2
    assert repr(text) in str(e.value) or "empty" in str(e.value)


def test_longest_tag_is_accepted() -> None:
    assert parse_reference("ghcr.io/acme/api:" + "a" * 128).tag == "a" * 128


@pytest.mark.parametrize("text", ["ghcr.io/acme/api:1.2.3", f"ghcr.io/acme/api@{DIGEST}"])
def test_image_option_refuses_a_tag_or_digest(text: str) -> None:
    with pytest.raises(UsageError, match="without tag or digest") as e:
        parse_reference(text, allow_tag=False)
    assert e.value.exit_code == 2
    assert "ghcr.io/acme/api'" in str(e.value)  # suggests the reference to use


def test_image_option_accepts_a_repository_with_a_port() -> None:
    ref = parse_reference("127.0.0.1:5000/api", allow_tag=False)
    assert (ref.registry, ref.repository, ref.tag) == ("127.0.0.1:5000", "api", None)


def test_with_tag_and_reference() -> None:
    ref = parse_reference(f"ghcr.io/acme/api:old@{DIGEST}")
    assert ref.reference == DIGEST  # a digest wins over a tag
    new = ref.with_tag("1.2.3")
    assert str(new) == "ghcr.io/acme/api:1.2.3" and new.reference == "1.2.3"
    with pytest.raises(UsageError):
        _ = parse_reference("ghcr.io/acme/api").reference


@pytest.mark.parametrize("tag", ["sha-1a2b3c4", "1.0.0_build.7", "_x", "A" * 128])
def test_validate_tag_accepts(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["api/v1.2.3", "-x", "1.0.0+b", "", "a" * 129])
def test_validate_tag_refuses(tag: str) -> None:
    with pytest.raises(UsageError) as e:
        validate_tag(tag)
    assert e.value.exit_code == 2


@pytest.mark.parametrize(
    ("registry", "insecure", "expected"),
    [
        ("127.0.0.1:5000", (), True),
        ("127.0.0.1", (), True),
        ("127.1.2.3:5000", (), True),
        ("[::1]:5000", (), True),
        ("[::1]", (), True),
        ("localhost:5000", (), True),
        ("localhost", (), True),
        ("registry.localhost:5000", (), True),
        ("ghcr.io", (), False),
        ("registry-1.docker.io", (), False),
        ("10.0.0.5:5000", (), False),
        ("localhost.example.com", (), False),
        ("127.0.0.1.nip.io:5000", (), False),
        ("[2001:db8::1]:5000", (), False),
        ("registry.lan:5000", ("registry.lan",), True),
        ("registry.lan:5000", ("registry.lan:5000",), True),
        ("registry.lan:5001", ("registry.lan:5000",), False),
        ("registry.lan", ("registry.lan:5000",), False),
        ("other.lan:5000", ("registry.lan",), False),
    ],
)
def test_is_insecure(registry: str, insecure: tuple[str, ...], expected: bool) -> None:
    """Insecure: HTTPS without verification first, then plain HTTP (Docker's rule)."""
    assert is_insecure(registry, frozenset(insecure)) is expected
