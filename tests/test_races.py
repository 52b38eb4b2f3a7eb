"""Two releases at once (tag-policy.md §4): whatever the interleaving, every floating tag
ends where the policy puts it. One release is held between its read and its writes
while the other runs from start to finish."""

from __future__ import annotations

from typing import Any

from support.git import Repo
from support.registry import Registry

from tagger import config, gitstate, identity, release
from tagger.registry import Registries


def _prepare(
    registry: Registry, repo: Repo, image: str
) -> dict[str, tuple[identity.Identity, str]]:
    """1.2.3 published; commits for 1.2.4 and 1.3.0 built (sha tags pushed)."""
    out = {}
    for v in ("1.2.3", "1.2.4", "1.3.0"):
        repo.commit(v)
        repo.tag(f"v{v}")
        digest = registry.push_image(image, repo.sha_tag, content=v)
        cfg = config.Config(images=(f"{registry.host}/{image}",))
        state = gitstate.current_state(str(repo.path), {})
        out[v] = (identity.identify(cfg, state, allow_dirty=False), digest)
    return out


def _release(ident: identity.Identity, image: str) -> release.Result:
    cfg = config.Config(images=(image,))
    regs = Registries()
    try:
        return release.release(cfg, ident, regs, dry_run=False, stop=release.StopFlag())
    finally:
        regs.close()


def _held(ident: identity.Identity, image: str) -> tuple[release.Planned, Any]:
    """Read and plan now; write when the returned function is called."""
    cfg = config.Config(images=(image,))
    regs = Registries()
    planned = release.plan(cfg, ident, regs, dry_run=False, command="release")

    def finish() -> release.Result:
        try:
            return release.execute(cfg, ident, regs, planned, release.StopFlag())
        finally:
            regs.close()

    return planned, finish


def _expected(registry: Registry, image: str, d: dict[str, str]) -> None:
    s = registry.state(image)
    assert s["1.2"] == d["1.2.4"]
    assert s["1.3"] == d["1.3.0"]
    assert s["1"] == d["1.3.0"]
    assert s["latest"] == d["1.3.0"]
    for v in ("1.2.3", "1.2.4", "1.3.0"):
        assert s[v] == d[v]


def test_older_release_held_between_read_and_write(registry: Registry, repo: Repo) -> None:
    image = registry.new_repo()
    ref = f"{registry.host}/{image}"
    ids = _prepare(registry, repo, image)
    _release(ids["1.2.3"][0], ref)
    planned, finish = _held(ids["1.2.4"][0], ref)
    # 1.2.4 read before 1.3.0 existed, so it means to move 1, latest too
    assert {t.tag: t.action for t in planned.result.images[0].tags}["latest"] == "move"
    _release(ids["1.3.0"][0], ref)
    result = finish()
    tags = {t.tag: t for t in result.images[0].tags}
    assert tags["1.2"].action == "move"
    assert tags["latest"].action == "skip" and "1.3.0 is newer" in tags["latest"].reason
    _expected(registry, image, {v: d for v, (_, d) in ids.items()})


def test_newer_release_held_between_read_and_write(registry: Registry, repo: Repo) -> None:
    image = registry.new_repo()
    ref = f"{registry.host}/{image}"
    ids = _prepare(registry, repo, image)
    _release(ids["1.2.3"][0], ref)
    _planned, finish = _held(ids["1.3.0"][0], ref)
    _release(ids["1.2.4"][0], ref)
    finish()
    _expected(registry, image, {v: d for v, (_, d) in ids.items()})


def test_rerun_after_a_crash_between_writes_completes(
    tagger: Any, registry: Registry, repo: Repo
) -> None:
    """A crash after T (and X.Y) were written: the re-run completes, moves nothing back."""
    image = registry.new_repo()
    ref = f"{registry.host}/{image}"
    ids = _prepare(registry, repo, image)
    _release(ids["1.2.3"][0], ref)
    d130 = ids["1.3.0"][1]
    # what a crash after the first two writes of 1.3.0 leaves behind
    data, media_type = registry.get_manifest(image, repo.sha_tag)
    registry.put_manifest(image, "1.3.0", data, media_type)
    registry.put_manifest(image, "1.3", data, media_type)
    run = tagger("-C", str(repo.path), "release", "-i", ref, "--json")
    assert run.code == 0, run.err
    assert {t: a["action"] for t, a in run.tags().items()} == {
        "1.3.0": "unchanged", "1.3": "unchanged", "1": "move", "latest": "move",
    }
    assert registry.digest(image, "1") == d130 and registry.digest(image, "latest") == d130
