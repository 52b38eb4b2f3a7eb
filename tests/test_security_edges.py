"""Hostile sources, registries, layouts and pull requests (the security issue): what an
attacker would want must not happen: a workflow command forged in the job log, a
credential sent to the wrong listener, a file outside a layout streamed to a registry,
a release hung or made to eat memory, an immutable tag burned by a bad digest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.git import Repo
from support.hostile import Answer, Seen, Stub, json_answer, serving

ESC = "\x1b"
FORGED = "denied\n::add-mask::x\n::warning::forged\x1b[31m\u202e\u2028::notice::y"


# --- a hostile registry on 127.0.0.1 ------------------------------------------------
def _hostile(seen: Seen) -> Answer:
    if seen.path.rstrip("/") == "/v2":
        return json_answer(b"{}")
    if "/tags/list" in seen.path:
        tags = ["1.0.0", "2.0.0\n::warning::tag", ESC + "[2J", "<img src=x>|`x`"]
        return json_answer(json.dumps({"name": "app", "tags": tags}).encode())
    doc = {"errors": [{"code": "NAME_INVALID", "message": FORGED}]}
    return json_answer(json.dumps(doc).encode(), 400)


def _basic_challenge(seen: Seen) -> Answer:
    return Answer(401, {"WWW-Authenticate": 'Basic realm="r"'})


@pytest.fixture
def hostile() -> Iterator[Stub]:
    s = serving(_hostile)
    yield s
    s.close()


def _actions_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, Path]:
    out, summary = tmp_path / "gh-output", tmp_path / "gh-summary"
    out.touch()
    summary.touch()
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    return out, summary


def _commands(text: str) -> list[str]:
    """Lines the runner would read as workflow commands (it strips leading spaces)."""
    return [line for line in text.splitlines() if line.lstrip().startswith("::")]


@pytest.mark.parametrize("debug", [False, True])
def test_a_registry_message_forges_no_workflow_command(
    debug: bool,
    hostile: Stub,
    repo: Repo,
    tmp_path: Path,
    tagger: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, summary = _actions_env(monkeypatch, tmp_path)
    image = f"{hostile.host}/app"
    args = ["--debug"] if debug else []
    for cmd in (["plan"], ["release"]):
        run = tagger(*args, "-C", str(repo.path), *cmd, "-i", image, "--json")
        assert run.code == 4, run.err
        everything = run.out + run.err
        assert ESC not in everything and "\u202e" not in everything
        assert "\u2028" not in everything
        commands = _commands(everything)
        assert commands, run.err  # tagger's own annotation is there
        for line in commands:
            assert line.startswith("::error title=tagger::"), line
        # the registry's message is still shown, on one line, inside tagger's one annotation
        assert len(commands) == 1
        assert "denied ::add-mask::x ::warning::forged" in commands[0]
    text = summary.read_text()
    assert ESC not in text and "<img" not in text
    assert not any(line.lstrip().startswith("::") for line in text.splitlines())
    assert "denied ::add-mask::x" in text  # the error, on one line, escaped


@pytest.mark.parametrize("debug", [False, True])
def test_without_actions_no_terminal_escape_reaches_the_terminal(
    debug: bool, hostile: Stub, repo: Repo, tagger: Any
) -> None:
    args = ["--debug"] if debug else []
    run = tagger(*args, "-C", str(repo.path), "plan", "-i", f"{hostile.host}/app")
    assert run.code == 4, run.err
    assert ESC not in run.out + run.err
    assert _commands(run.out + run.err) == []
    assert "::add-mask::x" in run.err  # shown, but inside one line


# --- OCI layouts and archives -------------------------------------------------------
def _layout(tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    from test_sources import Layout

    lay = Layout(tmp_path / "layout")
    desc = lay.image({"app": b"hello"})
    lay.name(desc, "x")
    return lay, desc


def _release(tagger: Any, repo: Repo, source: str, target: str) -> Any:
    import time

    start = time.monotonic()
    run = tagger("-C", str(repo.path), "release", "--source", source, "-i", target)
    assert time.monotonic() - start < 30, "bounded time"
    return run


def _layer_path(lay: Any, desc: dict[str, Any]) -> Path:
    doc = json.loads((lay.path / "blobs" / "sha256" / desc["digest"][7:]).read_bytes())
    return Path(lay.path / "blobs" / "sha256" / doc["layers"][0]["digest"][7:])


def test_layout_blob_symlinked_outside_is_not_uploaded(
    tmp_path: Path, repo: Repo, registry: Any, tagger: Any
) -> None:
    import hashlib
    import os

    lay, desc = _layout(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"id_rsa: the host's private key")
    layer = _layer_path(lay, desc)
    size = layer.stat().st_size
    secret.write_bytes(secret.read_bytes().ljust(size, b"#"))  # the size the manifest says
    layer.unlink()
    os.symlink(secret, layer)
    image = registry.new_repo()
    run = _release(tagger, repo, f"oci:{lay.path}:x", f"{registry.host}/{image}")
    assert run.code == 2, run.err
    assert "not a regular file" in run.err
    assert registry.tags(image) == set()
    leaked = "sha256:" + hashlib.sha256(secret.read_bytes()).hexdigest()
    blob = __import__("requests").head(f"{registry.url}/v2/{image}/blobs/{leaked}")
    assert blob.status_code == 404


@pytest.mark.parametrize("kind", ["fifo", "dev-zero-blob", "dev-zero-index", "dir-outside"])
def test_layout_special_files_fail_fast(
    kind: str, tmp_path: Path, repo: Repo, registry: Any, tagger: Any
) -> None:
    import os
    import shutil

    lay, desc = _layout(tmp_path)
    layer = _layer_path(lay, desc)
    if kind == "fifo":
        layer.unlink()
        os.mkfifo(layer)
    elif kind == "dev-zero-blob":
        top = lay.path / "blobs" / "sha256" / desc["digest"][7:]
        top.unlink()
        os.symlink("/dev/zero", top)
    elif kind == "dev-zero-index":
        (lay.path / "index.json").unlink()
        os.symlink("/dev/zero", lay.path / "index.json")
    else:  # blobs/sha256 is a symlink to a directory elsewhere holding the same files
        elsewhere = tmp_path / "elsewhere"
        shutil.move(str(lay.path / "blobs" / "sha256"), elsewhere)
        os.symlink(elsewhere, lay.path / "blobs" / "sha256")
    image = registry.new_repo()
    run = _release(tagger, repo, f"oci:{lay.path}:x", f"{registry.host}/{image}")
    assert run.code == 2, run.err
    assert registry.tags(image) == set()


def test_layout_sha512_manifest_that_does_not_match_writes_nothing(
    tmp_path: Path, repo: Repo, registry: Any, tagger: Any
) -> None:
    import hashlib

    lay, desc = _layout(tmp_path)
    data = (lay.path / "blobs" / "sha256" / desc["digest"][7:]).read_bytes()
    wrong = hashlib.sha512(data + b" ").hexdigest()  # names other content
    (lay.path / "blobs" / "sha512").mkdir()
    (lay.path / "blobs" / "sha512" / wrong).write_bytes(data)
    index = json.loads((lay.path / "index.json").read_text())
    index["manifests"][0]["digest"] = f"sha512:{wrong}"
    (lay.path / "index.json").write_text(json.dumps(index))
    image = registry.new_repo()
    run = _release(tagger, repo, f"oci:{lay.path}:x", f"{registry.host}/{image}")
    assert run.code == 2, run.err
    assert "does not match its digest" in run.err
    assert registry.tags(image) == set()


def test_layout_layer_altered_after_its_digest_is_not_completed(
    tmp_path: Path, repo: Repo, registry: Any, tagger: Any
) -> None:
    lay, desc = _layout(tmp_path)
    layer = _layer_path(lay, desc)
    layer.write_bytes(bytes(layer.stat().st_size))  # same size, other content
    image = registry.new_repo()
    run = _release(tagger, repo, f"oci:{lay.path}:x", f"{registry.host}/{image}")
    assert run.code in (2, 4), run.err
    assert registry.tags(image) == set()


def test_archive_oversized_manifest_json_is_refused_before_reading(
    tmp_path: Path, repo: Repo, registry: Any, tagger: Any
) -> None:
    import tarfile

    tar = tmp_path / "image.tar"
    big = tmp_path / "manifest.json"
    with big.open("wb") as f:  # 64 MiB of JSON whitespace, sparse on disk
        f.write(b"[")
        f.truncate(64 << 20)
    with tarfile.open(tar, "w") as t:
        t.add(big, "manifest.json")
    image = registry.new_repo()
    run = _release(tagger, repo, f"docker-archive:{tar}", f"{registry.host}/{image}")
    assert run.code == 2, run.err
    assert "MiB" in run.err
    assert registry.tags(image) == set()


# --- credential helpers and child processes -----------------------------------------
@pytest.mark.parametrize("name", ["../x", "/tmp/x", "..", "a/b", "x y"])
def test_a_helper_name_is_never_a_path(
    name: str, tmp_path: Path, repo: Repo, tagger: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``credHelpers: {"…": "../x"}`` must not run ./docker-credential-../x."""
    ran = tmp_path / "ran"
    # the program such a name would reach, relative to the cwd and as an absolute path
    for base in (repo.path, tmp_path):
        (base / "docker-credential-..").mkdir(exist_ok=True)
    script = f"#!/bin/sh\ntouch {ran}\necho '{{}}'\n"
    for target in (repo.path / "docker-credential-../x", Path("/tmp/x")):
        if target.parent.is_dir() and not target.exists():
            target.write_text(script)
            target.chmod(0o755)
    stub = serving(_basic_challenge)
    try:
        cfg = tmp_path / "docker"
        cfg.mkdir()
        (cfg / "config.json").write_text(json.dumps({"credHelpers": {stub.host: name}}))
        monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
        monkeypatch.chdir(repo.path)
        run = tagger("-C", str(repo.path), "plan", "-i", f"{stub.host}/app")
    finally:
        stub.close()
        Path("/tmp/x").unlink(missing_ok=True) if name == "/tmp/x" else None
    assert run.code == 4, run.err
    assert "not a program name" in run.err
    assert not ran.exists()


