"""Registries as they are in the wild, imitated by a proxy in front of the real
docker-registry (or by the token issuer itself): TLS on loopback and
--insecure-registry, tokens that expire or are revoked mid-upload, refused
cross-repository mounts, several challenges on one 401, a 401 without a challenge, a
token server without OAuth2, and tagger naming itself in every request."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.auth import (
    SERVICE,
    TLS_NAME,
    AuthRegistries,
    make_tls,
    resolve_to_loopback,
)
from support.git import Repo
from support.proxy import Proxy, Reply, Seen

from tagger import __version__
from tagger.registry.challenge import parse_challenge, parse_challenges

TAGS = ("1.0.0", "1.0", "1", "latest")


# regs and fresh_auth: support/fixtures.py
pytestmark = pytest.mark.usefixtures("fresh_auth")


@pytest.fixture
def proxy(regs: AuthRegistries) -> Iterator[Proxy]:
    """A proxy in front of the token-auth registry."""
    p = Proxy(f"http://{regs.token}")
    yield p
    p.close()


def login(regs: AuthRegistries, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAGGER_USERNAME", "alice")
    monkeypatch.setenv("TAGGER_PASSWORD", regs.users["alice"].password)


def released(regs: AuthRegistries, repo: Repo, image: str, source: str | None = None) -> str:
    """What CI did before tagger runs: a commit tagged v1.0.0, its image pushed under the
    SHA tag (to ``source`` when given: another repository, so blobs have to move)."""
    repo.commit("release 1.0.0")
    repo.tag("v1.0.0")
    return regs.open.push_image(source or image, repo.sha_tag, content=repo.head, layers=2)


def release(tagger: Any, repo: Repo, host: str, image: str, *args: str) -> Any:
    return tagger("-C", str(repo.path), "release", "-i", f"{host}/{image}", *args)


def release_from_ci(
    tagger: Any,
    regs: AuthRegistries,
    repo: Repo,
    proxy: Proxy,
    image: str,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Any, str]:
    """CI pushed the image to ci/``image`` (so blobs have to move); tagger, logged in,
    releases it to ``image`` through the proxy. Returns the run and the image's digest."""
    digest = released(regs, repo, image, source=f"ci/{image}")
    login(regs, monkeypatch)
    source = f"docker://{regs.open.host}/ci/{image}:{repo.sha_tag}"
    return release(tagger, repo, proxy.host, image, "--source", source), digest


def assert_released(regs: AuthRegistries, image: str, digest: str) -> None:
    for tag in TAGS:
        assert regs.open.digest(image, tag) == digest, tag


def blob_puts(proxy: Proxy) -> list[Seen]:
    return [s for s in proxy.seen if s.method == "PUT" and "/blobs/uploads/" in s.path]


def bearer(regs: AuthRegistries, scope: str, error: str) -> tuple[str, str]:
    return (
        "WWW-Authenticate",
        f'Bearer realm="{regs.issuer.url}",service="{SERVICE}",scope="{scope}",error="{error}"',
    )


