"""bench/run.py works from a clone: one quick run of every comparison. No timing is
asserted (a loaded machine must not fail the suite); what is checked is that every
comparison ran or said why not, and the request counts the bench reports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.registry import need_binary

BENCH = Path(__file__).resolve().parent.parent / "bench" / "run.py"


@pytest.mark.slow
def test_quick_bench_runs_every_comparison() -> None:
    need_binary("docker-registry")
    need_binary("skopeo")
    p = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=600
    )
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    out = p.stdout
    table = out[out.index("| what |") :]
    for row in (
        "release of the next version, 4 tags, loopback",
        "release of the next version, 4 tags, through the counting proxy",
        "requests and round trips of that release",
        "the same release to two repositories of the registry",
        "reconcile --dry-run, 90 versions, 50-tag pages",
        "tagger version",
        "tagger --help |",
        "tagger --help imports requests or docker",
    ):
        assert f"| {row}" in table, row
    assert "| docker-daemon: source" in table or "skipped docker-daemon: source" in out
    # skopeo's requests were counted through the proxy: 4 copies, each more than one;
    # and the round trips on tagger's critical path, from the proxy's timestamps
    counts = re.search(
        r"\| requests and round trips of that release[^|]*\| (\d+)[^|]*\| skopeo copy ×4: (\d+)"
        r"[^\n]*round trips (\d+) vs (\d+)",
        table,
    )
    assert counts and int(counts.group(1)) > 0 and int(counts.group(2)) > 4
    assert 0 < int(counts.group(3)) <= int(counts.group(1))
    # the second target's blobs were mounted, once each: the config and 5 layers
    assert re.search(
        r"\| the same release to two repositories[^\n]*\| \d+, 6 of them mounts;", table
    )
    # reconcile read digests only of the versions that decide a floating tag and of the
    # floating tags that exist
    m = re.search(r"(\d+) digest requests for .* \(expected (\d+)\)", out)
    assert m and int(m.group(1)) <= int(m.group(2))
    assert "| tagger --help imports requests or docker | neither |" in table
