"""Where credentials come from (tagger/credentials.py) and which CAs are trusted
(tagger/tls.py): Docker config files, real helper programs on PATH, flags and
environment, without a registry."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from support.auth import write_helper
from support.git import Repo

from tagger import credentials, tls
from tagger.errors import AuthError, ConfigError, UsageError

HUB = "registry-1.docker.io"  # how tagger reaches Docker Hub (reference.py)


def b64(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment whose Docker config directory is the test's own."""
    (tmp_path / "docker").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    return dict(os.environ)


def config(env: dict[str, str], doc: object) -> Path:
    path = Path(env["DOCKER_CONFIG"]) / "config.json"
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


# --- the Docker config ----------------------------------------------------------------------
def test_docker_hub_key_works_for_docker_io(env: dict[str, str]) -> None:
    config(env, {"auths": {"https://index.docker.io/v1/": {"auth": b64("hubuser", "hub-pw")}}})
    creds = credentials.from_docker_config(HUB, env)
    assert creds is not None
    assert (creds.username, creds.password) == ("hubuser", "hub-pw")
    assert credentials.from_docker_config("ghcr.io", env) is None


def test_helper_is_asked_for_docker_hub_by_its_index_url(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = {"https://index.docker.io/v1/": {"Username": "hubuser", "Secret": "hub-token"}}
    calls = write_helper(tmp_path, "hub", store, monkeypatch)
    config(env, {"credsStore": "hub"})
    creds = credentials.from_docker_config(HUB, dict(os.environ))
    assert creds is not None and creds.password == "hub-token"
    assert calls.read_text().splitlines() == ["get", "https://index.docker.io/v1/"]


def test_home_config_when_docker_config_is_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".docker").mkdir()
    (tmp_path / ".docker" / "config.json").write_text(
        json.dumps({"auths": {"ghcr.io": {"auth": b64("octo", "ghp_x1")}}})
    )
    env = {"HOME": str(tmp_path)}
    creds = credentials.from_docker_config("ghcr.io", env)
    assert creds is not None and creds.username == "octo"
    other = tmp_path / "elsewhere"
    other.mkdir()
    assert credentials.from_docker_config("ghcr.io", {**env, "DOCKER_CONFIG": str(other)}) is None


def test_a_url_key_matches_its_host(env: dict[str, str]) -> None:
    config(env, {"auths": {"https://registry.example:5000/v2/": {"auth": b64("u", "p-1234")}}})
    creds = credentials.from_docker_config("registry.example:5000", env)
    assert creds is not None and creds.username == "u"


