"""`tagger labels`: the OCI labels a build of HEAD should carry, from real repositories
in tmp_path; the remote URL's credentials kept out of everything printed; and the loop
closed: an image pushed with those labels passes the release's provenance check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.ghactions import read_outputs_file
from support.git import GIT_ENV, Repo
from support.registry import Registry

from tagger.labels import rfc3339, url_secrets, web_url

ROOT = Path(__file__).resolve().parent.parent
REV = "org.opencontainers.image.revision"
VER = "org.opencontainers.image.version"
CREATED = "org.opencontainers.image.created"
SOURCE = "org.opencontainers.image.source"
TOKEN = "ghp_secret123456"
TOKEN_REMOTE = f"https://bot:{TOKEN}@github.com/acme/app.git"


@pytest.mark.parametrize(
    ("remote", "web"),
    [
        ("git@github.com:acme/app.git", "https://github.com/acme/app"),
        ("git@github.com:acme/app", "https://github.com/acme/app"),
        ("github.com:acme/app.git/", "https://github.com/acme/app"),
        ("ssh://git@host:22/group/app.git", "https://host/group/app"),
        ("ssh://git@host/group/app.git", "https://host/group/app"),
        ("git+ssh://git@Host.Example/group/app", "https://host.example/group/app"),
        ("git://host/group/app.git", "https://host/group/app"),
        (TOKEN_REMOTE, "https://github.com/acme/app"),
        ("https://user:token@host/x.git", "https://host/x"),
        (f"https://{TOKEN}@github.com/acme/app.git", "https://github.com/acme/app"),
        ("https://oauth2:glpat-abc%40def@gitlab.com/g/app.git", "https://gitlab.com/g/app"),
        ("https://github.com/acme/app/", "https://github.com/acme/app"),
        ("https://github.com/acme/app.git/", "https://github.com/acme/app"),
        ("http://gitlab.local:8080/group/app.git", "http://gitlab.local:8080/group/app"),
        ("git@gitlab.com:group/sub/subsub/app.git", "https://gitlab.com/group/sub/subsub/app"),
        ("https://gitlab.com/group/sub/app.git", "https://gitlab.com/group/sub/app"),
        ("ssh://git@[2001:db8::1]:2222/g/app.git", "https://[2001:db8::1]/g/app"),
        ("/srv/git/app.git", None),
        ("./app.git", None),
        ("file:///srv/git/app.git", None),
        ("https://github.com", None),
        ("git@github.com:", None),
        ("https://host:notaport/x", None),
        ("", None),
    ],
)
def test_web_url(remote: str, web: str | None) -> None:
    assert web_url(remote) == web
    if web is not None:
        for secret in url_secrets(remote):
            assert secret not in web


@pytest.mark.parametrize(
    ("remote", "secrets"),
    [
        (TOKEN_REMOTE, {f"bot:{TOKEN}", TOKEN}),
        (f"https://{TOKEN}@github.com/acme/app.git", {TOKEN}),
        ("https://oauth2:glpat-a%40b@gl.com/g", {"oauth2:glpat-a%40b", "glpat-a%40b", "glpat-a@b"}),
        ("ssh://git:pw-1234@host/g/app", {"git:pw-1234", "pw-1234"}),
        ("git@github.com:acme/app.git", set()),
        ("ssh://git@host/g/app", {"git"}),  # too short to be masked by redact (MIN_LENGTH)
        ("https://github.com/acme/app", set()),
        ("/srv/git/app.git", set()),
    ],
)  # fmt: skip
def test_url_secrets(remote: str, secrets: set[str]) -> None:
    assert set(url_secrets(remote)) == secrets


def test_rfc3339() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1706925906) == "2024-02-03T02:05:06Z"


def parse(out: str) -> dict[str, str]:
    lines = out.splitlines()
    assert all("=" in line for line in lines), out
    return dict(line.split("=", 1) for line in lines)


def commit_time(repo: Repo) -> int:
    return int(repo.git("show", "-s", "--format=%ct", "HEAD"))


def test_labels_of_a_tagged_commit(tagger: Any, repo: Repo) -> None:
    repo.git("remote", "add", "origin", "git@gitlab.example.com:group/sub/app.git")
    repo.tag("v1.2.3")
    run = tagger("-C", str(repo.path), "labels")
    assert (run.code, run.err) == (0, "")
    assert list(parse(run.out).items()) == [
        (REV, repo.head),
        (VER, "1.2.3"),
        (CREATED, rfc3339(commit_time(repo))),
        (SOURCE, "https://gitlab.example.com/group/sub/app"),
    ]
    # a build metadata version keeps its +, and --json prints one object, same labels
    repo.tag("v1.2.4+build.7")
    run = tagger("-C", str(repo.path), "labels", "--json")
    assert run.code == 0
    doc = json.loads(run.out)
    assert doc[VER] == "1.2.4+build.7" and doc[REV] == repo.head
    assert list(doc) == [REV, VER, CREATED, SOURCE]


def test_sha_build_time_and_no_remote(
    tagger: Any, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No origin (or one with no web page): no source label. The time is the commit's,
    not the clock's: the same commit later gives the same labels."""
    first = tagger("-C", str(repo.path), "labels")
    assert first.code == 0
    assert parse(first.out) == {
        REV: repo.head,
        VER: repo.sha_tag,
        CREATED: rfc3339(commit_time(repo)),
    }
    repo.git("remote", "add", "origin", "/srv/git/app.git")
    assert tagger("-C", str(repo.path), "labels").out == first.out

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1706925906")
    assert parse(tagger("-C", str(repo.path), "labels").out)[CREATED] == "2024-02-03T02:05:06Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    run = tagger("-C", str(repo.path), "labels")
    assert run.code == 2 and run.out == ""
    assert "SOURCE_DATE_EPOCH='yesterday' is not a time" in run.err


