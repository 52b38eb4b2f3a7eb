"""Executing a release plan. A release writes, per target, the image's blobs and child
manifests first, then T, then the floating tags (tag-policy §4); a docker-daemon
source pushes T through the daemon first, and every later write is registry-native.
"""

from __future__ import annotations

from functools import partial

from ..config import Config
from ..identity import Identity
from ..registry import Registries, RegistryClient
from ..sources import Opened, Source, copy
from . import repair
from .fanout import parallel
from .plan import Planned
from .report import ImageResult, Result, Status
from .stop import StopFlag
from .writes import Write, run_writes


def execute(
    cfg: Config, ident: Identity, regs: Registries, planned: Planned, stop: StopFlag
) -> Result:
    """Write T then the floating tags to every target, then verify and repair."""
    result = planned.result
    for image in result.images:
        for t in image.tags:
            t.status = Status.NOT_WRITTEN if t.writes else Status.DONE
    source = planned.source
    if source is None:
        assert planned.opened is not None
        source = _push_first(result, planned.opened, regs, stop)

    def write_target(image: ImageResult) -> None:
        _write_target(result, image, source, regs, stop)
        repair.after_release(cfg, ident, regs, result, image, source.manifest(), stop)

    parallel(write_target, result.images)  # different targets at the same time
    return result


def _write_target(
    result: Result, image: ImageResult, source: Source, regs: Registries, stop: StopFlag
) -> None:
    """The image's blobs and child manifests, then T; once the registry acknowledged T,
    the floating tags all at once (tag-policy §4)."""
    assert image.ref is not None
    client, repo = regs.client(image.ref.registry), image.ref.repository
    pending = [t for t in image.tags if t.writes and t.status is not Status.DONE]
    if not pending:
        return
    manifest = source.manifest()
    prepare = partial(copy.publish, source, client, repo)
    first = [Write(pending[0], f"writing to {image.name}", prepare, completes=False)]
    floating: list[Write] = []
    for t in pending:
        put = partial(client.put_manifest, repo, t.tag, manifest)
        if t.owner is not None:  # a repair: the owner's own manifest, read when due
            put = partial(_repoint, client, repo, t.tag, t.owner)
        (first if t.immutable else floating).append(Write(t, f"writing {image.name}:{t.tag}", put))
    run_writes(result, stop, first)
    run_writes(result, stop, floating, together=True)


def _repoint(client: RegistryClient, repo: str, tag: str, owner: str) -> None:
    """Point ``tag`` back at the version that owns its line (§4)."""
    client.put_manifest(repo, tag, client.get_manifest(repo, owner, push=True))


def _push_first(result: Result, opened: Opened, regs: Registries, stop: StopFlag) -> Source:
    """A source whose digest only its push tells (the docker daemon): push T to the
    first target (T is absent from every target, or the plan would hold D or a
    refusal); then D is known and every other write is registry-native."""
    image: ImageResult = next(
        i for i in result.images if i.immutable is not None and i.immutable.action == "create"
    )
    first = image.immutable
    assert image.ref is not None and first is not None
    client, repo = regs.client(image.ref.registry), image.ref.repository
    pushed: list[Source] = []

    def call() -> None:
        pushed.append(opened.push(client, repo, first.tag))

    run_writes(result, stop, [Write(first, f"writing {image.name}:{first.tag}", call)])
    source = pushed[0]
    digest = source.manifest().digest
    result.digest = digest
    for i in result.images:
        for t in i.tags:
            if t.writes and t.owner is None:
                t.to_digest = digest
                if t.from_digest == digest:
                    t.action, t.status = "unchanged", Status.DONE
    return source
