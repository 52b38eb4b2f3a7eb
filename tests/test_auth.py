"""Credentials and transport security, end to end: tagger's CLI against registries that
need a login (Basic via htpasswd, Bearer via a token issuer, TLS from a test CA), with
credentials from every source a pipeline uses."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.auth import (
    TLS_NAME,
    AuthRegistries,
    resolve_to_loopback,
    write_helper,
)
from support.git import Repo
from support.proxy import Proxy

KINDS = ("basic", "bearer")
SOURCES = ("stdin", "env", "config-auth", "config-identitytoken", "cred-helper", "creds-store")


# regs and fresh_auth: support/fixtures.py
pytestmark = pytest.mark.usefixtures("fresh_auth")


@dataclass
class Login:
    """What a pipeline does to log in: flags, stdin, environment, files."""

    args: list[str] = field(default_factory=list)
    stdin: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    helper_calls: Path | None = None


def write_docker_config(config: dict[str, Any]) -> None:
    (Path(os.environ["DOCKER_CONFIG"]) / "config.json").write_text(json.dumps(config))


def b64(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def log_in(
    source: str,
    host: str,
    user: str,
    password: str,
    regs: AuthRegistries,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Login:
    """Set up one credential source the way a pipeline would."""
    if source == "stdin":
        return Login(["--username", user, "--password-stdin"], stdin=password + "\n")
    if source == "env":
        env = {"TAGGER_USERNAME": user, "TAGGER_PASSWORD": password}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        return Login(env=env)
    if source == "config-auth":
        write_docker_config({"auths": {host: {"auth": b64(user, password)}}})
    elif source == "config-identitytoken":
        write_docker_config({"auths": {host: {"identitytoken": regs.identity_token}}})
    elif source in ("cred-helper", "creds-store"):
        store = {host: {"ServerURL": host, "Username": user, "Secret": password}}
        calls = write_helper(tmp_path, "tagtest", store, monkeypatch)
        key = "credHelpers" if source == "cred-helper" else "credsStore"
        write_docker_config({key: {host: "tagtest"} if key == "credHelpers" else "tagtest"})
        return Login(helper_calls=calls)
    else:  # pragma: no cover
        raise AssertionError(source)
    return Login()


def tag_release(regs: AuthRegistries, repo: Repo, image: str, version: str = "1.0.0") -> str:
    """What CI did before tagger runs: commit, git tag, image pushed under the SHA tag."""
    repo.commit(f"release {version}")
    repo.tag(f"v{version}")
    return regs.open.push_image(image, repo.sha_tag, content=repo.head)


def run_tagger(tagger: Any, monkeypatch: pytest.MonkeyPatch, login: Login, *args: str) -> Any:
    if login.stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(login.stdin))
    return tagger(*args, *login.args)


# --- every source against Basic and Bearer ---------------------------------------------
@pytest.mark.parametrize(
    ("kind", "source"),
    # an identity token is an OAuth2 refresh token: it has no meaning to a Basic registry
    [(k, s) for k in KINDS for s in SOURCES if (k, s) != ("basic", "config-identitytoken")],
)
def test_each_credential_source_logs_in(
    kind: str,
    source: str,
    tagger: Any,
    regs: AuthRegistries,
    repo: Repo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = regs.host(kind)
    image = regs.open.new_repo()
    digest = tag_release(regs, repo, image)
    login = log_in(source, host, "alice", regs.users["alice"].password, regs, tmp_path, monkeypatch)
    run = run_tagger(
        tagger,
        monkeypatch,
        login,
        "-C",
        str(repo.path),
        "release",
        "-i",
        f"{host}/{image}",
        "--json",
    )
    assert run.code == 0, run.err
    assert {
        t: regs.open.digest(image, t) for t in ("1.0.0", "1.0", "1", "latest")
    } == dict.fromkeys(("1.0.0", "1.0", "1", "latest"), digest)
    if kind == "bearer":  # every token was asked for as alice (POST: with her identity token)
        assert {(r.user, r.method) for r in regs.issuer.log} == {
            ("alice", "POST" if source == "config-identitytoken" else "GET")
        }
    if login.helper_calls is not None:  # the helper ran once, asked for this registry
        assert login.helper_calls.read_text().splitlines() == ["get", host]


@pytest.mark.parametrize("kind", KINDS)
def test_no_credentials_says_how_to_log_in(
    kind: str, tagger: Any, regs: AuthRegistries, repo: Repo
) -> None:
    host = regs.host(kind)
    image = regs.open.new_repo()
    tag_release(regs, repo, image)
    run = tagger("-C", str(repo.path), "release", "-i", f"{host}/{image}")
    assert run.code == 4, run.err
    assert f"docker login {host}" in run.err and "TAGGER_USERNAME" in run.err
    assert "Traceback" not in run.err
    assert regs.open.tags(image) == {repo.sha_tag}


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_password_names_host_and_user(
    kind: str,
    tagger: Any,
    regs: AuthRegistries,
    repo: Repo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = regs.host(kind)
    image = regs.open.new_repo()
    tag_release(regs, repo, image)
    wrong = "not-" + regs.users["alice"].password
    login = log_in("env", host, "alice", wrong, regs, tmp_path, monkeypatch)
    run = run_tagger(
        tagger,
        monkeypatch,
        login,
        "-C",
        str(repo.path),
        "release",
        "-i",
        f"{host}/{image}",
        "--json",
    )
    assert run.code == 4
    assert f"authentication to {host} failed for alice: check" in run.err
    assert "TAGGER_USERNAME / TAGGER_PASSWORD" in run.err  # where the credentials came from
    assert json.loads(run.out)["exit_code"] == 4
    for secret in (wrong, b64("alice", wrong)):
        assert secret not in run.out + run.err
    assert regs.open.tags(image) == {repo.sha_tag}


# --- authorization: scopes --------------------------------------------------------------
def test_push_refused_by_scope_writes_nothing(
    tagger: Any, regs: AuthRegistries, repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bob may pull but not push: a plan works (it asks for pull only), a release stops
    before writing anything and says who may not push where."""
    host, image = regs.token, regs.open.new_repo()
    tag_release(regs, repo, image)
    log_in("env", host, "bob", regs.users["bob"].password, regs, tmp_path, monkeypatch)
    run = tagger("-C", str(repo.path), "release", "--dry-run", "-i", f"{host}/{image}", "--json")
    assert run.code == 0, run.err
    assert all(s.endswith(":pull") for r in regs.issuer.log for s in r.scopes)
    run = tagger("-C", str(repo.path), "release", "-i", f"{host}/{image}", "--json")
    assert run.code == 4
    assert f"bob may not push to {host}/{image}" in run.err
    assert regs.open.tags(image) == {repo.sha_tag}


