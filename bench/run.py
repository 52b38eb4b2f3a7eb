#!/usr/bin/env python3
"""The benchmark of issue 7: tagger against skopeo and the docker CLI, side by side.

    python3 bench/run.py            # the full run (under a minute; root for dockerd)
    python3 bench/run.py --quick    # one run of each, no latency: does it all work?

It needs nothing set up by hand. It starts its own ``docker-registry`` on a free
127.0.0.1 port and a latency proxy it owns (tests/proxy.py: counts every request, pages
``tags/list``, adds a delay per request), prepares fresh images and git repositories
untimed, then times tagger and its peer alternately (A B A B …, after a warm-up) as
subprocesses, so start-up counts:

- ``tagger release`` (4 tags) against ``skopeo copy`` ×4, on loopback and with 50 ms
  added to every request; requests counted through the proxy;
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
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from proxy import Proxy  # noqa: E402  (tests/proxy.py: counting, paging, latency)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        OCI_MANIFEST,
        DOCKER_MANIFEST,
    ]
)
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
CI_VARS = ("GITHUB_", "CI_", "TAGGER_", "DOCKER_HOST", "DOCKER_CONFIG", "REGISTRY_AUTH_FILE")
TAGS = 4  # X.Y.Z, X.Y, X, latest


class BenchError(Exception):
    pass


# --- small helpers ------------------------------------------------------------
def say(text: str = "") -> None:
    print(text, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


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
    env["DOCKER_CONFIG"] = str(cfg)  # empty: anonymous, no credential helper
    env["REGISTRY_AUTH_FILE"] = str(cfg / "auth.json")  # skopeo's; does not exist
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


# --- the registry -----------------------------------------------------------------
class Registry:
    """Debian's docker-registry on a free loopback port (the config of
    tests/conftest.py ``start_registry``, which the bench cannot import: conftest needs
    pytest, and the README's install command does not install it). Images are pushed
    with plain requests, not with tagger."""

    def __init__(self, root: Path, binary: str) -> None:
        port = free_port()
        data = root / "data"
        data.mkdir(parents=True)
        cfg = root / "config.yml"
        cfg.write_text(
            "version: 0.1\n"
            "log: {level: error}\n"
            f"storage:\n  filesystem: {{rootdirectory: {data}}}\n  delete: {{enabled: true}}\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
        )
        self.host = f"127.0.0.1:{port}"
        self.url = f"http://{self.host}"
        self.proc = subprocess.Popen(
            [binary, "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._local = threading.local()
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"docker-registry exited with {self.proc.returncode}")
            try:
                requests.get(self.url + "/v2/", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise BenchError("docker-registry did not come up") from None
                time.sleep(0.05)

    @property
    def session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
        return s

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def push_blob(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        r = self.session.post(f"{self.url}/v2/{repo}/blobs/uploads/", timeout=30)
        if r.status_code != 202:
            raise BenchError(f"blob upload to {repo} answered {r.status_code}")
        loc = requests.compat.urljoin(r.url, r.headers["Location"])
        sep = "&" if "?" in loc else "?"
        r = self.session.put(f"{loc}{sep}digest={digest}", data=data, timeout=30)
        if r.status_code != 201:
            raise BenchError(f"blob upload to {repo} answered {r.status_code}")
        return digest

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        r = self.session.put(
            f"{self.url}/v2/{repo}/manifests/{ref}",
            data=data,
            headers={"Content-Type": media_type},
            timeout=30,
        )
        if r.status_code != 201:
            raise BenchError(f"manifest PUT {repo}:{ref} answered {r.status_code}: {r.text}")
        return sha256(data)

    def push_image(self, repo: str, tag: str, seed: str, layers: int = 5) -> str:
        """A fresh image (new config and layers, a few KB each) under ``repo:tag``."""
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": {"bench.seed": seed}},
                "rootfs": {"type": "layers", "diff_ids": []},
            }
        ).encode()
        blobs = [
            hashlib.sha256(f"{seed}/{i}".encode()).digest() * (64 * (i + 1)) for i in range(layers)
        ]
        descs = [
            {"mediaType": DOCKER_LAYER, "digest": self.push_blob(repo, b), "size": len(b)}
            for b in blobs
        ]
        manifest = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": DOCKER_CONFIG,
                "digest": self.push_blob(repo, config),
                "size": len(config),
            },
            "layers": descs,
        }
        return self.put_manifest(
            repo, tag, json.dumps(manifest, indent=3).encode(), DOCKER_MANIFEST
        )

    def digest(self, repo: str, tag: str) -> str | None:
        r = self.session.head(
            f"{self.url}/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT}, timeout=30
        )
        return r.headers.get("Docker-Content-Digest") if r.status_code == 200 else None


class GitRepo:
    """A fresh git repository; every release is a new commit with a new version tag."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")
        self.n = 0

    def git(self, *args: str) -> str:
        env = {**os.environ, **GIT_ENV}
        return run(["git", *args], env, cwd=self.path).stdout.strip()

    def release(self, tag: str) -> str:
        """Commit, tag; returns the SHA tag of the new HEAD (sha-<7 hex>)."""
        self.n += 1
        (self.path / "file.txt").write_text(f"change {self.n}\n")
        self.git("add", "file.txt")
        self.git("commit", "-q", "-m", f"change {self.n}")
        self.git("tag", tag)
        return "sha-" + self.git("rev-parse", "HEAD")[:7]


