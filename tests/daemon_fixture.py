"""A real Docker daemon for tests (Debian's docker.io), started and stopped by a
session fixture on its own socket, with data and exec roots under a short temp dir
(unix socket paths are limited to about 100 characters); plus a second registry
process, so that publishing to two registries at once is tested against two servers.

Import the fixtures into a test module: ``from daemon_fixture import dockerd, registry2``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REQUIRE, Registry, need_binary, running_registry


@dataclass
class Daemon:
    host: str  # unix:///tmp/tg-XXXX/sock
    root: Path
    docker_bin: str

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0"}

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [self.docker_bin, *args], env=self.env, capture_output=True, text=True, timeout=300
        )
        if check and out.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {out.stderr.strip()}")
        return out

    def build(
        self, tag: str, context: Path, files: dict[str, bytes], labels: dict[str, str]
    ) -> str:
        """``FROM scratch`` + one COPY per file + LABELs, built by the classic builder;
        returns the image id."""
        context.mkdir(parents=True, exist_ok=True)
        lines = ["FROM scratch"]
        for name, data in files.items():
            (context / name).write_bytes(data)
            lines.append(f"COPY {name} /{name}")
        lines += [f'LABEL "{k}"="{v}"' for k, v in labels.items()]
        (context / "Dockerfile").write_text("\n".join(lines) + "\n")
        self.docker("build", "-q", "-t", tag, str(context))
        return self.image_id(tag)

    def image_id(self, ref: str) -> str:
        return self.docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()

    def read_file(self, ref: str, path: str) -> bytes:
        """A file of an image, through a created (never started) container."""
        cid = self.docker("create", ref, "/none").stdout.strip()
        try:
            out = subprocess.run(
                [self.docker_bin, "cp", f"{cid}:{path}", "-"],
                env=self.env,
                capture_output=True,
                timeout=120,
                check=True,
            ).stdout
        finally:
            self.docker("rm", cid)
        import io
        import tarfile

        with tarfile.open(fileobj=io.BytesIO(out)) as tar:
            member = tar.extractfile(tar.getmembers()[0])
            assert member is not None
            return member.read()


def _wait_daemon(daemon: Daemon, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (daemon.root / "log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"dockerd exited with {proc.returncode}:\n{log}")
        if daemon.docker("version", check=False).returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("dockerd did not come up within a minute")


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Daemon]:
    binary = need_binary("dockerd")
    docker_bin = need_binary("docker")
    if os.geteuid() != 0:
        msg = "dockerd needs root"
        if REQUIRE:
            pytest.fail(msg + " and TAGGER_REQUIRE_INTEGRATION=1 forbids skipping")
        pytest.skip(msg)
    root = Path(tempfile.mkdtemp(prefix="tg-", dir="/tmp"))
    sock = f"unix://{root}/sock"
    with (root / "log").open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                "--storage-driver=vfs",
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--data-root",
                f"{root}/data",
                "--exec-root",
                f"{root}/exec",
                "--pidfile",
                f"{root}/pid",
                "-H",
                sock,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    daemon = Daemon(sock, root, docker_bin)
    try:
        _wait_daemon(daemon, proc)
        yield daemon
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def registry2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A second registry server: another host:port, another storage."""
    with running_registry(tmp_path_factory.mktemp("registry2")) as r:
        yield r
