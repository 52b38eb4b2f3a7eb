"""End to end: tagger's CLI against a real registry and real git repositories."""

from __future__ import annotations

from typing import Any

import pytest
from support.git import Repo
from support.proxy import Proxy
from support.registry import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Registry


def build(registry: Registry, repo: Repo, image: str, content: str | None = None) -> str:
    """What CI does on every commit: push the image under the SHA tag."""
    return registry.push_image(image, repo.sha_tag, content=content or repo.head)


def release_version(
    tagger: Any, registry: Registry, repo: Repo, image: str, version: str, *args: str
) -> tuple[str, Any]:
    repo.commit(f"release {version}")
    repo.tag(f"v{version}")
    digest = build(registry, repo, image)
    run = tagger("-C", str(repo.path), "release", "-i", f"{registry.host}/{image}", "--json", *args)
    assert run.code == 0, run.err
    return digest, run


def test_backport_table(tagger: Any, registry: Registry, repo: Repo) -> None:
    """The policy's example: 1.2.3, 1.3.0, backport 1.2.4, then 2.0.0-rc.1."""
    image = registry.new_repo()
    d123, _ = release_version(tagger, registry, repo, image, "1.2.3")
    assert registry.state(image) | {} == {
        repo.sha_tag: d123, "1.2.3": d123, "1.2": d123, "1": d123, "latest": d123,
    }
    d130, _ = release_version(tagger, registry, repo, image, "1.3.0")
    d124, run = release_version(tagger, registry, repo, image, "1.2.4")
    tags = run.tags()
    assert tags["1.2"]["action"] == "move" and tags["1.2"]["to"] == d124
    assert tags["1"] == {"tag": "1", "action": "skip", "from": d130, "to": None,
                         "reason": "1.3.0 is newer"}
    assert tags["latest"]["reason"] == "1.3.0 is newer"
    drc, run = release_version(tagger, registry, repo, image, "2.0.0-rc.1")
    assert {t: a["action"] for t, a in run.tags().items()} == {
        "2.0.0-rc.1": "create", "2.0": "skip", "2": "skip", "latest": "skip",
    }
    s = registry.state(image)
    assert (s["1.2"], s["1.3"], s["1"], s["latest"], s["2.0.0-rc.1"]) == (
        d124, d130, d130, d130, drc,
    )
    assert "2.0" not in s and "2" not in s


def test_json_result_shape(tagger: Any, registry: Registry, repo: Repo) -> None:
    image = registry.new_repo()
    digest, run = release_version(tagger, registry, repo, image, "1.0.0")
    doc = run.json
    assert doc == {
        "version": "1.0.0",
        "commit": repo.head,
        "immutable_tag": "1.0.0",
        "source": f"docker://{registry.host}/{image}:{repo.sha_tag}",
        "digest": digest,
        "dry_run": False,
        "images": [{"image": f"{registry.host}/{image}", "tags": [
            {"tag": "1.0.0", "action": "create", "from": None, "to": digest,
             "reason": "immutable"},
            {"tag": "1.0", "action": "create", "from": None, "to": digest,
             "reason": "newest 1.0.x"},
            {"tag": "1", "action": "create", "from": None, "to": digest, "reason": "newest 1.x"},
            {"tag": "latest", "action": "create", "from": None, "to": digest,
             "reason": "newest release"},
        ]}],
    }
    assert "1.0.0" in run.err and "create" in run.err  # the human table went to stderr


def test_rerun_is_a_no_op(tagger: Any, registry: Registry, repo: Repo) -> None:
    image = registry.new_repo()
    release_version(tagger, registry, repo, image, "1.1.0")
    before = registry.state(image)
    run = tagger("-C", str(repo.path), "release", "-i", f"{registry.host}/{image}", "--json")
    assert run.code == 0
    assert {t["action"] for t in run.tags().values()} == {"unchanged"}
    assert registry.state(image) == before


