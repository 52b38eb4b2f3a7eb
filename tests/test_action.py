"""The GitHub Action (action.yml) run step by step as GitHub's runner runs it (see
support/ghactions.py), against the real test registry, from `git clone --depth 1 --no-tags`
workspaces like actions/checkout's default; and the CI recipes: action.yml and every
workflow validate against GitHub's and GitLab's schemas, the README shows each file
under examples/ verbatim, and each recipe's tagger part runs against a real registry
the way its CI would run it."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

import pytest
import requests
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from support.daemon import Daemon
from support.ghactions import ActionRun, Runner, condition, substitute
from support.git import GIT_ENV, Repo
from support.registry import Registry, need_binary, start_registry

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
GITHUB_EXAMPLES = sorted((EXAMPLES / "github").glob("*.yml"))


@dataclass
class AuthRegistry:
    """A registry that needs Basic auth, and an open one on the same storage (to push
    sources and read results without credentials)."""

    open: Registry
    host: str
    user: str
    password: str


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    htpasswd = need_binary("htpasswd")
    root = tmp_path_factory.mktemp("auth-registry")
    user, password = "ci-user", "pw-" + secrets.token_urlsafe(16)
    entry = subprocess.run(
        [htpasswd, "-Bbn", user, password], capture_output=True, text=True, check=True
    ).stdout
    (root / "htpasswd").write_text(entry)
    procs = []
    try:
        proc, open_host = start_registry(root / "open")
        procs.append(proc)
        (root / "auth").mkdir()
        (root / "auth" / "data").symlink_to(root / "open" / "data")
        proc, host = start_registry(
            root / "auth", f"auth:\n  htpasswd: {{realm: basic-realm, path: {root / 'htpasswd'}}}\n"
        )
        procs.append(proc)
        yield AuthRegistry(Registry(open_host, root / "open"), host, user, password)
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)


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
    env.update(
        GITHUB_SERVER_URL="https://github.com",
        GITHUB_REPOSITORY="acme/app",
        GITHUB_ACTOR="octocat",
        **github,
    )
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
    assert (
        subprocess.run(["git", "tag"], cwd=dest, capture_output=True, text=True, check=True).stdout
        == ""
    )
    assert (dest / ".git" / "shallow").exists()
    return dest


def run_action(runner_temp: Path, workspace: Path, env: dict[str, str], **inputs: str) -> ActionRun:
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
    # no error; the image has no revision label to check: a warning annotation says so
    assert [(x.level, x.title) for x in run.annotations] == [("warning", "tagger")]
    assert "org.opencontainers.image.revision" in run.annotations[0].message
    assert f"> **warning:** {run.annotations[0].message}" in run.summary
    assert "warning: " not in run.log  # the annotation instead of the plain line

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


def test_branch_push_is_a_sha_build(registry: Registry, tmp_path: Path, runner_temp: Path) -> None:
    app = registry.new_repo()
    origin = Repo(tmp_path / "origin")
    digest = registry.push_image(app, origin.sha_tag)
    ws = shallow_clone(origin, tmp_path / "workspace")
    env = job_env(GITHUB_EVENT_NAME="push", GITHUB_REF="refs/heads/main", GITHUB_SHA=origin.head)
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


def test_image_with_capitals_is_lowercased(
    registry: Registry, tmp_path: Path, runner_temp: Path
) -> None:
    """ghcr.io/${{ github.repository }} keeps the owner's capitals (Acme/App); the
    action lowercases its image input, as docker/metadata-action does."""
    app = f"acme/app{secrets.token_hex(3)}"
    origin = Repo(tmp_path / "origin")
    digest = registry.push_image(app, origin.sha_tag)
    ws = shallow_clone(origin, tmp_path / "workspace")
    shouting = f"{registry.host}/{app.replace('acme/app', 'Acme/App')}"
    run = run_action(runner_temp, ws, tag_push(origin, "1.0.0"), image=shouting)
    assert run.code == 0, run.log
    assert registry.digest(app, "1.0.0") == digest
    assert run.json["images"][0]["image"] == f"{registry.host}/{app}"


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
    # the outputs say what the registry holds now: a dry run wrote nothing
    assert run.outputs["digest"] == "" and run.outputs["tags"] == ""
    assert run.json["digest"] == digest
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

    run = run_action(runner_temp, ws, tag_push(origin, "1.0.0"), image=f"{registry.host}/{app}")
    assert run.code == 3
    errors = [a for a in run.annotations if a.level == "error"]
    assert len(errors) == 1
    ann = errors[0]
    assert ann.title == "tagger"
    assert "1.0.0 already exists" in ann.message and "nothing was written" in ann.message
    assert f"tagger: {ann.message.splitlines()[0]}" not in run.log  # the annotation only
    assert run.json["images"][0]["tags"][0]["action"] == "refused"
    assert run.outputs["tags"] == ""
    assert "| refused |" in run.summary
    assert set(registry.tags(app)) == {"1.0.0", origin.sha_tag}
    assert registry.digest(app, "1.0.0") == other


def test_a_runner_without_python_3_10_gets_actions_setup_python(
    tmp_path: Path, runner_temp: Path
) -> None:
    """The action's first step looks for python3/python 3.10+; without one, the next
    step is actions/setup-python (which this simulation cannot run, so it says so)."""
    origin = Repo(tmp_path / "origin")
    ws = shallow_clone(origin, tmp_path / "workspace")
    env = {**job_env(GITHUB_REF="refs/heads/main", GITHUB_SHA=origin.head), "PATH": "/nonexistent"}
    with pytest.raises(
        AssertionError, match=r"would run `uses: actions/setup-python@[0-9a-f]{40}`"
    ):
        run_action(runner_temp, ws, env, image="127.0.0.1:1/app")


# --- the action's supply chain: hashed lock, pinned actions, content-keyed venv -------
LOCK = ROOT / "requirements" / "action.txt"


def locked() -> dict[str, tuple[str, str, list[str]]]:
    """requirements/action.txt: name -> (version, marker, hashes)."""
    entries: dict[str, tuple[str, str, list[str]]] = {}
    text = re.sub(r"\\\n", " ", LOCK.read_text())  # join continued lines
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)(?:\s*;\s*(.*?))?((?:\s+--hash=\S+)*)", line)
        assert m, f"{LOCK.name}: not an exact pin with hashes: {line!r}"
        hashes = m[4].split()
        assert hashes and all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for h in hashes), line
        entries[canonicalize_name(m[1])] = (m[2], m[3] or "", hashes)
    return entries


def test_lock_pins_every_dependency_with_hashes() -> None:
    """Every runtime dependency in pyproject.toml and every build requirement (the
    action builds tagger from its checkout) is pinned in the lock within its range,
    with a sha256 on every line; a dependency with a marker carries it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    lock = locked()
    needed = [Requirement(r) for r in project["project"]["dependencies"]]
    needed += [Requirement(r) for r in project["build-system"]["requires"]]
    for req in needed:
        name = canonicalize_name(req.name)
        assert name in lock, f"{req} is not in {LOCK.relative_to(ROOT)}: run scripts/lock-action"
        version, marker, _ = lock[name]
        assert req.specifier.contains(version, prereleases=True), (req, version)
        if req.marker:
            assert marker and Marker(marker) == req.marker, (req, marker)
    assert lock["tomli"][1], "tomli is for Python 3.10 only"
    # the transitive ones too: the HTTP stack and GitPython's, charset-normalizer with a
    # hash for each of its platform wheels
    for name in ("certifi", "idna", "charset-normalizer", "gitdb", "smmap", "packaging"):
        assert name in lock, name
    assert len(lock["charset-normalizer"][2]) > 10


