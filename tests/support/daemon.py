"""A real Docker daemon (Debian's docker.io) on its own socket, with data and exec roots
under a short temp dir (unix socket paths are limited to about 100 characters).

No pytest here: bench/run.py starts its dockerd with ``running_dockerd`` too; the
``dockerd`` fixture is in support/fixtures.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Daemon:
    host: str  # unix:///tmp/tg-XXXX/sock
    root: Path
    docker_bin: str
    base_env: Mapping[str, str] | None = None  # what docker commands run with; None: os.environ

    @property
    def env(self) -> dict[str, str]:
        base = os.environ if self.base_env is None else self.base_env
        return {**base, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0"}

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


@contextlib.contextmanager
def running_dockerd(
    dockerd_bin: str,
    docker_bin: str,
    *,
    base_env: Mapping[str, str] | None = None,
    prefix: str = "tg-",
    own_session: bool = False,
) -> Iterator[Daemon]:
    """A dockerd (vfs, no iptables, no bridge; root only) for as long as the block runs.
    ``own_session``: start it in a session of its own, so a Ctrl-C to the terminal
    reaches only the caller, which then stops the daemon."""
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    sock = f"unix://{root}/sock"
    with (root / "log").open("wb") as log:
        proc = subprocess.Popen(
            [
                dockerd_bin,
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
            start_new_session=own_session,
        )
    daemon = Daemon(sock, root, docker_bin, base_env)
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
