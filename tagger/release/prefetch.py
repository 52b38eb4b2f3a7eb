"""Registry reads that do not depend on git, started before git is read.

Reading git (GitPython's import, ``git version``, ``git status``) takes tens of
milliseconds; the targets' tag lists (and ``plan``'s ping) need nothing from it. They
are sent first, each in a daemon thread, and the plan picks their answers up: one round
trip fewer after git on the critical path of a release. A read that fails raises where
the plan would have raised it; one nothing picks up (git refused the release) is
abandoned with the process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import TypeVar

from ..config import Config
from ..errors import TaggerError
from ..reference import ImageRef, parse_reference
from ..registry import Registries

R = TypeVar("R")


def _started(fn: Callable[[], R]) -> Future[R]:
    fut: Future[R] = Future()

    def work() -> None:
        try:
            fut.set_result(fn())
        except BaseException as e:  # noqa: BLE001 - handed to whoever picks the answer up
            fut.set_exception(e)

    threading.Thread(target=work, name="tagger-prefetch", daemon=True).start()
    return fut


def _ping(regs: Registries, registry: str) -> None:
    regs.client(registry).ping(retry=False)


def _list(regs: Registries, ref: ImageRef, push: bool) -> list[str]:
    return regs.client(ref.registry).list_tags(ref.repository, push=push)


class Prefetch:
    """Tag lists by (registry, repository), and the first registry's ping."""

    def __init__(self) -> None:
        self._tags: dict[tuple[str, str], Future[list[str]]] = {}
        self._ping: Future[None] | None = None

    @classmethod
    def start(
        cls, cfg: Config, regs: Registries, *, push: bool | None, ping: bool = False
    ) -> Prefetch | None:
        """Send the reads for ``cfg.images``: the tag lists unless ``push`` is None
        (True: with push access, as a release writes), the ping with ``ping``. None
        is read ahead when an image name is invalid: the plan says so, after git."""
        if push is None and not ping:
            return None
        self = cls()
        try:
            images = [parse_reference(i, allow_tag=False) for i in cfg.images]
        except TaggerError:
            return self
        # the clients are made in the threads too: the first one imports requests
        if ping and images:
            self._ping = _started(partial(_ping, regs, images[0].registry))
        for ref in images if push is not None else []:
            key = (ref.registry, ref.repository)
            if key not in self._tags:
                self._tags[key] = _started(partial(_list, regs, ref, bool(push)))
        return self

    def tags(self, ref: ImageRef) -> list[str] | None:
        """The repository's tags as read ahead (None: not read ahead)."""
        fut = self._tags.get((ref.registry, ref.repository))
        return None if fut is None else list(fut.result())

    def pinged(self) -> bool:
        """Whether the ping was sent ahead; raises what it raised."""
        if self._ping is None:
            return False
        self._ping.result()
        return True
