"""The git state of a checkout as a frozen value, plus CI hints.

Read through GitPython (``git.Repo``), as the design card requires: one library owns
finding the repository (from any subdirectory, or a linked work tree), resolving HEAD
and its branch, and running git. The object API is used where it only reads files in
the git directory (work tree root, HEAD, detached or not, the shallow file); GitPython's
command wrapper where the object API would walk the whole repository: ``git tag
--points-at HEAD`` instead of peeling every tag (slow with thousands of tags), and
``git status`` instead of diffing the index in Python. The two commands are started
together (``as_process=True``) and HEAD is resolved while they run.

Import cost: ``import git`` loads some 100 modules and runs ``git version`` once (tens of
milliseconds). It is imported inside the functions that read git, never at module
level, so commands that do not read git (``tagger --help``) do not pay for it.

CI hints (``GITHUB_REF``/``GITHUB_SHA``, ``CI_COMMIT_TAG``/``CI_COMMIT_SHA``/
``CI_COMMIT_BRANCH``) fill in what git cannot tell: the tag of a shallow clone fetched
without tags, the branch of a detached HEAD. A tag hint is used only when no version
tag is at HEAD, a branch hint only for a detached HEAD; a hint that is used must come
with its commit variable (``GITHUB_SHA``/``CI_COMMIT_SHA``) naming HEAD, else it is
refused rather than guessed around. A hint that is not needed is ignored.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from . import policy, redact
from .errors import GitError, PolicyRefusal, TaggerError
from .redact import secret_variables

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
    tagless: bool = False  # a shallow clone with no tag at all (fetched without tags)
    ci: bool = False  # CI variables were set: the pipeline says what is being built

    @property
    def dirty(self) -> bool:
        return bool(self.dirty_files)


# status must not take the index lock: a release may run beside other git commands
_ENV = {"GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "LANGUAGE": "C"}
_NO_GIT = ("git is not installed (or not on PATH)", "install git")


@contextmanager
def _open(path: str) -> Iterator[git.Repo]:
    """The repository holding ``path`` (found upwards, as git does), closed on exit."""
    if not os.path.isdir(path):
        raise GitError(f"{path}: no such directory", "pass -C with an existing path")
    try:
        import git
    except ModuleNotFoundError as e:
        if e.name != "git":
            raise
        raise GitError(
            "GitPython is not installed", "install tagger with its dependencies (pip install .)"
        ) from None
    except ImportError as e:  # GitPython's import runs `git version` and fails without git
        cause = e.__cause__ or e.__context__
        if isinstance(cause, TaggerError):  # a signal stopped the run while it ran
            raise cause from None
        raise GitError(*_NO_GIT) from None
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitError(
            f"{os.path.abspath(path)} is not inside a git repository",
            "run tagger in a git checkout, or pass -C PATH",
        ) from None
    with repo:
        # git and its hooks get no secret: TAGGER_PASSWORD (or any variable holding a
        # registered secret) is blanked; GitPython can only add to os.environ
        hidden = {name: "" for name in secret_variables(os.environ)}
        repo.git.update_environment(**_ENV, **hidden)
        try:
            yield repo
        except git.GitCommandNotFound:
            raise GitError(*_NO_GIT) from None


def _start(repo: git.Repo, command: str, *args: str) -> git.Git.AutoInterrupt:
    """Start ``git COMMAND ARGS`` in the work tree through GitPython's wrapper."""
    proc: git.Git.AutoInterrupt = getattr(repo.git, command)(*args, as_process=True)
    return proc


def _finish(proc: git.Git.AutoInterrupt) -> tuple[int, str, str]:
    popen = proc.proc
    if popen is None:  # GitPython had already terminated it
        raise GitError("git was stopped before it answered", "run tagger again")
    out, err = popen.communicate()
    return popen.returncode, out.decode("utf-8", "surrogateescape"), err.decode(errors="replace")


def _output(result: tuple[int, str, str]) -> str:
    code, out, err = result
    if code != 0:
        raise GitError(f"git failed: {err.strip() or f'exit {code}'}", "check the repository")
    return out


def _root(repo: git.Repo) -> str:
    if repo.working_tree_dir is None:
        raise GitError(
            f"{repo.git_dir} is a bare repository: it has no work tree",
            "run tagger in a checkout, or pass -C with one",
        )
    return str(repo.working_tree_dir)