# --- 1. TLS on loopback, --insecure-registry -------------------------------------------------
@pytest.mark.parametrize("ca", ["none", "right", "unrelated"])
def test_self_signed_tls_on_loopback(
    ca: str,
    tagger: Any,
    regs: AuthRegistries,
    repo: Repo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A TLS registry on 127.0.0.1 (its certificate names another host, as a self-signed
    one often does) works as Docker has it: HTTPS, unverified, credentials sent. A CA
    bundle given for other registries of the run does not get in the way."""
    host = f"127.0.0.1:{regs.tls_port}"
    image = regs.open.new_repo()
    digest = released(regs, repo, image)
    login(regs, monkeypatch)
    args = []
    if ca == "right":
        args = ["--ca-cert", str(regs.ca.ca)]
    elif ca == "unrelated":
        (tmp_path / "other").mkdir()
        args = ["--ca-cert", str(make_tls(tmp_path / "other").ca)]
    run = release(tagger, repo, host, image, *args)
    assert run.code == 0, run.err
    assert_released(regs, image, digest)


def test_insecure_registry_by_name_speaks_tls_unverified(
    tagger: Any, regs: AuthRegistries, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--insecure-registry HOST for a TLS registry whose CA tagger does not have: HTTPS
    without verification (before, tagger spoke plain HTTP to it and got "HTTP 400")."""
    resolve_to_loopback(monkeypatch, (TLS_NAME,))
    image = regs.open.new_repo()
    digest = released(regs, repo, image)
    login(regs, monkeypatch)
    run = release(tagger, repo, regs.tls, image)
    assert run.code == 4 and f"TLS verification of {regs.tls} failed" in run.err
    run = release(tagger, repo, regs.tls, image, "--insecure-registry", TLS_NAME)
    assert run.code == 0, run.err
    assert_released(regs, image, digest)


def test_scheme_is_found_once_per_host(regs: AuthRegistries) -> None:
    """The first contact decides: HTTPS where the port speaks TLS, else plain HTTP;
    not insecure: HTTPS without asking."""
    from tagger.registry.transport import Transport

    cases = {
        f"127.0.0.1:{regs.tls_port}": "https",
        regs.basic: "http",
        f"localhost:{regs.basic.rsplit(':', 1)[1]}": "http",
        "registry.example.com": "https",
    }
    for host, scheme in cases.items():
        t = Transport(host, retries=0)
        try:
            assert t.base == f"{scheme}://{host}"
            assert t.base == f"{scheme}://{host}"  # remembered
            assert t.verify_for(f"https://{host}/v2/") is (host == "registry.example.com")
        finally:
            t.close()


# --- 2. tokens that expire or are revoked mid-upload -----------------------------------------
def test_token_renewed_before_it_expires(
    tagger: Any, regs: AuthRegistries, repo: Repo, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The push token lives 3 s (expires_in) and the registry enforces it; a blob upload
    that starts after that goes out with a renewed token, never the dead one."""
    push_tokens: list[float] = []

    def lifetime(req: Any) -> float:
        if any(s.endswith(":pull,push") for s in req.scopes):
            push_tokens.append(time.time())
            return 3 if len(push_tokens) == 1 else 300
        return 300

    regs.issuer.lifetime_for = lifetime
    regs.issuer.leeway = 59  # the registry's 60 s of skew end with expires_in, not before

    def hold_first_upload(seen: Seen, reply: Reply) -> Reply:
        if seen.method == "POST" and reply.status == 202 and proxy.count("POST", "uploads") == 0:
            while time.time() < push_tokens[0] + 3.2:  # on the clock, not a guess
                time.sleep(0.05)
        return reply

    proxy.rewrite = hold_first_upload
    image = regs.open.new_repo()
    run, digest = release_from_ci(tagger, regs, repo, proxy, image, monkeypatch)
    assert run.code == 0, run.err
    assert_released(regs, image, digest)
    assert [s.status for s in blob_puts(proxy)] == [201, 201, 201]  # config and two layers
    assert not [s for s in proxy.seen if s.method == "PUT" and s.status == 401]
    assert len(push_tokens) == 2


@pytest.mark.parametrize("answer", [401, 307])
def test_upload_answered_401_or_307_is_sent_again(
    answer: int,
    tagger: Any,
    regs: AuthRegistries,
    repo: Repo,
    proxy: Proxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first blob PUT is answered 401 (the token was revoked) or 307 (go elsewhere):
    tagger opens the blob again and sends the PUT once more, with a fresh token or to
    the new location."""
    image = regs.open.new_repo()
    push_scope = f"repository:{image}:pull,push"
    answered: list[Seen] = []
    lock = threading.Lock()

    def first_put(seen: Seen) -> Reply | None:
        if seen.method != "PUT" or "/blobs/uploads/" not in seen.path:
            return None
        with lock:
            if answered:
                return None
            answered.append(seen)
        if answer == 401:
            body = b'{"errors": [{"code": "UNAUTHORIZED", "message": "token revoked"}]}'
            return Reply(401, [bearer(regs, push_scope, "invalid_token")], body)
        return Reply(307, [("Location", seen.path + "&moved=1")])

    proxy.respond = first_put
    run, digest = release_from_ci(tagger, regs, repo, proxy, image, monkeypatch)
    assert run.code == 0, run.err
    assert_released(regs, image, digest)
    puts = blob_puts(proxy)
    assert sorted(s.status for s in puts) == sorted([answer, 201, 201, 201])
    first = answered[0]
    again = [s for s in puts if s.status == 201 and s.path.startswith(first.path)]
    assert len(again) == 1  # the same upload session, sent once more
    if answer == 307:
        assert again[0].path.endswith("&moved=1")
        assert again[0].headers["Authorization"] == first.headers["Authorization"]
    else:
        assert again[0].headers["Authorization"] != first.headers["Authorization"]
        assert [r.scopes for r in regs.issuer.log].count((push_scope,)) == 2


# --- 3. a refused cross-repository mount -------------------------------------------------------
@pytest.mark.parametrize("status", [401, 403, 404])
def test_refused_mount_becomes_an_upload(
    status: int,
    tagger: Any,
    regs: AuthRegistries,
    repo: Repo,
    proxy: Proxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Harbor answers 401 to a mount from a project the token does not cover, others
    403 or 404: tagger uploads the blob instead. The mount's token asks for the target's
    push scope first (some registries read only the first scope)."""
    image = regs.open.new_repo("zapp")  # the source's scope sorts before the target's
    source = f"a/{image}"
    target_scope, source_scope = f"repository:{image}:pull,push", f"repository:{source}:pull"
    codes = {401: "UNAUTHORIZED", 403: "DENIED", 404: "NAME_UNKNOWN"}

    def refuse_mount(seen: Seen) -> Reply | None:
        if seen.method != "POST" or "mount=" not in seen.path:
            return None
        headers = [("Content-Type", "application/json")]
        if status == 401:
            headers.append(bearer(regs, source_scope, "insufficient_scope"))
        body = {"errors": [{"code": codes[status], "message": "mount refused"}]}
        return Reply(status, headers, json.dumps(body).encode())

    proxy.respond = refuse_mount
    digest = released(regs, repo, image, source=source)
    login(regs, monkeypatch)
    run = release(
        tagger,
        repo,
        proxy.host,
        image,
        "--source",
        f"docker://{proxy.host}/{source}:{repo.sha_tag}",
    )
    assert run.code == 0, run.err
    assert_released(regs, image, digest)
    mounts = [s for s in proxy.seen if "mount=" in s.path]
    assert mounts and all(s.status == status for s in mounts)
    assert [s.status for s in blob_puts(proxy)] == [201, 201, 201]
    both = [r.scopes for r in regs.issuer.log if len(r.scopes) == 2]
    assert both and all(s == (target_scope, source_scope) for s in both)


# --- 4. several challenges -------------------------------------------------------------------
def test_challenge_parsing() -> None:
    assert parse_challenges('Negotiate, Basic realm="corp"') == [
        ("negotiate", {}),
        ("basic", {"realm": "corp"}),
    ]
    assert parse_challenge('Basic realm="a", Bearer realm="https://t/token",service="r"') == (
        "bearer",
        {"realm": "https://t/token", "service": "r"},
    )
    assert parse_challenge(r'Basic realm="say \"hi\", please", charset="UTF-8"') == (
        "basic",
        {"realm": 'say "hi", please', "charset": "UTF-8"},
    )
    assert parse_challenge('Bearer realm="r",scope="repository:a:pull,push repository:b:pull"')[1][
        "scope"
    ] == ("repository:a:pull,push repository:b:pull")
    assert parse_challenge("Negotiate YII=, NTLM, Basic realm=plain") == (
        "basic",
        {"realm": "plain"},
    )
    assert parse_challenge("BEARER Realm=x, Error=invalid_token") == (
        "bearer",
        {"realm": "x", "error": "invalid_token"},
    )
    assert parse_challenge("Negotiate") == ("negotiate", {})
    assert parse_challenges("") == []


@pytest.mark.parametrize(
    ("kind", "how"),
    [
        ("basic", "negotiate-first"),
        ("basic", "two-headers"),
        ("bearer", "negotiate-first"),
        ("bearer", "two-headers"),
        ("bearer", "basic-first"),
    ],
)
def test_several_challenges_on_one_401(
    kind: str,
    how: str,
    tagger: Any,
    regs: AuthRegistries,
    repo: Repo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An SPNEGO front adds ``Negotiate`` before the registry's challenge, in the same
    header or another one; a registry offers Basic before Bearer: tagger answers the
    challenge it can (Bearer over Basic)."""
    p = Proxy(f"http://{regs.host(kind)}")

    def more_challenges(seen: Seen, reply: Reply) -> Reply:
        own = reply.header("WWW-Authenticate")
        if reply.status != 401 or own is None:
            return reply
        rest = [(k, v) for k, v in reply.headers if k.lower() != "www-authenticate"]
        if how == "negotiate-first":
            added = [("WWW-Authenticate", f"Negotiate, {own}")]
        elif how == "two-headers":
            added = [("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", own)]
        else:
            added = [("WWW-Authenticate", f'Basic realm="corp", {own}')]
        return Reply(reply.status, rest + added, reply.body)

    p.rewrite = more_challenges
    try:
        image = regs.open.new_repo()
        digest = released(regs, repo, image)
        login(regs, monkeypatch)
        run = release(tagger, repo, p.host, image)
    finally:
        p.close()
    assert run.code == 0, run.err
    assert_released(regs, image, digest)
    assert any(s.status == 401 for s in p.seen)  # the challenges were seen
    sent = {s.headers.get("Authorization", "").split(" ")[0] for s in p.seen}
    assert sent - {""} == {"Basic" if kind == "basic" else "Bearer"}


# --- 5. a 401 without a challenge; a token server without OAuth2 ----------------------------
def test_401_without_a_challenge_is_explained_by_v2(
    tagger: Any, regs: AuthRegistries, repo: Repo, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Older GCR answers 401 without ``WWW-Authenticate`` except on ``/v2/``: tagger
    asks ``/v2/`` for the challenge and goes on."""

    def no_challenge(seen: Seen, reply: Reply) -> Reply:
        if reply.status != 401 or seen.path == "/v2/":
            return reply
        kept = [(k, v) for k, v in reply.headers if k.lower() != "www-authenticate"]
        return Reply(401, kept, reply.body)

    proxy.rewrite = no_challenge
    image = regs.open.new_repo()
    digest = released(regs, repo, image)
    login(regs, monkeypatch)
    run = release(tagger, repo, proxy.host, image)
    assert run.code == 0, run.err
    assert_released(regs, image, digest)
    first_401 = next(i for i, s in enumerate(proxy.seen) if s.status == 401)
    assert proxy.seen[first_401].path != "/v2/"  # a 401 without a challenge came first
    assert [s.status for s in proxy.seen if s.path == "/v2/"] == [401]  # asked once


@pytest.mark.parametrize("status", [404, 405])
def test_token_server_without_oauth2(
    status: int, tagger: Any, regs: AuthRegistries, repo: Repo
) -> None:
    """An identity token (``docker login`` to a registry with OAuth2) meets a token server
    that answers the refresh-token POST with 404/405: tagger asks with GET and Basic
    credentials instead, as go-containerregistry does."""
    regs.issuer.post_status = status
    (Path(os.environ["DOCKER_CONFIG"]) / "config.json").write_text(
        json.dumps({"auths": {regs.token: {"identitytoken": regs.identity_token}}})
    )
    image = regs.open.new_repo()
    digest = released(regs, repo, image)
    run = release(tagger, repo, regs.token, image)
    assert run.code == 0, run.err
    assert_released(regs, image, digest)
    methods = [(r.method, r.user) for r in regs.issuer.log if r.scopes]
    assert ("POST", None) in methods and ("GET", "alice") in methods
    assert all(m == ("POST", None) or m == ("GET", "alice") for m in methods)


# --- 6. User-Agent ------------------------------------------------------------------------------
def test_every_request_says_it_is_tagger(
    tagger: Any, regs: AuthRegistries, repo: Repo, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = regs.open.new_repo()
    released(regs, repo, image)
    login(regs, monkeypatch)
    run = release(tagger, repo, proxy.host, image)
    assert run.code == 0, run.err
    agents = {s.headers.get("User-Agent") for s in proxy.seen}
    agents |= {r.user_agent for r in regs.issuer.log}
    assert agents == {f"tagger/{__version__}"}
    assert len(proxy.seen) > 5 and regs.issuer.log
