"""Redaction (tagger/redact.py): every kind of secret is masked wherever tagger prints,
and ordinary output is left alone."""

from __future__ import annotations

import base64
import io
import logging
import secrets
import urllib.parse

import pytest

from tagger import redact
from tagger.errors import AuthError, TaggerError


@pytest.fixture
def password() -> str:
    pw = "pw-" + secrets.token_urlsafe(12)
    redact.register(pw, "carol")
    return pw


def test_a_registered_password_in_every_form_it_travels_in() -> None:
    password = "p@ss w/rd!" + secrets.token_hex(4)
    redact.register(password, "carol")
    raw = f"carol:{password}".encode()
    for text in (
        password,
        base64.b64encode(raw).decode(),  # a Basic header, a Docker config "auth"
        base64.urlsafe_b64encode(raw).decode(),
        urllib.parse.quote(password, safe=""),  # in a query or form
        urllib.parse.quote_plus(password),
    ):
        assert redact.redact(f"before {text} after") == f"before {redact.MASK} after"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Basic Y2Fyb2w6c2VjcmV0", "Y2Fyb2w6c2VjcmV0"),
        ("{'Authorization': 'Bearer abc.def.ghi'}", "abc.def.ghi"),
        ("header authorization=Bearer 1234567890", "1234567890"),
        ("token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjYXJvbCJ9.c2lnbmF0dXJl", "c2lnbmF0dXJl"),
        ("Bearer 0123456789abcdef", "0123456789abcdef"),
        ('{"auths": {"r": {"auth": "Y2Fyb2w6eA=="}}}', "Y2Fyb2w6eA=="),
        ('{"identitytoken": "rt-0001"}', "rt-0001"),
        ('{"Username": "u", "Secret": "s3cr3t"}', "s3cr3t"),
        ("grant_type=refresh_token&refresh_token=rt-0002&scope=x", "rt-0002"),
        ("TAGGER_PASSWORD=hunter22", "hunter22"),
        ("password: hunter23", "hunter23"),
        ('{"token": "t-0003", "access_token": "t-0003"}', "t-0003"),
        ("{'password': 'two words'}", "two words"),
        ('password: "plainword"', "plainword"),
        ("export GITHUB_TOKEN=ghp_0004", "ghp_0004"),
        ("password=plainword&user=x", "plainword"),
        ("Proxy-Authorization: Basic Y2Fyb2w6c2VjcmV0", "Y2Fyb2w6c2VjcmV0"),
    ],
)
def test_secret_shapes_are_masked_without_being_registered(text: str, secret: str) -> None:
    out = redact.redact(text)
    assert secret not in out and redact.MASK in out


@pytest.mark.parametrize(
    "text",
    [
        "sha256:9b7c4f1123fea70dd12be48787a7de25903b9302a9c71ecb57f2567d09eab89c",
        'Bearer realm="https://auth.example/token",service="registry"',
        "check the username and the password or token (TAGGER_USERNAME / TAGGER_PASSWORD)",
        "debug: token 127.0.0.1:5000 -> 200",
        "the registry asked for a bearer token but named no realm",
        "  1.2     move    sha256:cb64d625379c -> sha256:9b7c4f1123fe  newest 1.2.x",
        # words are not secrets because of their names: repositories, paths, hints
        "source image 127.0.0.1:5000/acme/auth:sha-1a2b3c4 not found",
        "source image ghcr.io/acme/auth:1.2.3 not found",
        "127.0.0.1:5000/acme/token:1.0 and acme/secret:latest",
        "127.0.0.1:5000/acme/authorization:1.0 not found",
        "cannot open oci:/etc/passwd: No such directory",
        "/run/secret: Permission denied",
        'pipe the password or token: echo "$TOKEN" | tagger release --password-stdin',
        "set TAGGER_PASSWORD=$TOKEN in the job, or token: see the docs",
        "password: <redacted>",
    ],
)
def test_ordinary_output_is_left_alone(text: str) -> None:
    assert redact.redact(text) == text


def test_error_texts_are_masked_also_when_set_later(password: str) -> None:
    e = AuthError(f"refused {password}", f"hint {password}")
    assert password not in str(e) and password not in repr(e.args)
    e.hint = f"later {password}"
    e.message = f"later {password}"
    assert password not in str(e)
    assert isinstance(e, TaggerError) and e.exit_code == 4


def test_log_records_are_masked_arguments_and_tracebacks(password: str) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(redact.RedactingFilter())
    log = logging.getLogger("tagger.test-redact")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        log.debug("sent %s", {"Authorization": "Bearer eyJx.eyJy.zzzz"})
        log.debug("password is %s", password)
        try:
            raise RuntimeError(f"failed with {password}")
        except RuntimeError:
            log.exception("oops")
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    assert password not in out and "eyJx" not in out
    assert out.count(redact.MASK) >= 3 and "RuntimeError" in out


def test_short_values_are_not_registered() -> None:
    redact.register("ab", "u")
    assert redact.redact("a tab and a cab") == "a tab and a cab"
