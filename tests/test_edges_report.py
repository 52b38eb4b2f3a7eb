"""The edges a release engineer meets in CI: what a run that stops short reports
(exit code, --json, the table, the Action's outputs), a plan as a gate, the noise on
stderr, signals while requests are retried, and a race, a kill and a re-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support.cli import child_env, stop_with
from support.git import CI_VARS, Repo
from support.proxy import Proxy
from support.registry import Registry, free_port

from tagger import config, gitstate, identity, release
from tagger.registry import Registries


def _tagged(registry: Registry, repo: Repo, image: str, version: str = "1.0.0") -> str:
    repo.tag(f"v{version}")
    return registry.push_image(image, repo.sha_tag, content=version)


# --- 1. plan is a gate -------------------------------------------------------------
def test_plan_of_a_refused_release_exits_3_with_the_plan(
    tagger: Any, registry: Registry, repo: Repo
) -> None:
    image = registry.new_repo()
    other = registry.push_image(image, "1.0.0", content="published earlier, another image")
    _tagged(registry, repo, image)
    run = tagger("-C", str(repo.path), "plan", "-i", f"{registry.host}/{image}", "--json")
    assert run.code == 3, run.err
    assert "1.0.0 already exists" in run.err and "never moves" in run.err
    assert run.tags()["1.0.0"]["action"] == "refused" and run.tags()["1.0.0"]["from"] == other
    assert "refused" in run.err  # the table is printed too
    assert run.json["exit_code"] == 3


def test_plan_of_a_missing_source_exits_3_with_the_plan(
    tagger: Any, registry: Registry, repo: Repo
) -> None:
    image = registry.new_repo()
    repo.tag("v1.0.0")  # nothing pushed for this commit
    run = tagger("-C", str(repo.path), "plan", "-i", f"{registry.host}/{image}", "--json")
    assert run.code == 3, run.err
    assert repo.sha_tag in run.err
    assert [t["action"] for t in run.tags().values()] == ["create"] * 4
    assert run.json["exit_code"] == 3 and run.json["dry_run"] is True


def test_plan_of_a_source_from_another_commit_exits_3(
    tagger: Any, registry: Registry, repo: Repo
) -> None:
    image = registry.new_repo()
    repo.tag("v1.0.0")
    labels = {"org.opencontainers.image.revision": "0" * 40}
    registry.push_image(image, repo.sha_tag, content="x", labels=labels)
    run = tagger("-C", str(repo.path), "plan", "-i", f"{registry.host}/{image}")
    assert run.code == 3, run.err
    assert "built from" in run.err and "1.0.0" in run.err


def test_plan_of_a_healthy_release_exits_0(tagger: Any, registry: Registry, repo: Repo) -> None:
    image = registry.new_repo()
    _tagged(registry, repo, image)
    run = tagger("-C", str(repo.path), "plan", "-i", f"{registry.host}/{image}", "--json")
    assert run.code == 0, run.err
    assert "status" not in run.tags()["1.0.0"]


# --- 2. a run that stops short says per tag what happened ---------------------------
def test_refused_multi_target_release_marks_the_healthy_target_not_written(
    tagger: Any, registry: Registry, repo: Repo
) -> None:
    a, b = registry.new_repo(), registry.new_repo()
    registry.push_image(b, "1.0.0", content="another image")
    _tagged(registry, repo, a)
    args = ("-i", f"{registry.host}/{a}", "-i", f"{registry.host}/{b}")
    run = tagger("-C", str(repo.path), "release", *args, "--json")
    assert run.code == 3, run.err
    healthy = run.tags(0)
    assert {t: (v["action"], v["status"]) for t, v in healthy.items()} == {
        "1.0.0": ("create", "not written"),
        "1.0": ("create", "not written"),
        "1": ("create", "not written"),
        "latest": ("create", "not written"),
    }
    assert run.tags(1)["1.0.0"]["action"] == "refused"
    assert run.tags(1)["1.0.0"]["status"] == "not written"
    assert "STATUS" in run.err and "not written" in run.err
    assert registry.tags(a) == {repo.sha_tag}


def test_reconcile_that_stops_at_the_second_image_reports_the_first(
    tagger: Any, registry: Registry, repo: Repo
) -> None:
    a = registry.new_repo()
    d1 = registry.push_image(a, "1.0.0", content="1.0.0")
    d2 = registry.push_image(a, "1.1.0", content="1.1.0")
    registry.put_manifest(a, "1", *registry.get_manifest(a, "1.0.0"))
    dead = f"127.0.0.1:{free_port()}/gone"  # nothing listens there
    run = tagger(
        "reconcile", "-i", f"{registry.host}/{a}", "-i", dead, "--retries", "0", "--json"
    )
    assert run.code == 4, run.err
    assert len(run.json["images"]) == 1
    tags = run.tags(0)
    assert tags["1"]["action"] == "move" and tags["1"]["status"] == "done"
    assert registry.digest(a, "1") == d2 != d1
    assert "done" in run.err and dead.split("/")[0] in run.err


# --- 3. the Action's outputs say what the registry holds ----------------------------
def test_outputs_of_a_refused_release_name_nothing(
    registry: Registry, repo: Repo, tmp_path: Path
) -> None:
    a, b = registry.new_repo(), registry.new_repo()
    registry.push_image(b, "1.0.0", content="another image")
    _tagged(registry, repo, a)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in CI_VARS}
    env.update(GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(out), GITHUB_STEP_SUMMARY=os.devnull)
    args = ["-i", f"{registry.host}/{a}", "-i", f"{registry.host}/{b}"]
    proc = subprocess.run(
        [sys.executable, "-m", "tagger", "release", *args],
        cwd=repo.path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    from support.ghactions import read_outputs_file

    outputs = read_outputs_file(out)
    assert outputs["tags"] == "" and outputs["digest"] == ""
    assert json.loads(outputs["json"])["exit_code"] == 3


def test_outputs_of_a_rerun_name_the_tags_already_there(
    registry: Registry, repo: Repo, tmp_path: Path
) -> None:
    from tagger import render

    image = registry.new_repo()
    digest = _tagged(registry, repo, image)
    for tag in ("1.0.0", "1.0"):
        registry.put_manifest(image, tag, *registry.get_manifest(image, repo.sha_tag))
    cfg = config.Config(images=(f"{registry.host}/{image}",))
    ident = identity.identify(cfg, gitstate.current_state(str(repo.path), {}), allow_dirty=False)
    regs = Registries()
    try:
        planned = release.plan(cfg, ident, regs)
    finally:
        regs.close()
    out = render.outputs(planned.result)
    ref = f"{registry.host}/{image}"
    assert out["tags"].splitlines() == [f"{ref}:1.0.0", f"{ref}:1.0"]  # not 1, latest
    assert out["digest"] == digest


# --- 4. --json prints one object on every run ---------------------------------------
@pytest.mark.parametrize(
    "args",
    [("release", "--json", "--retries", "many"), ("plan", "--json", "--no-such-flag")],
    ids=["bad-value", "unknown-option"],
)
def test_json_on_a_usage_error(tagger: Any, repo: Repo, args: tuple[str, ...]) -> None:
    run = tagger("-C", str(repo.path), *args)
    assert run.code == 2
    doc = run.json
    assert doc["exit_code"] == 2 and doc["error"]


def test_json_on_an_unexpected_error(
    tagger: Any, repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (a non-TaggerError) still prints one object, and the step's ``json``
    output. Nothing real raises one, so a bug is planted where git is read."""

    def bug(*args: object, **kwargs: object) -> None:
        raise RuntimeError("planted bug")

    monkeypatch.setattr(gitstate, "current_state", bug)
    out_file = tmp_path / "github_output"
    out_file.write_text("")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(out_file))
    run = tagger("-C", str(repo.path), "plan", "--offline", "--json")
    assert run.code == 1
    assert run.json == {"error": "unexpected error: RuntimeError: planted bug", "exit_code": 1}
    assert run.err.startswith("::error") and "Traceback" not in run.err  # one annotation
    assert len(run.err.strip().splitlines()) == 1
    assert '"exit_code": 1' in out_file.read_text()  # the json output, for later steps


