#!/usr/bin/env python3
"""The benchmark of issue 7: tagger against skopeo and the docker CLI, side by side.

    python3 bench/run.py            # the full run (under a minute; root for dockerd)
    python3 bench/run.py --quick    # one run of each, no latency: does it all work?

It needs nothing set up by hand. It starts its own ``docker-registry`` on a free
127.0.0.1 port and a latency proxy it owns (tests/support/proxy.py: counts every request,
pages ``tags/list``, adds a delay per request), prepares fresh images and git repositories
untimed, then times tagger and its peer alternately (A B A B …, after a warm-up) as
subprocesses, so start-up counts. The machine has a Docker config as CI machines do
(``DOCKER_CONFIG``: a login for another registry, no credential helper):

- ``tagger release`` of the next version into a repository whose floating tags exist
  (4 tags: X.Y.Z created, X.Y, X and latest moved) against ``skopeo copy`` ×4, on
  loopback and with 10 and 50 ms added to every request; through the proxy, requests
  and the round trips on the critical path (sequential waves of requests) are counted,
  and the same release to two repositories of the registry is timed against one;
- ``tagger release --source docker-daemon:…`` against ``docker tag`` + ``docker push``
  ×4, with a dockerd the bench starts (as root, when dockerd is installed);
- ``tagger reconcile --dry-run`` of a repository with 900 published versions read in
  50-tag pages, counting the digest requests;
- ``tagger version``, and whether ``tagger --help`` imports requests or docker.

A missing optional tool skips its comparison with a line saying so. Medians, min-max,
request counts and the ratios against the issue's targets are printed as a Markdown
table (the README's "Performance" section is one). Timings are never asserted: a run
exits 1 only when something failed to run.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# the test suite's support package: docker-registry and raw pushes, the counting proxy,
# git repositories, dockerd. Those modules need no pytest (the README's install command
# does not install it).
sys.path.insert(0, str(ROOT / "tests"))
from support.daemon import Daemon, running_dockerd  # noqa: E402
from support.git import Repo  # noqa: E402
from support.proxy import Proxy  # noqa: E402
from support.registry import (  # noqa: E402
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Registry,
    running_registry,
)

# the environment the bench leaves out of every command it runs
CI_VARS = ("GITHUB_", "CI_", "TAGGER_", "DOCKER_HOST", "DOCKER_CONFIG", "REGISTRY_AUTH_FILE")
TAGS = 4  # X.Y.Z, X.Y, X, latest


class BenchError(Exception):
    pass


# what a comparison that could not run raises: the bench's own error, and those of the
# support helpers (a registry or git answer not as expected, a server not coming up)
FAILED = (BenchError, AssertionError, RuntimeError, subprocess.CalledProcessError)


# --- small helpers ------------------------------------------------------------
def say(text: str = "") -> None:
    print(text, flush=True)


def tagger_command() -> list[str]:
    """The console script pip installed next to this interpreter (what a user runs),
    else ``python -m tagger``."""
    script = Path(sysconfig.get_path("scripts")) / "tagger"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "tagger"]


def clean_env(tmp: Path) -> dict[str, str]:
    """The caller's environment without CI hints, TAGGER_* settings or Docker
    credentials, so the bench measures the same thing on every machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CI_VARS)}
    # A pip install compiles tagger's bytecode once; an editable install under
    # PYTHONDONTWRITEBYTECODE would compile every module on every run instead (50 ms
    # here), which no user's install does. The warm-up run writes __pycache__.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cfg = tmp / "docker-config"
    cfg.mkdir(exist_ok=True)
    # as on a CI machine: a login for another registry, no credential helper; the bench's
    # registry is anonymous, so neither tool has credentials for it
    login = base64.b64encode(b"ci:not-a-secret").decode()
    auths = {"auths": {"registry.example.com": {"auth": login}}}
    (cfg / "config.json").write_text(json.dumps(auths), encoding="utf-8")
    env["DOCKER_CONFIG"] = str(cfg)
    env["REGISTRY_AUTH_FILE"] = str(cfg / "config.json")  # skopeo's, the same logins
    return env


def run(cmd: list[str], env: dict[str, str], **kw: Any) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        raise BenchError(f"{' '.join(cmd[:3])} … exited {p.returncode}: {' / '.join(tail)}")
    return p


