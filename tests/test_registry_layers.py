"""Each registry layer against a small fake registry on 127.0.0.1 (support/hostile.py):
the integrity and auth guards a real registry never trips. Every test drives the
public client (tagger.registry) and asserts what a user would see: the error, and
that nothing more was sent."""

from __future__ import annotations

import hashlib
import json
import signal
from collections.abc import Iterator

import pytest
from support.hostile import Answer, Seen, Stub

from tagger.errors import DeadlineExceeded, Interrupted, RegistryError
from tagger.oci import OCI_MANIFEST, Manifest
from tagger.registry import RegistryClient

CONFIG = {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2}
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {**CONFIG, "digest": "sha256:" + "0" * 64},
        "layers": [],
    }
).encode()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def fake() -> Iterator[Stub]:
    stub = Stub()
    stub.on("GET", r"^/v2/$", lambda s: Answer(200, {}, b"{}"))
    yield stub
    stub.close()


def client(stub: Stub, **opts: object) -> RegistryClient:
    return RegistryClient.to(stub.host, retries=0, **opts)


def requests_to(stub: Stub, path: str) -> list[Seen]:
    return [s for s in stub.log if s.path.startswith(path)]


def test_transport_sends_nothing_once_the_deadline_has_passed(fake: Stub) -> None:
    c = client(fake, expired=lambda: True)
    with pytest.raises(DeadlineExceeded, match="deadline passed before GET"):
        c.list_tags("app")
    assert requests_to(fake, "/v2/app") == []


def test_auth_refuses_a_token_answer_without_a_token(fake: Stub) -> None:
    realm = f"http://{fake.host}/token"
    challenge = {"WWW-Authenticate": f'Bearer realm="{realm}",service="fake"'}
    fake.on("GET", r"^/v2/app/tags/list", lambda s: Answer(401, challenge, b"{}"))
    fake.on("GET", r"^/token", lambda s: Answer(200, {}, b'{"expires_in": 60}'))
    with pytest.raises(RegistryError, match="answered without a token"):
        client(fake).list_tags("app")
    assert len(requests_to(fake, "/token")) == 1  # asked once, not in a loop


def test_api_refuses_a_manifest_by_digest_with_other_bytes(fake: Stub) -> None:
    asked = digest(MANIFEST + b" ")
    headers = {"Content-Type": OCI_MANIFEST}
    fake.on("GET", r"^/v2/app/manifests/sha256:", lambda s: Answer(200, headers, MANIFEST))
    with pytest.raises(RegistryError, match=f"served content with digest {digest(MANIFEST)}"):
        client(fake).get_manifest("app", asked)


def test_api_refuses_a_manifest_the_registry_stored_under_another_digest(fake: Stub) -> None:
    other = {"Docker-Content-Digest": digest(b"rewritten")}
    fake.on("PUT", r"^/v2/app/manifests/1\.0\.0$", lambda s: Answer(201, other, b""))
    m = Manifest.from_bytes(MANIFEST, OCI_MANIFEST)
    with pytest.raises(RegistryError, match="rewrote the manifest"):
        client(fake).put_manifest("app", "1.0.0", m)
    (put,) = requests_to(fake, "/v2/app/manifests/")
    assert put.body == MANIFEST  # the exact bytes were sent


def test_api_refuses_a_blob_over_its_limit_or_with_another_digest(fake: Stub) -> None:
    blob = b"x" * 100
    fake.on("GET", r"^/v2/app/blobs/", lambda s: Answer(200, {}, blob))
    c = client(fake)
    with pytest.raises(RegistryError, match="larger than"):
        c.read_blob("app", digest(blob), limit=10)
    with pytest.raises(RegistryError, match="served content with digest"):
        c.read_blob("app", digest(b"something else"))
    assert c.read_blob("app", digest(blob)) == blob


def test_api_stops_following_a_tag_list_that_links_to_itself(fake: Stub) -> None:
    page = json.dumps({"name": "app", "tags": ["1.0.0"]}).encode()
    loop = {"Link": '</v2/app/tags/list?n=1&last=1.0.0>; rel="next"'}
    fake.on("GET", r"^/v2/app/tags/list", lambda s: Answer(200, loop, page))
    assert client(fake).list_tags("app", page_size=1) == ["1.0.0", "1.0.0"]
    assert len(requests_to(fake, "/v2/app/tags/list")) == 2  # the first page, then the loop


def test_api_checks_a_manifest_asked_for_by_sha512(fake: Stub) -> None:
    headers = {"Content-Type": OCI_MANIFEST}
    fake.on("GET", r"^/v2/app/manifests/sha512:", lambda s: Answer(200, headers, MANIFEST))
    right = "sha512:" + hashlib.sha512(MANIFEST).hexdigest()
    wrong = "sha512:" + hashlib.sha512(MANIFEST + b" ").hexdigest()
    assert client(fake).get_manifest("app", right).data == MANIFEST
    with pytest.raises(RegistryError, match=f"served content with digest {right}"):
        client(fake).get_manifest("app", wrong)


def test_transport_once_a_signal_stopped_the_run_a_request_is_that_stop(fake: Stub) -> None:
    """A request refused (or cut short) because a signal shut the connections down
    exits as the signal (143), never as an unreachable registry (4)."""
    from tagger.registry import abort_reads, arm

    abort_reads(signal.SIGTERM)
    try:
        with pytest.raises(Interrupted, match="stopped by SIGTERM before") as got:
            client(fake).list_tags("app")
    finally:
        arm()
    assert got.value.exit_code == 143
    assert fake.log == []  # nothing was sent
    client(fake).ping(retry=False)  # the next run (arm) sends again
    assert requests_to(fake, "/v2/")
