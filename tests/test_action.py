"""The GitHub Action (action.yml) run step by step as GitHub's runner runs it (see
ghactions.py), against the real test registry, from `git clone --depth 1 --no-tags`
workspaces like actions/checkout's default."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import GIT_ENV, Registry, Repo
from ghactions import ActionRun, Runner

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def runner_temp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RUNNER_TEMP, shared by the session's simulated jobs, so the action's own
    virtual environment is created and installed once and reused afterwards (as it
    is when a job uses the action twice)."""
    return tmp_path_factory.mktemp("runner-temp")


def job_env(**github: str) -> dict[str, str]:
    """The runner's environment: this machine's, minus any CI or tagger settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "RUNNER_", "TAGGER_", "CI_")) and k != "CI"
    }
    env.update(GITHUB_REPOSITORY="acme/app", GITHUB_ACTOR="octocat", **github)
    return env


def shallow_clone(origin: Repo, dest: Path, branch: str | None = None) -> Path:
    """actions/checkout's default: depth 1, no tags."""
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", "--no-tags"]
        + (["--branch", branch] if branch else [])
        + [f"file://{origin.path}", str(dest)],
        check=True,
        env={**os.environ, **GIT_ENV},
    )
    assert subprocess.run(
        ["git", "tag"], cwd=dest, capture_output=True, text=True, check=True
    ).stdout == ""
    assert (dest / ".git" / "shallow").exists()
    return dest


def run_action(
    runner_temp: Path, workspace: Path, env: dict[str, str], **inputs: str
) -> ActionRun:
    runner = Runner(runner_temp, workspace, env)
    return runner.run_action(ROOT, {k.replace("_", "-"): v for k, v in inputs.items()})


def tag_push(origin: Repo, version: str) -> dict[str, str]:
    return job_env(
        GITHUB_EVENT_NAME="push",
        GITHUB_REF=f"refs/tags/v{version}",
        GITHUB_REF_NAME=f"v{version}",
        GITHUB_SHA=origin.head,
    )


def publish(registry: Registry, image: str, digest: str, *tags: str) -> None:
    data, media_type = registry.get_manifest(image, digest)
    for t in tags:
        registry.put_manifest(image, t, data, media_type)


def short(digest: str) -> str:
    return f"`{digest[:19]}`"


def row(image: str, tag: str, action: str, frm: str | None, to: str | None, reason: str) -> str:
    f = short(frm) if frm else "-"
    t = short(to) if to else "-"
    return f"| `{image}` | `{tag}` | {action} | {f} → {t} | {reason} |"


def test_tag_push_releases_from_tagless_shallow_clone(
    registry: Registry, tmp_path: Path, runner_temp: Path
) -> None:
    """The done-when: v1.4.0 pushed, actions/checkout's default clone has no tags."""
    app, mirror = registry.new_repo(), registry.new_repo("mirror")
    origin = Repo(tmp_path / "origin")
    origin.commit("1.3.0")
    origin.tag("v1.3.0")
    old = registry.push_image(app, origin.sha_tag, content="1.3.0")
    publish(registry, app, old, "1.3.0", "1.3", "1", "latest")
    origin.commit("1.4.0")
    origin.tag("v1.4.0")
    new = registry.push_image(app, origin.sha_tag, content="1.4.0")  # CI's build
    ws = shallow_clone(origin, tmp_path / "workspace")

    image_input = f"{registry.host}/{app}\n  {registry.host}/{mirror}  \n"
    run = run_action(runner_temp, ws, tag_push(origin, "1.4.0"), image=image_input)

    assert run.code == 0, run.log
    a, m = f"{registry.host}/{app}", f"{registry.host}/{mirror}"
    assert run.outputs["version"] == "1.4.0"
    assert run.outputs["tag"] == "1.4.0"
    assert run.outputs["digest"] == new
    assert run.outputs["tags"].splitlines() == [
        f"{a}:1.4.0", f"{a}:1.4", f"{a}:1", f"{a}:latest",
        f"{m}:1.4.0", f"{m}:1.4", f"{m}:1", f"{m}:latest",
    ]  # fmt: skip
    doc = run.json
    assert doc["version"] == "1.4.0" and doc["commit"] == origin.head
    assert doc["source"] == f"docker://{a}:{origin.sha_tag}"
    assert doc["notes"] == ["used CI hint: tag v1.4.0"]
    assert [(t["tag"], t["action"]) for t in doc["images"][0]["tags"]] == [
        ("1.4.0", "create"), ("1.4", "create"), ("1", "move"), ("latest", "move"),
    ]  # fmt: skip

    s = registry.state(app)
    assert (s["1.4.0"], s["1.4"], s["1"], s["latest"], s["1.3"]) == (new, new, new, new, old)
    assert set(registry.state(mirror).values()) == {new}
    assert set(registry.tags(mirror)) == {"1.4.0", "1.4", "1", "latest"}

    assert "### tagger release: `1.4.0`" in run.summary
    assert f"version 1.4.0 · commit `{origin.head[:12]}`" in run.summary
    assert "> used CI hint: tag v1.4.0" in run.summary
    for line in (
        row(a, "1.4.0", "create", None, new, "immutable"),
        row(a, "1.4", "create", None, new, "newest 1.4.x"),
        row(a, "1", "move", old, new, "newest 1.x"),
        row(a, "latest", "move", old, new, "newest release"),
        row(m, "latest", "create", None, new, "newest release"),
    ):
        assert line in run.summary.splitlines(), (line, run.summary)
    assert not run.annotations

    # a re-run (the job retried) changes nothing and still reports every tag
    again = run_action(runner_temp, ws, tag_push(origin, "1.4.0"), image=image_input)
    assert again.code == 0, again.log
    assert again.outputs["tags"] == run.outputs["tags"]
    assert {t["action"] for i in again.json["images"] for t in i["tags"]} == {"unchanged"}