def timed(cmd: list[str], env: dict[str, str], **kw: Any) -> float:
    t0 = time.perf_counter()
    run(cmd, env, **kw)
    return time.perf_counter() - t0


def tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    words = out.split()
    for w in words:
        if w[:1].isdigit() or w[:2] == "v2":
            return w.strip(",").lstrip("v")
    return out.strip()[:30] or "?"


# --- images and releases ------------------------------------------------------------
def push_image(reg: Registry, repo: str, tag: str, seed: str, layers: int = 5) -> str:
    """A fresh image (new config and layers, a few KB each) under ``repo:tag``, pushed
    with plain requests, not with tagger."""
    blobs = [
        hashlib.sha256(f"{seed}/{i}".encode()).digest() * (64 * (i + 1)) for i in range(layers)
    ]
    return reg.push_image(repo, tag, content=seed, labels={"bench.seed": seed}, layer_data=blobs)


def release(git: Repo, tag: str) -> str:
    """Commit, tag; returns the SHA tag of the new HEAD (sha-<7 hex>)."""
    git.commit(f"release {tag}")
    git.tag(tag)
    return git.sha_tag


def build(daemon: Daemon, tag: str, seed: str) -> str:
    """A one-layer FROM scratch image (classic builder)."""
    daemon.build(tag, daemon.root / "ctx", {"payload": f"{seed}\n".encode() * 100}, {"seed": seed})
    return tag


# --- measuring ----------------------------------------------------------------------
@dataclass
class Series:
    times: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    first: int | None = None  # requests of the very first run (warm-up included)
    first_answer: list[float] = field(default_factory=list)  # seconds after the start
    last_answer: list[float] = field(default_factory=list)
    waves: list[int] = field(default_factory=list)  # round trips on the critical path
    trace: str = ""  # the requests of the last run, by wave
    breakdown: Counter[str] = field(default_factory=Counter)  # of the last run

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def text(self) -> str:
        if len(self.times) == 1:
            return fmt(self.median)
        return f"{fmt(self.median)} ({fmt(min(self.times))}–{fmt(max(self.times))})"

    @property
    def req(self) -> int | None:
        return round(statistics.median(self.requests)) if self.requests else None


