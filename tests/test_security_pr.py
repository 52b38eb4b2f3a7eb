"""Pull requests and repository files (the security issue, item 8): on a pull-request
event, a registry named only by ``.tagger.toml`` / ``pyproject.toml`` (which the pull
request can edit) gets no credentials: not TAGGER_USERNAME / TAGGER_PASSWORD, not
--password-stdin, not the Docker config. A registry named by a flag or the environment
still does, and outside pull requests nothing changes.

The attacker's registry is a listener on 127.0.0.1 that answers every request with 401
``WWW-Authenticate: Basic realm=x`` and records every Authorization header it gets."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.git import Repo
from support.hostile import Answer, Stub, serving
from support.registry import Registry

USER, PASSWORD = "ci-bot", "s3cret-pr-token"
DOCKER_USER, DOCKER_PASSWORD = "docker-bot", "docker-s3cret"


UNAUTHORIZED = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'


@pytest.fixture
def listener() -> Iterator[Stub]:
    """Answers 401 with a Basic challenge to everything; records Authorization headers."""
    challenge = {"WWW-Authenticate": 'Basic realm="x"', "Content-Type": "application/json"}
    s = serving(lambda seen: Answer(401, challenge, UNAUTHORIZED))
    yield s
    s.close()


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def secrets(listener: Stub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TAGGER_USERNAME / TAGGER_PASSWORD set, and a Docker config with a login for the
    listener's host."""
    docker = tmp_path / "docker"
    docker.mkdir()
    auths = {listener.host: {"auth": _basic(DOCKER_USER, DOCKER_PASSWORD)}}
    (docker / "config.json").write_text(json.dumps({"auths": auths}))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    monkeypatch.setenv("TAGGER_USERNAME", USER)
    monkeypatch.setenv("TAGGER_PASSWORD", PASSWORD)


def _pull_request(monkeypatch: pytest.MonkeyPatch, event: str = "pull_request_target") -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_EVENT_NAME", event)


def _file(repo: Repo, text: str, name: str = ".tagger.toml") -> None:
    (repo.path / name).write_text(text)
    repo.git("add", name)
    repo.commit("the pull request's configuration")


def test_config_records_which_values_came_from_the_file(tmp_path: Path) -> None:
    from tagger.config import load

    (tmp_path / ".tagger.toml").write_text(
        'image = "a.example/x"\nsource = "docker://b.example/y"\n'
    )
    assert load(tmp_path, None, {}, {}).from_file == {"images", "source"}
    env = {"TAGGER_IMAGE": "c.example/x"}
    assert load(tmp_path, None, env, {}).from_file == {"source"}
    assert load(tmp_path, None, {}, {"source": "docker://d.example/y"}).from_file == {"images"}
    assert load(tmp_path, None, {"TAGGER_IMAGE": ""}, {}).from_file == {"images", "source"}


def _sent(listener: Stub) -> set[str]:
    return {base64.b64decode(a.split(" ", 1)[1]).decode() for a in listener.authorizations()}


COMMANDS = [["plan"], ["release", "--allow-pr"], ["reconcile"]]


