"""The orchestration: read git and the registry, plan by the policy, write in order,
verify and repair (shared/spec/tag-policy.md §4).

Writes go T first, then X.Y, X, latest; before any write every target's T is checked,
so a conflict anywhere writes nothing anywhere. After writing, the tag list is read
again and any floating tag this release moved that a newer version now owns (a
concurrent newer release published meanwhile) is pointed back at that version.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from types import FrameType
from typing import Any

from semver import Version

from . import gitstate, policy, provenance
from .config import Config
from .errors import (
    DeadlineExceeded,
    Interrupted,
    PolicyRefusal,
    RegistryUnreachable,
    TaggerError,
    UsageError,
)
from .gitstate import GitState
from .reference import ImageRef, parse_reference, validate_tag
from .registry import CredentialLookup, Manifest, RegistryClient
from .sources import DaemonSource, Labels, Source, open_source

PARALLEL = 8
MAX_REPAIR_ROUNDS = 5


@dataclass
class TagResult:
    tag: str
    action: policy.Action
    from_digest: str | None
    to_digest: str | None
    reason: str
    status: str | None = None  # after writing: done, not written, failed: reason

    def to_json(self, with_status: bool = False) -> dict[str, Any]:
        out = {
            "tag": self.tag,
            "action": self.action,
            "from": self.from_digest,
            "to": self.to_digest,
            "reason": self.reason,
        }
        if with_status:
            out["status"] = self.status or "not written"
        return out


@dataclass
class ImageResult:
    name: str  # the repository as the user wrote it
    ref: ImageRef | None  # None in a plan with no image configured
    tags: list[TagResult] = field(default_factory=list)

    def to_json(self, with_status: bool = False) -> dict[str, Any]:
        return {"image": self.name, "tags": [t.to_json(with_status) for t in self.tags]}


@dataclass
class Result:
    command: str
    version: Version | None = None
    commit: str | None = None
    immutable_tag: str | None = None
    source: str | None = None
    digest: str | None = None
    dry_run: bool = False
    images: list[ImageResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # shown on stderr, not in --json

    @property
    def stopped_short(self) -> bool:
        """A write did not happen: the report then says per tag what was done."""
        return any(t.status not in (None, "done") for i in self.images for t in i.tags)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.command != "reconcile":
            out.update(
                version=str(self.version) if self.version else None,
                commit=self.commit,
                immutable_tag=self.immutable_tag,
                source=self.source,
                digest=self.digest,
            )
        out["dry_run"] = self.dry_run
        out["images"] = [i.to_json(self.stopped_short) for i in self.images]
        if self.notes:
            out["notes"] = self.notes
        return out


class ReleaseRefused(PolicyRefusal):
    """A refusal that comes with the plan that explains it."""

    def __init__(self, message: str, hint: str | None, result: Result) -> None:
        super().__init__(message, hint)
        self.result: Result = result


# --- signals and the deadline ----------------------------------------------------
class StopFlag:
    """Safe points for writes. SIGINT/SIGTERM set the flag and a write checks it first;
    a second signal exits at once. ``deadline`` (seconds from now) stops the run the
    same way once it has passed."""

    def __init__(self, deadline: float | None = None) -> None:
        self.signum: int | None = None
        self.deadline = deadline
        self._deadline_at = None if deadline is None else time.monotonic() + deadline
        self._previous: dict[int, Any] = {}

    def expired(self) -> bool:
        return self._deadline_at is not None and time.monotonic() > self._deadline_at

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            os._exit(128 + signum)
        self.signum = signum
        name = signal.Signals(signum).name
        # os.write: a signal handler must not re-enter a buffered stream mid-write
        msg = f"tagger: {name}: stopping at the next safe point ({name} again stops at once)\n"
        os.write(2, msg.encode())

    def checkpoint(self, result: Result, what: str) -> None:
        err: TaggerError
        if self.signum is not None:
            name = signal.Signals(self.signum).name
            err = Interrupted(self.signum, f"stopped by {name} before {what}")
        elif self.expired():
            err = DeadlineExceeded(f"the deadline of {self.deadline:g} s passed before {what}")
        else:
            return
        err.hint = "what is written is consistent; run the same command again to finish"
        err.result = result
        raise err


# --- registry access -----------------------------------------------------------
class Registries:
    """One client per registry host, shared by sources and targets."""

    def __init__(
        self,
        insecure: frozenset[str] = frozenset(),
        credentials: CredentialLookup | None = None,
        **client_opts: Any,
    ) -> None:
        self.insecure = insecure
        self.credentials = credentials
        self.client_opts = client_opts
        self._clients: dict[str, RegistryClient] = {}
        self._lock = threading.Lock()

    def client(self, registry: str) -> RegistryClient:
        with self._lock:
            if registry not in self._clients:
                opts = dict(self.client_opts)
                if self.credentials is not None:
                    opts["credentials"] = self.credentials
                self._clients[registry] = RegistryClient(registry, insecure=self.insecure, **opts)
            return self._clients[registry]

    def close(self) -> None:
        for c in self._clients.values():
            c.close()


# --- planning ------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """What git says is being published: V, T and the facts the policy needs."""

    state: GitState
    version: Version | None
    tag: str  # T
    sha_tag: str  # the SHA tag of HEAD, where CI pushes every build


def identify(cfg: Config, state: GitState, *, allow_dirty: bool) -> Identity:
    """V and T for HEAD, refusing a dirty tree unless allowed (§1-§2)."""
    if state.dirty and not allow_dirty:
        shown = ", ".join(state.dirty_files[:5])
        more = f" and {len(state.dirty_files) - 5} more" if len(state.dirty_files) > 5 else ""
        raise PolicyRefusal(
            f"the work tree has uncommitted changes: {shown}{more}",
            "commit or stash them, or pass --allow-dirty (T gets -dirty, no floating tag moves)",
        )
    version = policy.release_version(state.tags, cfg.tag_prefix)
    tag = policy.immutable_tag(
        version,
        state.commit,
        dirty=state.dirty,
        sha_prefix=cfg.sha_prefix,
        sha_length=cfg.sha_length,
    )
    sha = policy.sha_tag(state.commit, cfg.sha_prefix, cfg.sha_length)
    return Identity(state, version, validate_tag(tag), validate_tag(sha))


def read_identity(cfg: Config, path: str, env: Mapping[str, str], *, allow_dirty: bool) -> Identity:
    state = gitstate.current_state(path, env, untracked_dirty=cfg.untracked_dirty)
    return identify(cfg, state, allow_dirty=allow_dirty)


def _moves(cfg: Config, ident: Identity, published: Iterable[Version]) -> list[policy.Move]:
    """T first, then the floating tags in write order."""
    return [policy.immutable_move(ident.tag)] + policy.floating_moves(
        ident.version,
        published,
        latest=cfg.latest,
        major_zero=cfg.major_zero,
        branch=ident.state.branch,
        dirty=ident.state.dirty,
    )


def _parallel(fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    items = list(items)
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(min(PARALLEL, len(items))) as pool:
        return list(pool.map(fn, items))


def target_images(cfg: Config) -> list[tuple[str, ImageRef]]:
    return [(i, parse_reference(i, allow_tag=False)) for i in cfg.images]


def source_text(cfg: Config, ident: Identity, images: list[tuple[str, ImageRef]]) -> str:
    """--source, else ``docker://<first image>:<sha tag>``: the image CI pushed."""
    if cfg.source:
        return cfg.source
    if not images:
        raise UsageError(
            "no image to publish to", "pass --image REPOSITORY or set image in [tool.tagger]"
        )
    return f"docker://{images[0][0]}:{ident.sha_tag}"