def fmt(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 0.995 else f"{seconds * 1000:.0f} ms"


def waves(spans: list[tuple[float, float]]) -> list[int]:
    """The wave of each request: 1 + the longest chain of requests answered before it
    was sent (from the proxy's arrival and answer times). The last wave is the number
    of round trips on the critical path."""
    depth = [0] * len(spans)
    for i in sorted(range(len(spans)), key=lambda i: spans[i][0]):
        before = [depth[j] for j in range(len(spans)) if spans[j][1] <= spans[i][0]]
        depth[i] = 1 + max(before, default=0)
    return depth


def wave_text(log: list[tuple[str, str, int]], depth: list[int]) -> str:
    """``1: GET manifests, GET tags/list | 2: …``"""
    out = []
    for w in range(1, max(depth, default=0) + 1):
        kinds = Counter(kind(m, p) for (m, p, _), d in zip(log, depth) if d == w)
        out.append(
            f"{w}: " + ", ".join(f"{k}{f' ×{n}' if n > 1 else ''}" for k, n in kinds.items())
        )
    return " | ".join(out)


def kind(method: str, path: str) -> str:
    p = path.split("?")[0]
    for part in ("manifests", "tags/list", "blobs/uploads", "blobs"):
        if f"/{part}" in p:
            return f"{method} {part}"
    return f"{method} {p}"


@dataclass
class Measured:
    """One side of a comparison: ``prepare`` (untimed) returns what ``run`` (timed,
    returns seconds) needs; requests are counted when a proxy is in the way."""

    name: str
    prepare: Callable[[int], Any]
    run: Callable[[Any], float]
    proxy: Proxy | None = None
    series: Series = field(default_factory=Series)

    def once(self, i: int, record: bool) -> None:
        ctx = self.prepare(i)
        n0 = len(self.proxy.log) if self.proxy else 0
        started = time.monotonic()
        t = self.run(ctx)
        new = self.proxy.log[n0:] if self.proxy else []
        if self.proxy and self.series.first is None:
            self.series.first = len(new)
        if not record:
            return
        self.series.times.append(t)
        if self.proxy and new:
            answered = [at - started for at, *_ in self.proxy.times[n0 : n0 + len(new)]]
            self.series.requests.append(len(new))
            self.series.breakdown = Counter(kind(m, p) for m, p, _ in new)
            self.series.first_answer.append(min(answered))
            self.series.last_answer.append(max(answered))
            depth = waves(self.proxy.spans[n0 : n0 + len(new)])
            self.series.waves.append(max(depth))
            self.series.trace = wave_text(new, depth)


def alternate(sides: list[Measured], runs: int, warmup: int, start: int = 0) -> None:
    """A B A B …: each round prepares and runs every side once; warm-ups unrecorded."""
    for i in range(start, start + warmup + runs):
        for side in sides:
            side.once(i, record=i >= start + warmup)


# --- the report ---------------------------------------------------------------------
@dataclass
class Row:
    what: str
    tagger: str
    peer: str = ""
    ratio: str = ""
    target: str = ""
    requests: str = ""
    met: bool | None = None


class Report:
    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.failed = False

    def add(self, row: Row) -> None:
        self.rows.append(row)
        parts = [f"tagger {row.tagger}"]
        parts += [row.peer] if row.peer else []
        parts += [f"ratio {row.ratio}"] if row.ratio else []
        parts += [f"target {row.target}"] if row.target else []
        parts += [f"requests {row.requests}"] if row.requests else []
        verdict = {True: ": met", False: ": MISSED", None: ""}[row.met]
        say(f"  -> {row.what}: {', '.join(parts)}{verdict}")

    def note(self, text: str) -> None:
        self.notes.append(text)
        say(f"  {text}")

    def skip(self, what: str, why: str) -> None:
        self.note(f"skipped {what}: {why}")

    def fail(self, what: str, err: BaseException) -> None:
        self.failed = True
        self.note(f"FAILED {what}: {err}")

    def table(self) -> str:
        head = ["what", "tagger", "peer", "ratio", "target", "requests", "met"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in self.rows:
            verdict = {True: "yes", False: "**no**", None: ""}[r.met]
            cells = [r.what, r.tagger, r.peer, r.ratio, r.target, r.requests, verdict]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


# --- the comparisons ------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path, stack: ExitStack) -> None:
        self.args = args
        self.tmp = tmp
        self.stack = stack
        self.env = clean_env(tmp)
        self.tagger = tagger_command()
        self.report = Report()
        # skopeo as users run it; without a signature policy file it refuses to copy
        policies = [Path.home() / ".config/containers/policy.json"]
        policies.append(Path("/etc/containers/policy.json"))
        self.skopeo_flags = [] if any(p.exists() for p in policies) else ["--insecure-policy"]
        self._names = iter(range(1, 10**6))

    def path(self, stem: str) -> Path:
        return self.tmp / f"{stem}{next(self._names)}"

    def start_registry(self) -> Registry | None:
        if shutil.which("docker-registry") is None:
            return None
        return self.stack.enter_context(running_registry(self.path("registry"))).keep_alive()

    def proxy(self, reg: Registry, *, latency: float = 0.0, page_size: int | None = None) -> Proxy:
        p = Proxy(reg.url, page_size=page_size)
        p.faults.latency = latency
        self.stack.callback(p.close)
        return p

    def rounds(self, what: str) -> str:
        return f"{what}: {self.args.runs} runs after {self.args.warmup} warm-up"

    # -- tagger release vs skopeo copy ×4 ------------------------------------------
    def release_vs_skopeo(
        self,
        reg: Registry,
        label: str,
        proxy: Proxy | None,
        target: float | None,
        two_targets: float | None = None,
    ) -> None:
        """The release of the next version into a repository whose floating tags exist:
        a fresh 5-layer image, pushed under its SHA tag, published as X.Y.Z and moving
        X.Y, X and latest (``tagger release``, default source: the SHA tag) against
        four ``skopeo copy`` of the same kind of image within one repository, run the
        same way. A first, untimed release makes the floating tags. With
        ``two_targets``, a third side releases to two repositories of the registry
        (the source in the first): the time against one target's."""
        host = proxy.host if proxy else reg.host
        skopeo = shutil.which("skopeo")
        stem = f"{label.split()[0]}-" if proxy else "lo-"
        t_repo, s_repo = f"rel-{stem}tagger", f"rel-{stem}skopeo"
        git = Repo(self.path("git-release"))

        def prep_tagger(i: int) -> None:
            sha = release(git, f"v1.0.{i}")  # the next patch: X.Y, X and latest move
            push_image(reg, t_repo, sha, seed=f"{stem}tagger-{i}")

        def run_tagger(_: None) -> float:
            cmd = [*self.tagger, "-C", str(git.path), "release", "-i", f"{host}/{t_repo}"]
            return timed(cmd, self.env)

        def prep_skopeo(i: int) -> tuple[str, list[str]]:
            push_image(reg, s_repo, f"build-{i}", seed=f"{stem}skopeo-{i}")
            return f"build-{i}", [f"1.0.{i}", "1.0", "1", "latest"]

        def run_skopeo(ctx: tuple[str, list[str]]) -> float:
            src, tags = ctx
            assert skopeo is not None
            t0 = time.perf_counter()
            for tag in tags:
                cmd = [skopeo, *self.skopeo_flags, "copy", "--src-tls-verify=false"]
                cmd += ["--dest-tls-verify=false", f"docker://{host}/{s_repo}:{src}"]
                run([*cmd, f"docker://{host}/{s_repo}:{tag}"], self.env)
            return time.perf_counter() - t0

        sides = [Measured("tagger", prep_tagger, run_tagger, proxy)]
        if skopeo:
            sides.append(Measured("skopeo", prep_skopeo, run_skopeo, proxy))
        else:
            self.report.skip(
                f"skopeo copy ({label})",
                "skopeo is not installed (apt-get install skopeo; scripts/test installs it)",
            )
        two: Measured | None = None
        if two_targets is not None and proxy is not None:
            git2 = Repo(self.path("git-two"))
            a, b = f"two-{stem}a", f"two-{stem}b"

            def prep_two(i: int) -> None:
                push_image(reg, a, release(git2, f"v1.0.{i}"), seed=f"{stem}two-{i}")

            def run_two(_: None) -> float:
                cmd = [*self.tagger, "-C", str(git2.path), "release"]
                return timed([*cmd, "-i", f"{host}/{a}", "-i", f"{host}/{b}"], self.env)

            two = Measured("two targets", prep_two, run_two, proxy)
            sides.append(two)
        what = f"release of the next version, {TAGS} tags, {label}"
        say(self.rounds(what) + ", alternating, after a first release (untimed)")
        alternate(sides, self.args.runs, max(1, self.args.warmup))
        # every tag is where the release puts it: the bench measured real work
        last = max(1, self.args.warmup) + self.args.runs - 1
        for repo in [t_repo] + ([a, b] if two else []):
            want = reg.digest(repo, f"1.0.{last}")
            if not want or any(reg.digest(repo, t) != want for t in ("1.0", "1", "latest")):
                raise BenchError(f"tagger left {repo} in an unexpected state")
        t = sides[0].series
        peer = sides[1].series if skopeo else None
        if peer is None:
            self.report.add(Row(what, t.text()))
        else:
            ratio = t.median / peer.median
            self.report.add(
                Row(
                    what,
                    t.text(),
                    f"skopeo copy ×{TAGS}: {peer.text()}",
                    f"{ratio:.2f}×",
                    f"≤ {target:.2f}×" if target else "",
                    f"{t.req} vs {peer.req}" if proxy else "",
                    None if target is None else ratio <= target,
                )
            )
        if proxy and t.req is not None:
            self._requests(label, t, peer)
        if two is not None and two_targets is not None:
            s2 = two.series
            ratio = s2.median / t.median
            self.report.add(
                Row(
                    f"the same release to two repositories of the registry, {label}",
                    s2.text(),
                    f"one repository: {t.text()}",
                    f"{ratio:.2f}×",
                    f"≤ {two_targets:.2f}×",
                    f"{s2.req}, {s2.breakdown['POST blobs/uploads']} of them mounts;"
                    f" round trips {round(statistics.median(s2.waves))}",
                    ratio <= two_targets,
                )
            )

    def _requests(self, label: str, t: Series, peer: Series | None) -> None:
        parts = ", ".join(f"{k} {n}" for k, n in sorted(t.breakdown.items()))
        self.report.note(f"requests of one tagger release ({label}): {parts}")
        self.report.note(f"its round trips ({label}), by wave: {t.trace}")
        first, last = statistics.median(t.first_answer), statistics.median(t.last_answer)
        self.report.note(
            f"tagger release ({label}), medians: first answer {fmt(first)} after the"
            f" start, last answer at {fmt(last)}, exit at {fmt(t.median)}"
        )
        self.report.add(
            Row(
                f"requests and round trips of that release ({label})",
                f"{t.req}; first release of a repository: {t.first}",
                f"skopeo copy ×{TAGS}: {peer.req}" if peer else "",
                target="round trips ≤ 5",
                requests=f"round trips {round(statistics.median(t.waves))}"
                + (f" vs {round(statistics.median(peer.waves))}" if peer else ""),
                met=statistics.median(t.waves) <= 5,
            )
        )

    # -- docker-daemon: source vs docker tag + push ×4 -------------------------------
    def daemon_vs_docker(self, reg: Registry) -> None:
        label = "docker-daemon: source against docker tag + docker push"
        dockerd, docker = shutil.which("dockerd"), shutil.which("docker")
        if os.geteuid() != 0:
            return self.report.skip(label, "starting a dockerd needs root")
        if not dockerd or not docker:
            return self.report.skip(
                label,
                "dockerd or docker is not installed"
                " (apt-get install --no-install-recommends docker.io)",
            )
        say(f"{label}: starting a dockerd")
        daemon = self.stack.enter_context(
            running_dockerd(dockerd, docker, base_env=self.env, prefix="tgb", own_session=True)
        )
        env = daemon.env
        git = Repo(self.path("git-daemon"))
        t_repo, d_repo = "daemon-tagger", "daemon-docker"

        def prep_tagger(i: int) -> str:
            release(git, f"v1.{i}.0")
            return build(daemon, f"bench-t:{i}", f"tagger {i}")

        def run_tagger(image: str) -> float:
            cmd = [*self.tagger, "-C", str(git.path), "release", "-i", f"{reg.host}/{t_repo}"]
            return timed([*cmd, "--source", f"docker-daemon:{image}"], env)

        def prep_docker(i: int) -> tuple[str, list[str]]:
            image = build(daemon, f"bench-d:{i}", f"docker {i}")
            return image, [f"1.{i}.0", f"1.{i}", "1", "latest"]

        def run_docker(ctx: tuple[str, list[str]]) -> float:
            image, tags = ctx
            t0 = time.perf_counter()
            for tag in tags:
                ref = f"{reg.host}/{d_repo}:{tag}"
                run([docker, "tag", image, ref], env)
                run([docker, "push", "-q", ref], env)
            return time.perf_counter() - t0

        t_side = Measured("tagger", prep_tagger, run_tagger)
        d_side = Measured("docker", prep_docker, run_docker)
        try:  # round 0, untimed: does this tagger have the docker-daemon: source?
            t_side.once(0, record=False)
        except BenchError as e:
            if "not supported" not in str(e):
                raise
            return self.report.skip(label, f"this tagger has no docker-daemon: source yet ({e})")
        d_side.once(0, record=False)
        say(self.rounds(f"{label}, {TAGS} tags, loopback") + ", alternating")
        alternate([t_side, d_side], self.args.runs, max(0, self.args.warmup - 1), start=1)
        t, d = t_side.series, d_side.series
        ratio = t.median / d.median
        self.report.add(
            Row(
                f"docker-daemon: source, {TAGS} tags, loopback",
                t.text(),
                f"docker tag + docker push ×{TAGS}: {d.text()}",
                f"{ratio:.2f}×",
                "≤ 0.50×",
                met=ratio <= 0.5,
            )
        )

    # -- reconcile ---------------------------------------------------------------------
    def reconcile(self, reg: Registry) -> None:
        """A repository with N published versions (1.0.0 … 9.9.9 for 900) and its
        floating tags, a few of them wrong or missing; ``reconcile --dry-run`` reads
        it through a proxy that pages tags/list like Docker Hub or GHCR do."""
        n, page = self.args.versions, self.args.page_size
        repo = "reconcile"
        say(f"reconcile: publishing {n} versions and their floating tags (untimed)")
        versions = [(i // 100 + 1, (i // 10) % 10, i % 10) for i in range(n)]
        config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        layer = b"reconcile layer" * 64
        cfg_d, layer_d = reg.push_blob(repo, config), reg.push_blob(repo, layer)

        def put(tag_version: tuple[str, str]) -> None:
            tag, v = tag_version
            data = {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": cfg_d, "size": len(config)},
                "layers": [{"mediaType": OCI_LAYER, "digest": layer_d, "size": len(layer)}],
                "annotations": {"org.opencontainers.image.version": v},  # one digest each
            }
            reg.put_manifest(repo, tag, json.dumps(data).encode(), OCI_MANIFEST)

        owners: dict[str, str] = {}
        for major, minor, patch in versions:
            v = f"{major}.{minor}.{patch}"
            owners[f"{major}.{minor}"] = owners[str(major)] = owners["latest"] = v
        floating = dict(owners)
        for tag in list(floating):
            if tag.endswith(".0") and tag.count(".") == 1 and not floating[tag].endswith(".0"):
                x, y, z = floating[tag].split(".")  # X.0 a patch behind
                floating[tag] = f"{x}.{y}.{int(z) - 1}"
            elif tag.endswith(".5") and tag.count(".") == 1:  # X.5 missing
                del floating[tag]
        work = [(v, v) for v in (f"{a}.{b}.{c}" for a, b, c in versions)]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(put, work + list(floating.items())))
        decided = len(set(owners.values()))
        expected = decided + len(floating)
        proxy = self.proxy(reg, page_size=page)
        cmd = [*self.tagger, "reconcile", "-i", f"{proxy.host}/{repo}", "--dry-run", "--json"]
        out: dict[str, Any] = {}

        def go(_: None) -> float:
            t0 = time.perf_counter()
            p = run(cmd, self.env, cwd=self.tmp)
            dt = time.perf_counter() - t0
            out["json"] = json.loads(p.stdout)
            return dt

        side = Measured("reconcile", lambda i: None, go, proxy)
        say(self.rounds(f"reconcile --dry-run, {n} versions, {page}-tag pages, loopback"))
        alternate([side], self.args.runs, self.args.warmup)
        s = side.series
        tags = out["json"]["images"][0]["tags"]
        actions = ", ".join(
            f"{a} {c}" for a, c in sorted(Counter(t["action"] for t in tags).items())
        )
        digests = sum(c for k, c in s.breakdown.items() if "manifests" in k)
        pages = s.breakdown.get("GET tags/list", 0)
        self.report.note(
            f"reconcile: {len(tags)} floating tags ({actions}); {pages} tag pages;"
            f" {digests} digest requests for {decided} versions that decide a floating tag"
            f" + {len(floating)} floating tags that exist (expected {expected})"
        )
        self.report.add(
            Row(
                f"reconcile --dry-run, {n} versions, {page}-tag pages, loopback",
                s.text(),
                target=f"< 3 s, ≤ {expected} digests",
                requests=f"{s.req}: {pages} pages + {digests} digests",
                met=s.median < 3.0 and digests <= expected,
            )
        )

    # -- version, --help and the interpreter ----------------------------------------
    def version(self) -> None:
        git = Repo(self.path("git-version"))
        release(git, "v1.2.0")
        runs = self.args.runs if self.args.quick else max(self.args.runs, 10)
        what = "tagger version, tagger --help and python3 -c pass"
        say(f"{what}: {runs} runs after {self.args.warmup} warm-up")
        side = Measured(
            "version",
            lambda i: None,
            lambda _: timed([*self.tagger, "-C", str(git.path), "version"], self.env),
        )
        helps = Measured(
            "help", lambda i: None, lambda _: timed([*self.tagger, "--help"], self.env)
        )
        floor = Measured(
            "python", lambda i: None, lambda _: timed([sys.executable, "-c", "pass"], self.env)
        )
        alternate([side, helps, floor], runs, self.args.warmup)
        for what, s in (("tagger version", side.series), ("tagger --help", helps.series)):
            self.report.add(Row(what, s.text(), target="≤ 100 ms", met=s.median <= 0.1))
        self.report.add(Row("python3 -c pass (the interpreter's start-up)", floor.series.text()))

    def help_imports(self) -> None:
        cmd = [sys.executable, "-X", "importtime", "-m", "tagger", "--help"]
        p = run(cmd, self.env, cwd=self.tmp)
        lines = [x for x in p.stderr.splitlines() if x.startswith("import time:") and "|" in x]
        fields = [x[len("import time:") :].split("|") for x in lines]
        names = {f[2].strip().split(".")[0] for f in fields}
        top_us = sum(int(f[1]) for f in fields if f[1].strip().isdigit() and f[2][:3] != "   ")
        heavy = sorted(names & {"requests", "docker", "urllib3", "git"})
        self.report.add(
            Row(
                "tagger --help imports requests or docker",
                ", ".join(heavy) or "neither",
                target="neither",
                requests=f"-X importtime: {top_us / 1000:.0f} ms",
                met=not {"requests", "docker"} & set(heavy),
            )
        )


# --- main ---------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="1 run of each, no warm-up, no latency, 90 versions: does it work?",
    )
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each side [5]")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs first [1]")
    ap.add_argument(
        "--latency-ms",
        type=float,
        action="append",
        help="added to every request of a latency comparison (repeat) [10, 50]",
    )
    ap.add_argument("--versions", type=int, default=900, help="published versions to reconcile")
    ap.add_argument("--page-size", type=int, default=50, help="tags per tags/list page [50]")
    ap.add_argument(
        "--only",
        action="append",
        default=[],
        choices=["loopback", "latency", "daemon", "reconcile", "version", "help"],
        help="run only these comparisons (repeat)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.runs, args.warmup, args.latency_ms = 1, 0, [0.0]
        args.versions = min(args.versions, 90)
    args.latency_ms = args.latency_ms or [10.0, 50.0]
    if args.runs < 1 or args.warmup < 0:
        ap.error("--runs must be at least 1 and --warmup at least 0")
    return args


@contextmanager
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="tagger-bench-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


REGISTRY_PARTS = {"loopback", "latency", "daemon", "reconcile"}


def versions_line() -> str:
    def v(name: str) -> str:
        return tool_version([name, "--version"]) if shutil.which(name) else "not installed"

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs (load average {load} at the end),"
        f" {platform.system()} {platform.release()}, Python {platform.python_version()},"
        f" docker-registry {v('docker-registry')}, skopeo {v('skopeo')},"
        f" dockerd {v('dockerd')}, docker CLI {v('docker')}"
    )


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds the ExitStack: registry, proxies, dockerd stop


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    want = set(args.only) or REGISTRY_PARTS | {"version", "help"}
    signal.signal(signal.SIGTERM, _stop)
    with workdir() as tmp, ExitStack() as stack:
        bench = Bench(args, tmp, stack)
        rep = bench.report
        say(f"tagger bench, tagger = {' '.join(bench.tagger)}")

        def attempt(what: str, fn: Callable[[], None]) -> None:
            try:
                fn()
            except FAILED as e:
                rep.fail(what, e)

        reg = None
        if want & REGISTRY_PARTS:
            reg = bench.start_registry()
            if reg is None:
                rep.skip(
                    "every registry comparison",
                    "docker-registry is not installed"
                    " (apt-get install docker-registry; scripts/test installs it)",
                )
        if reg is not None:
            if "loopback" in want:
                attempt(
                    "release on loopback",
                    lambda: bench.release_vs_skopeo(reg, "loopback", None, None),  # reported only
                )
            for ms in args.latency_ms if "latency" in want else []:
                label = f"{ms:g} ms per request" if ms else "through the counting proxy"
                proxy = bench.proxy(reg, latency=ms / 1000)
                goal = 0.30 if ms >= 50 else 0.50 if ms >= 10 else None
                two = 1.3 if ms >= 50 or not ms else None
                attempt(
                    f"release, {label}",
                    partial(bench.release_vs_skopeo, reg, label, proxy, goal, two),
                )
            if "daemon" in want:
                attempt("docker-daemon: source", lambda: bench.daemon_vs_docker(reg))
            if "reconcile" in want:
                attempt("reconcile", lambda: bench.reconcile(reg))
        if "version" in want:
            attempt("tagger version", bench.version)
        if "help" in want:
            attempt("tagger --help imports", bench.help_imports)

        how = "quick: 1 run each" if args.quick else f"{args.runs} runs after {args.warmup} warm-up"
        say()
        say(f"tagger bench ({how}; medians, min–max in brackets)")
        say()
        say(versions_line())
        say()
        say(rep.table())
        if rep.notes:
            say()
            for n in rep.notes:
                say(f"- {n}")
        return 1 if rep.failed else 0


if __name__ == "__main__":
    sys.exit(main())