def test_commit_time_is_the_committers_in_utc(tagger: Any, repo: Repo) -> None:
    env = {**os.environ, **GIT_ENV, "GIT_COMMITTER_DATE": "2024-02-03T03:05:06+01:00"}
    (repo.path / "file.txt").write_text("again\n")
    subprocess.run(["git", "commit", "-qam", "dated"], cwd=repo.path, env=env, check=True)
    run = tagger("-C", str(repo.path), "labels")
    assert parse(run.out)[CREATED] == "2024-02-03T02:05:06Z"


def test_dirty_tree_and_git_errors(tagger: Any, repo: Repo, tmp_path: Path) -> None:
    (repo.path / "file.txt").write_text("edited\n")
    run = tagger("-C", str(repo.path), "labels")
    assert run.code == 3 and run.out == ""
    assert "file.txt" in run.err and "--allow-dirty" in run.err
    run = tagger("-C", str(repo.path), "labels", "--json")
    assert run.code == 3 and json.loads(run.out)["exit_code"] == 3
    run = tagger("-C", str(repo.path), "labels", "--allow-dirty")
    assert run.code == 0
    assert parse(run.out)[VER] == repo.sha_tag + "-dirty"
    assert parse(run.out)[REV] == repo.head

    (tmp_path / "empty").mkdir()
    run = tagger("-C", str(tmp_path / "empty"), "labels")
    assert run.code == 5 and "not inside a git repository" in run.err


def test_version_sha(tagger: Any, repo: Repo) -> None:
    """The SHA tag CI pushes every build under, also on a tagged commit."""
    repo.tag("v3.0.0")
    assert tagger("-C", str(repo.path), "version").out == "3.0.0\n"
    assert tagger("-C", str(repo.path), "version", "--sha").out == repo.sha_tag + "\n"
    run = tagger("-C", str(repo.path), "version", "--sha", "--sha-length", "10")
    assert run.out == f"sha-{repo.head[:10]}\n"
    (repo.path / "file.txt").write_text("edited\n")
    assert tagger("-C", str(repo.path), "version", "--sha").code == 3
    run = tagger("-C", str(repo.path), "version", "--sha", "--allow-dirty")
    assert run.out == repo.sha_tag + "-dirty\n"


def shallow_tagless_clone(origin: Repo, dest: Path) -> Path:
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", "--no-tags", f"file://{origin.path}", str(dest)],
        check=True,
        env={**os.environ, **GIT_ENV},
    )
    return dest


