"""The tag policy (docs/tag-policy.md §1-§3) as users see it: which tags a
release gets, where the floating tags end up, and why a tag stays where it is."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from semver import Version

from tagger.policy import (
    DOCKER_TAG_RE,
    LatestPolicy,
    Move,
    action_for,
    floating_moves,
    immutable_tag,
    line_of,
    parse_version,
    published_versions,
    reconcile_targets,
    release_version,
    repairs_needed,
)

COMMIT = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
OTHER_COMMIT = "ffffeeeeddddccccbbbbaaaa9999888877776666"


def V(text: str) -> Version:
    return Version.parse(text)


def moved(moves: list[Move]) -> list[str]:
    return [m.tag for m in moves if m.moves]


def by_tag(moves: list[Move]) -> dict[str, Move]:
    return {m.tag: m for m in moves}


HIGHEST = LatestPolicy()

# A registry is simulated as a dict tag -> the version whose image the tag points at.


def publish(
    registry: dict[str, Version],
    version: Version,
    *,
    latest: LatestPolicy = HIGHEST,
    major_zero: bool = False,
) -> list[Move]:
    """One release as §2-§3 describe it: T first, then the floating tags that move."""
    published = published_versions(registry)
    moves = floating_moves(version, published, latest=latest, major_zero=major_zero)
    registry[immutable_tag(version, COMMIT)] = version
    for m in moves:
        if m.moves:
            registry[m.tag] = version
    return moves


def floating_state(registry: dict[str, Version]) -> dict[str, Version]:
    return {t: v for t, v in registry.items() if line_of(t) is not None}


# --- §3 example table -----------------------------------------------------------------

TABLE = [
    # after,      1.2,     1.3,     1,       latest,  2.0.0-rc.1
    ("1.2.3", "1.2.3", None, "1.2.3", "1.2.3", None),
    ("1.3.0", "1.2.3", "1.3.0", "1.3.0", "1.3.0", None),
    ("1.2.4", "1.2.4", "1.3.0", "1.3.0", "1.3.0", None),
    ("2.0.0-rc.1", "1.2.4", "1.3.0", "1.3.0", "1.3.0", "2.0.0-rc.1"),
]


def test_example_table_row_by_row() -> None:
    registry: dict[str, Version] = {}
    for after, *expected in TABLE:
        publish(registry, V(after))
        columns = ["1.2", "1.3", "1", "latest", "2.0.0-rc.1"]
        state = {c: (str(registry[c]) if c in registry else None) for c in columns}
        assert state == dict(zip(columns, expected)), f"after {after}"
    # the pre-release made no "2.0" or "2" tag, and every release kept its own T
    assert set(registry) == {"1.2.3", "1.3.0", "1.2.4", "2.0.0-rc.1", "1.2", "1.3", "1", "latest"}


def test_backport_reports_why_major_and_latest_stay() -> None:
    moves = floating_moves(V("1.2.4"), [V("1.2.3"), V("1.3.0")])
    assert [(m.tag, m.moves, m.reason) for m in moves] == [
        ("1.2", True, "newest 1.2.x"),
        ("1", False, "1.3.0 is newer"),
        ("latest", False, "1.3.0 is newer"),
    ]


def test_rerun_of_published_release_moves_the_same_tags() -> None:
    published = [V("1.2.3"), V("1.3.0")]
    assert moved(floating_moves(V("1.3.0"), published)) == ["1.3", "1", "latest"]
    assert moved(floating_moves(V("1.2.3"), published)) == ["1.2"]


# --- §1 the release version V ------------------------------------------------------------


@pytest.mark.parametrize("tags", list(itertools.permutations(["v1.2.0", "v1.2.0-rc.2"])))
def test_stable_beats_its_own_prerelease_whatever_the_order(tags: tuple[str, ...]) -> None:
    assert str(release_version(tags)) == "1.2.0"


@pytest.mark.parametrize("tag", ["v1.2", "v01.2.3", "release-5", "v1.2.3.4", "v1.02.3", "1.2.3"])
def test_non_versions_are_ignored(tag: str) -> None:
    assert parse_version(tag) is None
    assert release_version([tag]) is None


def test_non_versions_are_never_half_parsed() -> None:
    # "v1.2.3.4" must not count as 1.2.3, which would beat the real v1.2.2
    assert str(release_version(["v1.2.3.4", "v1.2.2", "release-5", "latest"])) == "1.2.2"


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["v1.2.3"], "1.2.3"),
        (["v2.0.0-rc.1"], "2.0.0-rc.1"),
        (["v1.0.0+build.7"], "1.0.0_build.7"),
        (["v2.0.0-rc.1", "v2.0.0-rc.10", "v2.0.0-rc.2"], "2.0.0-rc.10"),
        (["v1.9.0", "v1.10.0"], "1.10.0"),
    ],
)
def test_immutable_tag_of_release(tags: list[str], expected: str) -> None:
    assert immutable_tag(release_version(tags), COMMIT) == expected


def test_custom_prefix_for_a_monorepo_component() -> None:
    tags = ["api/v1.4.0", "web/v2.0.0", "v9.9.9"]
    assert str(release_version(tags, prefix="api/v")) == "1.4.0"
    assert str(release_version(tags, prefix="web/v")) == "2.0.0"
    assert release_version(["api/v1.4.0"]) is None  # the default prefix "v" does not match


def test_build_metadata_choice_does_not_depend_on_tag_order() -> None:
    tags = ["v1.0.0+b", "v1.0.0+a", "v1.0.0"]
    results = {immutable_tag(release_version(p), COMMIT) for p in itertools.permutations(tags)}
    assert len(results) == 1


# --- §2 the immutable tag T ----------------------------------------------------------------


def test_sha_tag_without_version() -> None:
    assert immutable_tag(None, COMMIT) == "sha-1a2b3c4"
    assert immutable_tag(None, COMMIT, sha_length=12) == "sha-1a2b3c4d5e6f"
    assert immutable_tag(None, COMMIT, sha_prefix="git-", sha_length=4) == "git-1a2b"


def test_dirty_suffix() -> None:
    assert immutable_tag(V("1.2.3"), COMMIT, dirty=True) == "1.2.3-dirty"
    assert immutable_tag(None, COMMIT, dirty=True) == "sha-1a2b3c4-dirty"


@pytest.mark.parametrize(
    "latest",
    [LatestPolicy(), LatestPolicy("always"), LatestPolicy("never"), LatestPolicy("branch", "main")],
)
@pytest.mark.parametrize("version", [V("1.2.3"), None])
def test_dirty_tree_moves_no_floating_tag(latest: LatestPolicy, version: Version | None) -> None:
    moves = floating_moves(version, [], latest=latest, branch="main", dirty=True)
    assert moves and moved(moves) == []


# --- latest policies -------------------------------------------------------------------------


def test_latest_never() -> None:
    moves = by_tag(floating_moves(V("1.2.3"), [], latest=LatestPolicy.parse("never")))
    assert moves["1.2"].moves and moves["1"].moves
    assert not moves["latest"].moves and "never" in moves["latest"].reason


def test_latest_always_moves_latest_on_a_backport_but_not_the_major() -> None:
    registry: dict[str, Version] = {}
    always = LatestPolicy.parse("always")
    for v in ["1.2.3", "1.3.0", "1.2.4"]:
        publish(registry, V(v), latest=always)
    assert str(registry["latest"]) == "1.2.4"
    assert str(registry["1"]) == "1.3.0"
    assert str(registry["1.2"]) == "1.2.4"


@pytest.mark.parametrize("policy", ["highest", "always", "branch:main"])
def test_prerelease_never_moves_latest(policy: str) -> None:
    moves = floating_moves(V("2.0.0-rc.1"), [], latest=LatestPolicy.parse(policy), branch="main")
    assert moved(moves) == []
    assert by_tag(moves)["latest"].reason == "pre-release"


@pytest.mark.parametrize("policy", ["highest", "always", "never"])
def test_sha_build_moves_nothing_outside_branch_policy(policy: str) -> None:
    moves = floating_moves(None, [V("1.2.3")], latest=LatestPolicy.parse(policy), branch="main")
    assert [m.tag for m in moves] == ["latest"]  # no X.Y or X for a SHA build
    assert moved(moves) == []


def test_latest_branch_policy_follows_builds_of_that_branch() -> None:
    policy = LatestPolicy.parse("branch:main")
    on_main = floating_moves(None, [V("1.2.3")], latest=policy, branch="main")
    assert moved(on_main) == ["latest"]
    off = by_tag(floating_moves(None, [V("1.2.3")], latest=policy, branch="feature"))["latest"]
    assert not off.moves and "feature" in off.reason and "main" in off.reason
    detached = by_tag(floating_moves(None, [], latest=policy, branch=None))["latest"]
    assert not detached.moves and "detached" in detached.reason


@pytest.mark.parametrize("text", ["highest", "never", "always", "branch:main", "branch:release/1"])
def test_latest_policy_round_trips(text: str) -> None:
    assert str(LatestPolicy.parse(text)) == text


@pytest.mark.parametrize("text", ["branch:", "sometimes", "", "Highest"])
def test_latest_policy_rejects_unknown(text: str) -> None:
    with pytest.raises(ValueError, match="highest, never, always or branch:NAME"):
        LatestPolicy.parse(text)


# --- major zero ------------------------------------------------------------------------------


def test_major_zero_makes_no_zero_tag_unless_configured() -> None:
    assert moved(floating_moves(V("0.3.1"), [V("0.2.0")])) == ["0.3", "latest"]
    zero = floating_moves(V("0.3.1"), [V("0.2.0")], major_zero=True)
    assert moved(zero) == ["0.3", "0", "latest"]
    assert "0" not in reconcile_targets([V("0.3.1"), V("0.2.0")])
    assert str(reconcile_targets([V("0.3.1"), V("0.2.0")], major_zero=True)["0"]) == "0.3.1"


# --- registry views ----------------------------------------------------------------------------


def test_published_versions_counts_only_stable_version_tags() -> None:
    tags = ["1.2.3", "1.3.0", "2.0.0-rc.1", "1.2", "1", "latest", "sha-1a2b3c4", "01.2.3"]
    tags += ["1.2.3-dirty", "2.0.0-rc.1_b", "1.4.0_", "1.4.0_a..b", "1.4.0+b", "v1.5.0"]
    assert published_versions(tags) == {V("1.2.3"): "1.2.3", V("1.3.0"): "1.3.0"}


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["1.3.0_build.7"], {"1.3.0": "1.3.0_build.7"}),
        (["1.3.0_build.7", "1.3.0"], {"1.3.0": "1.3.0"}),
        (["1.3.0", "1.3.0_build.7"], {"1.3.0": "1.3.0"}),
        (["1.3.0_b", "1.3.0_a", "1.3.0_c.1"], {"1.3.0": "1.3.0_c.1"}),
        (["1.3.0_build.7", "1.2.3"], {"1.3.0": "1.3.0_build.7", "1.2.3": "1.2.3"}),
        (["1.0.0_exp-sha.5114f85", "1.0.0_20130313144700"], {"1.0.0": "1.0.0_exp-sha.5114f85"}),
        (["1.3.0-rc.1_build.7", "1.3.0_build.7-dirty"], {}),
    ],
)
def test_published_versions_with_build_metadata(tags: list[str], expected: dict[str, str]) -> None:
    assert published_versions(tags) == {V(k): t for k, t in expected.items()}


def test_build_metadata_release_keeps_its_lines_from_a_backport() -> None:
    """1.2.3, then 1.3.0+build.7 (T 1.3.0_build.7): reconcile keeps 1 and latest on it,
    and a backport 1.2.4 moves 1.2 only."""
    registry = ["1.2.3", "1.2", "1", "latest", "1.3.0_build.7", "1.3"]
    published = published_versions(registry)
    targets = reconcile_targets(published)
    assert {t: published[v] for t, v in targets.items()} == {
        "1.2": "1.2.3", "1.3": "1.3.0_build.7", "1": "1.3.0_build.7", "latest": "1.3.0_build.7",
    }
    moved = {m.tag: m.moves for m in floating_moves(V("1.2.4"), published)}
    assert moved == {"1.2": True, "1": False, "latest": False}


@pytest.mark.parametrize(
    ("moves", "current", "digest", "action"),
    [
        (True, None, "sha256:a", "create"),
        (True, "sha256:b", "sha256:a", "move"),
        (True, "sha256:a", "sha256:a", "unchanged"),
        (False, "sha256:b", "sha256:a", "skip"),
        (False, None, "sha256:a", "skip"),
    ],
)
def test_action_for(moves: bool, current: str | None, digest: str, action: str) -> None:
    assert action_for(moves, current, digest) == action


def test_reconcile_targets_of_the_example() -> None:
    targets = reconcile_targets(published_versions(["1.2.3", "1.3.0", "1.2.4", "2.0.0-rc.1"]))
    assert {t: str(v) for t, v in targets.items()} == {
        "1.2": "1.2.4",
        "1.3": "1.3.0",
        "1": "1.3.0",
        "latest": "1.3.0",
    }
    assert "latest" not in reconcile_targets([V("1.2.3")], latest=False)


def test_repairs_needed_after_a_race() -> None:
    # 1.2.4 moved "1" and "latest" after 1.3.0 had been published concurrently
    written = {"1.2": V("1.2.4"), "1": V("1.2.4"), "latest": V("1.2.4")}
    repairs = repairs_needed(written, [V("1.2.3"), V("1.2.4"), V("1.3.0")])
    assert {t: str(v) for t, v in repairs.items()} == {"1": "1.3.0", "latest": "1.3.0"}


# --- properties -----------------------------------------------------------------------------

_nums = st.integers(min_value=0, max_value=20)
_alnum = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-",
    min_size=1,
    max_size=6,
)
_pre_id = st.one_of(
    st.integers(min_value=0, max_value=999).map(str), _alnum.filter(lambda s: not s.isdigit())
)
_prerelease = st.lists(_pre_id, min_size=1, max_size=3).map(".".join)
_build = st.lists(_alnum, min_size=1, max_size=3).map(".".join)

stable_versions = st.builds(Version, _nums, _nums, _nums)
prereleases = st.builds(Version, _nums, _nums, _nums, _prerelease)
any_versions = st.builds(
    Version, _nums, _nums, _nums, st.none() | _prerelease, st.none() | _build
)
# a small space, so that different versions with look-alike tags come up often
_tiny_ids = st.sampled_from([None, "a", "b.1"])
tiny_versions = st.builds(Version, st.just(1), st.just(0), st.just(0), _tiny_ids, _tiny_ids)
latest_policies = st.sampled_from(
    [LatestPolicy(), LatestPolicy("always"), LatestPolicy("never"), LatestPolicy("branch", "main")]
)


@given(any_versions)
def test_prop_immutable_tag_is_a_pure_function_of_the_version(v: Version) -> None:
    tag = immutable_tag(v, COMMIT)
    # the commit, and the SHA settings, never change T of a version
    assert immutable_tag(v, OTHER_COMMIT, sha_prefix="x-", sha_length=12) == tag
    assert DOCKER_TAG_RE.fullmatch(tag)
    # and T is what the git tag v<V> gives back
    assert immutable_tag(parse_version(f"v{v}"), OTHER_COMMIT) == tag


@given(tiny_versions | any_versions, tiny_versions | any_versions)
def test_prop_distinct_versions_get_distinct_tags(a: Version, b: Version) -> None:
    if str(a) != str(b):
        assert immutable_tag(a, COMMIT) != immutable_tag(b, COMMIT)


def _highest(versions: list[Version], pred: Callable[[Version], bool]) -> Version:
    return max(v for v in versions if pred(v))


@given(st.lists(stable_versions | prereleases, min_size=1, max_size=12), st.booleans())
def test_prop_floating_tags_end_on_the_highest_stable_of_their_line(
    releases: list[Version], major_zero: bool
) -> None:
    registry: dict[str, Version] = {}
    for v in releases:
        publish(registry, v, major_zero=major_zero)
    stable = [v for v in releases if v.prerelease is None]
    for v in stable:
        assert registry[f"{v.major}.{v.minor}"] == _highest(
            stable, lambda s, v=v: (s.major, s.minor) == (v.major, v.minor)
        )
        if v.major > 0 or major_zero:
            assert registry[str(v.major)] == _highest(stable, lambda s, v=v: s.major == v.major)
    if stable:
        assert registry["latest"] == max(stable)
    else:
        assert "latest" not in registry
    # no floating tag for a line with only pre-releases, no "0" unless configured
    floating = floating_state(registry)
    assert set(floating) == {
        t for v in stable for t in (f"{v.major}.{v.minor}", str(v.major)) if t != "0" or major_zero
    } | ({"latest"} if stable else set())
    # and `tagger reconcile` would find nothing to change
    assert floating == reconcile_targets(published_versions(registry), major_zero=major_zero)


@given(
    prereleases,
    st.lists(stable_versions, max_size=6),
    latest_policies,
    st.sampled_from(["main", "feature", None]),
    st.booleans(),
)
def test_prop_prerelease_never_moves_a_floating_tag(
    v: Version,
    published: list[Version],
    latest: LatestPolicy,
    branch: str | None,
    major_zero: bool,
) -> None:
    moves = floating_moves(v, published, latest=latest, branch=branch, major_zero=major_zero)
    assert moved(moves) == []


@given(st.lists(stable_versions, max_size=10), st.booleans())
def test_prop_reconcile_targets_point_each_line_at_its_highest(
    published: list[Version], major_zero: bool
) -> None:
    targets = reconcile_targets(published, major_zero=major_zero)
    for v in published:
        assert targets[f"{v.major}.{v.minor}"] == max(
            p for p in published if (p.major, p.minor) == (v.major, v.minor)
        )
        if v.major or major_zero:
            assert targets[str(v.major)] == max(p for p in published if p.major == v.major)
    assert targets.get("latest") == (max(published) if published else None)
    assert "0" not in targets or major_zero
    # re-releasing the version a floating tag belongs to moves that tag
    for tag, target in targets.items():
        assert tag in moved(floating_moves(target, published, major_zero=major_zero))


@given(
    st.lists(stable_versions, max_size=5),
    stable_versions | prereleases,
    stable_versions | prereleases,
    st.lists(st.booleans(), min_size=16, max_size=16),
)
def test_prop_two_concurrent_releases_end_where_the_policy_says(
    initial: list[Version], a: Version, b: Version, schedule: list[bool]
) -> None:
    """§4: two releases that both read the registry first, then write T, then their
    floating tags, then re-read and repair, end right whatever the interleaving."""
    registry: dict[str, Version] = {}
    for v in initial:
        publish(registry, v)

    def release(v: Version) -> Iterator[None]:
        published = published_versions(registry)
        yield
        moves = floating_moves(v, published)
        registry[immutable_tag(v, COMMIT)] = v
        yield
        written: dict[str, Version] = {}
        for m in moves:
            if m.moves:
                registry[m.tag] = v
                written[m.tag] = v
                yield
        for tag, target in repairs_needed(written, published_versions(registry)).items():
            yield
            assert target > written[tag]
            registry[tag] = target

    runs = [release(a), release(b)]
    steps = iter(schedule)
    while runs:
        run = runs[int(next(steps, False)) % len(runs)]
        try:
            next(run)
        except StopIteration:
            runs.remove(run)

    assert floating_state(registry) == reconcile_targets(published_versions(registry))


_build_tags = st.builds(
    lambda v, build: f"{v}_{build}" if build else str(v), stable_versions, st.none() | _build
)


@given(st.lists(_build_tags, max_size=8), st.randoms(use_true_random=False))
def test_prop_published_versions_is_the_same_set_whatever_the_order_and_spelling(
    tags: list[str], rnd: Any
) -> None:
    """Every X.Y.Z[_BUILD] tag counts as X.Y.Z; the plain tag stands for it if present,
    else the highest build; the result never depends on listing order."""
    published = published_versions(tags)
    assert set(published) == {V(t.split("_")[0]) for t in tags}
    for v, tag in published.items():
        spellings = [t for t in tags if V(t.split("_")[0]) == v]
        plain = [t for t in spellings if "_" not in t]
        assert tag == (plain[0] if plain else max(spellings))
    shuffled = list(tags)
    rnd.shuffle(shuffled)
    assert published_versions(shuffled) == published