# --- 6. release with no image ------------------------------------------------------
@pytest.mark.parametrize("dry", [(), ("--dry-run",)], ids=["release", "dry-run"])
def test_release_without_an_image_is_a_usage_error(
    tagger: Any, repo: Repo, dry: tuple[str, ...]
) -> None:
    repo.tag("v1.0.0")
    run = tagger("-C", str(repo.path), "release", *dry, "--json")
    assert run.code == 2, run.err
    assert "--image REPOSITORY" in run.err and "unexpected" not in run.err
    assert run.json == {"error": run.json["error"], "exit_code": 2}


# --- 7. only tagger's own lines without --debug -------------------------------------
def test_an_unreachable_registry_is_one_message(tagger: Any, repo: Repo) -> None:
    repo.tag("v1.0.0")
    dead = f"127.0.0.1:{free_port()}/app"
    proc = subprocess.run(
        [sys.executable, "-m", "tagger", "release", "-i", dead, "--retries", "3"],
        cwd=repo.path, env=child_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 4
    lines = proc.stderr.strip().splitlines()
    assert len(lines) <= 2, proc.stderr
    assert "Retrying" not in proc.stderr and "NewConnectionError" not in proc.stderr


# --- 8. a signal while requests are retried ----------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_ends_retries_at_once(
    tagger: Any, registry: Registry, repo: Repo, proxy: Proxy, sig: signal.Signals
) -> None:
    image = registry.new_repo()
    digest = _tagged(registry, repo, image)
    seen = threading.Event()

    def note(method: str, path: str) -> None:
        seen.set()

    proxy.hook = note
    proxy.faults.first_429, proxy.faults.retry_after = 10_000, "30"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tagger", "release", "-i", f"{proxy.host}/{image}", "--json"],
        cwd=repo.path, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert seen.wait(30)
        deadline = time.monotonic() + 30
        while proxy.count() < 1:  # the 429 was answered: tagger now waits 30 s to retry
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.01)
        out, err, took = stop_with(proc, sig, timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert took < 5
    assert proc.returncode == 128 + sig, err
    assert sig.name in err
    assert json.loads(out)["exit_code"] == 128 + sig
    assert registry.tags(image) == {repo.sha_tag}
    proxy.hook, proxy.faults.first_429 = None, 0
    run = tagger("-C", str(repo.path), "release", "-i", f"{proxy.host}/{image}")
    assert run.code == 0, run.err
    assert registry.digest(image, "1.0.0") == digest


# --- 9. a race, a kill and a re-run -------------------------------------------------
def _ident(repo: Repo, ref: str) -> identity.Identity:
    cfg = config.Config(images=(ref,))
    return identity.identify(cfg, gitstate.current_state(str(repo.path), {}), allow_dirty=False)


def test_rerun_of_an_older_release_killed_after_a_race_repairs_the_floating_tags(
    tagger: Any, registry: Registry, repo: Repo
) -> None:
    image = registry.new_repo()
    ref = f"{registry.host}/{image}"
    d: dict[str, str] = {}
    ids: dict[str, identity.Identity] = {}
    for v in ("1.2.3", "1.2.4", "1.3.0"):
        repo.commit(v)
        repo.tag(f"v{v}")
        d[v] = registry.push_image(image, repo.sha_tag, content=v)
        ids[v] = _ident(repo, ref)
    for v in ("1.2.3", "1.3.0"):  # 1.2.4 read the registry before 1.3.0 finished…
        regs = Registries()
        try:
            cfg = config.Config(images=(ref,))
            release.release(cfg, ids[v], regs, dry_run=False, stop=release.StopFlag())
        finally:
            regs.close()
    # …then wrote after it, and was killed before its re-read and repair
    data, media_type = registry.get_manifest(image, "1.2.3")
    m124 = registry.get_manifest(image, f"sha-{ids['1.2.4'].state.commit[:7]}")
    for tag in ("1.2.4", "1.2", "1", "latest"):
        registry.put_manifest(image, tag, *m124)
    assert registry.digest(image, "latest") == d["1.2.4"] and data and media_type
    subprocess.run(["git", "-C", str(repo.path), "checkout", "-q", "v1.2.4"], check=True)

    plan = tagger("-C", str(repo.path), "plan", "-i", ref, "--json")
    assert plan.code == 0, plan.err
    assert plan.tags()["1"]["action"] == "move" and plan.tags()["1"]["to"] == d["1.3.0"]
    assert registry.digest(image, "1") == d["1.2.4"]  # a plan writes nothing

    run = tagger("-C", str(repo.path), "release", "-i", ref, "--json")
    assert run.code == 0, run.err
    tags = run.tags()
    assert tags["1.2.4"]["action"] == "unchanged" and tags["1.2"]["action"] == "unchanged"
    for tag in ("1", "latest"):
        assert tags[tag]["action"] == "move", tags[tag]
        assert tags[tag]["from"] == d["1.2.4"] and tags[tag]["to"] == d["1.3.0"]
        reason = str(tags[tag]["reason"])
        assert reason.startswith("1.3.0 is newer; repaired: pointed at 1.3.0 (was sha256:")
    s = registry.state(image)
    assert s["1.2"] == d["1.2.4"] and s["1.3"] == d["1.3.0"]
    assert s["1"] == d["1.3.0"] and s["latest"] == d["1.3.0"]
    again = tagger("-C", str(repo.path), "release", "-i", ref, "--json")
    assert again.code == 0 and again.tags()["1"]["action"] == "skip"
