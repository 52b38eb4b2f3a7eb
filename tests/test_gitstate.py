"""Git state read from real repositories made in tmp_path (no mocks), and CI hints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import stop_with

from tagger.errors import GitError, PolicyRefusal
from tagger.gitstate import all_tags, current_state, tag_commit
from tagger.policy import release_version

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}
NO_CI: dict[str, str] = {}


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "advice.detachedHead=false", *args],
        cwd=cwd,
        env=GIT_ENV,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def commit(repo: Path, name: str, content: str = "x\n") -> str:
    (repo / name).write_text(content)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", f"add {name}")
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main with two commits: v1.0.0 on the first, HEAD untagged."""
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q")
    commit(r, "a.txt")
    git(r, "tag", "v1.0.0")
    commit(r, "b.txt")
    return r


@pytest.fixture
def shallow(repo: Path, tmp_path: Path) -> Path:
    """What CI checks out: depth 1, no tags, detached HEAD at main's tip."""
    git(repo, "tag", "v1.4.0")  # on the remote only: --no-tags does not fetch it
    c = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", "--no-tags", f"file://{repo}", str(c))
    git(c, "checkout", "-q", "--detach")
    return c


def test_clean_branch_head(repo: Path) -> None:
    state = current_state(str(repo), NO_CI)
    assert state.commit == git(repo, "rev-parse", "HEAD")
    assert state.tags == ()  # v1.0.0 is on the parent, not HEAD
    assert state.branch == "main"
    assert not state.dirty and state.dirty_files == ()
    assert not state.shallow
    assert state.hints == ()


def test_lightweight_and_annotated_tags_at_head(repo: Path) -> None:
    git(repo, "tag", "v1.1.0-rc.1")
    git(repo, "tag", "-a", "v1.1.0", "-m", "release 1.1.0")
    git(repo, "tag", "unrelated")
    state = current_state(str(repo), NO_CI)
    assert sorted(state.tags) == ["unrelated", "v1.1.0", "v1.1.0-rc.1"]
    assert str(release_version(state.tags)) == "1.1.0"


def test_run_from_a_subdirectory_finds_the_work_tree(repo: Path) -> None:
    (repo / "sub").mkdir()
    state = current_state(str(repo / "sub"), NO_CI)
    assert Path(state.root) == repo
    assert state.commit == git(repo, "rev-parse", "HEAD")


def test_dirty_lists_modified_and_staged_tracked_files(repo: Path) -> None:
    commit(repo, "my file.txt")
    (repo / "sub").mkdir()
    commit(repo, "sub/c.txt")
    (repo / "a.txt").write_text("modified, not staged\n")
    (repo / "my file.txt").write_text("staged\n")
    git(repo, "add", "my file.txt")
    (repo / "sub" / "c.txt").write_text("changed\n")
    git(repo, "mv", "b.txt", "renamed.txt")
    (repo / "untracked.txt").write_text("new\n")
    state = current_state(str(repo), NO_CI)
    assert state.dirty
    assert sorted(state.dirty_files) == ["a.txt", "my file.txt", "renamed.txt", "sub/c.txt"]


def test_deleted_tracked_file_is_dirty(repo: Path) -> None:
    (repo / "a.txt").unlink()
    assert current_state(str(repo), NO_CI).dirty_files == ("a.txt",)


def test_untracked_files_are_dirty_only_when_configured(repo: Path) -> None:
    (repo / ".gitignore").write_text("build/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore build")
    (repo / "build").mkdir()
    (repo / "build" / "out.bin").write_text("artifact\n")  # ignored: never dirty
    (repo / "new").mkdir()
    (repo / "new" / "notes.txt").write_text("untracked\n")
    assert not current_state(str(repo), NO_CI).dirty
    state = current_state(str(repo), NO_CI, untracked_dirty=True)
    assert state.dirty_files == ("new/notes.txt",)


def test_detached_head_has_no_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "v1.0.0")
    state = current_state(str(repo), NO_CI)
    assert state.branch is None
    assert state.tags == ("v1.0.0",)
    assert state.commit == git(repo, "rev-parse", "v1.0.0")


def test_shallow_clone_without_tags(shallow: Path, repo: Path) -> None:
    state = current_state(str(shallow), NO_CI)
    assert state.shallow
    assert state.tags == ()
    assert state.branch is None
    assert state.commit == git(repo, "rev-parse", "HEAD")