def test_backport_moves_only_its_minor_line(
    registry: Registry, tmp_path: Path, runner_temp: Path
) -> None:
    """What docker/metadata-action gets wrong: a backport must not move 1 or latest."""
    app = registry.new_repo()
    origin = Repo(tmp_path / "origin")
    origin.tag("v1.2.3")
    d123 = registry.push_image(app, origin.sha_tag, content="1.2.3")
    publish(registry, app, d123, "1.2.3", "1.2")
    origin.git("checkout", "-q", "-b", "release-1.2")
    origin.git("checkout", "-q", "main")
    origin.commit("1.3.0")
    d130 = registry.push_image(app, origin.sha_tag, content="1.3.0")
    publish(registry, app, d130, "1.3.0", "1.3", "1", "latest")
    origin.git("checkout", "-q", "release-1.2")
    origin.commit("fix for 1.2")
    origin.tag("v1.2.4")
    d124 = registry.push_image(app, origin.sha_tag, content="1.2.4")
    ws = shallow_clone(origin, tmp_path / "workspace", branch="release-1.2")

    run = run_action(runner_temp, ws, tag_push(origin, "1.2.4"), image=f"{registry.host}/{app}")

    assert run.code == 0, run.log
    a = f"{registry.host}/{app}"
    assert run.outputs["tags"].splitlines() == [f"{a}:1.2.4", f"{a}:1.2"]
    s = registry.state(app)
    assert (s["1.2"], s["1.3"], s["1"], s["latest"]) == (d124, d130, d130, d130)
    assert row(a, "1", "skip", d130, None, "1.3.0 is newer") in run.summary.splitlines()
    assert row(a, "latest", "skip", d130, None, "1.3.0 is newer") in run.summary.splitlines()


def test_branch_push_is_a_sha_build(
    registry: Registry, tmp_path: Path, runner_temp: Path
) -> None:
    app = registry.new_repo()
    origin = Repo(tmp_path / "origin")
    digest = registry.push_image(app, origin.sha_tag)
    ws = shallow_clone(origin, tmp_path / "workspace")
    env = job_env(
        GITHUB_EVENT_NAME="push", GITHUB_REF="refs/heads/main", GITHUB_SHA=origin.head
    )
    a = f"{registry.host}/{app}"

    run = run_action(runner_temp, ws, env, image=a)
    assert run.code == 0, run.log
    assert run.outputs["version"] == ""
    assert run.outputs["tag"] == origin.sha_tag
    assert run.outputs["tags"] == f"{a}:{origin.sha_tag}"
    assert run.json["version"] is None
    assert "SHA build, no release version" in run.summary
    assert set(registry.tags(app)) == {origin.sha_tag}

    # continuous delivery: latest follows main
    run = run_action(runner_temp, ws, env, image=a, latest="branch:main", sha_length="7")
    assert run.code == 0, run.log
    assert run.outputs["tags"].splitlines() == [f"{a}:{origin.sha_tag}", f"{a}:latest"]
    assert registry.digest(app, "latest") == digest


