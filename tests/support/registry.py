"""Debian's docker-registry (CNCF distribution) on a free loopback port, and raw registry
API helpers that push and read images independently of tagger's own client.

No pytest at import time: bench/run.py uses this module, and the bench runs without
pytest installed (``need_binary`` imports it only to skip or fail a test)."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])


def need_binary(name: str) -> str:
    """The path of ``name``; skips the test when it is not installed (fails it under
    TAGGER_REQUIRE_INTEGRATION=1)."""
    path = shutil.which(name)
    if path is None:
        import pytest

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


def stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Terminate a server process and wait for it; kill it if it does not stop."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    root: Path
    _names: Iterator[int] = itertools.count()
    # one kept-alive connection per thread (bench/run.py pushes from a thread pool);
    # None: a new connection per request
    _local: threading.local | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def new_repo(self, stem: str = "app") -> str:
        return f"{stem}{next(self._names)}"

    def keep_alive(self) -> Registry:
        """Reuse one connection per thread from now on (many pushes in a row)."""
        self._local = threading.local()
        return self

    @property
    def _http(self) -> Any:
        """A session per thread. Reads are retried on 500: docker-registry answers 500
        ("invalid checksum digest format") while concurrent PUTs of one manifest under
        several tags settle (a retry succeeds); a check made right after
        a killed release must not fail on that."""
        local = self._local if self._local is not None else _READS
        s = getattr(local, "session", None)
        if s is None:
            from requests.adapters import HTTPAdapter
            from urllib3.util.retry import Retry

            s = local.session = requests.Session()
            retry = Retry(
                total=5,
                status_forcelist=[500],
                allowed_methods={"GET", "HEAD"},
                backoff_factor=0.1,
                raise_on_status=False,
            )
            s.mount("http://", HTTPAdapter(max_retries=retry))
        return s

    # --- raw API helpers (deliberately not tagger's client) ---
    def push_blob(self, repo: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        http = self._http
        r = http.post(f"{self.url}/v2/{repo}/blobs/uploads/", timeout=10)
        assert r.status_code == 202, r.text
        loc = requests.compat.urljoin(r.url, r.headers["Location"])
        sep = "&" if "?" in loc else "?"
        r = http.put(f"{loc}{sep}digest={digest}", data=data, timeout=10)
        assert r.status_code == 201, r.text
        return digest

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        r = self._http.put(
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
        layer_data: Sequence[bytes] | None = None,
    ) -> str:
        """Push a small image (random-free: content decides the digest); returns its digest.
        ``layer_data``: the layers' bytes, instead of ``layers`` generated tiny ones."""
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
        layer_blobs = (
            list(layer_data)
            if layer_data is not None
            else [f"layer {i} of {content or tag}".encode() for i in range(layers)]
        )
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
        r = self._http.get(
            f"{self.url}/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT}, timeout=10
        )
        assert r.status_code == 200, (ref, r.text)
        return r.content, r.headers.get("Content-Type", "")

    def digest(self, repo: str, tag: str) -> str | None:
        r = self._http.head(
            f"{self.url}/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT}, timeout=10
        )
        if r.status_code == 404:
            return None
        assert r.status_code == 200
        return str(r.headers["Docker-Content-Digest"])

    def tags(self, repo: str) -> set[str]:
        r = self._http.get(f"{self.url}/v2/{repo}/tags/list", timeout=10)
        if r.status_code == 404:
            return set()
        return set(r.json().get("tags") or [])

    def state(self, repo: str) -> dict[str, str | None]:
        """tag -> digest for every tag of the repository."""
        return {t: self.digest(repo, t) for t in self.tags(repo)}


_READS = threading.local()


def start_registry(
    root: Path,
    extra: str = "",
    *,
    name: str = "config",
    data: Path | None = None,
    http_extra: str = "",
) -> tuple[subprocess.Popen[bytes], str]:
    """Start docker-registry on a free 127.0.0.1 port with its config in
    ``root/NAME.yml`` and its storage in ``data`` (default ``root/data``; registries
    given the same directory serve the same images). ``http_extra`` goes into the
    ``http:`` section (TLS), ``extra`` after it (``auth:``). Returns the process and
    its host:port."""
    binary = need_binary("docker-registry")
    port = free_port()
    if data is None:
        data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    cfg = root / f"{name}.yml"
    cfg.write_text(
        "version: 0.1\n"
        "log: {level: error}\n"
        f"storage:\n  filesystem: {{rootdirectory: {data}}}\n  delete: {{enabled: true}}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n{http_extra}{extra}"
    )
    proc = subprocess.Popen(
        [binary, "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        # a TLS registry answers plain HTTP with 400: enough to know it is up
        wait_http(f"http://127.0.0.1:{port}/v2/", proc)
    except BaseException:
        stop(proc)
        raise
    return proc, f"127.0.0.1:{port}"


@contextlib.contextmanager
def running_registry(root: Path) -> Iterator[Registry]:
    """A docker-registry process for as long as the block runs."""
    proc, host = start_registry(root)
    try:
        yield Registry(host, root)
    finally:
        stop(proc)
