"""Independent work at once: reads of several tags or targets, and the writes the
policy allows together (tag-policy §4: a repository's floating tags once T is
acknowledged there; different target repositories)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

PARALLEL = 8
T = TypeVar("T")
R = TypeVar("R")


def parallel(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``fn`` over ``items`` in a bounded pool (in line for one item). Every call
    finishes before this returns; the first failure, in the items' order, is raised."""
    items = list(items)
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(min(PARALLEL, len(items))) as pool:
        futures = [pool.submit(fn, i) for i in items]
    return [f.result() for f in futures]
