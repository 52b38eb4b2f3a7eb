"""Planning: read git and the registries, decide every tag's action by the policy.

The source and every target's tags (then the digests of the tags the plan names that
exist) are independent: they are read together, one round trip each at most. Nothing
is written here; ``refuse_conflicts`` turns a conflict on T anywhere into a refusal
before any write, anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from semver import Version

from .. import gitstate, policy, provenance
from ..config import Config
from ..errors import PolicyRefusal, RegistryUnreachable, TaggerError, UsageError
from ..identity import Identity
from ..reference import ImageRef, parse_reference
from ..registry import Registries, RegistryClient
from ..sources import Labels, Opened, Source, Target, open_source
from .fanout import PARALLEL, parallel
from .report import ImageResult, Result, TagResult

if TYPE_CHECKING:
    from .prefetch import Prefetch


class ReleaseRefused(PolicyRefusal):
    """A refusal that comes with the plan that explains it."""

    def __init__(self, message: str, hint: str | None, result: Result) -> None:
        super().__init__(message, hint)
        self.result: Result = result


@dataclass
class Planned:
    result: Result
    opened: Opened | None = None
    source: Source | None = None  # None: a daemon image whose digest its push tells


def moves(cfg: Config, ident: Identity, published: Iterable[Version]) -> list[policy.Move]:
    """T first, then the floating tags."""
    return [policy.immutable_move(ident.tag)] + policy.floating_moves(
        ident.version,
        published,
        latest=cfg.latest,
        major_zero=cfg.major_zero,
        branch=ident.state.branch,
        dirty=ident.state.dirty,
    )


def target_images(cfg: Config) -> list[tuple[str, ImageRef]]:
    """Each target once: an image given twice, in any spelling (``docker.io/acme/app``
    and ``acme/app``), is one target, named as first given."""
    targets: dict[tuple[str, str], tuple[str, ImageRef]] = {}
    for name in cfg.images:
        ref = parse_reference(name, allow_tag=False)
        targets.setdefault((ref.registry, ref.repository), (name, ref))
    return list(targets.values())


def source_text(cfg: Config, ident: Identity, images: list[tuple[str, ImageRef]]) -> str:
    """--source, else ``docker://<first image>:<sha tag>``: the image CI pushed."""
    if cfg.source:
        return cfg.source
    if not images:
        raise UsageError(
            "no image to publish to", "pass --image REPOSITORY or set image in [tool.tagger]"
        )
    return f"docker://{images[0][0]}:{ident.sha_tag}"


def identity_result(
    command: str, ident: Identity, source: str | None, digest: str | None, *, dry_run: bool
) -> Result:
    return Result(
        command,
        ident.version,
        ident.state.commit,
        ident.tag,
        source,
        digest,
        dry_run,
        notes=[f"used CI hint: {h}" for h in ident.state.hints],
    )


def plan_offline(
    cfg: Config, ident: Identity, images: list[tuple[str, ImageRef]], note: str
) -> Result:
    """A plan from git alone: the published versions are the repository's stable
    version tags; digests are unknown."""
    published = {
        Version(v.major, v.minor, v.patch)
        for v in (
            policy.parse_version(t, cfg.tag_prefix) for t in gitstate.all_tags(ident.state.root)
        )
        if v is not None and policy.is_stable(v)
    }
    result = identity_result("plan", ident, cfg.source, None, dry_run=True)
    result.notes.append(note)
    planned_moves = moves(cfg, ident, published)
    targets: list[tuple[str, ImageRef | None]] = [*images] or [("(no image configured)", None)]
    for name, ref in targets:
        ir = ImageResult(name, ref)
        ir.tags = [
            TagResult(m.tag, "create" if m.moves else "skip", None, None, m.reason, m.immutable)
            for m in planned_moves
        ]
        result.images.append(ir)
    return result


@dataclass
class TargetState:
    """What one target holds for a plan: its tags and the digests of the tags a move
    names that exist (read before the source is known: they do not depend on it)."""

    tags: set[str]
    moves: list[policy.Move]
    current: dict[str, str | None]
    owners: dict[str, str] = field(default_factory=dict)  # floating tag -> its line's owner
    owner_digests: dict[str, str | None] = field(default_factory=dict)  # owner -> digest


def line_owners(
    cfg: Config, ident: Identity, tags: set[str], planned: list[policy.Move]
) -> dict[str, str]:
    """§4: the floating tags of V's lines that stay (a newer version owns their line),
    that exist, and the tag of the version each belongs to: they are checked, and pointed back
    when found elsewhere (an earlier run that raced a newer one and was killed)."""
    version = ident.version
    if version is None or not policy.is_stable(version) or ident.state.dirty:
        return {}
    published = policy.published_versions(tags)  # version -> the tag that stands for it
    published.setdefault(version, ident.tag)
    owners = policy.reconcile_targets(
        published, major_zero=cfg.major_zero, latest=cfg.latest.kind == "highest"
    )
    return {
        m.tag: published[owners[m.tag]]
        for m in planned
        if not m.immutable
        and not m.moves
        and m.tag in tags
        and m.tag in owners
        and owners[m.tag] > version
    }