def read_state(path: str = ".", *, untracked_dirty: bool = False) -> GitState:
    """Read HEAD, its tags, dirtiness, branch and shallowness (no CI hints)."""
    with _open(path) as repo:
        root = _root(repo)
        # the two commands are independent: start both, resolve HEAD while they run
        procs = [
            _start(repo, "tag", "--points-at", "HEAD"),
            _start(
                repo,
                "status",
                "--porcelain=v1",
                "-z",
                "--untracked-files=" + ("all" if untracked_dirty else "no"),
            ),
        ]
        try:
            head = repo.head
            try:
                commit = head.commit.hexsha
            except ValueError:  # HEAD names a branch that does not exist yet
                raise GitError(
                    f"the repository at {root} has no commits yet",
                    "commit something, then run tagger again",
                ) from None
            ref = None if head.is_detached else head.reference.path
            shallow = os.path.exists(os.path.join(repo.common_dir, "shallow"))
        finally:
            tags, status = (_finish(p) for p in procs)
        at_head = tuple(t for t in _output(tags).splitlines() if t)
        return GitState(
            root=root,
            commit=commit,
            tags=at_head,
            dirty_files=_parse_status(_output(status)),
            branch=ref.removeprefix("refs/heads/")
            if ref and ref.startswith("refs/heads/")
            else None,
            shallow=shallow,
            # only a shallow clone with nothing at HEAD pays for reading refs/tags
            tagless=shallow and not at_head and not repo.tags,
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
    with _open(path) as repo:
        return [t for t in _output(_finish(_start(repo, "tag", "--list"))).splitlines() if t]


def tag_commit(path: str, tag: str) -> str | None:
    """The commit a local tag points at, or None when there is no such tag."""
    with _open(path) as repo:
        code, out, _ = _finish(
            _start(repo, "rev_parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}")
        )
    return out.strip() or None if code == 0 else None


@dataclass(frozen=True)
class BuildFacts:
    """What only ``tagger labels`` needs, read on demand (``tagger version`` does not)."""

    commit_time: int  # the commit's committer time, seconds since 1970
    origin_url: str | None  # the ``origin`` remote's URL (credentials registered)


def build_facts(path: str, commit: str, *, origin: bool = True) -> BuildFacts:
    """The commit's time and, with ``origin``, the ``origin`` remote's URL (as git
    resolves it, ``insteadOf`` applied; None without one). Any credentials in the URL
    are registered with redact before this returns, so nothing can print them."""
    from .labels import url_secrets  # only `labels` pays for it

    with _open(path) as repo:
        procs = [_start(repo, "show", "-s", "--format=%ct", commit, "--")]
        if origin:
            procs.append(_start(repo, "remote", "get-url", "origin"))
        results = [_finish(p) for p in procs]
    url = None
    if origin:
        code, out, _ = results[1]  # exit 2: no such remote (git's stderr is not shown)
        url = out.strip() or None if code == 0 else None
        for secret in url_secrets(url or ""):
            redact.register(secret)
    text = _output(results[0]).strip()
    if not text.isdigit():
        raise GitError(f"git gave no time for commit {commit[:12]}", "check the repository")
    return BuildFacts(int(text), url)


@dataclass(frozen=True)
class CIHints:
    tag: str | None = None
    branch: str | None = None
    sha: str | None = None
    tag_var: str = ""  # the variables each came from, for messages
    branch_var: str = ""
    sha_var: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CIHints:
        ref = env.get("GITHUB_REF", "")
        if ref or env.get("GITHUB_SHA"):
            tag = ref[len("refs/tags/") :] if ref.startswith("refs/tags/") else None
            branch = ref[len("refs/heads/") :] if ref.startswith("refs/heads/") else None
            sha = env.get("GITHUB_SHA") or None
            return cls(tag, branch, sha, "GITHUB_REF", "GITHUB_REF", "GITHUB_SHA")
        if env.get("CI_COMMIT_SHA") or env.get("CI_COMMIT_TAG") or env.get("CI_COMMIT_BRANCH"):
            return cls(
                env.get("CI_COMMIT_TAG") or None,
                env.get("CI_COMMIT_BRANCH") or None,
                env.get("CI_COMMIT_SHA") or None,
                "CI_COMMIT_TAG",
                "CI_COMMIT_BRANCH",
                "CI_COMMIT_SHA",
            )
        return cls()


def apply_hints(state: GitState, hints: CIHints, tag_prefix: str = "v") -> GitState:
    """Fill in what git cannot tell (tag-policy §Inputs): a version tag only when no
    version tag (with ``tag_prefix``) is at HEAD, a branch only for a detached HEAD.
    A hint that would be used must come with its commit variable naming HEAD, else it
    is refused; a hint that is not needed is ignored, whatever it says."""
    used: list[str] = []
    tags = state.tags
    branch = state.branch
    need_tag = not any(policy.parse_version(t, tag_prefix) for t in state.tags)
    if need_tag and hints.tag and policy.parse_version(hints.tag, tag_prefix) is not None:
        _check_sha(state, hints, f"{hints.tag_var} names tag {hints.tag}")
        local = tag_commit(state.root, hints.tag)
        if local is not None and local != state.commit:
            raise PolicyRefusal(
                f"{hints.tag_var} names tag {hints.tag}, which points at {local[:12]}, "
                f"but HEAD is {state.commit[:12]}",
                f"check out {hints.tag}, or unset the CI variables if this is not that build",
            )
        tags = (*tags, hints.tag)
        used.append(f"tag {hints.tag}")
    if branch is None and hints.branch:
        _check_sha(state, hints, f"{hints.branch_var} names branch {hints.branch}")
        branch = hints.branch
        used.append(f"branch {hints.branch}")
    if not used:
        return state
    return replace(state, tags=tags, branch=branch, hints=(*state.hints, *used))


def _check_sha(state: GitState, hints: CIHints, what: str) -> None:
    """A hint is used only with its system's commit variable naming HEAD."""
    if hints.sha is None:
        raise PolicyRefusal(
            f"{what}, but {hints.sha_var} is not set: nothing says that build is HEAD",
            f"set {hints.sha_var} to the commit being built, or fetch the tags"
            " (git fetch --tags) and check out a branch so git can tell",
        )
    if hints.sha != state.commit:
        raise PolicyRefusal(
            f"{what}, but {hints.sha_var} names commit {hints.sha[:12]} and HEAD is"
            f" {state.commit[:12]}",
            f"check out {hints.sha_var} (the commit the pipeline was started for),"
            " or unset the CI variables if this is not that build",
        )


def current_state(
    path: str = ".",
    env: Mapping[str, str] | None = None,
    *,
    untracked_dirty: bool = False,
    tag_prefix: str = "v",
) -> GitState:
    state = read_state(path, untracked_dirty=untracked_dirty)
    hints = CIHints.from_env(os.environ if env is None else env)
    return apply_hints(replace(state, ci=hints != CIHints()), hints, tag_prefix)
