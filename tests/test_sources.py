"""Every --source transport, end to end, against real parts: a Docker daemon started by
a fixture, two registry processes, OCI layouts written here or by skopeo, tarballs
written by ``docker save``. Results are checked by digest and by pulling the image back
through the daemon and reading its content."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import requests
from support.cli import child_env, stop_with
from support.daemon import Daemon
from support.git import Repo
from support.hostile import Answer, Seen, Stub
from support.registry import (
    DOCKER_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Registry,
    free_port,
    need_binary,
    start_registry,
    wait_http,
)

REV = "org.opencontainers.image.revision"
VERSION = "org.opencontainers.image.version"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
FLOATING = ("1.0.0", "1.0", "1", "latest")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_of(files: dict[str, bytes]) -> bytes:
    """A layer: a tar of the files (fixed metadata, so the same files give the same bytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Layout:
    """An OCI image layout written by the test: blobs, then index.json naming images."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.entries: list[dict[str, Any]] = []

    def blob(self, data: bytes, media_type: str) -> dict[str, Any]:
        digest = sha256(data)
        (self.path / "blobs" / "sha256" / digest[7:]).write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def image(
        self,
        files: dict[str, bytes],
        *,
        arch: str = "amd64",
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        layer = tar_of(files)
        config = json.dumps(
            {
                "architecture": arch,
                "os": "linux",
                "config": {"Labels": labels or {}},
                "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]},
            }
        ).encode()
        doc: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self.blob(config, OCI_CONFIG),
            "layers": [self.blob(gzip.compress(layer, mtime=0), OCI_LAYER_GZIP)],
        }
        if annotations:
            doc["annotations"] = annotations
        # indented on purpose: a publisher that re-serialises would change the digest
        desc = self.blob(json.dumps(doc, indent=2).encode(), OCI_MANIFEST)
        desc["platform"] = {"architecture": arch, "os": "linux"}
        return desc

    def index(self, children: list[dict[str, Any]]) -> dict[str, Any]:
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
        return self.blob(json.dumps(doc, indent=1).encode(), OCI_INDEX)

    def name(self, desc: dict[str, Any], ref_name: str) -> None:
        entry = {k: v for k, v in desc.items() if k != "platform"}
        entry["annotations"] = {"org.opencontainers.image.ref.name": ref_name}
        self.entries.append(entry)
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.entries}
        (self.path / "index.json").write_text(json.dumps(index))


def release(
    tagger: Any, repo: Repo, source: str, *targets: str, extra: tuple[str, ...] = ()
) -> Any:
    args = ["-C", str(repo.path), "release", "--source", source, "--json", *extra]
    for t in targets:
        args += ["-i", t]
    return tagger(*args)


def config_digest(reg: Registry, image: str, ref: str) -> str:
    return str(json.loads(reg.get_manifest(image, ref)[0])["config"]["digest"])


def pull_back(dockerd: Daemon, ref: str, path: str, forget: str) -> bytes:
    """Pull through the daemon after removing ``forget`` (an image id), so the layers
    really come from the registry; return the file's content."""
    dockerd.docker("rmi", "-f", forget, check=False)
    dockerd.docker("pull", ref)
    return dockerd.read_file(ref, path)


# --- docker-daemon: ---------------------------------------------------------------------
@pytest.fixture
def daemon_env(dockerd: Daemon, monkeypatch: pytest.MonkeyPatch) -> Daemon:
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)
    return dockerd


