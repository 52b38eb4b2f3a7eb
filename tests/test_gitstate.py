"""Git state read from real repositories made in tmp_path (no mocks), and CI hints."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tagger.errors import GitError, PolicyRefusal
from tagger.gitstate import current_state
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
