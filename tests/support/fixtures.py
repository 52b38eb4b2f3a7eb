"""The shared fixtures, registered for every test module by ``pytest_plugins`` in
tests/conftest.py: nothing imports them.

- ``clean_env`` (autouse): no CI hints or TAGGER_* settings from the machine;
- ``repo``: a git repository in tmp_path (support/git.py);
- ``registry``, ``registry2`` (session): two docker-registry servers, another
  host:port and storage each, so that publishing to two registries at once is tested
  against two servers (support/registry.py);
- ``dockerd`` (session): a real Docker daemon, root only (support/daemon.py);
- ``tagger``: tagger's entry point run in this process (support/cli.py);
- ``proxy``: a ``Proxy`` in front of ``registry`` (support/proxy.py);
- ``regs`` (module): the registries that need credentials, their token issuer and
  TLS CA (support/auth.py);
- ``fresh_auth``: ``regs`` with a fresh issuer log, an empty Docker config of the
  test's own and no CA bundle from the machine; not autouse: a module opts in with
  ``pytestmark = pytest.mark.usefixtures("fresh_auth")``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.auth import AuthRegistries, serve_auth_registries
from support.cli import run_cli
from support.daemon import Daemon, running_dockerd
from support.git import CI_VARS, Repo
from support.proxy import Proxy
from support.registry import REQUIRE, Registry, need_binary, running_registry


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no CI hints or TAGGER_* settings from the machine running them."""
    for var in list(os.environ):
        if var in CI_VARS or var.startswith("TAGGER_") and var != "TAGGER_REQUIRE_INTEGRATION":
            monkeypatch.delenv(var)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "checkout")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with running_registry(tmp_path_factory.mktemp("registry")) as r:
        yield r


@pytest.fixture(scope="session")
def registry2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A second registry server: another host:port, another storage."""
    with running_registry(tmp_path_factory.mktemp("registry2")) as r:
        yield r


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Daemon]:
    binary = need_binary("dockerd")
    docker_bin = need_binary("docker")
    if os.geteuid() != 0:
        msg = "dockerd needs root"
        if REQUIRE:
            pytest.fail(msg + " and TAGGER_REQUIRE_INTEGRATION=1 forbids skipping")
        pytest.skip(msg)
    with running_dockerd(binary, docker_bin) as daemon:
        yield daemon


@pytest.fixture
def tagger(capsys: pytest.CaptureFixture[str]) -> object:
    """Run tagger's entry point in this process; returns exit code and output."""
    from tagger.cli import main

    return functools.partial(run_cli, main, capsys)


@pytest.fixture
def proxy(registry: Registry) -> Iterator[Proxy]:
    """A proxy in front of ``registry``: counts, logs, delays and fails requests."""
    p = Proxy(registry.url)
    yield p
    p.close()


@pytest.fixture(scope="module")
def regs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistries]:
    """Registries with Basic, token and TLS auth, shared by one module's tests."""
    with serve_auth_registries(tmp_path_factory.mktemp("auth")) as r:
        yield r


@pytest.fixture
def fresh_auth(regs: AuthRegistries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh issuer log, an empty Docker config of the test's own, no CA overrides."""
    regs.issuer.reset()
    (tmp_path / "docker").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