def test_immutable_conflict_refuses_and_writes_nothing(
    tagger: Any, registry: Registry, repo: Repo
) -> None:
    image = registry.new_repo()
    release_version(tagger, registry, repo, image, "1.0.0")
    repo.commit("next")
    repo.tag("v1.1.0")
    build(registry, repo, image)
    registry.push_image(image, "1.1.0", content="someone else's 1.1.0")
    other = registry.new_repo("second")  # a clean second target must not be written either
    before, before_other = registry.state(image), registry.state(other)
    run = tagger(
        "-C", str(repo.path), "release", "-i", f"{registry.host}/{image}",
        "-i", f"{registry.host}/{other}", "--json",
    )
    assert run.code == 3
    assert "1.1.0" in run.err and "never moves" in run.err
    assert run.tags()["1.1.0"]["action"] == "refused"
    assert registry.state(image) == before
    assert registry.state(other) == before_other


def test_sha_build(tagger: Any, registry: Registry, repo: Repo) -> None:
    image = registry.new_repo()
    digest = build(registry, repo, image)
    run = tagger("-C", str(repo.path), "release", "-i", f"{registry.host}/{image}", "--json")
    assert run.code == 0, run.err
    assert run.json["version"] is None and run.json["immutable_tag"] == repo.sha_tag
    assert run.tags() == {
        repo.sha_tag: {"tag": repo.sha_tag, "action": "unchanged", "from": digest,
                       "to": digest, "reason": "immutable"},
        "latest": {"tag": "latest", "action": "skip", "from": None, "to": None,
                   "reason": "not a release"},
    }
    run = tagger(
        "-C", str(repo.path), "release", "-i", f"{registry.host}/{image}", "--latest",
        "branch:main", "--json",
    )
    assert run.code == 0 and run.tags()["latest"]["action"] == "create"
    assert registry.digest(image, "latest") == digest


def test_version_command(tagger: Any, repo: Repo) -> None:
    run = tagger("-C", str(repo.path), "version")
    assert (run.code, run.out) == (0, repo.sha_tag + "\n")
    repo.tag("v2.0.0-rc.1")
    repo.tag("v1.0.0+build.7")
    assert tagger("-C", str(repo.path), "version").out == "2.0.0-rc.1\n"
    run = tagger("-C", str(repo.path), "version", "--sha-length", "10", "--tag-prefix", "x")
    assert run.out == "sha-" + repo.head[:10] + "\n"


def test_dirty_tree(tagger: Any, registry: Registry, repo: Repo) -> None:
    image = registry.new_repo()
    repo.tag("v1.0.0")
    digest = build(registry, repo, image)
    (repo.path / "file.txt").write_text("edited\n")
    run = tagger("-C", str(repo.path), "release", "-i", f"{registry.host}/{image}")
    assert run.code == 3 and "file.txt" in run.err and "--allow-dirty" in run.err
    assert registry.tags(image) == {repo.sha_tag}
    run = tagger(
        "-C", str(repo.path), "release", "-i", f"{registry.host}/{image}", "--allow-dirty",
        "--json",
    )
    assert run.code == 0, run.err
    assert [(t, a["action"]) for t, a in run.tags().items()] == [
        ("1.0.0-dirty", "create"), ("1.0", "skip"), ("1", "skip"), ("latest", "skip"),
    ]
    assert registry.state(image) == {repo.sha_tag: digest, "1.0.0-dirty": digest}


def test_missing_source_names_tag_and_flag(tagger: Any, registry: Registry, repo: Repo) -> None:
    image = registry.new_repo()
    repo.tag("v1.0.0")
    run = tagger("-C", str(repo.path), "release", "-i", f"{registry.host}/{image}")
    assert run.code == 3
    assert f"{image}:{repo.sha_tag}" in run.err and "--source" in run.err
    assert "Traceback" not in run.err