@pytest.mark.usefixtures("secrets")
@pytest.mark.parametrize("event", ["pull_request_target", "pull_request"])
@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: c[0])
def test_a_pull_request_sends_no_credentials_to_an_image_named_by_the_file(
    cmd: list[str],
    event: str,
    listener: Stub,
    repo: Repo,
    tagger: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _pull_request(monkeypatch, event)
    _file(repo, f'image = "{listener.host}/app"\n')
    run = tagger("-C", str(repo.path), *cmd)
    assert run.code != 0, run.err  # the listener lets nobody in
    assert listener.log, run.err  # it was contacted...
    assert listener.authorizations() == [], listener.log  # ...with no credentials
    assert f"no credentials sent to {listener.host}, named only by .tagger.toml" in run.err
    assert run.err.count("no credentials sent to") == 1  # said once
    assert PASSWORD not in run.err and DOCKER_PASSWORD not in run.err
    # the failure that follows says why, not "log in": a login would not be used
    assert "pass -i (or --source) to use them" in run.err.splitlines()[-1], run.err
    assert "docker login" not in run.err


@pytest.mark.usefixtures("secrets")
def test_pyproject_tool_tagger_is_a_repository_file_too(
    listener: Stub, repo: Repo, tagger: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pull_request(monkeypatch)
    _file(repo, f'[tool.tagger]\nimage = ["{listener.host}/app"]\n', "pyproject.toml")
    run = tagger("-C", str(repo.path), "plan")
    assert listener.log and listener.authorizations() == [], run.err
    assert "named only by pyproject.toml" in run.err


def test_password_stdin_is_not_sent_to_an_image_named_by_the_file(
    listener: Stub, repo: Repo, tagger: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pull_request(monkeypatch)
    _file(repo, f'image = "{listener.host}/app"\n')
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    run = tagger("-C", str(repo.path), "plan", "--username", USER, "--password-stdin")
    assert listener.log and listener.authorizations() == [], run.err
    # the same with -i: the flag names the registry, the credentials go (the test can fail)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    image = f"{listener.host}/app"
    run = tagger("-C", str(repo.path), "plan", "-i", image, "--username", USER, "--password-stdin")
    assert _sent(listener) == {f"{USER}:{PASSWORD}"}, run.err


@pytest.mark.usefixtures("secrets")
@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: c[0])
def test_an_image_from_a_flag_or_the_environment_gets_credentials_on_a_pull_request(
    cmd: list[str], listener: Stub, repo: Repo, tagger: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pull_request(monkeypatch)
    _file(repo, f'image = "{listener.host}/app"\n')
    run = tagger("-C", str(repo.path), *cmd, "-i", f"{listener.host}/app")
    assert run.code != 0
    assert _sent(listener) == {f"{USER}:{PASSWORD}"}, run.err
    assert "no credentials sent" not in run.err
    listener.log.clear()
    monkeypatch.setenv("TAGGER_IMAGE", f"{listener.host}/app")
    run = tagger("-C", str(repo.path), *cmd)
    assert _sent(listener) == {f"{USER}:{PASSWORD}"}, run.err
    # the Docker config is used for a caller-named registry too
    monkeypatch.delenv("TAGGER_USERNAME")
    monkeypatch.delenv("TAGGER_PASSWORD")
    listener.log.clear()
    run = tagger("-C", str(repo.path), *cmd)
    assert _sent(listener) == {f"{DOCKER_USER}:{DOCKER_PASSWORD}"}, run.err


@pytest.mark.usefixtures("secrets")
@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: c[0])
def test_outside_a_pull_request_the_file_named_image_gets_credentials(
    cmd: list[str], listener: Stub, repo: Repo, tagger: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_EVENT_NAME", "push")
    _file(repo, f'image = "{listener.host}/app"\n')
    run = tagger("-C", str(repo.path), *cmd)
    assert _sent(listener) == {f"{USER}:{PASSWORD}"}, run.err
    assert "no credentials sent" not in run.err


@pytest.mark.usefixtures("secrets")
def test_a_source_named_by_the_file_gets_no_docker_config_login_on_a_pull_request(
    listener: Stub,
    registry: Registry,
    repo: Repo,
    tagger: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The target is a real registry given with -i; the source the file names is the
    listener, which has a Docker config login."""
    _pull_request(monkeypatch)
    _file(repo, f'source = "docker://{listener.host}/src:1"\n')
    image = f"{registry.host}/pr-source/app"
    for cmd in (["plan"], ["release", "--allow-pr"]):
        listener.log.clear()
        run = tagger("-C", str(repo.path), *cmd, "-i", image)
        assert run.code != 0, run.err
        assert listener.log and listener.authorizations() == [], run.err
        assert f"no credentials sent to {listener.host}, named only by .tagger.toml" in run.err
    # the same source from the flag gets the Docker config's login
    listener.log.clear()
    source = f"docker://{listener.host}/src:1"
    run = tagger("-C", str(repo.path), "plan", "-i", image, "--source", source)
    assert _sent(listener) == {f"{DOCKER_USER}:{DOCKER_PASSWORD}"}, run.err
    # and outside a pull request, the file's source gets it as before
    monkeypatch.setenv("GITHUB_EVENT_NAME", "push")
    listener.log.clear()
    run = tagger("-C", str(repo.path), "plan", "-i", image)
    assert _sent(listener) == {f"{DOCKER_USER}:{DOCKER_PASSWORD}"}, run.err