def uses_lines(path: Path) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("uses"), str):
                found.append(node["uses"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load(path.read_text()))
    return found


def test_third_party_actions_are_pinned_to_commit_shas() -> None:
    files = [ROOT / "action.yml", *WORKFLOWS]
    uses = {(f.name, u) for f in files for u in uses_lines(f)}
    assert ("action.yml", next(u for _, u in uses if "setup-python" in u)) in uses
    for name, u in sorted(uses):
        if u.startswith("./"):
            continue  # this repository's own action
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", u), f"{name}: {u} is not a SHA pin"
    for f in files:  # each pin says which version it is
        for line in f.read_text().splitlines():
            if re.search(r"uses: [^.].*@[0-9a-f]{40}", line):
                assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), (f.name, line)


def venv_key(action_dir: Path, tmp_path: Path) -> str:
    """The action's venv-key step, run as written, on ACTION_DIR."""
    spec = yaml.safe_load((ROOT / "action.yml").read_text())
    step = next(s for s in spec["runs"]["steps"] if s.get("id") == "venv-key")
    out = tmp_path / f"output-{secrets.token_hex(4)}"
    env = {**os.environ, "PYTHON": sys.executable, "GITHUB_ACTION_PATH": str(action_dir),
           "GITHUB_OUTPUT": str(out)}  # fmt: skip
    proc = bash(step["run"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    key = out.read_text().strip().removeprefix("key=")
    assert re.fullmatch(r"[0-9a-f]{64}", key), out.read_text()
    return key


def test_venv_key_follows_content_not_path(tmp_path: Path) -> None:
    def copy(dest: Path) -> Path:
        for name in ("action.yml", "pyproject.toml"):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
        for name in ("requirements", "tagger"):
            shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        return dest

    a, b = copy(tmp_path / "a"), copy(tmp_path / "checkout" / "b")
    key = venv_key(a, tmp_path)
    assert venv_key(b, tmp_path) == key  # another path, the same content
    (b / "tagger" / "__pycache__").mkdir()
    (b / "tagger" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"bytecode")
    assert venv_key(b, tmp_path) == key  # bytecode is no content
    with (b / "tagger" / "cli.py").open("a") as f:
        f.write("# changed\n")
    changed = venv_key(b, tmp_path)
    assert changed != key
    with (b / "requirements" / "action.txt").open("a") as f:
        f.write("# changed\n")
    assert venv_key(b, tmp_path) not in (key, changed)
    (a / "tagger" / "new_module.py").write_text("")
    assert venv_key(a, tmp_path) != key


def test_action_installs_from_the_lock_once_per_content(tmp_path: Path) -> None:
    """A fresh runner installs exactly the locked versions (and pip finds nothing
    missing); the second run in the job reuses that environment."""
    origin = Repo(tmp_path / "origin")
    ws = shallow_clone(origin, tmp_path / "workspace")
    env = job_env(GITHUB_EVENT_NAME="push", GITHUB_REF="refs/heads/main", GITHUB_SHA=origin.head)
    temp = tmp_path / "runner-temp"
    temp.mkdir()

    first = run_action(temp, ws, env, command="labels")
    assert first.code == 0, first.log
    install = next(s for s in first.steps if s.id == "install")
    assert "tagger: installing into" in install.stdout, first.log
    venv = temp / "tagger-action-venv"
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    frozen = subprocess.run(
        [*pip, "freeze", "--all"], capture_output=True, text=True, check=True
    ).stdout
    installed = {
        canonicalize_name(n): v
        for n, _, v in (line.partition("==") for line in frozen.splitlines() if "==" in line)
    }
    expected = {
        n: v for n, (v, marker, _) in locked().items() if not marker or Marker(marker).evaluate()
    }
    assert {n: installed.get(n) for n in expected} == expected
    assert set(installed) - set(expected) <= {"pip", "oci-tagger"}
    check = subprocess.run([*pip, "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    second = run_action(temp, ws, env, command="labels")
    assert second.code == 0, second.log
    install = next(s for s in second.steps if s.id == "install")
    assert "tagger: reusing" in install.stdout and "installing" not in install.stdout
    assert second.outputs["sha-tag"] == first.outputs["sha-tag"] == origin.sha_tag


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


def test_credentials_reach_tagger_through_the_environment_only(
    auth_registry: AuthRegistry, tmp_path: Path, runner_temp: Path
) -> None:
    reg = auth_registry
    app = reg.open.new_repo("private")
    origin = Repo(tmp_path / "origin")
    origin.tag("v3.1.0")
    digest = reg.open.push_image(app, origin.sha_tag)
    ws = shallow_clone(origin, tmp_path / "workspace")
    image = f"{reg.host}/{app}"

    denied = run_action(runner_temp, ws, tag_push(origin, "3.1.0"), image=image)
    assert denied.code == 4, denied.log
    assert "TAGGER_USERNAME" in denied.annotations[0].message

    run = run_action(
        runner_temp, ws, tag_push(origin, "3.1.0"),
        image=image, username=reg.user, password=reg.password,
    )  # fmt: skip
    assert run.code == 0, run.log
    assert reg.open.state(app) == {
        t: digest for t in (origin.sha_tag, "3.1.0", "3.1", "3", "latest")
    }
    everything = run.log + run.summary + "".join(run.outputs.values())
    assert reg.password not in everything


def test_registry_ca_input(registry: Registry, tmp_path: Path, runner_temp: Path) -> None:
    """A PEM text is written to a file and handed to tagger with the default CAs; a
    path that does not exist fails the step with an annotation."""
    app = registry.new_repo()
    origin = Repo(tmp_path / "origin")
    registry.push_image(app, origin.sha_tag)
    ws = shallow_clone(origin, tmp_path / "workspace")
    env = job_env(GITHUB_EVENT_NAME="push", GITHUB_REF="refs/heads/main", GITHUB_SHA=origin.head)
    image = f"{registry.host}/{app}"
    pem = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "/dev/null",
         "-subj", "/CN=tagger test CA", "-days", "1"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip

    run = run_action(runner_temp, ws, env, image=image, registry_ca=pem)
    assert run.code == 0, run.log
    bundle = (runner_temp / "tagger-ca-bundle.pem").read_text()
    assert bundle.rstrip().endswith(pem.rstrip()) and bundle.count("BEGIN CERTIFICATE") > 10

    run = run_action(runner_temp, ws, env, image=image, registry_ca="certs/missing.pem")
    assert run.code == 2
    assert [a.message for a in run.annotations] == ["registry-ca: no such file: certs/missing.pem"]


# --- the recipes under examples/ --------------------------------------------------
def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
    )


def test_action_and_workflows_validate_against_the_schemas(tmp_path: Path) -> None:
    assert WORKFLOWS and GITHUB_EXAMPLES
    for schema, files in [
        ("vendor.github-actions", [ROOT / "action.yml"]),
        ("vendor.github-workflows", [*WORKFLOWS, *GITHUB_EXAMPLES]),
        ("vendor.gitlab-ci", [EXAMPLES / "gitlab" / ".gitlab-ci.yml"]),
    ]:
        proc = check_jsonschema(schema, *files)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    # the check can fail: a composite run step without a shell is invalid
    spec = yaml.safe_load((ROOT / "action.yml").read_text())
    del spec["runs"]["steps"][0]["shell"]
    broken = tmp_path / "action.yml"
    broken.write_text(yaml.safe_dump(spec))
    assert check_jsonschema("vendor.github-actions", broken).returncode == 1


def test_readme_shows_every_example_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    files = [p for p in sorted(EXAMPLES.rglob("*")) if p.is_file()]
    assert len(files) >= 6
    for f in files:
        assert f.read_text().rstrip("\n") in readme, f"README does not show {f} as it is"
        assert f"`{f.relative_to(ROOT)}`" in readme


def workflow(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((EXAMPLES / "github" / name).read_text()))


def bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )


def parse_labels(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_github_recipe(auth_registry: AuthRegistry, tmp_path: Path, runner_temp: Path) -> None:
    """examples/github/release.yml: the build job's action step (command: labels) names
    the sha tag and the labels build-push-action pushes the image with; the release job
    (checkout, the action with the recipe's inputs, the report step) publishes it with
    the job's token, and its provenance check passes without a warning; the release
    job runs on v* tags only."""
    reg = auth_registry
    wf = workflow("release.yml")
    app = reg.open.new_repo("gh")
    origin = Repo(tmp_path / "origin")
    origin.tag("v1.4.0")
    env = job_env(GITHUB_EVENT_NAME="push", GITHUB_REF="refs/tags/v1.4.0", GITHUB_SHA=origin.head)
    contexts: dict[str, Any] = {
        "env": {**wf["env"], "IMAGE": f"{reg.host}/{app}"},  # this test's registry
        "github": {"actor": reg.user, "ref": env["GITHUB_REF"], "sha": origin.head},
        "secrets": {"GITHUB_TOKEN": reg.password},
        "steps": {},
    }

    # build: checkout, the action's labels step, then what build-push-action does
    build_ws = tmp_path / "build-workspace"
    pushed = None
    for step in wf["jobs"]["build"]["steps"]:
        uses = step.get("uses", "")
        if uses.startswith("actions/checkout@"):
            shallow_clone(origin, build_ws)
        elif uses == "OWNER/tagger@v1":
            inputs = {k: substitute(v, contexts) for k, v in step["with"].items()}
            assert inputs == {"command": "labels"}
            run = run_action(runner_temp, build_ws, env, **inputs)
            assert run.code == 0, run.log
            contexts["steps"][step["id"]] = {"outputs": run.outputs}
        elif uses.startswith("docker/build-push-action@"):
            ref = substitute(step["with"]["tags"], contexts)
            labels = parse_labels(substitute(step["with"]["labels"], contexts))
            name, _, sha_tag = ref.rpartition(":")
            assert name == f"{reg.host}/{app}" and sha_tag == origin.sha_tag
            pushed = reg.open.push_image(app, sha_tag, labels=labels)
    assert pushed is not None
    assert labels == {
        "org.opencontainers.image.revision": origin.head,
        "org.opencontainers.image.version": "1.4.0",  # from GITHUB_REF: the clone is tagless
        "org.opencontainers.image.created": labels["org.opencontainers.image.created"],
        "org.opencontainers.image.source": "https://github.com/acme/app",
    }
    outputs = contexts["steps"]["labels"]["outputs"]
    assert (outputs["tag"], outputs["version"], outputs["sha-tag"]) == (
        "1.4.0", "1.4.0", origin.sha_tag,
    )  # fmt: skip
    digest = pushed

    release = wf["jobs"]["release"]
    assert release["needs"] == "build"
    assert condition(release["if"], contexts, "success")
    branch = {**contexts, "github": {**contexts["github"], "ref": "refs/heads/main"}}
    assert not condition(release["if"], branch, "success")

    ws = tmp_path / "workspace"
    for step in release["steps"]:
        uses = step.get("uses", "")
        if uses.startswith("actions/checkout@"):
            shallow_clone(origin, ws)
        elif uses == "OWNER/tagger@v1":
            inputs = {k: substitute(v, contexts) for k, v in step["with"].items()}
            run = run_action(
                runner_temp, ws, env, **{k.replace("-", "_"): v for k, v in inputs.items()}
            )
            assert run.code == 0, run.log
            assert run.annotations == [], run.annotations  # no provenance warning
            assert run.json["commit"] == origin.head
            contexts["steps"][step["id"]] = {"outputs": run.outputs}
        else:
            step_env = {k: substitute(v, contexts) for k, v in step.get("env", {}).items()}
            proc = bash(substitute(step["run"], contexts), ws, {**env, **step_env})
            assert proc.returncode == 0, proc.stderr
            report = proc.stdout
    image = f"{reg.host}/{app}"
    assert report.splitlines() == [
        "published:",
        f"{image}:1.4.0",
        f"{image}:1.4",
        f"{image}:1",
        f"{image}:latest",
    ]
    assert reg.open.state(app) == {t: digest for t in (sha_tag, "1.4.0", "1.4", "1", "latest")}


def test_metadata_action_example_is_what_the_migration_table_maps() -> None:
    steps = workflow("metadata-action.yml")["jobs"]["docker"]["steps"]
    meta = next(s for s in steps if s.get("id") == "meta")
    readme = (ROOT / "README.md").read_text()
    for line in meta["with"]["tags"].splitlines():
        assert f"| `{line}` |" in readme, line


def expand(value: str, env: dict[str, str]) -> str:
    """GitLab's expansion of $VAR / ${VAR} in job variables."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m[1], ""), value)


def tagger_path() -> str:
    found = shutil.which("tagger") or str(Path(sys.executable).parent / "tagger")
    assert Path(found).exists(), "pip install -e . provides the tagger command"
    return str(Path(found).parent)


def image_labels(registry: Registry, repo: str, tag: str) -> dict[str, str]:
    """The config labels of an image, read with the raw API helpers."""
    manifest = json.loads(registry.get_manifest(repo, tag)[0])
    r = requests.get(f"{registry.url}/v2/{repo}/blobs/{manifest['config']['digest']}", timeout=10)
    assert r.status_code == 200
    return dict(r.json()["config"].get("Labels") or {})


def test_gitlab_recipe(auth_registry: AuthRegistry, dockerd: Daemon, tmp_path: Path) -> None:
    """examples/gitlab/.gitlab-ci.yml: the build job's script (tagger on PATH as its
    before_script installs it) builds and pushes the sha tag with tagger's labels
    through a real Docker daemon; the release job's script, with GitLab's variables,
    publishes it from a tagless depth-1 clone with the job's registry credentials, and
    the provenance check passes (it is required here)."""
    reg = auth_registry
    ci = yaml.safe_load((EXAMPLES / "gitlab" / ".gitlab-ci.yml").read_text())
    app = reg.open.new_repo("gl")
    origin = Repo(tmp_path / "origin")
    (origin.path / "Dockerfile").write_text("FROM scratch\nCOPY file.txt /\n")
    origin.git("add", "Dockerfile")
    origin.commit("release 2.0.0")
    origin.tag("v2.0.0")
    gitlab = {
        **{k: v for k, v in job_env().items() if not k.startswith("GITHUB_")},
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_COMMIT_TAG": "v2.0.0",
        "CI_COMMIT_SHA": origin.head,
        "CI_REGISTRY": reg.host,
        "CI_REGISTRY_IMAGE": f"{reg.host}/{app}",
        "CI_REGISTRY_USER": "gitlab-ci-token",
        "CI_REGISTRY_PASSWORD": "not-the-password",
        "CI_PROJECT_URL": "https://gitlab.example.com/group/sub/app",
        "PATH": tagger_path() + os.pathsep + os.environ["PATH"],
    }

    build_ws = shallow_clone(origin, tmp_path / "build")
    build_env = {
        **gitlab,
        **dockerd.env,
        "DOCKER_CONFIG": str(tmp_path / "docker-config"),
        "CI_REGISTRY_USER": reg.user,
        "CI_REGISTRY_PASSWORD": reg.password,
    }
    proc = subprocess.run(
        ["sh", "-e", "-c", "\n".join(ci["build"]["script"]) + '\nprintf %s "$SHA_TAG"'],
        cwd=build_ws,
        env=build_env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.endswith(origin.sha_tag)
    assert reg.open.tags(app) == {origin.sha_tag}
    digest = reg.open.digest(app, origin.sha_tag)
    labels = image_labels(reg.open, app, origin.sha_tag)
    assert labels.pop("org.opencontainers.image.created").endswith("Z")
    assert labels == {
        "org.opencontainers.image.revision": origin.head,
        "org.opencontainers.image.version": "2.0.0",  # from CI_COMMIT_TAG: tagless clone
        "org.opencontainers.image.source": "https://gitlab.example.com/group/sub/app",
    }

    job = ci["release"]
    assert job["stage"] == "release" and job["variables"]["GIT_DEPTH"] == "1"
    ws = shallow_clone(origin, tmp_path / "workspace")
    variables = {k: expand(str(v), gitlab) for k, v in job["variables"].items()}
    env = {**gitlab, **variables, "TAGGER_REQUIRE_REVISION": "1"}

    for wrong in (True, False):  # the job token stands for the password here
        env["CI_REGISTRY_USER"] = reg.user
        env["CI_REGISTRY_PASSWORD"] = "wrong" if wrong else reg.password
        variables = {k: expand(str(v), env) for k, v in job["variables"].items()}
        proc = subprocess.run(
            ["sh", "-e", "-c", "\n".join(job["script"])],
            cwd=ws,
            env={**env, **variables},
            capture_output=True,
            text=True,
        )
        if wrong:
            assert proc.returncode == 4, proc.stderr
            assert reg.open.tags(app) == {origin.sha_tag}
    assert proc.returncode == 0, proc.stderr
    assert "used CI hint: tag v2.0.0" in proc.stderr
    assert "warning" not in proc.stderr
    assert reg.open.state(app) == {
        t: digest for t in (origin.sha_tag, "2.0.0", "2.0", "2", "latest")
    }
    assert reg.password not in proc.stdout + proc.stderr


def test_shell_recipe(auth_registry: AuthRegistry, tmp_path: Path) -> None:
    """examples/shell: build.sh names the image as tagger does; release.sh publishes
    from an ordinary full clone with TAGGER_USERNAME / TAGGER_PASSWORD, as the
    Jenkinsfile provides them."""
    reg = auth_registry
    build, release = EXAMPLES / "shell" / "build.sh", EXAMPLES / "shell" / "release.sh"
    for script in (build, release):
        assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
        assert os.access(script, os.X_OK)
    repo = Repo(tmp_path / "checkout")
    repo.tag("v2.1.0")
    app = reg.open.new_repo("sh")
    image = f"{reg.host}/{app}"

    env = {**job_env(), "PATH": tagger_path() + os.pathsep + os.environ["PATH"]}
    line = next(x for x in build.read_text().splitlines() if x.startswith("SHA_TAG="))
    proc = subprocess.run(
        ["sh", "-c", f'{line}; printf %s "$SHA_TAG"'],
        cwd=repo.path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.stdout == repo.sha_tag  # on the tagged commit too: the build's name
    digest = reg.open.push_image(app, repo.sha_tag)

    proc = subprocess.run([str(release)], cwd=repo.path, env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "set IMAGE" in proc.stderr

    env.update(IMAGE=image, TAGGER_USERNAME=reg.user, TAGGER_PASSWORD=reg.password)
    proc = subprocess.run([str(release)], cwd=repo.path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert reg.open.state(app) == {t: digest for t in (repo.sha_tag, "2.1.0", "2.1", "2", "latest")}

    jenkinsfile = (EXAMPLES / "shell" / "Jenkinsfile").read_text()
    assert "usernameVariable: 'TAGGER_USERNAME', passwordVariable: 'TAGGER_PASSWORD'" in (
        " ".join(jenkinsfile.split())
    )
    assert re.findall(r"sh '(ci/\w+\.sh)'", jenkinsfile) == ["ci/build.sh", "ci/release.sh"]


def test_jenkinsfile_end_to_end_with_a_real_docker_daemon(
    auth_registry: AuthRegistry,
    dockerd: Daemon,
    tmp_path: Path,
) -> None:
    """The Jenkinsfile's three sh steps, in order, with the credential in
    TAGGER_USERNAME / TAGGER_PASSWORD: docker login, ci/build.sh (a real docker build
    and push), ci/release.sh (tagger)."""
    reg = auth_registry
    repo = Repo(tmp_path / "checkout")
    (repo.path / "ci").mkdir()
    for name in ("build.sh", "release.sh"):
        shutil.copy2(EXAMPLES / "shell" / name, repo.path / "ci" / name)
    (repo.path / "Dockerfile").write_text("FROM scratch\nCOPY file.txt /\n")
    repo.git("add", "ci", "Dockerfile")
    repo.commit("release 5.0.0")
    repo.tag("v5.0.0")
    repo.git("remote", "add", "origin", "https://jenkins:s3cret-t0ken@git.example.com/team/app.git")
    app = reg.open.new_repo("jenkins")
    jenkinsfile = (EXAMPLES / "shell" / "Jenkinsfile").read_text()
    image = re.search(r"IMAGE = '([^']+)'", jenkinsfile)
    assert image is not None and image[1] == "registry.example.com/team/app"
    env = {
        **job_env(),
        **dockerd.env,
        "PATH": tagger_path() + os.pathsep + os.environ["PATH"],
        "DOCKER_CONFIG": str(tmp_path / "docker-config"),
        "IMAGE": f"{reg.host}/{app}",  # instead of the recipe's registry.example.com
        "TAGGER_USERNAME": reg.user,
        "TAGGER_PASSWORD": reg.password,
        "TAGGER_REQUIRE_REVISION": "1",  # the build's labels make it pass
    }
    printed = ""
    for command in re.findall(r"sh '(.+)'", jenkinsfile):
        proc = subprocess.run(
            ["sh", "-c", command], cwd=repo.path, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
        printed += proc.stdout + proc.stderr
    state = reg.open.state(app)
    assert set(state) == {repo.sha_tag, "5.0.0", "5.0", "5", "latest"}
    assert len(set(state.values())) == 1
    assert "warning" not in proc.stderr
    labels = image_labels(reg.open, app, "5.0.0")
    assert labels["org.opencontainers.image.revision"] == repo.head
    assert labels["org.opencontainers.image.version"] == "5.0.0"
    assert labels["org.opencontainers.image.source"] == "https://git.example.com/team/app"
    assert reg.password not in printed and "s3cret-t0ken" not in printed