def _identity_result(
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
    result = _identity_result("plan", ident, cfg.source, None, dry_run=True)
    result.notes.append(note)
    moves = _moves(cfg, ident, published)
    targets: list[tuple[str, ImageRef | None]] = [*images] or [("(no image configured)", None)]
    for name, ref in targets:
        ir = ImageResult(name, ref)
        ir.tags = [
            TagResult(m.tag, "create" if m.moves else "skip", None, None, m.reason) for m in moves
        ]
        result.images.append(ir)
    return result


@dataclass
class Planned:
    result: Result
    source: Source | DaemonSource | None = None
    manifest: Manifest | None = None  # None: a daemon source that has yet to push T


@dataclass
class _TargetState:
    """What one target holds for a plan: its tags and the digests of the tags a move
    names that exist (read before the source is known: they do not depend on it)."""

    tags: set[str]
    moves: list[policy.Move]
    current: dict[str, str | None]


def _read_target(
    cfg: Config, ident: Identity, client: RegistryClient, ref: ImageRef, *, push: bool
) -> _TargetState:
    """List the tags (once), then HEAD the existing tags the moves name, in parallel."""
    tags = set(client.list_tags(ref.repository, push=push))
    published = policy.published_versions(tags)
    moves = _moves(cfg, ident, published)
    existing = [m.tag for m in moves if m.tag in tags]
    heads = _parallel(lambda t: client.head_manifest(ref.repository, t, push=push), existing)
    return _TargetState(tags, moves, dict(zip(existing, heads)))


def _decide_image(
    name: str,
    ref: ImageRef,
    moves: list[policy.Move],
    current: dict[str, str | None],
    digest: str | None,
) -> ImageResult:
    """Turn the policy's moves into actions, given the digests of the tags that exist."""
    result = ImageResult(name, ref)
    for i, m in enumerate(moves):
        cur = current.get(m.tag)
        if i == 0 and cur is not None and cur != digest:  # T never moves
            result.tags.append(
                TagResult(
                    m.tag, "refused", cur, None, "immutable: already published as another image"
                )
            )
            continue
        action = policy.action_for(m.moves, cur, digest)
        result.tags.append(TagResult(m.tag, action, cur, digest if m.moves else None, m.reason))
    return result


def plan(
    cfg: Config,
    ident: Identity,
    regs: Registries,
    *,
    offline: bool = False,
    dry_run: bool = True,
    command: str = "plan",
) -> Planned:
    """What a release would do. Without images, offline, or (for ``plan``) with no
    registry reachable, the published versions come from git tags."""
    images = target_images(cfg)
    if offline or not images:
        why = "offline" if offline else "no --image given"
        return Planned(plan_offline(cfg, ident, images, f"{why}: published versions from git tags"))
    if command == "plan":
        try:
            regs.client(images[0][1].registry).ping(retry=False)
        except RegistryUnreachable as e:
            return Planned(
                plan_offline(cfg, ident, images, f"{e.message}: published versions from git tags")
            )
    src = source_text(cfg, ident, images)
    source = open_source(src, regs.client)
    push = not dry_run

    def read_source() -> tuple[Manifest | None, Labels]:
        manifest = None if isinstance(source, DaemonSource) else source.manifest()
        return manifest, source.labels()

    # the source and every target's tags (then the digests of its existing tags that a
    # move names) are independent: read them together, one round trip each at most
    with ThreadPoolExecutor(PARALLEL) as pool:
        fut_source = pool.submit(read_source)
        fut_targets = [
            pool.submit(_read_target, cfg, ident, regs.client(ref.registry), ref, push=push)
            for _, ref in images
        ]
        manifest, labels = fut_source.result()
        targets = [f.result() for f in fut_targets]
    tag_sets = [t.tags for t in targets]
    warnings = provenance.check(
        labels,
        source=src,
        commit=ident.state.commit,
        accepted=provenance.accepted_versions(
            ident.tag, ident.version, cfg.tag_prefix, ident.sha_tag
        ),
        tag=ident.tag,
        require_revision=cfg.require_revision,
    )
    if isinstance(source, DaemonSource):
        # D is known before pushing only when a target already holds this image
        manifest = source.locate(
            [
                (regs.client(ref.registry), ref.repository, ident.tag in tags)
                for (_, ref), tags in zip(images, tag_sets)
            ],
            ident.tag,
        )
    digest = manifest.digest if manifest else None

    planned = Planned(
        _identity_result(command, ident, src, digest, dry_run=dry_run), source, manifest
    )
    planned.result.warnings = warnings
    if digest is None and dry_run:
        planned.result.notes.append(
            f"the digest is known once the docker daemon has pushed {ident.tag}"
            f" (image id {source.image_id if isinstance(source, DaemonSource) else '?'})"
        )

    for (name, ref), target in zip(images, targets):
        planned.result.images.append(_decide_image(name, ref, target.moves, target.current, digest))
    return planned


def refuse_conflicts(result: Result) -> None:
    """§2: T already published as another image in any target refuses the whole release."""
    conflicts = [(i, t) for i in result.images for t in i.tags if t.action == "refused"]
    if conflicts:
        image, tag = conflicts[0]
        raise ReleaseRefused(
            f"{image.name}:{tag.tag} already exists as {tag.from_digest}, not {result.digest};"
            " an immutable tag never moves",
            "nothing was written; release a new version (a new git tag) instead",
            result,
        )


WRITE_ACTIONS = ("create", "move")


def execute(
    cfg: Config, ident: Identity, regs: Registries, planned: Planned, stop: StopFlag
) -> Result:
    """Write T then the floating tags to every target, then verify and repair."""
    result = planned.result
    source, manifest = planned.source, planned.manifest
    assert source is not None
    for image in result.images:
        for t in image.tags:
            t.status = "not written" if t.action in WRITE_ACTIONS else "done"
    if manifest is None:
        manifest = _push_through_daemon(result, source, regs, stop)
    for image in result.images:
        assert image.ref is not None
        client = regs.client(image.ref.registry)
        repo = image.ref.repository
        writes = [t for t in image.tags if t.action in WRITE_ACTIONS and t.status != "done"]
        if not writes:
            continue
        stop.checkpoint(result, f"writing to {image.name}")
        _write(result, writes[0], partial(source.prepare, client, repo))
        for t in writes:
            stop.checkpoint(result, f"writing {image.name}:{t.tag}")
            _write(result, t, partial(client.put_manifest, repo, t.tag, manifest))
            t.status = "done"
    for image in result.images:
        _verify(cfg, ident, regs, image, manifest)
    return result


def _push_through_daemon(
    result: Result, source: Source | DaemonSource, regs: Registries, stop: StopFlag
) -> Manifest:
    """A docker-daemon source: the daemon pushes T to the first target (T is absent
    from every target, or the plan would hold D or a refusal); then D is known and
    every other write is registry-native."""
    assert isinstance(source, DaemonSource)
    image = next(i for i in result.images if i.tags and i.tags[0].action == "create")
    assert image.ref is not None
    client, repo, first = regs.client(image.ref.registry), image.ref.repository, image.tags[0]
    stop.checkpoint(result, f"writing {image.name}:{first.tag}")
    _write(result, first, partial(source.push, client, repo, first.tag))
    first.status = "done"  # the daemon wrote T there: it is not PUT again
    manifest = source.manifest()
    result.digest = manifest.digest
    for i in result.images:
        for t in i.tags:
            if t.action in WRITE_ACTIONS:
                t.to_digest = manifest.digest
                if t.from_digest == manifest.digest:
                    t.action, t.status = "unchanged", "done"
    return manifest


def _write(result: Result, tag: TagResult, action: Callable[[], object]) -> None:
    """Run one write; on failure mark the tag failed and attach the report."""
    try:
        action()
    except TaggerError as e:
        if not isinstance(e, DeadlineExceeded):  # stopped before the write: not written
            tag.status = f"failed: {e.message}"
        e.result = result
        raise


def _verify(
    cfg: Config, ident: Identity, regs: Registries, image: ImageResult, manifest: Manifest
) -> None:
    """Re-read the published versions; repair floating tags this release moved that a
    newer version, published concurrently, now owns. A repair is itself checked the
    same way, so a third release racing the repair cannot leave a tag behind."""
    version = ident.version
    if version is None:
        return
    written = {
        t.tag: version
        for t in image.tags[1:]
        if t.action in WRITE_ACTIONS and (t.tag != policy.LATEST or cfg.latest.kind == "highest")
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
        owners = sorted({str(v) for v in repairs.values()})
        manifests = dict(
            zip(owners, _parallel(lambda v: client.get_manifest(repo, v, push=True), owners))
        )
        for tag, owner in repairs.items():
            client.put_manifest(repo, tag, manifests[str(owner)])
            t = by_tag[tag]
            t.action, t.to_digest = "skip", None
            t.reason = f"{owner} is newer (published during this release; {tag} repaired)"
        written = dict(repairs)


def release(
    cfg: Config, ident: Identity, regs: Registries, *, dry_run: bool, stop: StopFlag
) -> Result:
    planned = plan(cfg, ident, regs, dry_run=dry_run, command="release")
    refuse_conflicts(planned.result)
    if dry_run:
        return planned.result
    return execute(cfg, ident, regs, planned, stop)


# --- reconcile -----------------------------------------------------------------
def reconcile(cfg: Config, regs: Registries, *, dry_run: bool, stop: StopFlag) -> Result:
    """Point every floating tag of each image at the highest published version of its
    line (``latest`` only under the ``highest`` policy)."""
    images = target_images(cfg)
    if not images:
        raise UsageError("no image to reconcile", "pass --image REPOSITORY or set image in config")
    result = Result("reconcile", dry_run=dry_run)
    for name, ref in images:
        _reconcile_image(cfg, regs, name, ref, dry_run, stop, result)
    return result


def _reconcile_image(
    cfg: Config,
    regs: Registries,
    name: str,
    ref: ImageRef,
    dry_run: bool,
    stop: StopFlag,
    result: Result,
) -> ImageResult:
    client = regs.client(ref.registry)
    repo = ref.repository
    push = not dry_run
    tags = set(client.list_tags(repo, push=push))
    targets = policy.reconcile_targets(
        policy.published_versions(tags),
        major_zero=cfg.major_zero,
        latest=cfg.latest.kind == "highest",
    )
    owners = sorted({str(v) for v in targets.values()})
    floating = [t for t in targets if t in tags]
    digests = _parallel(lambda t: client.head_manifest(repo, t, push=push), owners + floating)
    owner_digest = dict(zip(owners, digests[: len(owners)]))
    current = dict(zip(floating, digests[len(owners) :]))
    out = ImageResult(name, ref)
    result.images.append(out)
    order = sorted(targets.items(), key=lambda kv: (kv[1], -len(policy.line_of(kv[0]) or ())))
    for tag, v in order:
        want = owner_digest[str(v)]
        cur = current.get(tag)
        line = policy.line_of(tag)
        assert line is not None
        reason = f"highest {policy.line_name(line)} is {v}"
        out.tags.append(TagResult(tag, policy.action_for(True, cur, want), cur, want, reason))
    if dry_run:
        return out
    needed = {str(targets[t.tag]) for t in out.tags if t.action in WRITE_ACTIONS}
    manifests = dict(
        zip(needed, _parallel(lambda v: client.get_manifest(repo, v, push=True), needed))
    )
    for t in out.tags:
        t.status = "not written" if t.action in WRITE_ACTIONS else "done"
    for t in out.tags:
        if t.action in WRITE_ACTIONS:
            stop.checkpoint(result, f"writing {name}:{t.tag}")
            _write(
                result, t, partial(client.put_manifest, repo, t.tag, manifests[str(targets[t.tag])])
            )
            t.status = "done"
    return out
