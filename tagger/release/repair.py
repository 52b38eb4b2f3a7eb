"""Repairs: after a release, floating tags that a newer version published
concurrently now owns are pointed back (tag-policy §4, races); ``reconcile`` points
every floating tag of a repository at the highest published version of its line.
Both write through the one write loop (execute.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import policy
from ..config import Config
from ..errors import TaggerError, UsageError
from ..identity import Identity
from ..oci import Manifest
from ..reference import ImageRef
from ..registry import Registries
from .fanout import parallel
from .plan import target_images
from .report import ImageResult, Result, Status, TagResult
from .stop import StopFlag
from .writes import Write, run_writes, stopped_short

if TYPE_CHECKING:
    from ..registry import RegistryClient

MAX_REPAIR_ROUNDS = 5


def after_release(
    cfg: Config,
    ident: Identity,
    regs: Registries,
    result: Result,
    image: ImageResult,
    manifest: Manifest,
    stop: StopFlag,
) -> None:
    """Re-read the published versions; repair floating tags this release moved that a
    newer version, published concurrently, now owns. A repair is itself checked the
    same way, so a third release racing the repair cannot leave a tag behind."""
    version = ident.version
    if version is None:
        return
    written = {
        t.tag: version
        for t in image.tags
        if not t.immutable
        and t.writes
        and t.owner is None  # a repair points at its owner, not at V
        and (t.tag != policy.LATEST or cfg.latest.kind == "highest")
    }
    assert image.ref is not None
    client = regs.client(image.ref.registry)
    repo = image.ref.repository
    by_tag = {t.tag: t for t in image.tags}
    for _round in range(MAX_REPAIR_ROUNDS):
        if not written:
            return
        published = policy.published_versions(client.list_tags(repo, push=True))
        repairs = policy.repairs_needed(written, published)
        if not repairs:
            return
        manifests = _manifests(client, repo, {published[v] for v in repairs.values()})
        writes = []
        for tag, owner in repairs.items():
            t = by_tag[tag]
            t.action, t.to_digest = "skip", None
            t.reason = f"{owner} is newer (published during this release; {tag} repaired)"
            call = _put(client, repo, tag, manifests[published[owner]])
            writes.append(Write(t, f"repairing {image.name}:{tag}", call))
        run_writes(result, stop, writes)
        written = dict(repairs)


def _manifests(client: RegistryClient, repo: str, owners: set[str]) -> dict[str, Manifest]:
    names = sorted(owners)
    return dict(zip(names, parallel(lambda v: client.get_manifest(repo, v, push=True), names)))


def _put(client: RegistryClient, repo: str, tag: str, manifest: Manifest) -> Callable[[], None]:
    return lambda: client.put_manifest(repo, tag, manifest)


def reconcile(cfg: Config, regs: Registries, *, dry_run: bool, stop: StopFlag) -> Result:
    """Point every floating tag of each image at the highest published version of its
    line (``latest`` only under the ``highest`` policy)."""
    images = target_images(cfg)
    if not images:
        raise UsageError("no image to reconcile", "pass --image REPOSITORY or set image in config")
    result = Result("reconcile", dry_run=dry_run)
    try:
        for name, ref in images:
            _reconcile_image(cfg, regs, name, ref, dry_run, stop, result)
    except TaggerError as e:  # report what the images before this one got
        stopped_short(e, result)
        raise
    return result


def _reconcile_image(
    cfg: Config,
    regs: Registries,
    name: str,
    ref: ImageRef,
    dry_run: bool,
    stop: StopFlag,
    result: Result,
) -> None:
    client = regs.client(ref.registry)
    repo = ref.repository
    push = not dry_run
    tags = set(client.list_tags(repo, push=push, must_exist=True))
    published = policy.published_versions(tags)  # version -> the tag that stands for it
    targets = policy.reconcile_targets(
        published,
        major_zero=cfg.major_zero,
        latest=cfg.latest.kind == "highest",
    )
    owners = sorted({published[v] for v in targets.values()})
    floating = [t for t in targets if t in tags]
    digests = parallel(lambda t: client.head_manifest(repo, t, push=push), owners + floating)
    owner_digest = dict(zip(owners, digests[: len(owners)]))
    current = dict(zip(floating, digests[len(owners) :]))
    out = ImageResult(name, ref)
    result.images.append(out)
    order = sorted(targets.items(), key=lambda kv: (kv[1], -len(policy.line_of(kv[0]) or ())))
    for tag, v in order:
        want = owner_digest[published[v]]
        cur = current.get(tag)
        line = policy.line_of(tag)
        assert line is not None
        reason = f"highest {policy.line_name(line)} is {v}"
        out.tags.append(TagResult(tag, policy.action_for(True, cur, want), cur, want, reason))
    if dry_run:
        return
    needed = {published[targets[t.tag]] for t in out.tags if t.writes}
    manifests = _manifests(client, repo, needed)
    for t in out.tags:
        t.status = Status.NOT_WRITTEN if t.writes else Status.DONE
    writes = [
        Write(t, f"writing {name}:{t.tag}", _put(client, repo, t.tag, manifests[published[v]]))
        for t, v in ((t, targets[t.tag]) for t in out.tags)
        if t.writes
    ]
    run_writes(result, stop, writes)