def test_exit_codes(tagger: Any, registry: Registry, repo: Repo, tmp_path: Any) -> None:
    assert tagger("-C", str(repo.path), "release", "--bogus").code == 2
    assert tagger("-C", str(repo.path), "release", "-i", "Bad/Name").code == 2
    assert tagger("-C", str(repo.path), "release", "-i", f"{registry.host}/x:tag").code == 2
    assert tagger("-C", str(repo.path), "release", "--latest", "sometimes", "-i", "a/b").code == 2
    plain = tmp_path / "plain"
    plain.mkdir()
    run = tagger("-C", str(plain), "version")
    assert run.code == 5 and "not inside a git repository" in run.err
    empty = tmp_path / "empty"
    empty.mkdir()
    import subprocess

    subprocess.run(["git", "init", "-q"], cwd=empty, check=True)
    run = tagger("-C", str(empty), "version")
    assert run.code == 5 and "no commits" in run.err
    from support.registry import free_port

    dead = f"127.0.0.1:{free_port()}"
    run = tagger("-C", str(repo.path), "release", "-i", f"{dead}/app")
    assert run.code == 4 and "cannot reach" in run.err and dead in run.err


@pytest.mark.parametrize(
    "shape", ["docker", "docker-list", "oci", "oci-index", "oci-no-mediatype"]
)
def test_retag_is_byte_exact(
    tagger: Any, registry: Registry, repo: Repo, shape: str
) -> None:
    image = registry.new_repo()
    repo.tag("v3.1.4")
    if shape == "docker":
        digest = registry.push_image(image, repo.sha_tag)
    elif shape == "oci":
        digest = registry.push_image(image, repo.sha_tag, oci=True)
    elif shape == "oci-no-mediatype":
        digest = registry.push_image(image, repo.sha_tag, oci=True, media_type_field=False)
    else:
        digest = registry.push_index(image, repo.sha_tag, oci=shape == "oci-index")
    source_bytes, source_type = registry.get_manifest(image, repo.sha_tag)
    run = tagger("-C", str(repo.path), "release", "-i", f"{registry.host}/{image}", "--json")
    assert run.code == 0, run.err
    assert run.json["digest"] == digest
    for tag in ("3.1.4", "3.1", "3", "latest"):
        data, media_type = registry.get_manifest(image, tag)
        assert data == source_bytes
        assert media_type == source_type
    expected = {
        "docker": DOCKER_MANIFEST, "docker-list": DOCKER_LIST, "oci": OCI_MANIFEST,
        "oci-index": OCI_INDEX, "oci-no-mediatype": OCI_MANIFEST,
    }[shape]
    assert source_type == expected


@pytest.mark.parametrize("index", [False, True])
def test_promote_from_another_repository(
    tagger: Any, registry: Registry, repo: Repo, index: bool
) -> None:
    """Build once in ci/…, promote to the release repository: blobs are mounted, the
    digest is unchanged."""
    ci, image = registry.new_repo("ci/app"), registry.new_repo("app")
    repo.tag("v1.0.0")
    push = registry.push_index if index else registry.push_image
    digest = push(ci, "build-1")
    run = tagger(
        "-C", str(repo.path), "release", "-i", f"{registry.host}/{image}",
        "--source", f"docker://{registry.host}/{ci}:build-1", "--json",
    )
    assert run.code == 0, run.err
    assert registry.get_manifest(image, "1.0.0")[0] == registry.get_manifest(ci, "build-1")[0]
    assert registry.state(image) == dict.fromkeys(["1.0.0", "1.0", "1", "latest"], digest)