# --- measuring ----------------------------------------------------------------------
@dataclass
class Series:
    times: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    first: int | None = None  # requests of the very first run (warm-up included)
    first_answer: list[float] = field(default_factory=list)  # seconds after the start
    last_answer: list[float] = field(default_factory=list)
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
        binary = shutil.which("docker-registry")
        if binary is None:
            return None
        reg = Registry(self.path("registry"), binary)
        self.stack.callback(reg.close)
        return reg

    def proxy(self, reg: Registry, *, latency: float = 0.0, page_size: int | None = None) -> Proxy:
        p = Proxy(reg.url, page_size=page_size)
        p.faults.latency = latency
        self.stack.callback(p.close)
        return p

    def rounds(self, what: str) -> str:
        return f"{what}: {self.args.runs} runs after {self.args.warmup} warm-up"

    # -- tagger release vs skopeo copy ×4 ------------------------------------------
    def release_vs_skopeo(
        self, reg: Registry, label: str, proxy: Proxy | None, target: float | None
    ) -> None:
        """Publish a fresh 5-layer image, pushed under its SHA tag, as X.Y.Z, X.Y, X and
        latest: ``tagger release`` (default source: the SHA tag) against four
        ``skopeo copy`` of the same kind of image within one repository."""
        host = proxy.host if proxy else reg.host
        skopeo = shutil.which("skopeo")
        stem = "lat" if proxy else "lo"
        t_repo, s_repo = f"rel-{stem}-tagger", f"rel-{stem}-skopeo"
        git = GitRepo(self.path("git-release"))

        def prep_tagger(i: int) -> None:
            sha = git.release(f"v1.{i}.0")  # a new minor: X.Y created, X and latest moved
            reg.push_image(t_repo, sha, seed=f"{stem}-tagger-{i}")

        def run_tagger(_: None) -> float:
            cmd = [*self.tagger, "-C", str(git.path), "release", "-i", f"{host}/{t_repo}"]
            return timed(cmd, self.env)

        def prep_skopeo(i: int) -> tuple[str, list[str]]:
            reg.push_image(s_repo, f"build-{i}", seed=f"{stem}-skopeo-{i}")
            return f"build-{i}", [f"1.{i}.0", f"1.{i}", "1", "latest"]

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
        say(self.rounds(f"release, {TAGS} tags, {label}") + ", alternating")
        alternate(sides, self.args.runs, self.args.warmup)
        # every tag is where the release puts it: the bench measured real work
        last = self.args.warmup + self.args.runs - 1
        want = reg.digest(t_repo, f"1.{last}.0")
        if not want or any(reg.digest(t_repo, t) != want for t in (f"1.{last}", "1", "latest")):
            raise BenchError(f"tagger left {t_repo} in an unexpected state")
        t = sides[0].series
        peer = sides[1].series if len(sides) > 1 else None
        what = f"release, {TAGS} tags, {label}"
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
            parts = ", ".join(f"{k} {n}" for k, n in sorted(t.breakdown.items()))
            self.report.note(f"requests of one tagger release ({label}): {parts}")
            first, last = statistics.median(t.first_answer), statistics.median(t.last_answer)
            self.report.note(
                f"tagger release ({label}), medians: first answer {fmt(first)} after the"
                f" start, last answer at {fmt(last)}, exit at {fmt(t.median)}"
            )
            self.report.add(
                Row(
                    "requests of that release (anonymous registry)",
                    f"{t.req}; first release of a repository: {t.first}",
                    f"skopeo copy ×{TAGS}: {peer.req}" if peer else "",
                    target="≤ 8",
                    met=t.req <= 8,
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
        daemon = Dockerd(dockerd, docker, self.env)
        self.stack.callback(daemon.close)
        say(f"{label}: starting a dockerd")
        daemon.start()
        env = daemon.env
        git = GitRepo(self.path("git-daemon"))
        t_repo, d_repo = "daemon-tagger", "daemon-docker"

        def prep_tagger(i: int) -> str:
            git.release(f"v1.{i}.0")
            return daemon.build(f"bench-t:{i}", f"tagger {i}")

        def run_tagger(image: str) -> float:
            cmd = [*self.tagger, "-C", str(git.path), "release", "-i", f"{reg.host}/{t_repo}"]
            return timed([*cmd, "--source", f"docker-daemon:{image}"], env)

        def prep_docker(i: int) -> tuple[str, list[str]]:
            image = daemon.build(f"bench-d:{i}", f"docker {i}")
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
        git = GitRepo(self.path("git-version"))
        git.release("v1.2.0")
        runs = self.args.runs if self.args.quick else max(self.args.runs, 10)
        say(f"tagger version and python3 -c pass: {runs} runs after {self.args.warmup} warm-up")
        side = Measured(
            "version",
            lambda i: None,
            lambda _: timed([*self.tagger, "-C", str(git.path), "version"], self.env),
        )
        floor = Measured(
            "python", lambda i: None, lambda _: timed([sys.executable, "-c", "pass"], self.env)
        )
        alternate([side, floor], runs, self.args.warmup)
        s = side.series
        self.report.add(Row("tagger version", s.text(), target="≤ 250 ms", met=s.median <= 0.25))
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


class Dockerd:
    """A private dockerd (vfs, no iptables, no bridge) on a short socket path."""

    def __init__(self, dockerd: str, docker: str, env: dict[str, str]) -> None:
        self.dockerd, self.docker = dockerd, docker
        self.dir = Path(tempfile.mkdtemp(prefix="tgb", dir="/tmp"))
        self.sock = self.dir / "sock"
        self.env = {**env, "DOCKER_HOST": f"unix://{self.sock}", "DOCKER_BUILDKIT": "0"}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        d = self.dir
        log = open(d / "log", "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [
                self.dockerd,
                "--storage-driver=vfs",
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--data-root",
                str(d / "data"),
                "--exec-root",
                str(d / "exec"),
                "--pidfile",
                str(d / "pid"),
                "-H",
                f"unix://{self.sock}",
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                tail = (d / "log").read_text(errors="replace").strip().splitlines()[-2:]
                raise BenchError(f"dockerd exited with {self.proc.returncode}: {' / '.join(tail)}")
            p = subprocess.run([self.docker, "info"], env=self.env, capture_output=True)
            if p.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise BenchError("dockerd did not come up within 60 s")
            time.sleep(0.3)

    def build(self, tag: str, seed: str) -> str:
        """A one-layer FROM scratch image (classic builder)."""
        ctx = self.dir / "ctx"
        ctx.mkdir(exist_ok=True)
        (ctx / "payload").write_text(f"{seed}\n" * 100)
        (ctx / "Dockerfile").write_text(
            f'FROM scratch\nCOPY payload /payload\nLABEL seed="{seed}"\n'
        )
        run([self.docker, "build", "-q", "-t", tag, str(ctx)], self.env)
        return tag

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


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
        default=50.0,
        help="added to every request of the latency comparison [50]",
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
        args.runs, args.warmup, args.latency_ms = 1, 0, 0.0
        args.versions = min(args.versions, 90)
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
            except BenchError as e:
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
                    lambda: bench.release_vs_skopeo(reg, "loopback", None, 1.0),
                )
            if "latency" in want:
                ms = args.latency_ms
                label = f"{ms:g} ms per request" if ms else "through the counting proxy"
                proxy = bench.proxy(reg, latency=ms / 1000)
                attempt(
                    f"release, {label}",
                    lambda: bench.release_vs_skopeo(reg, label, proxy, 0.30 if ms >= 50 else None),
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