def test_identity_token_entry(env: dict[str, str]) -> None:
    config(env, {"auths": {"acr.example": {"auth": b64("0000", ""), "identitytoken": "rt-1"}}})
    creds = credentials.from_docker_config("acr.example", env)
    assert creds is not None and creds.identity_token == "rt-1" and creds.password is None


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"ServerURL": "r.example", "Username": "u", "Secret": "s-1"}, ("u", "s-1", None)),
        ({"username": "u", "secret": "s-1"}, ("u", "s-1", None)),
        ({"Username": "u", "Password": "s-1"}, ("u", "s-1", None)),
        ({"Username": "<token>", "Secret": "refresh-1"}, (None, None, "refresh-1")),
        ({"IdentityToken": "refresh-1"}, (None, None, "refresh-1")),
    ],
)
def test_helper_answers_in_any_spelling(
    answer: dict[str, str],
    expected: tuple[str | None, ...],
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_helper(tmp_path, "spell", {"r.example": answer}, monkeypatch)
    config(env, {"credHelpers": {"r.example": "spell"}})
    creds = credentials.from_docker_config("r.example", dict(os.environ))
    assert creds is not None
    assert (creds.username, creds.password, creds.identity_token) == expected


def test_helper_without_an_entry_falls_back_to_auths(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_helper(tmp_path, "empty", {}, monkeypatch)
    config(env, {"credsStore": "empty", "auths": {"r.example": {"auth": b64("u", "from-auths")}}})
    creds = credentials.from_docker_config("r.example", dict(os.environ))
    assert creds is not None and creds.password == "from-auths"


def test_missing_helper_is_an_auth_error_naming_it(env: dict[str, str]) -> None:
    path = config(env, {"credHelpers": {"r.example": "nope-xyz"}})
    with pytest.raises(AuthError) as e:
        credentials.from_docker_config("r.example", env)
    assert e.value.exit_code == 4
    assert "docker-credential-nope-xyz" in str(e.value) and str(path) in str(e.value)


@pytest.mark.parametrize(
    "text", ['{"auths": {"r.example": {"auth": "not base64!"}}}', '{"auths": ', "[1]"]
)
def test_broken_config_names_the_file_not_its_content(env: dict[str, str], text: str) -> None:
    path = config(env, text)
    with pytest.raises(ConfigError) as e:
        credentials.from_docker_config("r.example", env)
    assert str(path) in str(e.value) and "base64!" not in str(e.value)


# --- flags, environment, and which registry gets what -----------------------------------
def test_password_stdin_strips_one_newline_like_docker_login() -> None:
    creds = credentials.explicit("u", True, io.StringIO("pw with space \n"), {})
    assert creds is not None and creds.password == "pw with space "
    assert creds.source == "--username / --password-stdin"


@pytest.mark.parametrize(
    ("username", "stdin", "env", "message"),
    [
        (None, "pw", {}, "--password-stdin needs --username"),
        ("u", "\n", {}, "empty password"),
        ("u", None, {}, "--username needs --password-stdin"),
        (None, None, {"TAGGER_USERNAME": "u"}, "TAGGER_USERNAME is set but TAGGER_PASSWORD"),
        (None, None, {"TAGGER_PASSWORD": "p"}, "TAGGER_PASSWORD is set but TAGGER_USERNAME"),
    ],
)
def test_incomplete_logins_are_usage_errors(
    username: str | None, stdin: str | None, env: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError) as e:
        credentials.explicit(username, stdin is not None, io.StringIO(stdin or ""), env)
    assert message in str(e.value) and e.value.exit_code == 2


def test_explicit_credentials_only_for_target_registries(env: dict[str, str]) -> None:
    config(env, {"auths": {"src.example": {"auth": b64("reader", "read-pw")}}})
    r = credentials.resolver(
        ("dst.example/app",),
        username=None,
        password_stdin=False,
        stdin=io.StringIO(),
        env={**env, "TAGGER_USERNAME": "ci", "TAGGER_PASSWORD": "ci-pw"},
    )
    dst, src = r("dst.example"), r("src.example")
    assert dst is not None and dst.username == "ci"
    assert src is not None and src.username == "reader"  # the target's password stays home


def test_a_helper_runs_once_however_many_threads_ask(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = write_helper(
        tmp_path, "once", {"r.example": {"Username": "u", "Secret": "s-1"}}, monkeypatch
    )
    config(env, {"credsStore": "once"})
    r = credentials.Resolver(None, frozenset(), dict(os.environ))
    start = threading.Barrier(8)

    def ask(_: int) -> Any:
        start.wait()
        return r("r.example")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(8)))
    assert len({id(a) for a in answers}) == 1
    assert calls.read_text().splitlines() == ["get", "r.example"]


def test_no_password_flag(tagger: Any, repo: Repo) -> None:
    run = tagger("-C", str(repo.path), "plan", "-i", "127.0.0.1:9/app", "--password", "hunter2-x")
    assert run.code == 2
    assert "never taken from a flag value" in run.err and "hunter2-x" not in run.out + run.err


# --- TLS trust -------------------------------------------------------------------------------
def test_ca_bundle_order(tmp_path: Path) -> None:
    files = {n: tmp_path / n for n in ("flag.pem", "ssl.pem", "req.pem")}
    for f in files.values():
        f.write_text("")
    env = {"SSL_CERT_FILE": str(files["ssl.pem"]), "REQUESTS_CA_BUNDLE": str(files["req.pem"])}
    assert tls.ca_bundle(str(files["flag.pem"]), env) == str(files["flag.pem"])
    assert tls.ca_bundle(None, env) == str(files["ssl.pem"])
    assert tls.ca_bundle(None, {"REQUESTS_CA_BUNDLE": env["REQUESTS_CA_BUNDLE"]}) == str(
        files["req.pem"]
    )
    assert tls.ca_bundle(None, {}) is True
    with pytest.raises(UsageError, match="SSL_CERT_FILE"):
        tls.ca_bundle(None, {"SSL_CERT_FILE": str(tmp_path / "missing.pem")})


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ({"auths": []}, '"auths" must be an object'),
        ({"auths": {"r.example": "user:pw"}}, '"auths" must be an object'),
        ({"auths": "x"}, '"auths" must be an object'),
        ({"credHelpers": []}, '"credHelpers" must be an object'),
        ({"credHelpers": {"r.example": 5}}, '"credHelpers" must be an object'),
        ({"credsStore": 5}, '"credsStore" must be a helper name'),
        ([], "not a JSON object"),
    ],
)
def test_json_that_is_no_docker_config_is_a_usage_error_naming_the_file(
    env: dict[str, str], doc: object, says: str
) -> None:
    path = config(env, json.dumps(doc))
    with pytest.raises(ConfigError) as e:
        credentials.from_docker_config("r.example", env)
    assert e.value.exit_code == 2
    assert str(path) in e.value.message and says in e.value.message


def test_docker_config_that_is_a_directory_is_a_usage_error(env: dict[str, str]) -> None:
    path = Path(env["DOCKER_CONFIG"]) / "config.json"
    path.mkdir()
    with pytest.raises(ConfigError, match="is not a file") as e:
        credentials.from_docker_config("r.example", env)
    assert str(path) in str(e.value) and e.value.exit_code == 2