def test_tag_pagination(tagger: Any, registry: Registry, repo: Repo) -> None:
    """Published versions are read across every page of tags/list (pages of 2)."""
    image = registry.new_repo()
    for v in ("1.0.0", "1.1.0", "1.5.0", "1.9.0", "2.0.0"):
        registry.push_image(image, v, content=v)
    proxy = Proxy(registry.url, page_size=2)
    try:
        repo.tag("v1.7.0")
        build(registry, repo, image)
        run = tagger("-C", str(repo.path), "release", "-i", f"{proxy.host}/{image}", "--json")
    finally:
        proxy.close()
    assert run.code == 0, run.err
    assert proxy.count("GET", "/tags/list") >= 4  # 6 tags in pages of 2, read twice
    tags = run.tags()
    assert tags["1.7"]["action"] == "create"
    assert tags["1"]["reason"] == "1.9.0 is newer"
    assert tags["latest"]["reason"] == "2.0.0 is newer"


def test_request_budget_for_a_first_release(tagger: Any, registry: Registry, repo: Repo) -> None:
    """A 4-tag release of an image already in the repository: source manifest, tag list,
    4 PUTs, the re-read; nothing fetched twice."""
    image = registry.new_repo()
    repo.tag("v1.0.0")
    build(registry, repo, image)
    proxy = Proxy(registry.url)
    try:
        run = tagger("-C", str(repo.path), "release", "-i", f"{proxy.host}/{image}")
    finally:
        proxy.close()
    assert run.code == 0, run.err
    assert proxy.count("PUT", "/manifests/") == 4
    assert proxy.count("GET", "/manifests/") == 1
    assert len(proxy.log) <= 8, proxy.log


def test_plan_changes_nothing_and_falls_back_offline(
    tagger: Any, registry: Registry, repo: Repo
) -> None:
    image = registry.new_repo()
    repo.tag("v1.0.0")
    repo.commit("two")
    repo.tag("v1.1.0")
    build(registry, repo, image)
    run = tagger("-C", str(repo.path), "plan", "-i", f"{registry.host}/{image}", "--json")
    assert run.code == 0, run.err
    assert run.json["dry_run"] is True
    assert [t["action"] for t in run.tags().values()] == ["create"] * 4
    assert registry.tags(image) == {repo.sha_tag}
    run = tagger("-C", str(repo.path), "release", "--dry-run", "-i", f"{registry.host}/{image}")
    assert run.code == 0 and registry.tags(image) == {repo.sha_tag}
    # offline: the published versions are the git tags
    repo.git("checkout", "-q", "v1.0.0")
    run = tagger("-C", str(repo.path), "plan", "--offline", "-i", f"{registry.host}/{image}",
                 "--json")
    assert run.code == 0
    assert run.tags()["latest"]["reason"] == "1.1.0 is newer"
    from support.registry import free_port

    run = tagger("-C", str(repo.path), "plan", "-i", f"127.0.0.1:{free_port()}/app")
    assert run.code == 0 and "published versions from git tags" in run.err


def test_reconcile_repairs_hand_edits(tagger: Any, registry: Registry) -> None:
    image = registry.new_repo()
    d = {v: registry.push_image(image, v, content=v) for v in ("1.2.3", "1.2.4", "1.3.0", "0.9.0")}
    registry.put_manifest(image, "1", *registry.get_manifest(image, "1.2.3"))
    registry.put_manifest(image, "latest", *registry.get_manifest(image, "0.9.0"))
    ref = f"{registry.host}/{image}"
    run = tagger("reconcile", "-i", ref, "--dry-run", "--json")
    assert run.code == 0, run.err
    tags = run.tags()
    assert tags["1"]["action"] == "move" and tags["1"]["from"] == d["1.2.3"]
    assert tags["1.2"]["action"] == "create"
    assert registry.digest(image, "1") == d["1.2.3"]  # dry run wrote nothing
    run = tagger("reconcile", "-i", ref, "--json")
    assert run.code == 0
    s = registry.state(image)
    assert (s["1.2"], s["1.3"], s["1"], s["latest"], s["0.9"]) == (
        d["1.2.4"], d["1.3.0"], d["1.3.0"], d["1.3.0"], d["0.9.0"],
    )
    assert "0" not in s
    run = tagger("reconcile", "-i", ref, "--json")
    assert {t["action"] for t in run.tags().values()} == {"unchanged"}
