"""Faults, signals and deadlines (issue 5): a fault-injecting proxy between tagger and
the real registry; tagger runs as a real process where signals are under test."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from support.cli import child_env
from support.git import Repo
from support.proxy import Drop, Proxy
from support.registry import Registry

FLOATING = ("1.0", "1", "latest")


def _setup(registry: Registry, repo: Repo) -> tuple[str, str]:
    """0.9.0 published (so floating tags exist and move), HEAD tagged v1.0.0 and built."""
    image = registry.new_repo()
    old = registry.push_image(image, "0.9.0", content="0.9.0")
    for tag in ("0.9", "latest"):
        registry.put_manifest(image, tag, *registry.get_manifest(image, "0.9.0"))
    assert old
    repo.tag("v1.0.0")
    return image, registry.push_image(image, repo.sha_tag, content="1.0.0")


def _released(registry: Registry, image: str, digest: str) -> None:
    s = registry.state(image)
    assert [s.get(t) for t in ("1.0.0", *FLOATING)] == [digest] * 4


def _allowed(registry: Registry, image: str) -> None:
    """§4: no floating tag points at a digest that has no immutable tag."""
    s = registry.state(image)
    immutable = {d for t, d in s.items() if t.count(".") == 2}
    for tag in ("1.0", "1", "0.9", "latest"):
        if tag in s:
            assert s[tag] in immutable, (tag, s)


def _settle(proxy: Proxy, dropped: int) -> None:
    """Wait until the registry has answered every request the proxy forwarded: the
    floating tags are written together, so a PUT sent with the one the test dropped may
    still be under way, and a tag half-written is listed without a digest."""
    deadline = time.monotonic() + 10
    while len(proxy.log) < len(proxy.seen) - dropped and time.monotonic() < deadline:
        time.sleep(0.01)


def _spawn(repo: Repo, host: str, image: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tagger", "release", "-i", f"{host}/{image}", "--json", *args],
        cwd=repo.path,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    "faults",
    [
        {"error_rate": 0.3, "seed": 1},
        {"reset_rate": 0.2, "seed": 2},
        {"error_rate": 0.15, "reset_rate": 0.15, "seed": 3},
    ],
    ids=["503s-30pct", "resets-20pct", "mixed"],
)
def test_release_survives_a_flaky_registry(
    tagger: Any, registry: Registry, repo: Repo, proxy: Proxy, faults: dict[str, Any]
) -> None:
    image, digest = _setup(registry, repo)
    for k, v in faults.items():
        setattr(proxy.faults, k, v)
    run = tagger(
        "-C", str(repo.path), "release", "-i", f"{proxy.host}/{image}", "--retries", "8", "--json"
    )
    assert run.code == 0, run.err
    assert any(status in (0, 503) for _, _, status in proxy.log)  # faults did happen
    _released(registry, image, digest)


def test_retry_after_is_honoured(tagger: Any, registry: Registry, repo: Repo, proxy: Proxy) -> None:
    image, digest = _setup(registry, repo)
    proxy.faults.first_429 = 1
    proxy.faults.retry_after = "1"
    run = tagger("-C", str(repo.path), "release", "-i", f"{proxy.host}/{image}")
    assert run.code == 0, run.err
    (t429, method, path, status), *rest = proxy.times
    assert status == 429
    # the same request, answered next, came at least Retry-After later (proxy's clock)
    t_next = next(t for t, m, p, s in rest if (m, p) == (method, path))
    assert t_next - t429 >= 1.0
    _released(registry, image, digest)


def test_retry_after_as_http_date(
    tagger: Any, registry: Registry, repo: Repo, proxy: Proxy
) -> None:
    import time
    from email.utils import formatdate

    image, digest = _setup(registry, repo)
    proxy.faults.first_429 = 1
    proxy.faults.retry_after = formatdate(time.time() + 2, usegmt=True)
    run = tagger("-C", str(repo.path), "release", "-i", f"{proxy.host}/{image}")
    assert run.code == 0, run.err
    (t429, method, path, _), *rest = proxy.times
    t_next = next(t for t, m, p, s in rest if (m, p) == (method, path))
    assert t_next - t429 >= 1.0  # an HTTP date has one-second resolution
    _released(registry, image, digest)


def test_registry_failing_everything_exits_4_naming_the_host(
    tagger: Any, registry: Registry, repo: Repo, proxy: Proxy
) -> None:
    image, _ = _setup(registry, repo)
    before = registry.state(image)
    proxy.faults.fail_all = 503
    run = tagger("-C", str(repo.path), "release", "-i", f"{proxy.host}/{image}")
    assert run.code == 4
    assert proxy.host in run.err and "Traceback" not in run.err
    assert len(run.err.strip().splitlines()) <= 2
    assert registry.state(image) == before


def test_deadline_stops_before_the_next_write(
    tagger: Any, registry: Registry, repo: Repo, proxy: Proxy
) -> None:
    image, digest = _setup(registry, repo)
    gate = threading.Event()

    def slow_first_put(method: str, path: str) -> None:
        if method == "PUT" and path.endswith("/manifests/1.0.0"):
            gate.wait(4)  # T held past the deadline, then forwarded

    proxy.hook = slow_first_put
    run = tagger(
        "-C",
        str(repo.path),
        "release",
        "-i",
        f"{proxy.host}/{image}",
        "--deadline",
        "2",  # time enough to plan on a slow machine: the deadline passes while T is held
        "--json",
    )
    assert run.code == 4, run.err
    assert "deadline" in run.err
    status = {t["tag"]: t["status"] for t in run.json["images"][0]["tags"]}
    assert status == {
        "1.0.0": "done",
        "1.0": "not written",
        "1": "not written",
        "latest": "not written",
    }
    _allowed(registry, image)
    run = tagger("-C", str(repo.path), "release", "-i", f"{registry.host}/{image}")
    assert run.code == 0
    _released(registry, image, digest)


def test_sigterm_stops_at_a_safe_point_and_a_rerun_finishes(
    tagger: Any, registry: Registry, repo: Repo, proxy: Proxy
) -> None:
    image, digest = _setup(registry, repo)
    held, go = threading.Event(), threading.Event()

    def hold_first_put(method: str, path: str) -> None:
        if method == "PUT" and path.endswith("/manifests/1.0.0"):
            held.set()
            go.wait(30)

    proxy.hook = hold_first_put
    proc = _spawn(repo, proxy.host, image)
    assert held.wait(30)
    proc.send_signal(signal.SIGTERM)
    go.set()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "SIGTERM" in err
    status = {t["tag"]: t["status"] for t in json.loads(out)["images"][0]["tags"]}
    assert status == {
        "1.0.0": "done",
        "1.0": "not written",
        "1": "not written",
        "latest": "not written",
    }
    _allowed(registry, image)
    proxy.hook = None
    run = tagger("-C", str(repo.path), "release", "-i", f"{proxy.host}/{image}")
    assert run.code == 0, run.err
    _released(registry, image, digest)


@pytest.mark.parametrize("writes_done", [0, 1, 2, 3, 4])
def test_sigkill_after_each_write_then_rerun(
    tagger: Any, registry: Registry, repo: Repo, proxy: Proxy, writes_done: int
) -> None:
    """kill -9 once the first N manifest PUTs are in: T first, then the floating tags
    (X.Y, X, latest), which go together once T is acknowledged (tag-policy §4)."""
    image, digest = _setup(registry, repo)
    held = threading.Event()
    puts, dropped = [0], [0]
    lock = threading.Lock()

    def kill_point(method: str, path: str) -> None:
        with lock:
            if method != "PUT" and not (writes_done == 4 and puts[0] == 4):
                return
            if method == "PUT":
                puts[0] += 1
            if puts[0] > writes_done or (writes_done == 4 and method != "PUT"):
                held.set()
                dropped[0] += 1
                raise Drop  # the process is killed while this request is in flight

    proxy.hook = kill_point
    proc = _spawn(repo, proxy.host, image)
    assert held.wait(30)
    proc.kill()
    proc.communicate(timeout=30)
    proxy.hook = None
    _settle(proxy, dropped[0])
    _allowed(registry, image)
    s = registry.state(image)
    written = [t for t in ("1.0.0", *FLOATING) if s.get(t) == digest]
    assert len(written) == writes_done
    assert written[:1] == ["1.0.0"][:writes_done]  # no floating tag without T
    run = tagger("-C", str(repo.path), "release", "-i", f"{proxy.host}/{image}", "--json")
    assert run.code == 0, run.err
    _released(registry, image, digest)
    assert registry.digest(image, "0.9") == registry.digest(image, "0.9.0")


@pytest.mark.parametrize("boundary", range(1, 10))
def test_sigkill_at_every_request_boundary_then_rerun(
    tagger: Any, registry: Registry, repo: Repo, proxy: Proxy, boundary: int
) -> None:
    """kill -9 while the N-th request of the release is in flight (this release makes 9:
    source manifest and config, tag list, HEAD latest, 4 PUTs, tag list): the registry
    holds a state the policy allows, and a re-run completes the release."""
    image, digest = _setup(registry, repo)
    held = threading.Event()
    seen, dropped = [0], [0]
    lock = threading.Lock()

    def kill_point(method: str, path: str) -> None:
        with lock:
            seen[0] += 1
            if seen[0] >= boundary:
                held.set()
                dropped[0] += 1
                raise Drop

    proxy.hook = kill_point
    proc = _spawn(repo, proxy.host, image)
    assert held.wait(30), f"the release made fewer than {boundary} requests"
    proc.kill()
    proc.communicate(timeout=30)
    proxy.hook = None
    _settle(proxy, dropped[0])
    _allowed(registry, image)
    run = tagger("-C", str(repo.path), "release", "-i", f"{proxy.host}/{image}")
    assert run.code == 0, run.err
    _released(registry, image, digest)


def test_a_second_signal_exits_at_once(registry: Registry, repo: Repo, proxy: Proxy) -> None:
    image, _ = _setup(registry, repo)
    held, go = threading.Event(), threading.Event()

    def hold_first_put(method: str, path: str) -> None:
        if method == "PUT":
            held.set()
            go.wait(30)
            raise Drop

    proxy.hook = hold_first_put
    proc = _spawn(repo, proxy.host, image)
    try:
        assert held.wait(30)
        proc.send_signal(signal.SIGTERM)
        assert proc.stderr is not None
        line = proc.stderr.readline()  # the first signal is acknowledged…
        assert "stopping at the next safe point" in line
        proc.send_signal(signal.SIGTERM)  # …and the second one ends it
        # the request is still held: only an immediate exit ends the process now
        proc.wait(timeout=20)
    finally:
        go.set()
    assert proc.returncode == 143
    _allowed(registry, image)
