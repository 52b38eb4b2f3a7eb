"""The report of a run: per image and tag, the action the plan chose and, once
writing began, what happened to it. ``--json``, the table and the step summary are
all rendered from this one model (render.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from semver import Version

from ..policy import Action
from ..reference import ImageRef

WRITE_ACTIONS = ("create", "move")


class Status(enum.Enum):
    """What happened to a tag once a run began writing."""

    DONE = "done"
    NOT_WRITTEN = "not written"
    FAILED = "failed"


@dataclass
class TagResult:
    tag: str
    action: Action
    from_digest: str | None
    to_digest: str | None
    reason: str
    immutable: bool = False  # T: never moves
    status: Status | None = None  # None until writing began
    error: str | None = None  # why it failed, with Status.FAILED
    owner: str | None = None  # a repair: the version tag whose manifest the tag gets

    @property
    def writes(self) -> bool:
        return self.action in WRITE_ACTIONS

    @property
    def status_text(self) -> str:
        if self.status is Status.FAILED:
            return f"failed: {self.error}"
        return str((self.status or Status.NOT_WRITTEN).value)

    def fail(self, reason: str) -> None:
        self.status, self.error = Status.FAILED, reason

    def to_json(self, with_status: bool = False) -> dict[str, Any]:
        out = {
            "tag": self.tag,
            "action": self.action,
            "from": self.from_digest,
            "to": self.to_digest,
            "reason": self.reason,
        }
        if with_status:
            out["status"] = self.status_text
        return out


@dataclass
class ImageResult:
    name: str  # the repository as the user wrote it
    ref: ImageRef | None  # None in a plan with no image configured
    tags: list[TagResult] = field(default_factory=list)

    @property
    def immutable(self) -> TagResult | None:
        return next((t for t in self.tags if t.immutable), None)

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
    stopped: bool = False  # the run ended with an error (writes.stopped_short)

    @property
    def stopped_short(self) -> bool:
        """A write did not happen: the report then says per tag what was done."""
        return self.stopped or any(
            t.status not in (None, Status.DONE) for i in self.images for t in i.tags
        )

    @property
    def refused(self) -> bool:
        return any(t.action == "refused" for i in self.images for t in i.tags)

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
