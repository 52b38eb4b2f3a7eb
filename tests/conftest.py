"""Fixtures with real parts: git repositories in tmp_path and Debian's docker-registry
(CNCF distribution) on a free loopback port. Images are made by pushing blobs over the
registry API here, independently of tagger's own client."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

REQUIRE = os.environ.get("TAGGER_REQUIRE_INTEGRATION") == "1"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

CI_VARS = (
    "GITHUB_REF",
    "GITHUB_SHA",
    "GITHUB_ACTIONS",
    "CI_COMMIT_TAG",
    "CI_COMMIT_SHA",
    "CI_COMMIT_BRANCH",
)


def need_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        msg = f"{name} is not installed (apt-get install {name}); .ci/run installs it"
        if REQUIRE:
            pytest.fail(msg + " and TAGGER_REQUIRE_INTEGRATION=1 forbids skipping")
        pytest.skip(msg)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    root: Path
    _names: Iterator[int] = itertools.count()

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def new_repo(self, stem: str = "app") -> str:
        return f"{stem}{next(self._names)}"

    # --- raw API helpers for tests (deliberately not tagger's client) ---
    def push_blob(self, repo: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        r = requests.post(f"{self.url}/v2/{repo}/blobs/uploads/", timeout=10)
        assert r.status_code == 202, r.text
        loc = requests.compat.urljoin(r.url, r.headers["Location"])
        sep = "&" if "?" in loc else "?"
        r = requests.put(f"{loc}{sep}digest={digest}", data=data, timeout=10)
        assert r.status_code == 201, r.text
        return digest

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        r = requests.put(
            f"{self.url}/v2/{repo}/manifests/{ref}",
            data=data,
            headers={"Content-Type": media_type},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def push_image(
        self,
        repo: str,
        tag: str,
        *,
        content: str = "",
        layers: int = 1,
        oci: bool = False,
        media_type_field: bool = True,
        labels: dict[str, str] | None = None,
    ) -> str:
        """Push a small image (random-free: content decides the digest); returns its digest."""
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": labels or {}},
                "rootfs": {"type": "layers", "diff_ids": []},
                "comment": f"{repo}:{tag}:{content}",
            },
            sort_keys=True,
        ).encode()
        layer_blobs = [f"layer {i} of {content or tag}".encode() for i in range(layers)]
        cfg_digest = self.push_blob(repo, config)
        layer_descs = [
            {
                "mediaType": OCI_LAYER if oci else DOCKER_LAYER,
                "digest": self.push_blob(repo, b),
                "size": len(b),
            }
            for b in layer_blobs
        ]
        manifest: dict[str, object] = {"schemaVersion": 2}
        mt = OCI_MANIFEST if oci else DOCKER_MANIFEST
        if media_type_field:
            manifest["mediaType"] = mt
        manifest["config"] = {
            "mediaType": OCI_CONFIG if oci else DOCKER_CONFIG,
            "digest": cfg_digest,
            "size": len(config),
        }
        manifest["layers"] = layer_descs
        # indentation is deliberate: a client that re-serialises would change the digest
        data = json.dumps(manifest, indent=3).encode()
        return self.put_manifest(repo, tag, data, mt)

    def push_index(self, repo: str, tag: str, *, oci: bool = True, content: str = "") -> str:
        children = []
        for arch in ("amd64", "arm64"):
            child_tag = f"child-{arch}-{content or tag}"
            d = self.push_image(repo, child_tag, content=f"{arch}{content}{tag}", oci=oci)
            size = len(self.get_manifest(repo, d)[0])
            children.append(
                {
                    "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
                    "digest": d,
                    "size": size,
                    "platform": {"architecture": arch, "os": "linux"},
                }
            )
        mt = OCI_INDEX if oci else DOCKER_LIST
        data = json.dumps({"schemaVersion": 2, "mediaType": mt, "manifests": children}).encode()
        return self.put_manifest(repo, tag, data, mt)

    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str]:
        r = requests.get(
            f"{self.url}/v2/{repo}/manifests/{ref}",
            headers={"Accept": ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])},
            timeout=10,
        )
        assert r.status_code == 200, (ref, r.text)
        return r.content, r.headers.get("Content-Type", "")

    def digest(self, repo: str, tag: str) -> str | None:
        r = requests.head(
            f"{self.url}/v2/{repo}/manifests/{tag}",
            headers={"Accept": ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])},
            timeout=10,
        )
        if r.status_code == 404:
            return None
        assert r.status_code == 200
        return str(r.headers["Docker-Content-Digest"])

    def tags(self, repo: str) -> set[str]:
        r = requests.get(f"{self.url}/v2/{repo}/tags/list", timeout=10)
        if r.status_code == 404:
            return set()
        return set(r.json().get("tags") or [])

    def state(self, repo: str) -> dict[str, str | None]:
        """tag -> digest for every tag of the repository."""
        return {t: self.digest(repo, t) for t in self.tags(repo)}


def start_registry(root: Path, extra: str = "") -> tuple[subprocess.Popen[bytes], str]:
    binary = need_binary("docker-registry")
    port = free_port()
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    cfg = root / "config.yml"
    cfg.write_text(
        "version: 0.1\n"
        "log: {level: error}\n"
        f"storage:\n  filesystem: {{rootdirectory: {data}}}\n  delete: {{enabled: true}}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + extra
    )
    proc = subprocess.Popen(
        [binary, "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_http(f"http://127.0.0.1:{port}/v2/", proc)
    return proc, f"127.0.0.1:{port}"


@contextlib.contextmanager
def running_registry(root: Path) -> Iterator[Registry]:
    """A docker-registry process for as long as the block runs."""
    proc, host = start_registry(root)
    try:
        yield Registry(host, root)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with running_registry(tmp_path_factory.mktemp("registry")) as r:
        yield r


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no CI hints or TAGGER_* settings from the machine running them."""
    for var in list(os.environ):
        if var in CI_VARS or var.startswith("TAGGER_") and var != "TAGGER_REQUIRE_INTEGRATION":
            monkeypatch.delenv(var)


GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.commit("initial")

    def git(self, *args: str) -> str:
        env = {**os.environ, **GIT_ENV}
        out = subprocess.run(
            ["git", *args], cwd=self.path, env=env, check=True, capture_output=True, text=True
        )
        return out.stdout.strip()

    def commit(self, message: str = "change") -> str:
        f = self.path / "file.txt"
        f.write_text(f"{message}\n{f.read_text() if f.exists() else ''}")
        self.git("add", "file.txt")
        self.git("commit", "-q", "-m", message)
        return self.head

    def tag(self, name: str) -> None:
        self.git("tag", name)

    @property
    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    @property
    def sha_tag(self) -> str:
        return "sha-" + self.head[:7]


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "checkout")


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict[str, object]:
        return dict(json.loads(self.out))

    def tags(self, image: int = 0) -> dict[str, dict[str, object]]:
        images = self.json["images"]
        assert isinstance(images, list)
        return {t["tag"]: t for t in images[image]["tags"]}


@pytest.fixture
def tagger(capsys: pytest.CaptureFixture[str]) -> object:
    """Run tagger's entry point in this process; returns exit code and output."""
    from tagger.cli import main

    def run(*args: str) -> Run:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run