def test_ci_hints_and_ci_urls(
    tagger: Any, repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tag push checked out without tags: the version comes from GITHUB_REF (after
    GITHUB_SHA is found to be HEAD); the source from the CI's own variables."""
    repo.tag("v2.1.0")
    clone = shallow_tagless_clone(repo, tmp_path / "clone")
    assert parse(tagger("-C", str(clone), "labels").out)[VER] == repo.sha_tag

    monkeypatch.setenv("GITHUB_REF", "refs/tags/v2.1.0")
    monkeypatch.setenv("GITHUB_SHA", repo.head)
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.example.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/app")
    run = tagger("-C", str(clone), "labels")  # not in a GitHub Actions job: the origin's
    assert run.code == 0 and SOURCE not in parse(run.out)  # file://: no web page
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    run = tagger("-C", str(clone), "labels")
    assert run.code == 0, run.err
    assert parse(run.out) == {
        REV: repo.head,
        VER: "2.1.0",
        CREATED: rfc3339(commit_time(repo)),
        SOURCE: "https://github.example.com/acme/app",
    }
    assert run.err == "note: used CI hint: tag v2.1.0\n"

    monkeypatch.setenv("GITHUB_SHA", "0" * 40)
    run = tagger("-C", str(clone), "labels")
    assert run.code == 3 and run.out == "" and "GITHUB_SHA names commit 000000000000" in run.err

    for var in ("GITHUB_ACTIONS", "GITHUB_REF", "GITHUB_SHA", "GITHUB_SERVER_URL"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("CI_COMMIT_TAG", "v2.1.0")
    monkeypatch.setenv("CI_COMMIT_SHA", repo.head)
    monkeypatch.setenv("CI_PROJECT_URL", "https://gitlab.example.com/group/sub/app")
    run = tagger("-C", str(clone), "labels")
    assert parse(run.out)[VER] == "2.1.0"
    assert parse(run.out)[SOURCE] == "https://gitlab.example.com/group/sub/app"


def test_github_outputs_and_summary(
    tagger: Any, repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.tag("v1.4.0")
    out, summary = tmp_path / "output", tmp_path / "summary"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/app")  # GITHUB_SERVER_URL: github.com
    run = tagger("-C", str(repo.path), "labels")
    assert run.code == 0, run.err
    outputs = read_outputs_file(out)
    assert outputs["labels"] == run.out.rstrip("\n")
    assert parse(outputs["labels"])[SOURCE] == "https://github.com/acme/app"
    assert (outputs["tag"], outputs["version"], outputs["sha-tag"]) == (
        "1.4.0",
        "1.4.0",
        repo.sha_tag,
    )
    assert json.loads(outputs["json"]) == parse(run.out)
    text = summary.read_text()
    assert "### tagger labels: `1.4.0`" in text
    assert f"| `{REV}` | `{repo.head}` |" in text


def tagger_process(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A fresh process: no secret registered with redact by an earlier test."""
    return subprocess.run(
        [sys.executable, "-m", "tagger", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )


def test_remote_token_never_printed(repo: Repo, tmp_path: Path) -> None:
    repo.git("remote", "add", "origin", TOKEN_REMOTE)
    files = {"GITHUB_OUTPUT": tmp_path / "output", "GITHUB_STEP_SUMMARY": tmp_path / "summary"}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_"))},
        "GITHUB_ACTIONS": "true",  # outputs and summary, but no GITHUB_REPOSITORY: origin
        **{k: str(v) for k, v in files.items()},
    }
    seen = []
    for args in (["labels"], ["--debug", "labels"], ["--debug", "labels", "--json"]):
        proc = tagger_process(*args, cwd=repo.path, env=env)
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout) if "--json" in args else parse(proc.stdout)
        assert doc[SOURCE] == "https://github.com/acme/app"
        seen += [proc.stdout, proc.stderr]
    seen += [p.read_text() for p in files.values()]
    everything = "\n".join(seen)
    assert "https://github.com/acme/app" in everything  # the labels are there
    assert "### tagger labels" in everything
    assert TOKEN not in everything and f"bot:{TOKEN}" not in everything

    # once read, the token is registered with redact: a log line or error masks it
    code = (
        "import sys; from tagger import redact; from tagger.gitstate import build_facts;"
        f"build_facts('.', 'HEAD'); print(redact.redact('{TOKEN_REMOTE}'))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo.path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert TOKEN not in proc.stdout and "github.com/acme/app.git" in proc.stdout


# --- the loop closed: a build labelled by tagger passes the release's check ---------
def test_labelled_image_passes_the_provenance_check(
    tagger: Any, registry: Registry, repo: Repo
) -> None:
    """CI builds the commit on main (version label sha-…), the tag v1.0.0 comes later:
    the release of that image warns of nothing and passes --require-revision; an
    unlabelled image is refused by it."""
    image = registry.new_repo()
    ref = f"{registry.host}/{image}"
    repo.git("remote", "add", "origin", TOKEN_REMOTE)
    run = tagger("-C", str(repo.path), "labels")
    assert run.code == 0
    labels = parse(run.out)
    sha_tag = tagger("-C", str(repo.path), "version", "--sha").out.strip()
    digest = registry.push_image(image, sha_tag, labels=labels)
    repo.tag("v1.0.0")

    run = tagger("-C", str(repo.path), "release", "-i", ref)
    assert run.code == 0, run.err
    assert "warning" not in run.err and "org.opencontainers" not in run.err
    run = tagger("-C", str(repo.path), "release", "-i", ref, "--require-revision", "--json")
    assert run.code == 0, run.err
    assert registry.state(image) == {t: digest for t in (sha_tag, "1.0.0", "1.0", "1", "latest")}

    # the check can fail: the same release of an unlabelled image
    other = registry.new_repo()
    registry.push_image(other, sha_tag)
    run = tagger("-C", str(repo.path), "release", "-i", f"{registry.host}/{other}")
    assert run.code == 0 and f"warning: docker://{registry.host}/{other}" in run.err
    other = registry.new_repo()
    registry.push_image(other, sha_tag)
    run = tagger(
        "-C", str(repo.path), "release", "-i", f"{registry.host}/{other}", "--require-revision"
    )
    assert run.code == 3 and "--require-revision" in run.err

    # labels made on the tagged commit (version 1.0.0) pass too
    again = registry.new_repo()
    labels = parse(tagger("-C", str(repo.path), "labels").out)
    assert labels[VER] == "1.0.0"
    registry.push_image(again, sha_tag, labels=labels)
    run = tagger(
        "-C", str(repo.path), "release", "-i", f"{registry.host}/{again}", "--require-revision"
    )
    assert run.code == 0 and "warning" not in run.err, run.err