def test_daemon_publishes_to_two_registries(
    tagger: Any,
    daemon_env: Daemon,
    registry: Registry,
    registry2: Registry,
    repo: Repo,
    tmp_path: Path,
) -> None:
    repo.tag("v1.0.0")
    payload = f"built by docker from {repo.head}\n".encode()
    name = f"tg-daemon-{repo.head[:10]}:build"
    image_id = daemon_env.build(
        name, tmp_path / "ctx", {"payload": payload}, {REV: repo.head, VERSION: "1.0.0"}
    )
    a, b = registry.new_repo(), registry2.new_repo()
    run = release(
        tagger, repo, f"docker-daemon:{name}", f"{registry.host}/{a}", f"{registry2.host}/{b}"
    )
    assert run.code == 0, run.err
    digest = run.json["digest"]
    assert [(t["tag"], t["action"], t["to"]) for t in run.json["images"][1]["tags"]] == [
        (t, "create", digest) for t in FLOATING
    ]
    for reg, image in ((registry, a), (registry2, b)):
        assert reg.state(image) == {t: digest for t in FLOATING}
        assert config_digest(reg, image, "1.0.0") == image_id  # the daemon's image
    # T went through the daemon once (one line, not a bar: no TTY); registry B got a copy
    assert f"{registry.host}/{a}:1.0.0: pushed through the docker daemon" in run.err
    assert f"{registry2.host}/{b}: blobs 2 uploaded" in run.err
    assert "warning" not in run.err  # the revision label matched
    # as after docker push, the daemon has the tag it pushed (and so a RepoDigest)
    assert daemon_env.image_id(f"{registry.host}/{a}:1.0.0") == image_id
    for ref in (f"{registry.host}/{a}:1.0.0", f"{registry2.host}/{b}:latest"):
        assert pull_back(daemon_env, ref, "/payload", forget=image_id) == payload
        assert daemon_env.image_id(ref) == image_id


def test_daemon_rerun_promotion_and_conflicts(
    tagger: Any,
    daemon_env: Daemon,
    registry: Registry,
    registry2: Registry,
    repo: Repo,
    tmp_path: Path,
) -> None:
    """The immutable guard holds for the daemon: T is compared by image id before the
    daemon pushes anything."""
    x = f"tg-x-{repo.head[:10]}:build"
    y = f"tg-y-{repo.head[:10]}:build"
    x_id = daemon_env.build(x, tmp_path / "x", {"payload": b"x\n"}, {REV: repo.head})
    y_id = daemon_env.build(y, tmp_path / "y", {"payload": b"y\n"}, {REV: repo.head})
    a, b, c = registry.new_repo(), registry2.new_repo(), registry.new_repo()
    ta, tb, tc = f"{registry.host}/{a}", f"{registry2.host}/{b}", f"{registry.host}/{c}"
    sha = repo.sha_tag

    run = release(tagger, repo, f"docker-daemon:{x}", ta)  # a SHA build, to one registry
    assert run.code == 0, run.err
    d = run.json["digest"]
    assert registry.digest(a, sha) == d and "pushed through the docker daemon" in run.err

    # a run that stopped after the first target: the re-run completes without a push
    run = release(tagger, repo, f"docker-daemon:{x}", ta, tb)
    assert run.code == 0, run.err
    assert run.tags(0)[sha]["action"] == "unchanged" and run.tags(1)[sha]["action"] == "create"
    assert registry2.digest(b, sha) == d and run.json["digest"] == d
    assert "pushed through the docker daemon" not in run.err

    # another image under the same T: refused, nothing written anywhere
    before = (registry.state(a), registry2.state(b))
    run = release(tagger, repo, f"docker-daemon:{y}", ta, tb)
    assert run.code == 3 and "already exists" in run.err and "never moves" in run.err
    assert f"not the daemon image {y_id}" in run.err and "not None" not in run.err
    assert (registry.state(a), registry2.state(b)) == before
    # ... even when the first target is empty: the daemon pushes nothing to it
    run = release(tagger, repo, f"docker-daemon:{y}", tc, tb)
    assert run.code == 3, run.err
    assert registry.tags(c) == set() and registry2.state(b) == before[1]

    # promote the same commit to a release: the daemon knows this image's digest in
    # the target from its RepoDigests, so nothing is pushed and D is the SHA build's
    repo.tag("v1.0.0")
    run = release(tagger, repo, f"docker-daemon:{x}", ta)
    assert run.code == 0, run.err
    assert run.json["digest"] == d and registry.digest(a, "1.0.0") == d
    assert "pushed through the docker daemon" not in run.err
    assert daemon_env.image_id(x) == x_id


