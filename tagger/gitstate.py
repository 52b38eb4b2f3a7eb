"""The git state of a checkout (GitPython) as a frozen value, plus CI hints.

CI hints (``GITHUB_REF``/``GITHUB_SHA``, ``CI_COMMIT_TAG``/``CI_COMMIT_SHA``/
``CI_COMMIT_BRANCH``) fill in what git cannot tell: the tag of a shallow clone fetched
without tags, the branch of a detached HEAD. A hint that is used must name HEAD; one
that names another commit is refused rather than guessed around.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import GitError, PolicyRefusal

if TYPE_CHECKING:
    import git


@dataclass(frozen=True)
class GitState:
    root: str
    commit: str  # full SHA of HEAD
    tags: tuple[str, ...]  # every tag pointing at HEAD (with a CI hint's tag, if used)
    dirty_files: tuple[str, ...]
    branch: str | None  # None: detached HEAD with no CI hint
    shallow: bool
    hints: tuple[str, ...] = field(default=())  # which CI hints were used, for the report

    @property
    def dirty(self) -> bool:
        return bool(self.dirty_files)


def _open(path: str) -> git.Repo:
    import git

    try:
        return git.Repo(path, search_parent_directories=True)
    except git.NoSuchPathError as e:
        raise GitError(f"{path}: no such directory", "pass -C with an existing path") from e
    except git.InvalidGitRepositoryError as e:
        raise GitError(
            f"{os.path.abspath(path)} is not inside a git repository",
            "run tagger in a git checkout, or pass -C PATH",
        ) from e


def read_state(path: str = ".", *, untracked_dirty: bool = False) -> GitState:
    """Read HEAD, its tags, dirtiness, branch and shallowness (no CI hints)."""
    import git

    repo = _open(path)
    try:
        commit = repo.head.commit.hexsha
    except ValueError as e:
        raise GitError(
            f"the repository at {repo.working_dir} has no commits yet",
            "commit something, then run tagger again",
        ) from e
    try:
        tags = tuple(t for t in repo.git.tag("--points-at", "HEAD").splitlines() if t)
        status = repo.git.status(
            "--porcelain=v1", "-z", "--untracked-files=" + ("all" if untracked_dirty else "no")
        )
    except git.GitCommandError as e:
        raise GitError(f"git failed: {e.stderr.strip() or e}", "check the repository") from e
    branch = None if repo.head.is_detached else repo.active_branch.name
    shallow = (Path(repo.common_dir) / "shallow").exists()
    return GitState(
        root=str(repo.working_dir),
        commit=commit,
        tags=tags,
        dirty_files=_parse_status(status),
        branch=branch,
        shallow=shallow,
    )


def _parse_status(out: str) -> tuple[str, ...]:
    files: list[str] = []
    entries = iter(out.split("\0"))
    for entry in entries:
        if len(entry) < 4:
            continue
        files.append(entry[3:])
        if entry[0] in "RC":  # a rename or copy carries its source path next
            next(entries, None)
    return tuple(files)


def all_tags(path: str) -> list[str]:
    """Every tag in the repository (for an offline plan)."""
    return [t for t in _open(path).git.tag("--list").splitlines() if t]


def tag_commit(path: str, tag: str) -> str | None:
    """The commit a local tag points at, or None when there is no such tag."""
    import git

    try:
        return str(_open(path).git.rev_parse("--verify", "--quiet", f"refs/tags/{tag}^{{commit}}"))
    except git.GitCommandError:
        return None


@dataclass(frozen=True)
class CIHints:
    tag: str | None = None
    branch: str | None = None
    sha: str | None = None
    source: str = ""  # which variables, for messages

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CIHints:
        ref = env.get("GITHUB_REF", "")
        if ref or env.get("GITHUB_SHA"):
            tag = ref[len("refs/tags/") :] if ref.startswith("refs/tags/") else None
            branch = ref[len("refs/heads/") :] if ref.startswith("refs/heads/") else None
            return cls(tag, branch, env.get("GITHUB_SHA") or None, "GITHUB_REF/GITHUB_SHA")
        if env.get("CI_COMMIT_SHA") or env.get("CI_COMMIT_TAG") or env.get("CI_COMMIT_BRANCH"):
            return cls(
                env.get("CI_COMMIT_TAG") or None,
                env.get("CI_COMMIT_BRANCH") or None,
                env.get("CI_COMMIT_SHA") or None,
                "CI_COMMIT_TAG/CI_COMMIT_SHA",
            )
        return cls()


def apply_hints(state: GitState, hints: CIHints) -> GitState:
    """Fill in a tag missing from a tagless clone and the branch of a detached HEAD."""
    used: list[str] = []
    tags = state.tags
    branch = state.branch
    if hints.tag and hints.tag not in state.tags:
        local = tag_commit(state.root, hints.tag)
        if local is not None and local != state.commit:
            raise PolicyRefusal(
                f"{hints.source} names tag {hints.tag}, which points at {local[:12]}, "
                f"but HEAD is {state.commit[:12]}",
                f"check out {hints.tag}, or unset the CI variables if this is not that build",
            )
        tags = (*tags, hints.tag)
        used.append(f"tag {hints.tag}")
    if branch is None and hints.branch:
        branch = hints.branch
        used.append(f"branch {hints.branch}")
    if used and hints.sha and hints.sha != state.commit:
        raise PolicyRefusal(
            f"{hints.source} names commit {hints.sha[:12]}, but HEAD is {state.commit[:12]}",
            "check out the commit the pipeline was started for, or unset the CI variables",
        )
    if not used:
        return state
    return replace(state, tags=tags, branch=branch, hints=(*state.hints, *used))


def current_state(
    path: str = ".", env: Mapping[str, str] | None = None, *, untracked_dirty: bool = False
) -> GitState:
    state = read_state(path, untracked_dirty=untracked_dirty)
    return apply_hints(state, CIHints.from_env(os.environ if env is None else env))
