"""What a hostile registry, blob store, token server or environment can make tagger do
(the security issue; docs/security.md): each test plays the attacker with a stub on
127.0.0.1 (support/hostile.py) and asserts what the attacker wanted did not happen: a
tag changed in the real docker-registry, a credential received by the wrong listener,
memory or time used without bound, a signal ignored."""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.auth import TLS_NAME, User, htpasswd, make_tls, resolve_to_loopback
from support.cli import child_env, stop_with
from support.git import Repo
from support.hostile import Answer, Seen, Stub, json_answer, zeros
from support.registry import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    Registry,
    free_port,
    start_registry,
    stop,
)

REV = "org.opencontainers.image.revision"
GIB = 1 << 30


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Fake:
    """A registry played by a Stub: one image under ``tag`` in ``repo``, answers per
    path, Basic auth when ``auth`` is set. Tests override single routes."""

    def __init__(self, stub: Stub, repo: str, tag: str, revision: str, auth: str | None) -> None:
        self.stub, self.repo, self.auth = stub, repo, auth
        self.config = json.dumps(
            {"architecture": "amd64", "os": "linux", "config": {"Labels": {REV: revision}}}
        ).encode()
        self.layer = b"the layer of " + revision.encode() * 200
        self.manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": {
                    "mediaType": DOCKER_CONFIG,
                    "digest": sha256(self.config),
                    "size": len(self.config),
                },
                "layers": [
                    {
                        "mediaType": DOCKER_LAYER,
                        "digest": sha256(self.layer),
                        "size": len(self.layer),
                    }
                ],
            }
        ).encode()
        self.digest = sha256(self.manifest)
        self.blobs = {sha256(self.config): self.config, sha256(self.layer): self.layer}
        stub.on("GET", r"^/v2/$", self.guard(lambda s: json_answer(b"{}")))
        m = rf"^/v2/{repo}/manifests/({tag}|{self.digest})$"
        for method in ("GET", "HEAD"):
            stub.on(method, m, self.guard(self._manifest))
            stub.on(method, rf"^/v2/{repo}/blobs/sha256:", self.guard(self._blob))
        stub.on("GET", rf"^/v2/{repo}/tags/list", self.guard(self._tags(tag)))

    def guard(self, route: Any) -> Any:
        def guarded(seen: Seen) -> Answer:
            if self.auth is not None and seen.headers.get("authorization") != self.auth:
                body = b'{"errors": [{"code": "UNAUTHORIZED", "message": "log in"}]}'
                return json_answer(body, 401, **{"WWW-Authenticate": 'Basic realm="fake"'})
            answer: Answer = route(seen)
            return answer

        return guarded

    def _manifest(self, seen: Seen) -> Answer:
        return Answer(
            200,
            {"Content-Type": DOCKER_MANIFEST, "Docker-Content-Digest": self.digest},
            self.manifest,
        )

    def _blob(self, seen: Seen) -> Answer:
        digest = seen.path.rsplit("/", 1)[1]
        if digest not in self.blobs:
            return json_answer(b'{"errors": [{"code": "BLOB_UNKNOWN"}]}', 404)
        return Answer(200, {"Content-Type": "application/octet-stream"}, self.blobs[digest])

    def _tags(self, tag: str) -> Any:
        return lambda seen: json_answer(json.dumps({"name": self.repo, "tags": [tag]}).encode())


@pytest.fixture
def stubs() -> Iterator[list[Stub]]:
    made: list[Stub] = []
    yield made
    for s in made:
        s.close()


@pytest.fixture
def stub(stubs: list[Stub]) -> Any:
    def make(tls: tuple[Path, Path] | None = None) -> Stub:
        s = Stub(tls)
        stubs.append(s)
        return s

    return make


def release(tagger: Any, repo: Repo, source: str, target: str, *extra: str) -> Any:
    return tagger("-C", str(repo.path), "release", "--source", source, "-i", target, *extra)


# --- 1. a source cannot write to the target through the upload --------------------------
def smuggled_put(registry: Registry, image: str) -> bytes:
    """A whole second request: the victim's 1.0.0 re-PUT with other bytes (another
    digest), as an attacker appends it after the blob's declared size."""
    data, ctype = registry.get_manifest(image, "1.0.0")
    evil = json.dumps(json.loads(data), indent=7).encode()
    head = (
        f"PUT /v2/{image}/manifests/1.0.0 HTTP/1.1\r\nHost: {registry.host}\r\n"
        f"Content-Type: {ctype}\r\nContent-Length: {len(evil)}\r\n\r\n"
    )
    return head.encode() + evil


