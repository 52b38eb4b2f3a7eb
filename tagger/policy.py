"""The tag policy (docs/tag-policy.md §1-§3) as pure functions: no I/O.

Versions are ``semver.Version`` values. Everything here is deterministic: the same
inputs always give the same tags, actions and reasons, which is what lets a re-run of a
release be a no-op and lets two concurrent releases agree on the end state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from semver import Version

# semver 2.0.0, no leading zeros, nothing after the build part.
_NUM = r"(?:0|[1-9]\d*)"
_PRE_ID = r"(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
_BUILD_ID = r"[0-9a-zA-Z-]+"
SEMVER_RE = re.compile(
    rf"(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_PRE_ID}(?:\.{_PRE_ID})*))?"
    rf"(?:\+(?P<build>{_BUILD_ID}(?:\.{_BUILD_ID})*))?"
)
# a published stable version: the T of X.Y.Z or of X.Y.Z+BUILD (``+`` written as ``_``)
_PUBLISHED_RE = re.compile(
    rf"(?P<version>{_NUM}\.{_NUM}\.{_NUM})(?:_(?P<build>{_BUILD_ID}(?:\.{_BUILD_ID})*))?"
)
DOCKER_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")

Action = Literal["create", "move", "unchanged", "skip", "refused"]
LATEST = "latest"


def parse_version(tag: str, prefix: str = "v") -> Version | None:
    """The version a git tag names, or None when it is not ``<prefix>SEMVER`` exactly."""
    if not tag.startswith(prefix):
        return None
    m = SEMVER_RE.fullmatch(tag[len(prefix) :])
    if m is None:
        return None
    return Version(int(m["major"]), int(m["minor"]), int(m["patch"]), m["pre"], m["build"])


def ignored_version_tags(tags: Iterable[str], prefix: str = "v") -> list[str]:
    """Tags that look like a version (the prefix, in any case, then a digit) but are not
    ``<prefix>SEMVER`` exactly (``v1.2``, ``V1.2.3``, ``v01.2.3``, ``v1.2.3-``): §1
    ignores them, and a user should hear that it did."""
    out = []
    for t in tags:
        rest = t[len(prefix) :]
        if t[: len(prefix)].lower() == prefix.lower() and rest[:1].isdigit():
            if parse_version(t, prefix) is None:
                out.append(t)
    return sorted(out)


def _sort_key(v: Version) -> tuple[Version, int, str]:
    # Precedence ignores build metadata; among equals prefer the plain tag, then the
    # lexically highest build, so the choice never depends on the order tags are listed.
    return (v, 0 if v.build else 1, v.build or "")


def release_version(tags: Iterable[str], prefix: str = "v") -> Version | None:
    """V: the highest semantic version among the git tags at HEAD (§1)."""
    versions = [v for v in (parse_version(t, prefix) for t in tags) if v is not None]
    return max(versions, key=_sort_key) if versions else None


def is_stable(v: Version) -> bool:
    return v.prerelease is None


def short_sha(commit: str, length: int = 7) -> str:
    return commit[:length]


def sha_tag(commit: str, sha_prefix: str = "sha-", length: int = 7) -> str:
    """The tag of a commit that is no release, e.g. ``sha-1a2b3c4``."""
    return f"{sha_prefix}{short_sha(commit, length)}"


def immutable_tag(
    version: Version | None,
    commit: str,
    *,
    dirty: bool = False,
    sha_prefix: str = "sha-",
    sha_length: int = 7,
) -> str:
    """T (§2): ``str(V)`` with ``+`` as ``_``, else the SHA tag; ``-dirty`` when dirty."""
    tag = str(version).replace("+", "_") if version else sha_tag(commit, sha_prefix, sha_length)
    return f"{tag}-dirty" if dirty else tag


def published_versions(tags: Iterable[str]) -> dict[Version, str]:
    """S of a repository (§3): each stable version it has published -> the tag that
    stands for it. A tag counts as ``X.Y.Z`` when it is exactly ``X.Y.Z`` or
    ``X.Y.Z_BUILD`` (the T of a release with build metadata); where both exist the plain
    tag stands for the version, else the highest build string. ``release``, its repair
    and ``reconcile`` all read a repository through this one function; the tag is the
    one whose digest is the version's (a floating tag is pointed at it)."""
    best: dict[Version, tuple[tuple[int, str], str]] = {}
    for tag in tags:
        m = _PUBLISHED_RE.fullmatch(tag)
        if m is None or tag.endswith("-dirty"):  # a dirty T publishes no version
            continue
        version = Version.parse(m["version"])
        key = (1, "") if m["build"] is None else (0, m["build"])
        if version not in best or key > best[version][0]:
            best[version] = (key, tag)
    return {v: tag for v, (_, tag) in best.items()}


def floating_tags(version: Version, *, major_zero: bool = False) -> list[str]:
    """The version-line tags a stable version can move, in write order: X.Y, then X."""
    tags = [f"{version.major}.{version.minor}"]
    if version.major > 0 or major_zero:
        tags.append(str(version.major))
    return tags


def line_of(tag: str) -> tuple[int, ...] | None:
    """(X, Y) for an ``X.Y`` tag, (X,) for an ``X`` tag, () for latest, else None."""
    if tag == LATEST:
        return ()
    parts = tag.split(".")
    if len(parts) > 2 or not all(re.fullmatch(_NUM, p) for p in parts):
        return None
    return tuple(int(p) for p in parts)