def start_readonly_registry(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = need_binary("docker-registry")
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yml").write_text(
        "version: 0.1\nlog: {level: error}\nstorage:\n"
        f"  filesystem: {{rootdirectory: {root}/data}}\n"
        "  maintenance: {readonly: {enabled: true}}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(
        [binary, "serve", str(root / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{port}/v2/", proc)
    return proc, f"127.0.0.1:{port}"


def test_daemon_push_failure_inside_the_stream_is_an_error(
    tagger: Any, daemon_env: Daemon, repo: Repo, tmp_path: Path
) -> None:
    """docker-py's push answers 200 when the push fails; the failure is only an
    errorDetail in the stream. tagger must fail (exit 4) with the daemon's message."""
    name = f"tg-ro-{repo.head[:10]}:build"
    daemon_env.build(name, tmp_path / "ctx", {"payload": b"ro\n"}, {REV: repo.head})
    proc, host = start_readonly_registry(tmp_path / "ro")
    try:
        run = release(tagger, repo, f"docker-daemon:{name}", f"{host}/app")
    finally:
        proc.terminate()
        proc.wait(10)
    assert run.code == 4, run.err
    assert f"the docker daemon could not push {host}/app:{repo.sha_tag}" in run.err
    assert "Traceback" not in run.err


def test_daemon_pushes_with_taggers_login(
    tagger: Any,
    daemon_env: Daemon,
    repo: Repo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The daemon has no login for the registry (an empty Docker config); tagger hands
    it the one it was given (TAGGER_USERNAME / TAGGER_PASSWORD)."""
    htpasswd = need_binary("htpasswd")
    password = "pw-" + os.urandom(8).hex()
    entry = subprocess.run(
        [htpasswd, "-Bbn", "ci", password], check=True, capture_output=True, text=True
    ).stdout.strip()
    (tmp_path / "htpasswd").write_text(entry + "\n")
    auth = f"auth:\n  htpasswd: {{realm: basic-realm, path: {tmp_path / 'htpasswd'}}}\n"
    proc, host = start_registry(tmp_path / "basic", auth)
    try:
        name = f"tg-login-{repo.head[:10]}:build"
        daemon_env.build(name, tmp_path / "ctx", {"payload": b"login\n"}, {REV: repo.head})
        (tmp_path / "dockercfg").mkdir()
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dockercfg"))
        monkeypatch.setenv("TAGGER_USERNAME", "ci")
        monkeypatch.setenv("TAGGER_PASSWORD", password)
        run = release(tagger, repo, f"docker-daemon:{name}", f"{host}/app")
        assert run.code == 0, run.err
        assert "pushed through the docker daemon" in run.err
        assert password not in run.err + run.out
        r = requests.head(
            f"http://{host}/v2/app/manifests/{repo.sha_tag}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            auth=("ci", password),
            timeout=10,
        )
        assert r.headers["Docker-Content-Digest"] == run.json["digest"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_daemon_missing_image_is_refused(tagger: Any, daemon_env: Daemon, repo: Repo) -> None:
    run = release(tagger, repo, "docker-daemon:tg-no-such-image:1", "127.0.0.1:1/app")
    assert run.code == 3, run.err
    assert "the docker daemon has no image tg-no-such-image:1" in run.err


# --- oci: ---------------------------------------------------------------------------------
def test_oci_layout_from_skopeo_to_two_registries(
    tagger: Any,
    daemon_env: Daemon,
    registry: Registry,
    registry2: Registry,
    repo: Repo,
    tmp_path: Path,
) -> None:
    skopeo = need_binary("skopeo")
    repo.tag("v1.0.0")
    payload = b"through an OCI layout\n"
    name = f"tg-oci-{repo.head[:10]}:build"
    image_id = daemon_env.build(name, tmp_path / "ctx", {"payload": payload}, {REV: repo.head})
    daemon_env.docker("save", "-o", str(tmp_path / "image.tar"), name)
    layout = tmp_path / "layout"
    subprocess.run(
        [skopeo, "copy", f"docker-archive:{tmp_path / 'image.tar'}", f"oci:{layout}:1.0.0"],
        check=True,
        capture_output=True,
    )
    entry = json.loads((layout / "index.json").read_text())["manifests"][0]
    a, b = registry.new_repo(), registry2.new_repo()
    run = release(
        tagger, repo, f"oci:{layout}:1.0.0", f"{registry.host}/{a}", f"{registry2.host}/{b}"
    )
    assert run.code == 0, run.err
    assert run.json["digest"] == entry["digest"]  # the layout's own manifest, byte for byte
    assert registry.state(a) == registry2.state(b) == {t: entry["digest"] for t in FLOATING}
    assert pull_back(daemon_env, f"{registry2.host}/{b}:1.0.0", "/payload", image_id) == payload
    assert pull_back(daemon_env, f"{registry.host}/{a}:1", "/payload", image_id) == payload


def test_multi_arch_index_keeps_its_digest(
    tagger: Any,
    daemon_env: Daemon,
    registry: Registry,
    registry2: Registry,
    repo: Repo,
    tmp_path: Path,
) -> None:
    """An OCI index from a layout is published whole (children first, then the index
    with its exact bytes) to two registries, and promoted across registries as it is."""
    repo.tag("v1.0.0")
    lay = Layout(tmp_path / "multi")
    amd = lay.image({"payload": b"amd64 build\n"}, arch="amd64", labels={REV: repo.head})
    arm = lay.image({"payload": b"arm64 build\n"}, arch="arm64", labels={REV: repo.head})
    attestation = lay.image({"statement.json": b"{}"}, arch="unknown")
    attestation["platform"] = {"architecture": "unknown", "os": "unknown"}
    index = lay.index([amd, arm, attestation])
    lay.name(index, "1.0.0")
    a, b = registry.new_repo(), registry2.new_repo()
    run = release(
        tagger, repo, f"oci:{lay.path}:1.0.0", f"{registry.host}/{a}", f"{registry2.host}/{b}"
    )
    assert run.code == 0, run.err
    assert run.json["digest"] == index["digest"]
    for reg, image in ((registry, a), (registry2, b)):
        assert reg.state(image) == {t: index["digest"] for t in FLOATING}
        data, ctype = reg.get_manifest(image, "1.0.0")
        assert sha256(data) == index["digest"] and ctype == OCI_INDEX
        for child in (amd, arm, attestation):
            assert sha256(reg.get_manifest(image, child["digest"])[0]) == child["digest"]
    content = pull_back(daemon_env, f"{registry2.host}/{b}:1.0.0", "/payload", "none")
    assert content == b"amd64 build\n"  # the daemon's platform
    # promote the index across registries: docker://B -> A (another repository)
    c = registry.new_repo()
    run = release(tagger, repo, f"docker://{registry2.host}/{b}:1.0.0", f"{registry.host}/{c}")
    assert run.code == 0, run.err
    assert registry.state(c) == {t: index["digest"] for t in FLOATING}
    assert f"{registry.host}/{c}: blobs 6 uploaded" in run.err and "; 3 child manifests" in run.err


# --- docker-archive: ----------------------------------------------------------------------
def test_docker_archive_to_two_registries_deterministically(
    tagger: Any,
    daemon_env: Daemon,
    registry: Registry,
    registry2: Registry,
    repo: Repo,
    tmp_path: Path,
) -> None:
    repo.tag("v1.0.0")
    payload = b"from a docker save tarball\n"
    name = f"tg-archive-{repo.head[:10]}:build"
    image_id = daemon_env.build(name, tmp_path / "ctx", {"payload": payload}, {REV: repo.head})
    archive = tmp_path / "image.tar"
    daemon_env.docker("save", "-o", str(archive), name)
    a, b = registry.new_repo(), registry2.new_repo()
    run = release(
        tagger, repo, f"docker-archive:{archive}", f"{registry.host}/{a}", f"{registry2.host}/{b}"
    )
    assert run.code == 0, run.err
    digest = run.json["digest"]
    assert registry.state(a) == registry2.state(b) == {t: digest for t in FLOATING}
    manifest = json.loads(registry.get_manifest(a, "1.0.0")[0])
    assert manifest["config"]["digest"] == image_id
    assert [layer["mediaType"] for layer in manifest["layers"]] == [OCI_LAYER]
    # the same tarball always gives the same digest, selected by name as well
    c = registry.new_repo()
    run = release(tagger, repo, f"docker-archive:{archive}:{name}", f"{registry.host}/{c}")
    assert run.code == 0 and run.json["digest"] == digest, run.err
    assert pull_back(daemon_env, f"{registry2.host}/{b}:1.0.0", "/payload", image_id) == payload
    assert daemon_env.image_id(f"{registry2.host}/{b}:1.0.0") == image_id


def test_kaniko_style_tarball_with_gzip_layers(
    tagger: Any,
    daemon_env: Daemon,
    registry: Registry,
    registry2: Registry,
    repo: Repo,
    tmp_path: Path,
) -> None:
    """go-containerregistry's tarball (kaniko --tar-path): config named by digest,
    gzip-compressed layers; the compression is kept."""
    repo.tag("v1.0.0")
    payload = b"kaniko wrote this\n"
    layer = tar_of({"payload": payload})
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {REV: repo.head}},
            "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]},
        }
    ).encode()
    gz = gzip.compress(layer, mtime=0)
    cfg_name = sha256(config)
    layer_name = sha256(gz)[7:] + ".tar.gz"
    archive = tmp_path / "kaniko.tar"
    with tarfile.open(archive, "w") as tar:
        for member, data in (
            (cfg_name, config),
            (layer_name, gz),
            (
                "manifest.json",
                json.dumps(
                    [
                        {
                            "Config": cfg_name,
                            "RepoTags": ["registry.example/app:1.0.0"],
                            "Layers": [layer_name],
                        }
                    ]
                ).encode(),
            ),
        ):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    a, b = registry.new_repo(), registry2.new_repo()
    run = release(
        tagger,
        repo,
        f"docker-archive:{archive}:registry.example/app:1.0.0",
        f"{registry.host}/{a}",
        f"{registry2.host}/{b}",
    )
    assert run.code == 0, run.err
    digest = run.json["digest"]
    assert registry.state(a) == registry2.state(b) == {t: digest for t in FLOATING}
    manifest = json.loads(registry2.get_manifest(b, digest)[0])
    assert manifest["layers"] == [
        {"mediaType": OCI_LAYER_GZIP, "digest": sha256(gz), "size": len(gz)}
    ]
    assert pull_back(daemon_env, f"{registry2.host}/{b}:1.0.0", "/payload", "none") == payload


# --- docker:// across registries, several targets ------------------------------------------
def test_promote_across_registries_mounts_within_and_copies_across(
    tagger: Any,
    registry: Registry,
    registry2: Registry,
    repo: Repo,
) -> None:
    repo.tag("v1.0.0")
    ci = registry.new_repo("ci")
    digest = registry.push_image(
        ci, repo.sha_tag, content="promote", layers=2, labels={REV: repo.head}
    )
    a, b = registry.new_repo(), registry2.new_repo()
    run = release(
        tagger,
        repo,
        f"docker://{registry.host}/{ci}:{repo.sha_tag}",
        f"{registry.host}/{a}",
        f"{registry2.host}/{b}",
    )
    assert run.code == 0, run.err
    assert registry.state(a) == registry2.state(b) == {t: digest for t in FLOATING}
    assert f"{registry.host}/{a}: blobs 0 uploaded (0 B), 3 mounted" in run.err
    assert f"{registry2.host}/{b}: blobs 3 uploaded" in run.err


def test_docker_manifest_list_promoted_across_registries(
    tagger: Any,
    registry: Registry,
    registry2: Registry,
    repo: Repo,
) -> None:
    repo.tag("v1.0.0")
    ci = registry.new_repo("ci")
    digest = registry.push_index(ci, repo.sha_tag, oci=False)
    b = registry2.new_repo()
    run = release(
        tagger, repo, f"docker://{registry.host}/{ci}:{repo.sha_tag}", f"{registry2.host}/{b}"
    )
    assert run.code == 0, run.err
    assert registry2.state(b) == {t: digest for t in FLOATING}
    data, ctype = registry2.get_manifest(b, "1.0.0")
    assert sha256(data) == digest and ctype == DOCKER_LIST


def test_relative_paths_are_relative_to_where_they_were_written(
    tagger: Any, registry: Registry, repo: Repo
) -> None:
    """-C runs tagger as if started there: a relative oci:DIR from a flag is relative to
    the -C directory; from the configuration file, to the file's directory."""
    lay = Layout(repo.path / "build" / "oci")
    desc = lay.image({"payload": b"relative"}, labels={REV: repo.head})
    lay.name(desc, "x")
    image = registry.new_repo()
    run = release(tagger, repo, "oci:build/oci:x", f"{registry.host}/{image}")
    assert run.code == 0, run.err
    assert registry.digest(image, repo.sha_tag) == desc["digest"]
    (repo.path / "sub").mkdir()
    (repo.path / ".tagger.toml").write_text('source = "oci:build/oci:x"\n')
    other = registry.new_repo()
    run = tagger("-C", str(repo.path / "sub"), "release", "-i", f"{registry.host}/{other}")
    assert run.code == 0, run.err  # (untracked files do not make the tree dirty)
    assert registry.digest(other, repo.sha_tag) == desc["digest"]


def test_conflict_in_one_registry_writes_nothing_in_the_other(
    tagger: Any,
    registry: Registry,
    registry2: Registry,
    repo: Repo,
) -> None:
    repo.tag("v1.0.0")
    ci = registry.new_repo("ci")
    registry.push_image(ci, repo.sha_tag, content="new", labels={REV: repo.head})
    a, b = registry.new_repo(), registry2.new_repo()
    other = registry2.push_image(b, "1.0.0", content="published earlier")
    run = release(
        tagger,
        repo,
        f"docker://{registry.host}/{ci}:{repo.sha_tag}",
        f"{registry.host}/{a}",
        f"{registry2.host}/{b}",
    )
    assert run.code == 3
    assert f"{registry2.host}/{b}:1.0.0 already exists as {other}" in run.err
    assert registry.tags(a) == set() and registry2.state(b) == {"1.0.0": other}
    assert [i["image"] for i in run.json["images"]] == [
        f"{registry.host}/{a}",
        f"{registry2.host}/{b}",
    ]


# --- provenance ------------------------------------------------------------------------------
def test_foreign_revision_label_is_refused(tagger: Any, registry: Registry, repo: Repo) -> None:
    repo.tag("v1.0.0")
    image = registry.new_repo()
    other = "0123456789abcdef0123456789abcdef01234567"
    registry.push_image(image, repo.sha_tag, labels={REV: other})
    for command in ("plan", "release"):
        run = tagger("-C", str(repo.path), command, "-i", f"{registry.host}/{image}")
        assert run.code == 3, run.err
        assert f"this image was built from {other}, HEAD is {repo.head}" in run.err
    assert registry.tags(image) == {repo.sha_tag}  # nothing written


def test_foreign_revision_annotation_in_a_layout_is_refused(
    tagger: Any, registry: Registry, repo: Repo, tmp_path: Path
) -> None:
    lay = Layout(tmp_path / "lay")
    other = "f" * 40
    lay.name(lay.image({"a": b"a"}, annotations={REV: other}), "x")
    image = registry.new_repo()
    run = release(tagger, repo, f"oci:{lay.path}:x", f"{registry.host}/{image}")
    assert run.code == 3 and f"built from {other}, HEAD is {repo.head}" in run.err
    assert registry.tags(image) == set()


def test_short_revision_is_refused_with_a_hint(tagger: Any, registry: Registry, repo: Repo) -> None:
    image = registry.new_repo()
    registry.push_image(image, repo.sha_tag, labels={REV: repo.head[:7]})
    run = tagger("-C", str(repo.path), "release", "-i", f"{registry.host}/{image}")
    assert run.code == 3 and "full one" in run.err


def test_missing_revision_warns_or_is_refused_when_required(
    tagger: Any, registry: Registry, repo: Repo
) -> None:
    image = registry.new_repo()
    registry.push_image(image, repo.sha_tag, content="unlabelled")
    target = f"{registry.host}/{image}"
    run = tagger("-C", str(repo.path), "release", "-i", target, "--dry-run", "--require-revision")
    assert run.code == 3 and "has no org.opencontainers.image.revision label" in run.err
    run = tagger("-C", str(repo.path), "release", "-i", target)
    assert run.code == 0, run.err
    assert "warning:" in run.err and "cannot check that it was built from" in run.err


def test_version_label_must_name_the_release(tagger: Any, registry: Registry, repo: Repo) -> None:
    repo.tag("v1.0.0")
    image = registry.new_repo()
    target = f"{registry.host}/{image}"
    registry.push_image(image, repo.sha_tag, labels={REV: repo.head, VERSION: "1.0.1"})
    run = tagger("-C", str(repo.path), "release", "-i", target)
    assert run.code == 3 and "built as version 1.0.1, the release is 1.0.0" in run.err
    assert registry.tags(image) == {repo.sha_tag}
    registry.push_image(image, repo.sha_tag, labels={REV: repo.head, VERSION: "v1.0.0"})
    run = tagger("-C", str(repo.path), "release", "-i", target)
    assert run.code == 0 and "warning" not in run.err, run.err


# --- source errors ---------------------------------------------------------------------------
def test_source_errors_say_what_to_do(
    tagger: Any, repo: Repo, registry: Registry, tmp_path: Path
) -> None:
    target = f"{registry.host}/{registry.new_repo()}"
    run = release(tagger, repo, f"oci:{tmp_path / 'none'}", target)
    assert run.code == 3 and "no such directory" in run.err
    lay = Layout(tmp_path / "two")
    lay.name(lay.image({"a": b"1"}), "one")
    lay.name(lay.image({"a": b"2"}), "two")
    run = release(tagger, repo, f"oci:{lay.path}", target)
    assert run.code == 2 and "'one', 'two'" in run.err
    run = release(tagger, repo, f"oci:{lay.path}:three", target)
    assert run.code == 3 and "no image named 'three'" in run.err
    gz = tmp_path / "image.tar.gz"
    gz.write_bytes(gzip.compress(b"not a tar"))
    run = release(tagger, repo, f"docker-archive:{gz}", target)
    assert run.code == 2 and "gunzip" in run.err
    run = release(tagger, repo, f"docker-archive:{tmp_path / 'none.tar'}", target)
    assert run.code == 3 and "no such file" in run.err
    run = release(tagger, repo, "ftp:x", target)
    assert run.code == 2 and "unknown source transport" in run.err
    assert "Traceback" not in run.err


# --- a 1 GB layer: streamed, never held in memory ------------------------------------------
GB = 1 << 30
MB = 1 << 20


def write_big_layout(path: Path, size: int) -> dict[str, Any]:
    """An OCI layout with one layer of ``size`` random bytes, written to disk in 1 MB
    pieces (hashed on the way), never in memory."""
    lay = Layout(path)
    h = hashlib.sha256()
    tmp = path / "blobs" / "sha256" / "partial"
    with tmp.open("wb") as f:
        for _ in range(size // MB):
            chunk = os.urandom(MB)
            h.update(chunk)
            f.write(chunk)
    layer = {"mediaType": OCI_LAYER, "digest": "sha256:" + h.hexdigest(), "size": size}
    tmp.rename(path / "blobs" / "sha256" / h.hexdigest())
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {}}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": lay.blob(config, OCI_CONFIG),
        "layers": [layer],
    }
    desc = lay.blob(json.dumps(manifest).encode(), OCI_MANIFEST)
    lay.name(desc, "big")
    return desc


# A child's ru_maxrss starts from its parent's resident size (Linux carries the high
# water mark across fork and exec), so pytest's own size would count. A bare
# interpreter in between (about 10 MB) starts tagger and reports tagger's peak alone.
SPAWNER = """
import os, sys
pid = os.posix_spawn(sys.executable, [sys.executable, "-m", "tagger", *sys.argv[2:]], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss_mb(tmp_path: Path, *args: str) -> float:
    """Run tagger in a child process; its peak resident memory in MB."""
    report = tmp_path / "maxrss"
    out = subprocess.run(
        [sys.executable, "-S", "-c", SPAWNER, str(report), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    return int(report.read_text()) / 1024  # KiB on Linux


@pytest.mark.slow
def test_a_1gb_layer_streams_with_little_memory(repo: Repo, tmp_path: Path) -> None:
    """Peak memory stays under 100 MB while a 1 GB layer goes from an OCI layout to one
    registry, then from that registry to another (docker://, across registries)."""
    procs = []
    try:
        desc = write_big_layout(tmp_path / "big", GB)
        proc_a, host_a = start_registry(tmp_path / "reg-a")
        proc_b, host_b = start_registry(tmp_path / "reg-b")
        procs = [proc_a, proc_b]
        rss = peak_rss_mb(
            tmp_path, "-C", str(repo.path), "release", "--source", f"oci:{tmp_path / 'big'}:big",
            "-i", f"{host_a}/big",
        )  # fmt: skip
        assert rss < 100, f"peak memory {rss:.0f} MB uploading a 1 GB layer from a layout"
        rss = peak_rss_mb(
            tmp_path, "-C", str(repo.path), "release", "--source",
            f"docker://{host_a}/big:{repo.sha_tag}",
            "-i", f"{host_b}/big",
        )  # fmt: skip
        assert rss < 100, f"peak memory {rss:.0f} MB copying a 1 GB layer across registries"
        for host in (host_a, host_b):
            r = requests.head(
                f"http://{host}/v2/big/manifests/{repo.sha_tag}",
                headers={"Accept": OCI_MANIFEST},
                timeout=10,
            )
            assert r.headers["Docker-Content-Digest"] == desc["digest"]
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        shutil.rmtree(tmp_path, ignore_errors=True)  # 3 GB: do not leave it to pytest


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_ends_a_blob_upload_in_flight_at_once(
    repo: Repo, tmp_path: Path, sig: signal.Signals
) -> None:
    """A blob upload is no write of a tag: nothing is published until T's manifest, so a
    signal does not wait for it (a 150 MB layer at 10 MB/s would take 15 s). Here the
    registry takes 1 MiB of a 64 MiB layer and then reads no more."""
    write_big_layout(tmp_path / "big", 64 * MB)
    stub = Stub()
    json_type = {"Content-Type": "application/json"}
    stub.on("GET", r"^/v2/$", lambda s: Answer(200, json_type, b"{}"))
    stub.on("GET", r"/tags/list", lambda s: Answer(200, json_type, b'{"name":"big","tags":[]}'))
    stub.on("POST", r"/blobs/uploads/", lambda s: Answer(202, {"Location": "/v2/big/up/1"}))

    def upload(seen: Seen) -> Answer:  # the small config goes through; the layer stalls
        if int(seen.headers.get("content-length") or 0) > MB:
            return Answer(500, hang=60)
        return Answer(201, {"Docker-Content-Digest": sha256(seen.body)})

    stub.on("*", r"^/v2/big/up/", upload)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tagger", "-C", str(repo.path), "release",
         "--source", f"oci:{tmp_path / 'big'}:big", "-i", f"{stub.host}/big"],
        env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        stub.wait_for(lambda s: int(s.headers.get("content-length") or 0) > MB, proc)
        _, err, took = stop_with(proc, sig)
    finally:
        proc.kill()
        stub.close()
    assert proc.returncode == 128 + sig, err
    assert signal.Signals(sig).name in err
    assert took < 3, took
    assert not [s for s in stub.log if "/manifests/" in s.path and s.method == "PUT"]


def test_progress_bar_on_a_terminal_and_one_line_otherwise(
    tagger: Any, registry: Registry, repo: Repo, tmp_path: Path
) -> None:
    import pty

    lay = Layout(tmp_path / "lay")
    lay.name(lay.image({"payload": os.urandom(3 * MB)}, labels={REV: repo.head}), "x")
    target = f"{registry.host}/{registry.new_repo()}"
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tagger", "-C", str(repo.path), "release"]
        + ["--source", f"oci:{lay.path}:x", "-i", target],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=secondary,
    )
    os.close(secondary)
    out = b""
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        out += data
    os.close(primary)
    assert proc.wait(60) == 0, out.decode(errors="replace")
    text = out.decode()
    assert f"oci:{lay.path}:x -> {target}" in text  # click's bar, with its label
    assert "[#####" in text and "100%" in text
    # without a terminal: no bar, one line for the image
    other = f"{registry.host}/{registry.new_repo()}"
    run = release(tagger, repo, f"oci:{lay.path}:x", other)
    assert run.code == 0, run.err
    assert "[#" not in run.err
    assert [line for line in run.err.splitlines() if "blobs" in line] == [
        f"{other}: blobs 2 uploaded (3.1 MB), 0 mounted, 0 already there; 0 child manifests"
    ]


def test_an_upload_cut_off_is_started_again(
    tagger: Any, registry: Registry, repo: Repo, tmp_path: Path
) -> None:
    """A streamed upload cannot be replayed by the HTTP retry layer: the connection
    dropped in the middle of a blob PUT makes tagger open a new upload and send it all
    again."""
    from support.proxy import Drop, Proxy

    lay = Layout(tmp_path / "lay")
    desc = lay.image({"payload": os.urandom(MB)}, labels={REV: repo.head})
    lay.name(desc, "x")
    dropped: list[str] = []

    def drop_first_upload(method: str, path: str) -> None:
        if method == "PUT" and "/blobs/uploads/" in path and not dropped:
            dropped.append(path)
            raise Drop

    proxy = Proxy(registry.url)
    proxy.hook = drop_first_upload
    try:
        image = registry.new_repo()
        run = release(tagger, repo, f"oci:{lay.path}:x", f"{proxy.host}/{image}")
    finally:
        proxy.close()
    assert run.code == 0, run.err
    assert dropped and registry.digest(image, repo.sha_tag) == desc["digest"]
    # two blobs: two uploads answered, the dropped one (not logged) started again
    assert proxy.count("PUT", "/blobs/uploads/") == 2 and len(dropped) == 1
    assert proxy.count("POST", "/blobs/uploads/") == 3
