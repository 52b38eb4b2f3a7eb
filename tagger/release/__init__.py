"""The use cases: plan, release and reconcile (tag-policy §4).

- ``report``: the result model (per image and tag: action, then status);
- ``plan``: read git and the registries, decide by the policy, refuse conflicts;
- ``execute``: write T, then the floating tags, to every target;
- ``writes``: the one write loop (safe points, statuses, the report on errors);
- ``repair``: the post-write race repair and ``reconcile``;
- ``stop``: signals and the deadline.
"""

from __future__ import annotations

from ..config import Config
from ..errors import TaggerError, UsageError
from ..identity import Identity
from ..registry import Registries
from .execute import execute
from .plan import Planned, plan, plan_offline, refuse_conflicts, target_images
from .prefetch import Prefetch
from .repair import reconcile
from .report import ImageResult, Result, Status, TagResult
from .stop import StopFlag
from .writes import stopped_short

__all__ = [
    "ImageResult",
    "execute",
    "Planned",
    "Result",
    "Status",
    "StopFlag",
    "TagResult",
    "gate",
    "hold",
    "plan",
    "reconcile",
    "release",
]


def _require_images(cfg: Config) -> None:
    """cli.md: a release with no --image and none configured is a usage error."""
    if not cfg.images:
        raise UsageError(
            "no image to publish to", "pass --image REPOSITORY (or set image in [tool.tagger])"
        )


def hold(cfg: Config, ident: Identity, why: str) -> Result:
    """A release that is held (a pull request): the plan from git tags, with a note
    that nothing was pushed; no registry is contacted."""
    _require_images(cfg)
    return plan_offline(cfg, ident, target_images(cfg), why)


def gate(
    cfg: Config,
    ident: Identity,
    regs: Registries,
    *,
    offline: bool,
    prefetch: Prefetch | None = None,
) -> Result:
    """``plan``: what a release would do; when the release would be refused, the
    refusal (exit 3) with the plan attached, so a plan is a gate (cli.md)."""
    try:
        planned = plan(cfg, ident, regs, offline=offline, prefetch=prefetch)
        refuse_conflicts(planned.result, planned.opened)
    except TaggerError as e:
        stopped_short(e)
        raise
    return planned.result


def release(
    cfg: Config,
    ident: Identity,
    regs: Registries,
    *,
    dry_run: bool,
    stop: StopFlag,
    prefetch: Prefetch | None = None,
) -> Result:
    _require_images(cfg)
    try:
        planned = plan(cfg, ident, regs, dry_run=dry_run, command="release", prefetch=prefetch)
        refuse_conflicts(planned.result, planned.opened)
        if dry_run:
            return planned.result
        return execute(cfg, ident, regs, planned, stop)
    except TaggerError as e:
        stopped_short(e)
        raise