def in_line(v: Version, line: tuple[int, ...]) -> bool:
    return (v.major, v.minor)[: len(line)] == line


def highest_in_line(versions: Iterable[Version], line: tuple[int, ...]) -> Version | None:
    candidates = [v for v in versions if in_line(v, line)]
    return max(candidates) if candidates else None


def line_name(line: tuple[int, ...]) -> str:
    return ".".join(str(p) for p in line) + ".x" if line else "release"


@dataclass(frozen=True)
class LatestPolicy:
    """``highest`` (default), ``never``, ``always`` or ``branch:<name>``."""

    kind: Literal["highest", "never", "always", "branch"] = "highest"
    branch: str | None = None

    @classmethod
    def parse(cls, text: str) -> LatestPolicy:
        if text in ("highest", "never", "always"):
            return cls(text)  # type: ignore[arg-type]
        if text.startswith("branch:") and len(text) > len("branch:"):
            return cls("branch", text[len("branch:") :])
        raise ValueError(
            f"unknown latest policy {text!r}: use highest, never, always or branch:NAME"
        )

    def __str__(self) -> str:
        return f"branch:{self.branch}" if self.kind == "branch" else self.kind


@dataclass(frozen=True)
class Move:
    """Whether one tag should point at the image being published, and why."""

    tag: str
    moves: bool
    reason: str
    immutable: bool = False  # T: written first, never moved


def immutable_move(tag: str) -> Move:
    return Move(tag, True, "immutable", immutable=True)


def floating_moves(
    version: Version | None,
    published: Iterable[Version],
    *,
    latest: LatestPolicy = LatestPolicy(),
    major_zero: bool = False,
    branch: str | None = None,
    dirty: bool = False,
) -> list[Move]:
    """Which floating tags move to the image being published (§3), in write order.

    ``published`` is S without V: the stable versions the target already has.
    Tags that do not apply at all (X.Y and X of a SHA build, ``0`` without
    ``major_zero``) are left out; a tag that applies but stays is a Move with
    ``moves=False`` and the reason.
    """
    s = set(published)
    moves: list[Move] = []
    stable = version is not None and is_stable(version)
    if version is not None:
        s.add(version)
        for tag in floating_tags(version, major_zero=major_zero):
            line = line_of(tag)
            assert line is not None
            moves.append(_line_move(tag, version, line, s, dirty))

    if latest.kind == "never":
        moves.append(Move(LATEST, False, "latest policy is never"))
    elif dirty:
        moves.append(Move(LATEST, False, "dirty work tree"))
    elif latest.kind == "branch":
        on_branch = branch == latest.branch
        if version is not None and not stable:
            moves.append(Move(LATEST, False, "pre-release"))
        elif on_branch:
            moves.append(Move(LATEST, True, f"newest build of branch {latest.branch}"))
        else:
            where = f"branch {branch}" if branch else "a detached HEAD"
            moves.append(Move(LATEST, False, f"built from {where}, latest follows {latest.branch}"))
    elif version is None:
        moves.append(Move(LATEST, False, "not a release"))
    elif latest.kind == "always":
        if stable:
            moves.append(Move(LATEST, True, "latest policy is always"))
        else:
            moves.append(Move(LATEST, False, "pre-release"))
    else:
        moves.append(_line_move(LATEST, version, (), s, dirty))
    return moves


def _line_move(
    tag: str, version: Version, line: tuple[int, ...], s: set[Version], dirty: bool
) -> Move:
    if dirty:
        return Move(tag, False, "dirty work tree")
    if not is_stable(version):
        return Move(tag, False, "pre-release")
    top = highest_in_line(s, line)
    assert top is not None  # V itself is in the line
    if top > version:
        return Move(tag, False, f"{top} is newer")
    return Move(tag, True, f"newest {line_name(line)}")


def reconcile_targets(
    published: Iterable[Version],
    *,
    major_zero: bool = False,
    latest: bool = True,
) -> dict[str, Version]:
    """Where every floating tag of a repository belongs: tag -> highest version of its line.

    ``latest`` is included only when the latest policy is ``highest``: the other
    policies cannot be recomputed from the registry.
    """
    s = sorted(set(published))
    targets: dict[str, Version] = {}
    for v in s:  # ascending, so the last write per tag is the highest
        for tag in floating_tags(v, major_zero=major_zero):
            targets[tag] = v
    if latest and s:
        targets[LATEST] = s[-1]
    return targets


def action_for(moves: bool, current: str | None, digest: str | None) -> Action:
    """The action a tag gets: create/move/unchanged when it moves, else skip."""
    if not moves:
        return "skip"
    if current is None:
        return "create"
    return "unchanged" if current == digest else "move"


def repairs_needed(
    written: Mapping[str, Version], published_after: Iterable[Version]
) -> dict[str, Version]:
    """Floating tags this release wrote that a newer version now owns (§4 races).

    ``written`` maps each floating tag the release moved to the version it moved it
    to; the result maps each tag that must be repaired to the version it belongs to.
    """
    s = set(published_after)
    out: dict[str, Version] = {}
    for tag, version in written.items():
        line = line_of(tag)
        if line is None:
            continue
        top = highest_in_line(s, line)
        if top is not None and top > version:
            out[tag] = top
    return out
