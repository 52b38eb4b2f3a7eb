"""Running tagger's entry point in the test's own process: what the ``tagger`` fixture
(support/fixtures.py) calls."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict[str, object]:
        return dict(json.loads(self.out))

    def tags(self, image: int = 0) -> dict[str, dict[str, object]]:
        images = self.json["images"]
        assert isinstance(images, list)
        return {t["tag"]: t for t in images[image]["tags"]}


def run_cli(
    main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str], *args: str
) -> Run:
    """``tagger ARGS`` through its ``main``; returns the exit code and what it printed."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return Run(code, out, err)