@pytest.mark.parametrize("how", ["more", "fewer", "other"])
def test_a_source_cannot_send_other_than_the_blob_size(
    tagger: Any, registry: Registry, repo: Repo, stub: Any, how: str
) -> None:
    image = registry.new_repo()
    victim = registry.push_image(image, "1.0.0", content="victim")
    repo.tag("v2.0.0")
    fake = Fake(stub(), "src", "build", repo.head, None)
    layer = fake.layer
    body = {
        "more": layer + smuggled_put(registry, image),
        "fewer": layer[:-7],
        "other": layer[:-1] + b"!",
    }[how]
    fake.stub.on(
        "GET", rf"/blobs/{sha256(layer)}$", lambda s: Answer(200, {}, body)
    )  # Content-Length: the bytes it really sends
    run = release(tagger, repo, f"docker://{fake.stub.host}/src:build", f"{registry.host}/{image}")
    assert registry.state(image) == {"1.0.0": victim}  # what the attacker wanted to change
    assert run.code == 4, run.err
    assert {
        "more": "sent more than",
        "fewer": "ended after",
        "other": "sent content with digest",
    }[how] in run.err
    assert f"from docker://{fake.stub.host}/src:build" in run.err
    assert "Traceback" not in run.err


def test_a_compressed_blob_is_sent_as_its_raw_bytes(
    tagger: Any, registry: Registry, repo: Repo, stub: Any
) -> None:
    """The same bound, with a compressed answer: tagger asks for identity and sends
    raw bytes, so a gzip body that decodes to the blob is what it is: other bytes."""
    repo.tag("v1.0.0")
    fake = Fake(stub(), "src", "build", repo.head, None)
    import gzip

    packed = gzip.compress(fake.layer)
    fake.stub.on(
        "GET",
        rf"/blobs/{sha256(fake.layer)}$",
        lambda s: Answer(200, {"Content-Encoding": "gzip"}, packed),
    )
    image = registry.new_repo()
    run = release(tagger, repo, f"docker://{fake.stub.host}/src:build", f"{registry.host}/{image}")
    assert run.code == 4, run.err
    assert any(s.headers.get("accept-encoding") == "identity" for s in fake.stub.log)
    assert registry.tags(image) == set()


