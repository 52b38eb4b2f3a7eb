"""Edges a release engineer meets in CI, through tagger's CLI: CI hints, ignored
version-like tags, shallow clones, options per command, -C/--debug after the command."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.git import GIT_ENV, Repo
from support.registry import Registry


def shallow_clone(repo: Repo, dest: Path) -> Path:
    """What CI checks out: depth 1, no tags, detached HEAD."""
    env = {**GIT_ENV, "PATH": "/usr/bin:/bin"}
    url = f"file://{repo.path}"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", "--no-tags", url, str(dest)], env=env, check=True
    )
    subprocess.run(["git", "checkout", "-q", "--detach"], cwd=dest, env=env, check=True)
    return dest


# --- 1. CI hints --------------------------------------------------------------------------------


def test_tag_hint_is_ignored_when_head_has_a_version_tag(
    tagger: Any, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.tag("v1.3.0")
    monkeypatch.setenv("GITHUB_REF", "refs/tags/v1.9.9")
    run = tagger("-C", str(repo.path), "version")
    assert (run.code, run.out) == (0, "1.3.0\n"), run.err


def test_needed_tag_hint_without_commit_variable_exits_3(
    tagger: Any, repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = shallow_clone(repo, tmp_path / "clone")
    monkeypatch.setenv("CI_COMMIT_TAG", "v1.9.9")
    run = tagger("-C", str(clone), "version")
    assert run.code == 3 and run.out == ""
    assert "CI_COMMIT_SHA is not set" in run.err and "set CI_COMMIT_SHA" in run.err
    monkeypatch.setenv("CI_COMMIT_SHA", repo.head)
    run = tagger("-C", str(clone), "version")
    assert (run.code, run.out) == (0, "1.9.9\n"), run.err


# --- 3. a SHA build that may have been meant as a release --------------------------------------


@pytest.mark.parametrize("tag", ["v1.2", "V1.2.3", "v01.2.3", "v1.2.3-"])
def test_ignored_version_like_tag_warns(tagger: Any, repo: Repo, tag: str) -> None:
    repo.tag(tag)
    run = tagger("-C", str(repo.path), "version")
    assert (run.code, run.out) == (0, repo.sha_tag + "\n")
    assert f"warning: tag {tag} at HEAD is ignored" in run.err
    assert "vMAJOR.MINOR.PATCH" in run.err


def test_no_warning_for_plain_sha_builds_and_releases(tagger: Any, repo: Repo) -> None:
    repo.tag("nightly")
    assert tagger("-C", str(repo.path), "version").err == ""
    repo.tag("v1.2")  # beside a real version: not the reason for a SHA build
    repo.tag("v1.2.0")
    run = tagger("-C", str(repo.path), "version")
    assert (run.out, run.err) == ("1.2.0\n", "")


def test_shallow_clone_without_tags_warns(
    tagger: Any, repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.tag("v1.0.0")
    clone = shallow_clone(repo, tmp_path / "clone")
    run = tagger("-C", str(clone), "version")
    assert (run.code, run.out) == (0, repo.sha_tag + "\n")
    assert "warning: shallow clone without tags: fetch tags (git fetch --tags)" in run.err
    plan = tagger("-C", str(clone), "plan", "--offline")
    assert plan.code == 0 and "shallow clone without tags" in plan.err
    monkeypatch.setenv("GITHUB_REF", "refs/tags/v1.0.0")
    monkeypatch.setenv("GITHUB_SHA", repo.head)
    run = tagger("-C", str(clone), "version")
    assert (run.out, run.err) == ("1.0.0\n", "")


def test_release_warns_about_an_ignored_tag(tagger: Any, registry: Registry, repo: Repo) -> None:
    image = registry.new_repo()
    repo.tag("v2.0")
    registry.push_image(image, repo.sha_tag, content=repo.head)
    run = tagger("-C", str(repo.path), "release", "-i", f"{registry.host}/{image}")
    assert run.code == 0, run.err
    assert "warning: tag v2.0 at HEAD is ignored" in run.err


# --- 2. build metadata and the published set ---------------------------------------------------


def test_build_metadata_release_owns_its_lines_for_reconcile_and_backports(
    tagger: Any, registry: Registry, repo: Repo
) -> None:
    image = registry.new_repo()
    target = f"{registry.host}/{image}"

    def release(version: str) -> str:
        repo.commit(f"release {version}")
        repo.tag(f"v{version}")
        digest = registry.push_image(image, repo.sha_tag, content=repo.head)
        run = tagger("-C", str(repo.path), "release", "-i", target)
        assert run.code == 0, run.err
        return digest

    d123 = release("1.2.3")
    d130 = release("1.3.0+build.7")
    state = registry.state(image)
    assert state["1.3.0_build.7"] == d130
    assert (state["1"], state["latest"], state["1.3"], state["1.2"]) == (d130, d130, d130, d123)
    run = tagger("reconcile", "-i", target, "--json")
    assert run.code == 0, run.err
    assert {t: a["action"] for t, a in run.tags().items()} == {
        "1.2": "unchanged",
        "1.3": "unchanged",
        "1": "unchanged",
        "latest": "unchanged",
    }
    d124 = release("1.2.4")
    state = registry.state(image)
    assert (state["1.2"], state["1.3"], state["1"], state["latest"]) == (d124, d130, d130, d130)
    # a hand edit is pointed back at the build-metadata tag's digest
    registry.push_image(image, "latest", content="hand edit")
    assert tagger("reconcile", "-i", target).code == 0
    assert registry.state(image)["latest"] == d130


# --- 5. an image given twice is one target ------------------------------------------------------


def test_image_given_twice_is_written_once(tagger: Any, registry: Registry, repo: Repo) -> None:
    image = registry.new_repo()
    repo.tag("v1.0.0")
    registry.push_image(image, repo.sha_tag, content=repo.head)
    target = f"{registry.host}/{image}"
    run = tagger("-C", str(repo.path), "release", "-i", target, "-i", target, "--json")
    assert run.code == 0, run.err
    images = run.json["images"]
    assert isinstance(images, list) and [i["image"] for i in images] == [target]


def test_image_spellings_of_one_repository_are_one_target(tagger: Any, repo: Repo) -> None:
    run = tagger(
        "-C",
        str(repo.path),
        "plan",
        "--offline",
        "--json",
        "-i",
        "docker.io/acme/app",
        "-i",
        "acme/app",
        "-i",
        "index.docker.io/acme/app",
        "-i",
        "docker.io/library/web",
        "-i",
        "web",
    )
    assert run.code == 0, run.err
    images = run.json["images"]
    assert isinstance(images, list)
    assert [i["image"] for i in images] == ["docker.io/acme/app", "docker.io/library/web"]


# --- 6. a port out of range is a usage error ---------------------------------------------------


@pytest.mark.parametrize("command", ["plan", "release", "reconcile"])
@pytest.mark.parametrize("port", ["99999", "0", "65536"])
def test_port_out_of_range_is_a_usage_error(
    tagger: Any, repo: Repo, command: str, port: str
) -> None:
    run = tagger("-C", str(repo.path), command, "-i", f"127.0.0.1:{port}/app", "--retries", "0")
    assert run.code == 2, run.err
    assert f"invalid port {port}" in run.err and "1 to 65535" in run.err
    assert "InvalidURL" not in run.err


# --- 7. the secret filter masks secrets, not words ----------------------------------------------


def test_messages_about_repositories_and_paths_are_not_garbled(
    tagger: Any, registry: Registry, repo: Repo
) -> None:
    target = f"{registry.host}/acme/auth"
    run = tagger("-C", str(repo.path), "release", "-i", target)
    assert run.code == 3
    assert f"acme/auth:{repo.sha_tag}" in run.err and "<redacted>" not in run.err
    run = tagger("-C", str(repo.path), "release", "-i", target, "--source", "oci:/etc/passwd")
    assert run.code != 0 and "/etc/passwd" in run.err and "<redacted>" not in run.err
    run = tagger("-C", str(repo.path), "release", "-i", target, "--password-stdin")
    assert run.code == 2
    assert 'pipe the password or token: echo "$TOKEN" | tagger' in run.err


# --- 8. each command takes what it uses; -C and --debug after the command ----------------------

NOT_FOR_RECONCILE = [
    "--source",
    "--allow-dirty",
    "--tag-prefix",
    "--sha-prefix",
    "--sha-length",
    "--require-revision",
]


def test_reconcile_lists_and_takes_only_what_it_uses(tagger: Any) -> None:
    run = tagger("reconcile", "--help")
    assert run.code == 0 and "--image" in run.out and "--dry-run" in run.out
    for option in NOT_FOR_RECONCILE:
        assert option not in run.out, option
    for args in (
        ["--source", "docker://x/y:1"],
        ["--allow-dirty"],
        ["--tag-prefix", "api/v"],
        ["--sha-prefix", "g"],
        ["--sha-length", "9"],
        ["--require-revision"],
    ):
        run = tagger("reconcile", "-i", "127.0.0.1:1/app", *args)
        assert run.code == 2 and "No such option" in run.err, args


def test_version_lists_no_registry_option(tagger: Any) -> None:
    run = tagger("version", "--help")
    assert run.code == 0 and "--tag-prefix" in run.out
    for option in ("--image", "--source", "--latest", "--json", "--username", "--retries"):
        assert option not in run.out, option


@pytest.mark.parametrize("command", ["version", "plan", "release", "reconcile"])
def test_c_and_debug_after_the_command(tagger: Any, command: str, tmp_path: Path) -> None:
    run = tagger(command, "-C", str(tmp_path / "missing"), "--debug", "-h")
    assert run.code == 0 and "-C PATH" in run.out and "--debug" in run.out
    if command == "reconcile":  # reads no git: -C only finds the configuration
        return
    run = tagger(command, "-C", str(tmp_path / "missing"), "--debug")
    assert run.code == 5, run.err
    assert "Traceback" in run.err and "missing: no such directory" in run.err


def test_c_after_the_command_runs_there(tagger: Any, repo: Repo) -> None:
    repo.tag("v3.1.4")
    run = tagger("version", "-C", str(repo.path))
    assert (run.code, run.out) == (0, "3.1.4\n"), run.err
    run = tagger("plan", "--offline", "-C", str(repo.path), "--json")
    assert run.code == 0 and run.json["immutable_tag"] == "3.1.4"


# --- 4. hints fit their error ---------------------------------------------------------------------


def test_too_long_prerelease_hint_is_about_the_git_tag(tagger: Any, repo: Repo) -> None:
    tag = "v1.0.0-" + "a" * 130
    repo.tag(tag)
    run = tagger("-C", str(repo.path), "version")
    assert run.code == 2 and run.out == ""
    assert "not a valid Docker tag" in run.err and f"git tag {tag} is too long" in run.err
    assert "--sha-prefix" not in run.err and "--tag-prefix" not in run.err


def test_bad_sha_prefix_hint_names_it(tagger: Any, repo: Repo) -> None:
    run = tagger("-C", str(repo.path), "version", "--sha-prefix", "bad/")
    assert run.code == 2 and "--sha-prefix" in run.err


def test_unknown_latest_policy_from_a_flag(tagger: Any, repo: Repo) -> None:
    run = tagger("-C", str(repo.path), "plan", "--offline", "--latest", "sometimes")
    assert run.code == 2
    assert "--latest: expected highest, never, always or branch:NAME" in run.err
    assert "override it with a flag" not in run.err


def test_shallow_branch_pipeline_does_not_warn(
    tagger: Any, repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """actions/checkout's default (depth 1, no tags) on a branch push: the pipeline
    says it is no tag build, so a SHA build is what was meant."""
    clone = shallow_clone(repo, tmp_path / "clone")
    monkeypatch.setenv("GITHUB_REF", "refs/heads/main")
    monkeypatch.setenv("GITHUB_SHA", repo.head)
    run = tagger("-C", str(clone), "version")
    assert (run.code, run.out, run.err) == (0, repo.sha_tag + "\n", "")


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_ctrl_c_while_tagger_starts_is_a_stop_not_a_traceback(
    repo: Repo, tmp_path: Path, as_json: bool
) -> None:
    """A Ctrl-C that lands while the CLI's modules load (before tagger's handlers exist)
    exits 130 with one line, and one object with --json. The interrupt is made certain
    by a module on the path that raises it as it is imported, where click's would be."""
    import os
    import sys

    fake = tmp_path / "site" / "click"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise KeyboardInterrupt\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), *sys.path])}
    args = [sys.executable, "-m", "tagger", "plan", "--offline"] + (["--json"] if as_json else [])
    proc = subprocess.run(args, cwd=repo.path, env=env, capture_output=True, text=True)
    assert proc.returncode == 130
    assert proc.stderr == "tagger: stopped by SIGINT\n"
    if as_json:
        assert proc.stdout == '{"error": "stopped by SIGINT", "exit_code": 130}\n'
    else:
        assert proc.stdout == ""
