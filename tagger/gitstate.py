"""The git state of a checkout as a frozen value, plus CI hints.

Read with the ``git`` command itself: one ``rev-parse`` (work tree root, shallowness,
HEAD's commit and branch), ``tag --points-at`` and ``status``, started together. No
git library: GitPython ran the same commands and cost 37 ms of imports, a fifth of a
whole release on a local registry (issue 7).

CI hints (``GITHUB_REF``/``GITHUB_SHA``, ``CI_COMMIT_TAG``/``CI_COMMIT_SHA``/
``CI_COMMIT_BRANCH``) fill in what git cannot tell: the tag of a shallow clone fetched
without tags, the branch of a detached HEAD. A hint that is used must name HEAD; one
that names another commit is refused rather than guessed around.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .errors import GitError, PolicyRefusal


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


# status must not take the index lock: a release may run beside other git commands
_ENV = {"GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "LANGUAGE": "C"}


def _start(path: str, *args: str) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            ["git", "-C", path, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **_ENV},
        )
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH)", "install git") from None


def _finish(proc: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    out, err = proc.communicate()
    return proc.returncode, out.decode("utf-8", "surrogateescape"), err.decode(errors="replace")


def _check_dir(path: str) -> None:
    if not os.path.isdir(path):
        raise GitError(f"{path}: no such directory", "pass -C with an existing path")


def _git(path: str, *args: str) -> str:
    code, out, err = _finish(_start(path, *args))
    if code != 0:
        raise GitError(f"git failed: {err.strip() or f'exit {code}'}", "check the repository")
    return out


def read_state(path: str = ".", *, untracked_dirty: bool = False) -> GitState:
    """Read HEAD, its tags, dirtiness, branch and shallowness (no CI hints)."""
    _check_dir(path)
    # the three commands are independent: run them at once, read rev-parse first
    procs = [
        _start(
            path,
            "rev-parse",
            "--show-toplevel",
            "--is-shallow-repository",
            "HEAD^{commit}",
            "--symbolic-full-name",
            "HEAD",
        ),
        _start(path, "tag", "--points-at", "HEAD"),
        _start(
            path,
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=" + ("all" if untracked_dirty else "no"),
        ),
    ]
    (code, out, err), tags, status = (_finish(p) for p in procs)
    lines = out.splitlines()
    if code != 0:
        if "not a git repository" in err:
            raise GitError(
                f"{os.path.abspath(path)} is not inside a git repository",
                "run tagger in a git checkout, or pass -C PATH",
            )
        if len(lines) >= 2 and "unknown revision" in err:  # the root printed, HEAD unborn
            raise GitError(
                f"the repository at {lines[0]} has no commits yet",
                "commit something, then run tagger again",
            )
        raise GitError(f"git failed: {err.strip() or f'exit {code}'}", "check the repository")
    root, shallow, commit, head = lines[:4]
    for rc, _, e in (tags, status):
        if rc != 0:
            raise GitError(f"git failed: {e.strip() or f'exit {rc}'}", "check the repository")
    return GitState(
        root=root,
        commit=commit,
        tags=tuple(t for t in tags[1].splitlines() if t),
        dirty_files=_parse_status(status[1]),
        branch=head.removeprefix("refs/heads/") if head.startswith("refs/heads/") else None,
        shallow=shallow == "true",
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
    _check_dir(path)
    return [t for t in _git(path, "tag", "--list").splitlines() if t]


def tag_commit(path: str, tag: str) -> str | None:
    """The commit a local tag points at, or None when there is no such tag."""
    _check_dir(path)
    code, out, _ = _finish(
        _start(path, "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}")
    )
    return out.strip() or None if code == 0 else None


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