def test_children_get_no_password(
    tmp_path: Path, repo: Repo, tagger: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git (through its fsmonitor hook) and a credential helper see no TAGGER_PASSWORD."""
    from support.auth import write_helper

    seen = tmp_path / "env-seen"
    hook = tmp_path / "fsmonitor"
    hook.write_text(f"#!/bin/sh\nenv >>{seen}\n")
    hook.chmod(0o755)
    repo.git("config", "core.fsmonitor", str(hook))
    secret = "s3cret-Pa55word-for-the-target"
    monkeypatch.setenv("TAGGER_USERNAME", "ci")
    monkeypatch.setenv("TAGGER_PASSWORD", secret)
    monkeypatch.setenv("OTHER_COPY", secret)
    write_helper(tmp_path, "envdump", {}, monkeypatch)
    helper = tmp_path / "bin" / "docker-credential-envdump"
    helper_seen = tmp_path / "helper-env"
    helper.write_text(
        f"#!/bin/sh\nenv >{helper_seen}\necho 'credentials not found in native keychain'\nexit 1\n"
    )
    stub = serving(_basic_challenge)
    target = serving(lambda seen: Answer(200 if seen.path.rstrip("/") == "/v2" else 404))
    try:
        cfg = tmp_path / "docker"
        cfg.mkdir()
        (cfg / "config.json").write_text(json.dumps({"credsStore": "envdump"}))
        monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
        # the target gets TAGGER_*; the source, on another host, goes to the helper
        run = tagger(
            "-C", str(repo.path), "plan", "-i", f"{target.host}/app",
            "--source", f"docker://{stub.host}/src:1",
        )  # fmt: skip
    finally:
        stub.close()
        target.close()
    assert run.code == 4, run.err
    for text in (seen.read_text(), helper_seen.read_text()):  # both ran
        assert "PATH=" in text
        assert secret not in text
        assert "TAGGER_USERNAME=ci" in text  # the username is no secret
    assert "GIT_OPTIONAL_LOCKS=0" in seen.read_text()  # git's hook