def test_pull_request_pushes_nothing_unless_allowed(
    registry: Registry, tmp_path: Path, runner_temp: Path
) -> None:
    """A pull request's build is never pushed, so the default source does not exist:
    the action succeeds without touching the registry; with allow-pr it tries."""
    app = registry.new_repo()
    origin = Repo(tmp_path / "origin")
    ws = shallow_clone(origin, tmp_path / "workspace")
    env = job_env(
        GITHUB_EVENT_NAME="pull_request", GITHUB_REF="refs/pull/7/merge", GITHUB_SHA=origin.head
    )
    a = f"{registry.host}/{app}"

    run = run_action(runner_temp, ws, env, image=a)
    assert run.code == 0, run.log
    assert registry.tags(app) == set()
    assert run.outputs["tag"] == origin.sha_tag
    assert run.outputs["digest"] == ""
    assert run.json["dry_run"] is True
    note = "pull request #7: nothing pushed (pass --allow-pr to publish from a pull request)"
    assert f"> {note}" in run.summary
    assert f"note: {note}" in run.log

    run = run_action(runner_temp, ws, env, image=a, allow_pr="true")
    assert run.code == 3, run.log
    assert [(x.level, x.title) for x in run.annotations] == [("error", "tagger")]
    assert f"{a}:{origin.sha_tag}" in run.annotations[0].message
    assert "exit code 3" in run.summary
    assert run.json["exit_code"] == 3
    assert registry.tags(app) == set()


def test_dry_run_plans_and_writes_nothing(
    registry: Registry, tmp_path: Path, runner_temp: Path
) -> None:
    app = registry.new_repo()
    origin = Repo(tmp_path / "origin")
    origin.tag("api/v2.0.0")
    digest = registry.push_image(app, origin.sha_tag)
    ws = shallow_clone(origin, tmp_path / "workspace")
    a = f"{registry.host}/{app}"

    run = run_action(
        runner_temp, ws, job_env(GITHUB_EVENT_NAME="push", GITHUB_REF="refs/tags/api/v2.0.0",
                                 GITHUB_SHA=origin.head),
        image=a, dry_run="true", tag_prefix="api/v",
    )  # fmt: skip
    assert run.code == 0, run.log
    assert run.outputs["version"] == "2.0.0"
    assert run.outputs["digest"] == digest
    assert run.outputs["tags"].splitlines() == [f"{a}:2.0.0", f"{a}:2.0", f"{a}:2", f"{a}:latest"]
    assert "### tagger plan: `2.0.0` (dry run: nothing written)" in run.summary
    assert set(registry.tags(app)) == {origin.sha_tag}


def test_immutable_conflict_fails_the_step_with_an_annotation(
    registry: Registry, tmp_path: Path, runner_temp: Path
) -> None:
    app = registry.new_repo()
    origin = Repo(tmp_path / "origin")
    origin.tag("v1.0.0")
    other = registry.push_image(app, "1.0.0", content="published earlier, another image")
    registry.push_image(app, origin.sha_tag)
    ws = shallow_clone(origin, tmp_path / "workspace")

    run = run_action(
        runner_temp, ws, tag_push(origin, "1.0.0"), image=f"{registry.host}/{app}"
    )
    assert run.code == 3
    assert len(run.annotations) == 1
    ann = run.annotations[0]
    assert ann.title == "tagger"
    assert "1.0.0 already exists" in ann.message and "nothing was written" in ann.message
    assert f"tagger: {ann.message.splitlines()[0]}" not in run.log  # the annotation only
    assert run.json["images"][0]["tags"][0]["action"] == "refused"
    assert run.outputs["tags"] == ""
    assert "| refused |" in run.summary
    assert set(registry.tags(app)) == {"1.0.0", origin.sha_tag}
    assert registry.digest(app, "1.0.0") == other


def test_working_directory_and_comma_separated_images(
    registry: Registry, tmp_path: Path, runner_temp: Path
) -> None:
    a1, a2 = registry.new_repo(), registry.new_repo()
    origin = Repo(tmp_path / "origin")
    origin.tag("v0.3.0")
    digest = registry.push_image(a1, origin.sha_tag)
    ws = tmp_path / "workspace"
    ws.mkdir()
    shallow_clone(origin, ws / "src")
    images = f"{registry.host}/{a1},{registry.host}/{a2}"

    run = run_action(
        runner_temp, ws, tag_push(origin, "0.3.0"), image=images, working_directory="src"
    )
    assert run.code == 0, run.log
    assert [i["image"] for i in run.json["images"]] == images.split(",")
    assert set(registry.tags(a2)) == {"0.3.0", "0.3", "latest"}  # no "0" for 0.x
    assert registry.digest(a2, "0.3.0") == digest