def read_target(
    cfg: Config,
    ident: Identity,
    client: RegistryClient,
    ref: ImageRef,
    *,
    push: bool,
    prefetch: Prefetch | None = None,
) -> TargetState:
    """List the tags (once, unless read ahead), then HEAD the existing tags the moves
    name, in parallel."""
    listed = prefetch.tags(ref) if prefetch else None
    tags = set(client.list_tags(ref.repository, push=push) if listed is None else listed)
    planned_moves = moves(cfg, ident, policy.published_versions(tags))
    existing = [m.tag for m in planned_moves if m.tag in tags]
    owners = line_owners(cfg, ident, tags, planned_moves)
    versions = sorted(set(owners.values()))
    heads = parallel(
        lambda t: client.head_manifest(ref.repository, t, push=push), existing + versions
    )
    current = dict(zip(existing, heads[: len(existing)]))
    return TargetState(
        tags, planned_moves, current, owners, dict(zip(versions, heads[len(existing) :]))
    )


def decide_image(
    name: str, ref: ImageRef, target: TargetState, digest: str | None, *, refused: bool = False
) -> ImageResult:
    """Turn the policy's moves into actions, given the digests of the tags that exist.
    The first move is T, which never moves; a floating tag that stays but is not on
    its line's owner is pointed back at it (a repair)."""
    result = ImageResult(name, ref)
    current = target.current
    for m in target.moves:
        cur = current.get(m.tag)
        owner = target.owners.get(m.tag)
        want = None if owner is None else target.owner_digests.get(owner)
        if want is not None and cur is not None and cur != want:
            reason = f"{m.reason}; repaired: pointed at {owner} (was {cur})"
            result.tags.append(TagResult(m.tag, "move", cur, want, reason, owner=owner))
            continue
        if m.immutable and cur is not None and (cur != digest or refused):
            reason = (
                "immutable: the source is refused"
                if refused
                else "immutable: already published as another image"
            )
            result.tags.append(TagResult(m.tag, "refused", cur, None, reason, immutable=True))
            continue
        action = policy.action_for(m.moves, cur, digest)
        to = digest if m.moves else None
        result.tags.append(TagResult(m.tag, action, cur, to, m.reason, immutable=m.immutable))
    return result


def plan(
    cfg: Config,
    ident: Identity,
    regs: Registries,
    *,
    offline: bool = False,
    dry_run: bool = True,
    command: str = "plan",
    prefetch: Prefetch | None = None,
) -> Planned:
    """What a release would do. Without images, offline, or (for ``plan``) with no
    registry reachable, the published versions come from git tags. ``prefetch``: the
    reads sent before git was read (prefetch.py)."""
    images = target_images(cfg)
    if offline or not images:
        why = "offline" if offline else "no --image given"
        return Planned(plan_offline(cfg, ident, images, f"{why}: published versions from git tags"))
    if command == "plan":
        try:
            if prefetch is None or not prefetch.pinged():
                regs.client(images[0][1].registry).ping(retry=False)
        except RegistryUnreachable as e:
            note = f"{e.message}: published versions from git tags"
            return Planned(plan_offline(cfg, ident, images, note))
    src = source_text(cfg, ident, images)
    opened = open_source(src, regs.client)
    push = not dry_run

    with ThreadPoolExecutor(PARALLEL) as pool:
        fut_labels = pool.submit(opened.labels)
        fut_targets = [
            pool.submit(
                read_target,
                cfg,
                ident,
                regs.client(ref.registry),
                ref,
                push=push,
                prefetch=prefetch,
            )
            for _, ref in images
        ]
        warnings, refusal = _check_source(cfg, ident, src, fut_labels.result)
        try:
            targets = [f.result() for f in fut_targets]
        except TaggerError:
            if refusal is None:
                raise
            raise refusal from None  # the source's refusal first, without a plan then
    found = [
        Target(regs.client(ref.registry), ref.repository, ident.tag in t.tags)
        for (_, ref), t in zip(images, targets)
    ]
    source = None if refusal else opened.locate(found, ident.tag)
    digest = source.manifest().digest if source else None
    result = identity_result(command, ident, src, digest, dry_run=dry_run)
    result.warnings = warnings
    if digest is None and dry_run and not refusal:
        result.notes.append(f"the digest is known once {src} has been pushed as {ident.tag}")
    for (name, ref), target in zip(images, targets):
        result.images.append(decide_image(name, ref, target, digest, refused=refusal is not None))
    if refusal is not None:  # the plan goes with the refusal: it shows what was refused
        refusal.result = result
        raise refusal
    return Planned(result, opened, source)


def _check_source(
    cfg: Config, ident: Identity, src: str, labels: Callable[[], Labels]
) -> tuple[list[str], PolicyRefusal | None]:
    """The provenance warnings, or the refusal of the source (missing, or built from
    another commit or for another version)."""
    try:
        warnings = provenance.check(
            labels(),
            source=src,
            commit=ident.state.commit,
            accepted=provenance.accepted_versions(
                ident.tag, ident.version, cfg.tag_prefix, ident.sha_tag
            ),
            tag=ident.tag,
            require_revision=cfg.require_revision,
        )
    except PolicyRefusal as e:
        return [], e
    return warnings, None


def refuse_conflicts(result: Result, opened: Opened | None = None) -> None:
    """§2: T already published as another image in any target refuses the whole release."""
    conflicts = [(i, t) for i in result.images for t in i.tags if t.action == "refused"]
    if conflicts:
        image, tag = conflicts[0]
        image_id = getattr(opened, "image_id", None)  # a daemon image: no digest before a push
        ours = result.digest or (f"the daemon image {image_id}" if image_id else result.source)
        raise ReleaseRefused(
            f"{image.name}:{tag.tag} already exists as {tag.from_digest}, not {ours};"
            " an immutable tag never moves",
            "nothing was written; release a new version (a new git tag) instead",
            result,
        )