# --- CI hints ---------------------------------------------------------------------------------


def test_github_tag_hint_fills_in_the_tag_of_a_tagless_clone(shallow: Path) -> None:
    head = git(shallow, "rev-parse", "HEAD")
    env = {"GITHUB_REF": "refs/tags/v1.4.0", "GITHUB_SHA": head}
    state = current_state(str(shallow), env)
    assert state.tags == ("v1.4.0",)
    assert str(release_version(state.tags)) == "1.4.0"
    assert state.hints == ("tag v1.4.0",)
    assert state.branch is None


def test_github_hint_naming_another_commit_is_refused(shallow: Path) -> None:
    env = {"GITHUB_REF": "refs/tags/v1.4.0", "GITHUB_SHA": "0123456789abcdef" * 2 + "01234567"}
    with pytest.raises(PolicyRefusal) as e:
        current_state(str(shallow), env)
    assert e.value.exit_code == 3
    assert "0123456789ab" in str(e.value) and "HEAD" in str(e.value)


def test_hint_tag_that_exists_locally_on_another_commit_is_refused(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    env = {"GITHUB_REF": "refs/tags/v1.0.0", "GITHUB_SHA": head}
    with pytest.raises(PolicyRefusal, match="v1.0.0") as e:
        current_state(str(repo), env)
    assert e.value.exit_code == 3


def test_hint_tag_already_at_head_is_not_duplicated(repo: Path) -> None:
    git(repo, "tag", "v1.1.0")
    env = {"GITHUB_REF": "refs/tags/v1.1.0", "GITHUB_SHA": git(repo, "rev-parse", "HEAD")}
    assert current_state(str(repo), env).tags == ("v1.1.0",)


def test_gitlab_tag_hint(shallow: Path) -> None:
    env = {"CI_COMMIT_TAG": "v1.4.0", "CI_COMMIT_SHA": git(shallow, "rev-parse", "HEAD")}
    state = current_state(str(shallow), env)
    assert state.tags == ("v1.4.0",)


def test_gitlab_branch_hint_names_a_detached_head(shallow: Path) -> None:
    env = {"CI_COMMIT_BRANCH": "main", "CI_COMMIT_SHA": git(shallow, "rev-parse", "HEAD")}
    state = current_state(str(shallow), env)
    assert state.branch == "main"
    assert state.tags == ()


def test_gitlab_hint_naming_another_commit_is_refused(shallow: Path) -> None:
    env = {"CI_COMMIT_BRANCH": "main", "CI_COMMIT_SHA": "f" * 40}
    with pytest.raises(PolicyRefusal) as e:
        current_state(str(shallow), env)
    assert e.value.exit_code == 3


def test_branch_hint_is_used_only_for_a_detached_head(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    head = git(repo, "rev-parse", "HEAD")
    env = {"GITHUB_REF": "refs/heads/main", "GITHUB_SHA": head}
    assert current_state(str(repo), env).branch == "feature"
    git(repo, "checkout", "-q", "--detach")
    state = current_state(str(repo), env)
    assert state.branch == "main"
    assert state.hints == ("branch main",)


def test_tag_hint_is_ignored_when_a_version_tag_is_at_head(repo: Path) -> None:
    """A full clone with v1.3.0 at HEAD: git can tell, so GITHUB_REF is not needed
    and is ignored, with or without (or with a wrong) GITHUB_SHA."""
    git(repo, "tag", "v1.3.0")
    head = git(repo, "rev-parse", "HEAD")
    for env in (
        {"GITHUB_REF": "refs/tags/v1.9.9"},
        {"GITHUB_REF": "refs/tags/v1.9.9", "GITHUB_SHA": head},
        {"GITHUB_REF": "refs/tags/v1.9.9", "GITHUB_SHA": "f" * 40},
        {"CI_COMMIT_TAG": "v1.9.9"},
    ):
        state = current_state(str(repo), env)
        assert state.tags == ("v1.3.0",), env
        assert state.hints == (), env


def test_tag_hint_counts_only_version_tags_with_the_prefix(repo: Path) -> None:
    """A tag at HEAD that is no version (or has another prefix) leaves the hint needed."""
    git(repo, "tag", "nightly")
    git(repo, "tag", "api/v2.0.0")
    head = git(repo, "rev-parse", "HEAD")
    env = {"GITHUB_REF": "refs/tags/v1.4.0", "GITHUB_SHA": head}
    assert current_state(str(repo), env).hints == ("tag v1.4.0",)
    state = current_state(str(repo), env, tag_prefix="api/v")
    assert state.hints == ()


@pytest.mark.parametrize(
    ("env", "var"),
    [
        ({"GITHUB_REF": "refs/tags/v1.4.0"}, "GITHUB_SHA"),
        ({"CI_COMMIT_TAG": "v1.4.0"}, "CI_COMMIT_SHA"),
        ({"CI_COMMIT_BRANCH": "main"}, "CI_COMMIT_SHA"),
        ({"GITHUB_REF": "refs/heads/main"}, "GITHUB_SHA"),
    ],
)
def test_needed_hint_without_its_commit_variable_is_refused(
    shallow: Path, env: dict[str, str], var: str
) -> None:
    with pytest.raises(PolicyRefusal) as e:
        current_state(str(shallow), env)
    assert e.value.exit_code == 3
    assert f"{var} is not set" in e.value.message
    assert e.value.hint is not None and f"set {var}" in e.value.hint


def test_branch_hint_not_needed_is_ignored_even_with_another_commit(repo: Path) -> None:
    env = {"CI_COMMIT_BRANCH": "other", "CI_COMMIT_SHA": "f" * 40}
    state = current_state(str(repo), env)
    assert state.branch == "main" and state.hints == ()


def test_needed_branch_hint_naming_another_commit_says_which_variable(shallow: Path) -> None:
    env = {"GITHUB_REF": "refs/heads/main", "GITHUB_SHA": "f" * 40}
    with pytest.raises(PolicyRefusal, match="GITHUB_SHA names commit ffffffffffff"):
        current_state(str(shallow), env)


# --- git errors -------------------------------------------------------------------------------


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not inside a git repository") as e:
        current_state(str(tmp_path), NO_CI)
    assert e.value.exit_code == 5


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(GitError) as e:
        current_state(str(tmp_path / "nope"), NO_CI)
    assert e.value.exit_code == 5


def test_repository_without_commits(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    with pytest.raises(GitError, match="no commits") as e:
        current_state(str(tmp_path), NO_CI)
    assert e.value.exit_code == 5


# --- read through GitPython: shapes of repository ---------------------------------------------


def test_many_tags_only_those_at_head_and_few_git_commands(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = git(repo, "rev-parse", "HEAD~1")
    head = git(repo, "rev-parse", "HEAD")
    refs = "".join(f"create refs/tags/v0.{i}.0 {parent}\n" for i in range(3000))
    refs += "create refs/tags/v2.0.0 HEAD\n"
    subprocess.run(["git", "update-ref", "--stdin"], cwd=repo, input=refs, text=True, check=True)
    git(repo, "tag", "-a", "v2.0.0-annotated", "-m", "annotated at HEAD")
    git(repo, "pack-refs", "--all")
    # a git on PATH that logs each command and its GIT_OPTIONAL_LOCKS, then runs the real one
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True)
    log = tmp_path / "git.log"
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    wrapper.write_text(
        f'#!/bin/sh\necho "locks=$GIT_OPTIONAL_LOCKS $*" >> {log}\n'
        f'exec {real.stdout.strip()} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    state = current_state(str(repo), NO_CI)
    assert sorted(state.tags) == ["v2.0.0", "v2.0.0-annotated"]
    assert state.commit == head
    lines = log.read_text().splitlines()
    assert len(lines) <= 3, lines  # tag --points-at, status, and at most one cat-file
    assert all(line.startswith("locks=0 ") for line in lines)
    assert any("tag --points-at HEAD" in line for line in lines)
    assert any(line.startswith("locks=0 status ") for line in lines)
    assert len(all_tags(str(repo))) == 3003  # and v1.0.0 on the parent
    assert tag_commit(str(repo), "v0.2999.0") == parent
    assert tag_commit(str(repo), "v2.0.0-annotated") == head  # peeled to the commit
    assert tag_commit(str(repo), "v9.9.9") is None


def test_detached_head_on_an_untagged_commit(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    commit(repo, "c.txt")
    git(repo, "checkout", "-q", first)
    state = current_state(str(repo), NO_CI)
    assert (state.commit, state.branch, state.tags) == (first, None, ())
    assert not state.dirty


def test_branch_name_with_slashes(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature/x/y")
    assert current_state(str(repo), NO_CI).branch == "feature/x/y"


def test_shallow_clone_with_tags_and_its_linked_worktree(repo: Path, tmp_path: Path) -> None:
    git(repo, "tag", "v1.4.0")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(clone))
    state = current_state(str(clone), NO_CI)
    assert state.shallow and state.branch == "main" and state.tags == ("v1.4.0",)
    # a linked work tree keeps its git files in .git/worktrees/NAME; the shallow file
    # stays in the common git directory
    wt = tmp_path / "linked"
    git(clone, "worktree", "add", "-q", "-b", "other", str(wt))
    (wt / "b.txt").write_text("changed\n")
    state = current_state(str(wt / "."), NO_CI)
    assert Path(state.root) == wt
    assert state.shallow and state.branch == "other" and state.dirty_files == ("b.txt",)


def test_unshallowed_clone_is_not_shallow(shallow: Path) -> None:
    git(shallow, "fetch", "-q", "--unshallow")
    assert not current_state(str(shallow), NO_CI).shallow


def test_deep_subdirectory_as_the_current_directory(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = repo / "a" / "b" / "c"
    deep.mkdir(parents=True)
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.delenv("GIT_WORK_TREE", raising=False)
    monkeypatch.chdir(deep)
    (repo / "a.txt").write_text("changed\n")
    state = current_state(".", NO_CI)
    assert Path(state.root) == repo
    assert state.branch == "main"
    assert state.dirty_files == ("a.txt",)  # relative to the root, not the subdirectory


def test_status_paths_are_not_quoted(repo: Path) -> None:
    commit(repo, 'naïve "q".txt')
    (repo / 'naïve "q".txt').write_text("changed\n")
    assert current_state(str(repo), NO_CI).dirty_files == ('naïve "q".txt',)


def test_bare_repository(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "--bare", "bare.git")
    with pytest.raises(GitError, match="bare repository") as e:
        current_state(str(tmp_path / "bare.git"), NO_CI)
    assert e.value.exit_code == 5


def test_tag_helpers_outside_a_repository(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not inside a git repository"):
        all_tags(str(tmp_path))
    with pytest.raises(GitError, match="no such directory"):
        tag_commit(str(tmp_path / "nope"), "v1.0.0")


def test_git_not_installed(repo: Path, tmp_path: Path) -> None:
    """GitPython runs `git version` when imported: without git, a GitError, not a traceback."""
    code = (
        "import sys\n"
        "from tagger.errors import GitError\n"
        "from tagger.gitstate import read_state\n"
        "try:\n"
        "    read_state(sys.argv[1])\n"
        "except GitError as e:\n"
        "    print(e.exit_code, e)\n"
    )
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    env.pop("GIT_PYTHON_GIT_EXECUTABLE", None)
    out = subprocess.run(
        [sys.executable, "-c", code, str(repo)], env=env, capture_output=True, text=True
    )
    assert out.stdout.startswith("5 git is not installed"), out.stdout + out.stderr
    assert "Traceback" not in out.stderr


def test_help_does_not_import_gitpython() -> None:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tagger", "--help"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and "Usage" in out.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()]
    assert "tagger.cli" in imported
    assert not [m for m in imported if m == "git" or m.startswith(("git.", "gitdb"))]


def test_ctrl_c_while_git_is_read_stops_the_run_and_blames_no_git(
    repo: Path, tmp_path: Path
) -> None:
    """GitPython runs `git version` as it is imported and turns any failure into an
    ImportError: a signal arriving then must stop the run (130), not report git
    missing (5)."""
    import shutil
    import signal
    import time

    real = shutil.which("git")
    assert real is not None
    started = tmp_path / "version-started"
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = version ]; then : > "{started}"; sleep 20; fi\n'
        f'exec "{real}" "$@"\n'
    )
    wrapper.chmod(0o755)
    env = {**os.environ, "PATH": f"{wrapper.parent}:{os.environ['PATH']}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tagger", "plan", "--offline"],
        cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert started.exists(), proc.communicate()[1]
        _, err, _ = stop_with(proc, signal.SIGINT, timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "not installed" not in err