# --- 2. credentials go to the registry's own origin only --------------------------------
@pytest.fixture
def login(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TAGGER_USERNAME", "ci")
    monkeypatch.setenv("TAGGER_PASSWORD", "s3cret-pipeline-password")
    return basic("ci", "s3cret-pipeline-password")


def upload_target(fake: Fake, location: str) -> None:
    fake.stub.on(
        "POST",
        rf"^/v2/{fake.repo}/blobs/uploads/",
        fake.guard(lambda s: Answer(202, {"Location": location}, b"")),
    )


def test_an_upload_location_on_another_origin_gets_no_credentials(
    tagger: Any, registry: Registry, repo: Repo, stub: Any, login: str
) -> None:
    repo.tag("v1.0.0")
    ci = registry.new_repo("ci")
    registry.push_image(ci, repo.sha_tag, content="x", labels={REV: repo.head})
    target = Fake(stub(), "app", "none", "other", login)
    thief = stub()
    thief.on("PUT", "/upload", lambda s: json_answer(b"{}", 500))
    upload_target(target, f"http://{thief.host}/upload/1?state=x")
    run = release(
        tagger, repo, f"docker://{registry.host}/{ci}:{repo.sha_tag}", f"{target.stub.host}/app"
    )
    assert run.code == 4, run.err
    assert thief.log, "tagger did not follow the Location"
    assert thief.authorizations() == []
    assert login in target.stub.authorizations()  # the registry itself got them


def test_an_https_registry_cannot_send_uploads_to_plain_http(
    tagger: Any,
    registry: Registry,
    repo: Repo,
    stub: Any,
    login: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolve_to_loopback(monkeypatch, (TLS_NAME,))
    tls = make_tls(tmp_path)
    repo.tag("v1.0.0")
    ci = registry.new_repo("ci")
    registry.push_image(ci, repo.sha_tag, content="y", labels={REV: repo.head})
    target = Fake(stub((tls.cert, tls.key)), "app", "none", "other", login)
    thief = stub()
    upload_target(target, f"http://{thief.host}/upload/1")
    host = f"{TLS_NAME}:{target.stub.port}"
    run = release(
        tagger,
        repo,
        f"docker://{registry.host}/{ci}:{repo.sha_tag}",
        f"{host}/app",
        "--ca-cert",
        str(tls.ca),
    )
    assert run.code == 4, run.err
    assert "plain-HTTP" in run.err
    assert thief.log == []


def test_a_tag_page_on_another_origin_gets_no_credentials(
    tagger: Any, repo: Repo, stub: Any, login: str
) -> None:
    repo.tag("v1.0.0")
    target = Fake(stub(), "app", repo.sha_tag, repo.head, login)
    thief = stub()
    thief.on("GET", "/tags/list", lambda s: json_answer(b'{"name": "app", "tags": ["0.1.0"]}'))
    target.stub.on(
        "GET",
        r"^/v2/app/tags/list",
        target.guard(
            lambda s: json_answer(
                json.dumps({"name": "app", "tags": [repo.sha_tag]}).encode(),
                Link=f'<http://{thief.host}/v2/app/tags/list?last=x>; rel="next"',
            )
        ),
    )
    run = tagger("-C", str(repo.path), "plan", "-i", f"{target.stub.host}/app")
    assert thief.log, run.err
    assert thief.authorizations() == []
    assert login in target.stub.authorizations()


@pytest.mark.parametrize("store_answers", ["the blob", "a challenge"])
def test_a_blob_store_on_another_host_gets_no_credentials(
    tagger: Any,
    registry: Registry,
    repo: Repo,
    stub: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store_answers: str,
) -> None:
    """S3-style: the source registry redirects a blob GET to a store on another host.
    The store gets no Authorization; a challenge it sends is not answered (its realm
    would receive the pipeline's username and password)."""
    repo.tag("v1.0.0")
    auth = basic("puller", "pull-password")
    source = Fake(stub(), "src", "build", repo.head, auth)
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text(
        json.dumps({"auths": {source.stub.host: {"auth": auth.split()[1]}}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    store, thief = stub(), stub()
    if store_answers == "the blob":
        store.on("GET", "/b/", lambda s: Answer(200, {}, source.layer))
    else:
        challenge = f'Bearer realm="http://{thief.host}/token",service="store"'
        store.on("GET", "/b/", lambda s: json_answer(b"{}", 401, **{"WWW-Authenticate": challenge}))
    source.stub.on(
        "GET",
        rf"/blobs/{sha256(source.layer)}$",
        source.guard(lambda s: Answer(307, {"Location": f"http://{store.host}/b/layer"}, b"")),
    )
    image = registry.new_repo()
    run = release(
        tagger, repo, f"docker://{source.stub.host}/src:build", f"{registry.host}/{image}"
    )
    assert store.log
    assert store.authorizations() == []
    assert thief.log == []
    if store_answers == "the blob":
        assert run.code == 0, run.err
        assert registry.digest(image, "1.0.0") == source.digest
    else:
        assert run.code == 4, run.err


# --- 3. token servers -------------------------------------------------------------------
def bearer_registry(stub: Any, realm: str, tls: tuple[Path, Path] | None = None) -> Stub:
    s: Stub = stub(tls)
    challenge = f'Bearer realm="{realm}",service="svc"'
    s.on("GET", "", lambda seen: json_answer(b"{}", 401, **{"WWW-Authenticate": challenge}))
    s.on("HEAD", "", lambda seen: json_answer(b"{}", 401, **{"WWW-Authenticate": challenge}))
    return s


@pytest.mark.parametrize("grant", ["password", "refresh token"])
def test_a_token_server_redirect_is_not_followed(
    tagger: Any,
    repo: Repo,
    stub: Any,
    login: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    grant: str,
) -> None:
    repo.tag("v1.0.0")
    thief = stub()
    token = stub()
    for method in ("GET", "POST"):
        token.on(method, "/token", lambda s: Answer(307, {"Location": f"http://{thief.host}/t"}))
    reg = bearer_registry(stub, f"http://{token.host}/token")
    if grant == "refresh token":
        monkeypatch.delenv("TAGGER_USERNAME")
        monkeypatch.delenv("TAGGER_PASSWORD")
        (tmp_path / "docker").mkdir()
        (tmp_path / "docker" / "config.json").write_text(
            json.dumps({"auths": {reg.host: {"identitytoken": "it-refresh-secret"}}})
        )
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    run = tagger("-C", str(repo.path), "plan", "-i", f"{reg.host}/app")
    assert run.code == 4, run.err
    assert "redirect" in run.err
    assert token.log and thief.log == []
    assert token.log[0].method == ("GET" if grant == "password" else "POST")


@pytest.mark.parametrize("host", ["0.0.0.0", "[::]"])
def test_a_realm_on_an_unspecified_address_is_refused(
    tagger: Any, repo: Repo, stub: Any, login: str, host: str
) -> None:
    repo.tag("v1.0.0")
    thief = stub()
    reg = bearer_registry(stub, f"http://{host}:{thief.port}/token")
    run = tagger("-C", str(repo.path), "plan", "-i", f"{reg.host}/app")
    assert run.code == 4, run.err
    assert "link-local or unspecified" in run.err
    assert thief.log == []


def test_an_https_registry_cannot_send_logins_to_a_plain_http_realm(
    tagger: Any,
    repo: Repo,
    stub: Any,
    login: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """http://localhost is no exception: any local process could listen there."""
    resolve_to_loopback(monkeypatch, (TLS_NAME,))
    tls = make_tls(tmp_path)
    repo.tag("v1.0.0")
    thief = stub()
    reg = bearer_registry(stub, f"http://localhost:{thief.port}/token", (tls.cert, tls.key))
    run = tagger(
        "-C", str(repo.path), "plan", "-i", f"{TLS_NAME}:{reg.port}/app", "--ca-cert", str(tls.ca)
    )
    assert run.code == 4, run.err
    assert "plain-HTTP token server" in run.err
    assert thief.log == []


# --- 4. memory and time ------------------------------------------------------------------
MEASURE = """
import resource, subprocess, sys
r = subprocess.run(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(r.returncode)
"""


def measured(tmp_path: Path, repo: Repo, *args: str) -> tuple[int, str, float, float]:
    """tagger as a process: exit code, stderr, seconds, peak RSS in MB."""
    out = tmp_path / "maxrss"
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, str(out), sys.executable, "-m", "tagger", *args],
        cwd=repo.path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    took = time.monotonic() - start
    rss = int(out.read_text()) / 1024
    print(
        f"tagger {' '.join(args[:1])}: exit {proc.returncode}, {took:.1f} s, peak RSS {rss:.0f} MB"
    )
    return proc.returncode, proc.stderr, took, rss


@pytest.mark.parametrize(
    ("what", "declared"),
    [
        ("manifest", True),
        ("manifest", False),
        ("tag list", True),
        ("tag list", False),
        ("error", False),
    ],
)
def test_a_gibibyte_answer_is_refused_in_bounded_memory_and_time(
    repo: Repo, stub: Any, tmp_path: Path, what: str, declared: bool
) -> None:
    repo.tag("v1.0.0")
    fake = Fake(stub(), "app", repo.sha_tag, repo.head, None)
    huge = Answer(200, {"Content-Type": DOCKER_MANIFEST}, zeros(GIB), GIB if declared else None)
    if what == "manifest":
        fake.stub.on("GET", r"/manifests/", lambda s: huge)
    elif what == "tag list":
        fake.stub.on("GET", r"/tags/list", lambda s: huge)
    else:
        fake.stub.on("GET", r"/tags/list", lambda s: Answer(400, {}, zeros(GIB)))
    code, err, took, rss = measured(tmp_path, repo, "plan", "-i", f"{fake.stub.host}/app")
    assert code == 4, err
    limit = {"manifest": "4 MiB", "tag list": "16 MiB", "error": "64 KiB"}[what]
    assert f"limit of {limit}" in err and fake.stub.host in err
    assert took < 20, took
    assert rss < 150, rss


def test_a_dripping_registry_cannot_hold_a_run_past_its_deadline(
    repo: Repo, stub: Any, tmp_path: Path
) -> None:
    repo.tag("v1.0.0")
    fake = Fake(stub(), "app", repo.sha_tag, repo.head, None)
    fake.stub.on(
        "GET", r"/tags/list", lambda s: Answer(200, {}, (b" " for _ in range(10**6)), 10**6, 0.5)
    )
    code, err, took, rss = measured(
        tmp_path, repo, "plan", "-i", f"{fake.stub.host}/app", "--deadline", "5"
    )
    assert code == 4, err
    assert "deadline" in err
    assert took < 20, took


@pytest.mark.parametrize("how", ["silent", "dripping"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_a_stuck_read_at_once(
    repo: Repo, stub: Any, how: str, sig: signal.Signals
) -> None:
    repo.tag("v1.0.0")
    fake = Fake(stub(), "app", repo.sha_tag, repo.head, None)
    stuck = (
        Answer(200, {}, b"", hang=60)
        if how == "silent"
        else Answer(200, {}, (b" " for _ in range(10**6)), 10**6, 3.0)
    )
    fake.stub.on("GET", r"/tags/list", lambda s: stuck)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tagger", "plan", "-i", f"{fake.stub.host}/app"],
        cwd=repo.path,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        fake.stub.wait_for(lambda s: "tags/list" in s.path, proc)
        _, err, took = stop_with(proc, sig)
    finally:
        proc.kill()
    print(f"{signal.Signals(sig).name} while {how}: exit {proc.returncode} after {took:.2f} s")
    assert proc.returncode == 128 + sig, err
    assert signal.Signals(sig).name in err
    assert took < 3, took


# --- 5. netrc and proxies ------------------------------------------------------------------
@pytest.fixture(scope="module")
def htpasswd_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Registry]]:
    root = tmp_path_factory.mktemp("netrc")
    data = root / "data"
    data.mkdir()
    pw = htpasswd(root / "htpasswd", {"ci": User("right-password", ("pull", "push"))})
    procs = []
    try:
        proc, basic_host = start_registry(
            root,
            f"auth:\n  htpasswd: {{realm: basic-realm, path: {pw}}}\n",
            name="basic",
            data=data,
        )
        procs.append(proc)
        proc, open_host = start_registry(root, name="open", data=data)
        procs.append(proc)
        yield basic_host, Registry(open_host, root)
    finally:
        for p in procs:
            stop(p)


def test_netrc_never_replaces_taggers_credentials(
    tagger: Any,
    repo: Repo,
    htpasswd_registry: tuple[str, Registry],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host, open_reg = htpasswd_registry
    repo.tag("v1.0.0")
    image = open_reg.new_repo()
    digest = open_reg.push_image(image, repo.sha_tag, content="netrc", labels={REV: repo.head})
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login ci password wrong-password\n")
    netrc.chmod(0o600)
    (tmp_path / ".netrc").write_text(netrc.read_text())
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TAGGER_USERNAME", "ci")
    monkeypatch.setenv("TAGGER_PASSWORD", "right-password")
    run = tagger("-C", str(repo.path), "release", "-i", f"{host}/{image}")
    assert run.code == 0, run.err
    assert open_reg.digest(image, "1.0.0") == digest


def test_a_proxy_in_the_environment_is_not_used_for_loopback(
    tagger: Any, registry: Registry, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.tag("v1.0.0")
    image = registry.new_repo()
    digest = registry.push_image(image, repo.sha_tag, content="proxy", labels={REV: repo.head})
    dead = f"http://127.0.0.1:{free_port()}"
    with monkeypatch.context() as m:
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
            m.setenv(var, dead)
        m.delenv("NO_PROXY", raising=False)
        m.delenv("no_proxy", raising=False)
        run = tagger("-C", str(repo.path), "release", "-i", f"{registry.host}/{image}")
    assert run.code == 0, run.err
    assert registry.digest(image, "1.0.0") == digest


def test_a_proxy_in_the_environment_is_used_for_other_hosts(
    tagger: Any, repo: Repo, stub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = stub()
    monkeypatch.setenv("HTTP_PROXY", f"http://{proxy.host}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    repo.tag("v1.0.0")
    name = "registry.internal.test:5000"
    tagger("-C", str(repo.path), "plan", "-i", f"{name}/app", "--insecure-registry", name)
    assert any(s.path.startswith(f"http://{name}/v2/") for s in proxy.log), proxy.log