def test_403_from_the_registry_names_user_and_repository(
    tagger: Any, regs: AuthRegistries, repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registries such as GHCR answer a push without rights 403 (distribution answers
    401 insufficient_scope, above); a proxy turns the first manifest PUT into 403."""
    proxy = Proxy(f"http://{regs.token}")
    try:

        def deny_writes(method: str, path: str) -> None:
            if method == "PUT":
                proxy.faults.fail_all = 403

        proxy.hook = deny_writes
        image = regs.open.new_repo()
        tag_release(regs, repo, image)
        log_in(
            "env", proxy.host, "alice", regs.users["alice"].password, regs, tmp_path, monkeypatch
        )
        run = tagger("-C", str(repo.path), "release", "-i", f"{proxy.host}/{image}")
    finally:
        proxy.close()
    assert run.code == 4
    assert f"alice may not push to {proxy.host}/{image}" in run.err


def test_scopes_asked_for_are_minimal_and_a_mount_asks_for_both(
    tagger: Any, regs: AuthRegistries, repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Promote ci/X to X: pull on the source, pull,push on the target, both in one token
    for the cross-repository mount; each scope set fetched once for the whole release."""
    host = regs.token
    image = regs.open.new_repo()
    source = f"ci/{image}"
    repo.commit("release")
    repo.tag("v2.0.0")
    digest = regs.open.push_image(source, repo.sha_tag, content=repo.head, layers=3)
    log_in("env", host, "alice", regs.users["alice"].password, regs, tmp_path, monkeypatch)
    run = tagger(
        "-C", str(repo.path), "release", "-i", f"{host}/{image}",
        "--source", f"docker://{host}/{source}:{repo.sha_tag}",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert regs.open.digest(image, "2.0.0") == digest
    pull_src, push_dst = f"repository:{source}:pull", f"repository:{image}:pull,push"
    assert sorted(map(sorted, regs.issuer.scope_sets())) == sorted(
        [[pull_src], [push_dst], sorted([push_dst, pull_src])]
    )


def test_threads_starting_together_share_one_token_fetch(regs: AuthRegistries) -> None:
    from tagger.credentials import make
    from tagger.registry import RegistryClient

    image = regs.open.new_repo()
    tags = [f"t{i}" for i in range(12)]
    for t in tags:
        regs.open.push_image(image, t)
    alice = make("alice", regs.users["alice"].password, source="test")
    client = RegistryClient.to(regs.token, credentials=lambda host: alice)
    start = threading.Barrier(len(tags))

    def head(tag: str) -> str | None:
        start.wait()
        return client.head_manifest(image, tag)

    try:
        with ThreadPoolExecutor(len(tags)) as pool:
            digests = list(pool.map(head, tags))
    finally:
        client.close()
    assert all(d and d.startswith("sha256:") for d in digests)
    assert regs.issuer.scope_sets() == [frozenset({f"repository:{image}:pull"})]


# --- a token that expires mid-release -----------------------------------------------------
@pytest.mark.parametrize("renewed_works", [True, False], ids=["renewed", "renewal-refused"])
def test_token_expiring_mid_release(
    renewed_works: bool,
    tagger: Any,
    regs: AuthRegistries,
    repo: Repo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The push token expires between reading the tags and writing them: tagger fetches
    a new one once and goes on; if the registry refuses that one too, it stops (no loop)."""
    issued_push: list[float] = []

    def lifetime(req: Any) -> float:
        if not any(s.endswith("pull,push") for s in req.scopes):
            return 300
        issued_push.append(time.time())
        if len(issued_push) == 1:
            return -58  # the registry allows 60 s of skew: this one dies in about 2 s
        return 300 if renewed_works else -120

    regs.issuer.lifetime_for = lifetime
    proxy = Proxy(f"http://{regs.token}")

    def hold_first_put(method: str, path: str) -> None:
        if method == "PUT" and "/manifests/" in path and proxy.count("PUT") == 0:
            # wait (on the clock, not a guess) until the registry rejects the push token
            expires = int(issued_push[0] - 58) + 60
            while time.time() < expires + 0.2:
                time.sleep(0.05)

    proxy.hook = hold_first_put
    try:
        image = regs.open.new_repo()
        digest = tag_release(regs, repo, image)
        log_in(
            "env", proxy.host, "alice", regs.users["alice"].password, regs, tmp_path, monkeypatch
        )
        run = tagger("-C", str(repo.path), "release", "-i", f"{proxy.host}/{image}")
        puts = [status for m, p, status in proxy.log if m == "PUT"]
    finally:
        proxy.close()
    assert puts[0] == 401  # the expired token
    if renewed_works:
        assert run.code == 0, run.err
        assert len(issued_push) == 2
        assert regs.open.state(image) == dict.fromkeys(
            (repo.sha_tag, "1.0.0", "1.0", "1", "latest"), digest
        )
    else:
        assert run.code == 4
        assert len(issued_push) == 2 and puts == [401, 401]  # renewed once, then gave up
        assert f"{proxy.host} refused the token its token server issued for alice" in run.err
        assert regs.open.tags(image) == {repo.sha_tag}


# --- where credentials come from ---------------------------------------------------------
def test_first_source_wins(
    tagger: Any, regs: AuthRegistries, repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--password-stdin beats TAGGER_*, which beats the Docker config."""
    host, image = regs.token, regs.open.new_repo()
    tag_release(regs, repo, image)
    alice, bob = regs.users["alice"].password, regs.users["bob"].password
    write_docker_config({"auths": {host: {"auth": b64("bob", bob)}}})
    monkeypatch.setenv("TAGGER_USERNAME", "alice")
    monkeypatch.setenv("TAGGER_PASSWORD", alice)
    run = tagger("-C", str(repo.path), "release", "-i", f"{host}/{image}")
    assert run.code == 0, run.err
    assert {r.user for r in regs.issuer.log} == {"alice"}

    regs.issuer.reset()
    repo.commit("next")
    repo.tag("v1.0.1")
    regs.open.push_image(image, repo.sha_tag, content=repo.head)
    monkeypatch.setenv("TAGGER_PASSWORD", "wrong")
    login = Login(["--username", "bob", "--password-stdin"], stdin=bob)
    run = run_tagger(
        tagger, monkeypatch, login, "-C", str(repo.path), "release", "--dry-run", "-i",
        f"{host}/{image}",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert {r.user for r in regs.issuer.log} == {"bob"}


def test_explicit_credentials_go_to_target_registries_only(
    tagger: Any, regs: AuthRegistries, repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TAGGER_* credentials are for the --image registries: a source on another registry
    logs in with the Docker config, and never sees the target's password."""
    image = regs.open.new_repo()
    repo.commit("release")
    repo.tag("v1.0.0")
    digest = regs.open.push_image(f"ci/{image}", repo.sha_tag, content=repo.head)
    source = f"docker://{regs.basic}/ci/{image}:{repo.sha_tag}"
    log_in("env", regs.token, "alice", regs.users["alice"].password, regs, tmp_path, monkeypatch)
    args = ("-C", str(repo.path), "release", "-i", f"{regs.token}/{image}", "--source", source)
    run = tagger(*args)
    assert run.code == 4
    assert f"{regs.basic} requires authentication and tagger found no credentials" in run.err
    write_docker_config({"auths": {regs.basic: {"auth": b64("bob", regs.users["bob"].password)}}})
    run = tagger(*args)
    assert run.code == 0, run.err
    assert regs.open.digest(image, "1.0.0") == digest


@pytest.mark.parametrize("section", ["credHelpers", "credsStore"])
def test_missing_credential_helper_is_named(
    section: str, tagger: Any, regs: AuthRegistries, repo: Repo
) -> None:
    image = regs.open.new_repo()
    tag_release(regs, repo, image)
    name = "tagger-test-absent"
    write_docker_config({section: {regs.basic: name} if section == "credHelpers" else name})
    run = tagger("-C", str(repo.path), "release", "-i", f"{regs.basic}/{image}")
    assert run.code == 4
    assert f"credential helper docker-credential-{name} is not installed or not on PATH" in run.err
    assert section in run.err


def test_failing_credential_helper_is_named(
    tagger: Any, regs: AuthRegistries, repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = regs.open.new_repo()
    tag_release(regs, repo, image)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-broken"
    helper.write_text("#!/bin/sh\necho 'error: the keyring is locked'\nexit 3\n")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    write_docker_config({"credsStore": "broken"})
    run = tagger("-C", str(repo.path), "release", "-i", f"{regs.token}/{image}")
    assert run.code == 4
    assert "credential helper docker-credential-broken failed" in run.err
    assert "the keyring is locked" in run.err


# --- TLS ------------------------------------------------------------------------------------
@pytest.fixture
def tls_login(
    regs: AuthRegistries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AuthRegistries:
    resolve_to_loopback(monkeypatch, (TLS_NAME,))
    log_in("env", regs.tls, "alice", regs.users["alice"].password, regs, tmp_path, monkeypatch)
    return regs


def test_tls_without_the_ca_fails_naming_host_and_fix(
    tagger: Any, tls_login: AuthRegistries, repo: Repo
) -> None:
    regs = tls_login
    image = regs.open.new_repo()
    tag_release(regs, repo, image)
    run = tagger("-C", str(repo.path), "release", "-i", f"{regs.tls}/{image}")
    assert run.code == 4
    assert f"TLS verification of {regs.tls} failed" in run.err
    assert "--ca-cert FILE" in run.err
    assert regs.open.tags(image) == {repo.sha_tag}


@pytest.mark.parametrize("how", ["--ca-cert", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_tls_with_the_ca(
    how: str, tagger: Any, tls_login: AuthRegistries, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    regs = tls_login
    image = regs.open.new_repo()
    digest = tag_release(regs, repo, image)
    args = ["-C", str(repo.path), "release", "-i", f"{regs.tls}/{image}"]
    if how == "--ca-cert":
        # the flag wins over an environment that trusts only the public CAs
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
        args += ["--ca-cert", str(regs.ca.ca)]
    else:
        monkeypatch.setenv(how, str(regs.ca.ca))
    run = tagger(*args)
    assert run.code == 0, run.err
    assert regs.open.digest(image, "1.0.0") == digest


def test_ca_cert_that_does_not_exist_is_a_usage_error(
    tagger: Any, tls_login: AuthRegistries, repo: Repo, tmp_path: Path
) -> None:
    run = tagger(
        "-C", str(repo.path), "plan", "-i", f"{tls_login.tls}/x", "--ca-cert", str(tmp_path / "no")
    )
    assert run.code == 2
    assert "--ca-cert" in run.err and "no such file" in run.err


def test_plain_http_only_for_loopback_or_insecure_registry(
    tagger: Any, regs: AuthRegistries, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "plain.tagger.test"
    resolve_to_loopback(monkeypatch, (name,))
    host = f"{name}:{regs.open.host.rsplit(':', 1)[1]}"
    image = regs.open.new_repo()
    digest = tag_release(regs, repo, image)
    run = tagger("-C", str(repo.path), "release", "-i", f"{host}/{image}")
    assert run.code == 4
    assert f"TLS verification of {host} failed" in run.err
    assert f"--insecure-registry {host}" in run.err
    run = tagger(
        "-C", str(repo.path), "release", "-i", f"{host}/{image}", "--insecure-registry", host
    )
    assert run.code == 0, run.err
    assert regs.open.digest(image, "1.0.0") == digest


# --- nothing secret in a whole --debug run -------------------------------------------------
def secrets_of(regs: AuthRegistries, *passwords: tuple[str, str]) -> list[str]:
    """Every form a secret of these runs could take."""
    out = [regs.identity_token]
    for user, pw in passwords:
        out += [pw, b64(user, pw), base64.urlsafe_b64encode(f"{user}:{pw}".encode()).decode()]
    for token in regs.issuer.issued:
        out += [token, token.rsplit(".", 1)[1]]  # the whole JWT, and its signature alone
    return out


@pytest.mark.parametrize(
    "source", ["stdin", "env", "config-auth", "config-identitytoken", "cred-helper"]
)
def test_debug_run_prints_no_secret(
    source: str, regs: AuthRegistries, repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole `--debug --json` release against the token registry, as a process: its
    stdout and stderr hold no password, base64 auth, token or Authorization header. Then
    the same with a wrong password (an error, a traceback) and with a refused push."""
    host, image = regs.token, regs.open.new_repo()
    tag_release(regs, repo, image)
    alice = regs.users["alice"].password
    login = log_in(source, host, "alice", alice, regs, tmp_path, monkeypatch)

    def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
        proc = subprocess.run(
            [sys.executable, "-m", "tagger", "--debug", "-C", str(repo.path), *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=120,
        )
        return proc.returncode, proc.stdout + proc.stderr

    code, out = run("release", "-i", f"{host}/{image}", "--json", *login.args, stdin=login.stdin)
    assert code == 0, out
    assert "debug: PUT /v2/" in out and "debug: token " in out  # the trace is there
    wrong = "wrong-" + alice
    code2, out2 = run(
        "release", "-i", f"{host}/{image}", "--json", "-u", "alice", "--password-stdin",
        stdin=wrong,
    )  # fmt: skip
    assert code2 == 4 and "Traceback" in out2, out2
    bob = regs.users["bob"].password
    monkeypatch.setenv("TAGGER_USERNAME", "bob")
    monkeypatch.setenv("TAGGER_PASSWORD", bob)
    repo.commit("next")
    repo.tag("v1.1.0")
    regs.open.push_image(image, repo.sha_tag, content=repo.head)
    code3, out3 = run("release", "-i", f"{host}/{image}", "--json")
    assert code3 == 4 and "bob may not push" in out3, out3
    assert regs.issuer.issued
    assert_no_secret(
        out + out2 + out3, secrets_of(regs, ("alice", alice), ("alice", wrong), ("bob", bob))
    )


def assert_no_secret(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text
    # an Authorization header may be named only with its value masked
    values = re.findall(r"authorization['\"]?\s*[:=]\s*['\"]?([^'\"\s,}]*)", text, re.I)
    assert set(values) <= {"<redacted>"}
    assert not re.search(r"\b(?:Basic|Bearer)\s+(?!realm=)[A-Za-z0-9+/=._-]{8,}", text, re.I)
