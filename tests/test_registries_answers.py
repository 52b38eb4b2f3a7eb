"""Registries as they are in the wild: a proxy in front of the real docker-registry
answers the way ECR, Harbor, Docker Hub and Nexus are documented to answer (status,
headers, error body: tests/support/proxy.py ``Answer``), and each test asserts what a
user sees: the exit code, the message, what landed in the registry, which requests
went where."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from support.git import Repo
from support.proxy import Answer, Proxy
from support.registry import Registry

FLOATING = ("1.0", "1", "latest")
ECR_IMMUTABLE = (
    "The image tag '{tag}' already exists in the '{repo}' repository and cannot be"
    " overwritten because the tag is immutable."
)
JSON = "application/json"
TAG_PUT = r"^/v2/.+/manifests/(?!sha256:)[^/]+$"


def _setup(registry: Registry, repo: Repo) -> tuple[str, str]:
    """0.9.0 published with 0.9, 0 and latest; HEAD tagged v1.0.0 and built by CI."""
    image = registry.new_repo()
    registry.push_image(image, "0.9.0", content="0.9.0")
    for tag in ("0.9", "0", "latest"):
        registry.put_manifest(image, tag, *registry.get_manifest(image, "0.9.0"))
    repo.tag("v1.0.0")
    return image, registry.push_image(image, repo.sha_tag, content="1.0.0")


def _release(tagger: Any, repo: Repo, image: str, *args: str) -> Any:
    return tagger("-C", str(repo.path), "release", "-i", image, *args)


def _puts(proxy: Proxy) -> list[str]:
    return [p for m, p, _ in proxy.log if m == "PUT" and "/manifests/" in p]


# --- 1. immutable-tag repositories ---------------------------------------------------
@pytest.mark.parametrize(
    "status,code,message",
    [
        (400, "TAG_INVALID", ECR_IMMUTABLE),  # ECR
        (412, "DENIED", "Failed to process request due to '{repo}:{tag}' configured as immutable."),
        (403, "DENIED", "tag {tag} is immutable and cannot be overwritten"),  # Docker Hub
    ],
    ids=["ecr", "harbor", "docker-hub"],
)
def test_immutable_tag_repository_says_floating_tags_cannot_move(
    tagger: Any, registry: Registry, repo: Repo, proxy: Proxy, status: int, code: str, message: str
) -> None:
    image, digest = _setup(registry, repo)
    # the registry refuses a PUT of a tag that exists (latest, from 0.9.0)
    text = message.format(tag="latest", repo=image)
    proxy.answers.append(Answer("PUT", r"/manifests/latest$", status).errors(code, text))
    run = _release(tagger, repo, f"{proxy.host}/{image}")
    assert run.code == 4, run.err
    assert "has immutable tags: the floating tag latest could not move" in run.err
    assert text in run.err  # the registry's own words
    assert "exclude them from the repository's tag-immutability rule" in run.err
    assert "check the image reference" not in run.err and "Traceback" not in run.err
    s = registry.state(image)
    assert s["1.0.0"] == digest and s["latest"] != digest  # T was written, latest not


def test_rerun_on_an_immutable_repository_puts_nothing(
    tagger: Any, registry: Registry, repo: Repo, proxy: Proxy
) -> None:
    """ECR refuses a PUT of an existing tag even with the same digest: a re-run of a
    finished release must PUT nothing (every tag is ``unchanged``)."""
    image, digest = _setup(registry, repo)
    assert _release(tagger, repo, f"{proxy.host}/{image}").code == 0
    proxy.log.clear()
    proxy.answers.append(
        Answer("PUT", TAG_PUT, 400).errors("TAG_INVALID", ECR_IMMUTABLE.format(tag="x", repo=image))
    )
    run = _release(tagger, repo, f"{proxy.host}/{image}", "--json")
    assert run.code == 0, run.err
    assert {t["action"] for t in run.tags().values()} == {"unchanged"}
    assert _puts(proxy) == []


def test_rerun_from_a_docker_daemon_puts_nothing(
    tagger: Any,
    dockerd: Any,
    registry: Registry,
    repo: Repo,
    proxy: Proxy,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)
    repo.tag("v1.0.0")
    name = f"tg-imm-{repo.head[:10]}:build"
    dockerd.build(name, tmp_path / "ctx", {"payload": b"immutable\n"}, {})
    image = registry.new_repo()
    # the daemon pushes to the registry itself (not through the proxy: it is the
    # first release); the re-run goes through the proxy, which refuses tag PUTs
    first = _release(tagger, repo, f"{registry.host}/{image}", "--source", f"docker-daemon:{name}")
    assert first.code == 0, first.err
    proxy.answers.append(
        Answer("PUT", TAG_PUT, 400).errors("TAG_INVALID", ECR_IMMUTABLE.format(tag="x", repo=image))
    )
    run = _release(
        tagger, repo, f"{proxy.host}/{image}", "--source", f"docker-daemon:{name}", "--json"
    )
    assert run.code == 0, run.err
    assert run.tags()["1.0.0"]["action"] == "unchanged"
    assert _puts(proxy) == [] and "pushed through the docker daemon" not in run.err


# --- 2. the registry's own words -----------------------------------------------------
def test_expired_login_says_log_in_again(
    tagger: Any, registry: Registry, repo: Repo, proxy: Proxy
) -> None:
    image, _ = _setup(registry, repo)
    before = registry.state(image)
    proxy.answers.append(
        Answer("PUT", TAG_PUT, 403).errors(
            "DENIED", "Your authorization token has expired. Reauthenticate and try again."
        )
    )
    run = _release(tagger, repo, f"{proxy.host}/{image}")
    assert run.code == 4
    assert "Your authorization token has expired. Reauthenticate and try again." in run.err
    assert "log in again" in run.err
    assert "may not push" not in run.err and "write access" not in run.err
    assert registry.state(image) == before


def test_registry_message_is_one_clean_line(
    tagger: Any, registry: Registry, repo: Repo, proxy: Proxy
) -> None:
    """Registry text is untrusted: no newline, no terminal escape reaches the output."""
    image, _ = _setup(registry, repo)
    proxy.answers.append(
        Answer("PUT", TAG_PUT, 403).errors(
            "DENIED", "requested access to the resource is denied\n::error::fake\x1b[31mred"
        )
    )
    run = _release(tagger, repo, f"{proxy.host}/{image}")
    assert run.code == 4
    assert "\x1b" not in run.err and "\n::error::" not in run.err
    assert "requested access to the resource is denied ::error::fake [31mred" in run.err
    assert "refused anonymous access (push)" in run.err  # no expiry: the access hint


def test_missing_repository_on_push_says_create_it(
    tagger: Any, registry: Registry, repo: Repo, proxy: Proxy
) -> None:
    """ECR and Harbor do not create a repository on push: 404 NAME_UNKNOWN."""
    repo.tag("v1.0.0")
    src = registry.new_repo("ci")
    registry.push_image(src, repo.sha_tag)
    msg = "The repository with name 'app' does not exist in the registry with id '123'"
    proxy.answers.append(Answer("POST", r"/blobs/uploads/", 404).errors("NAME_UNKNOWN", msg))
    proxy.answers.append(Answer("PUT", r"/manifests/", 404).errors("NAME_UNKNOWN", msg))
    run = _release(
        tagger,
        repo,
        f"{proxy.host}/nothere",
        "--source",
        f"docker://{registry.host}/{src}:{repo.sha_tag}",
    )
    assert run.code == 4
    assert msg in run.err and "create it first" in run.err


# --- 3. rate limits -------------------------------------------------------------------
def test_rate_limit_of_hours_stops_at_once(
    tagger: Any, registry: Registry, repo: Repo, proxy: Proxy
) -> None:
    image, _ = _setup(registry, repo)
    proxy.answers.append(
        Answer(
            "GET",
            r"/manifests/",
            429,
            {
                "Retry-After": "21600",
                "RateLimit-Limit": "100;w=21600",
                "RateLimit-Remaining": "0;w=21600",
            },
        ).errors(
            "TOOMANYREQUESTS",
            "You have reached your pull rate limit. You may increase the limit by"
            " authenticating and upgrading: https://www.docker.com/increase-rate-limit",
        )
    )
    started = time.monotonic()
    run = _release(tagger, repo, f"{proxy.host}/{image}")
    assert time.monotonic() - started < 20  # not 4 retries of 60 s
    assert run.code == 4
    assert proxy.count("GET", "/manifests/") == 1  # not retried
    assert "rate limit reached until" in run.err and " UTC" in run.err
    until = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 21600))
    assert until in run.err
    assert "limit 100;w=21600, remaining 0;w=21600" in run.err
    assert "You have reached your pull rate limit" in run.err
    assert "logging in raises the limit" in run.err
    assert "kept failing" not in run.err


def test_rate_limit_wait_beyond_the_deadline_stops_at_once(
    tagger: Any, registry: Registry, repo: Repo, proxy: Proxy
) -> None:
    """A Retry-After within the cap (30 s) but beyond what --deadline leaves (5 s)."""
    image, _ = _setup(registry, repo)
    proxy.answers.append(
        Answer("GET", r"/manifests/", 429, {"Retry-After": "30"}).errors(
            "TOOMANYREQUESTS", "slow down"
        )
    )
    started = time.monotonic()
    run = _release(tagger, repo, f"{proxy.host}/{image}", "--deadline", "5")
    assert time.monotonic() - started < 5
    assert run.code == 4 and proxy.count("GET", "/manifests/") == 1
    assert "rate limit reached until" in run.err and "slow down" in run.err


def test_pulls_counted_for_a_two_platform_index_across_registries(
    tagger: Any, registry: Registry, registry2: Registry, repo: Repo
) -> None:
    """Docker Hub counts each manifest GET as a pull: the source index and each child
    are fetched once (3 GETs, was 5); the target side needs digests only (HEAD)."""
    repo.tag("v1.0.0")
    src = registry.new_repo("ci")
    registry.push_index(src, repo.sha_tag)
    source, target = Proxy(registry.url), Proxy(registry2.url)
    try:
        args = (f"{target.host}/{registry2.new_repo()}", "--source")
        args += (f"docker://{source.host}/{src}:{repo.sha_tag}",)
        run = _release(tagger, repo, *args)
        assert run.code == 0, run.err
        assert source.count("GET", "/manifests/") == 3
        assert target.count("GET", "/manifests/") == 0
        # a re-run reads the index and its children again, and nothing more
        source.log.clear()
        target.log.clear()
        run = _release(tagger, repo, *args)
        assert run.code == 0, run.err
        assert source.count("GET", "/manifests/") == 3
        assert target.count("GET", "/manifests/") == 0 and _puts(target) == []
    finally:
        source.close()
        target.close()


# --- 4. answers that break the rules -------------------------------------------------
def test_nexus_tag_list_with_null_and_digests(
    tagger: Any, registry: Registry, repo: Repo, proxy: Proxy
) -> None:
    image, digest = _setup(registry, repo)

    def nexus(body: bytes) -> bytes:
        doc = json.loads(body)
        doc["tags"] += [None, "sha256:" + "a" * 64, 3, "-bad"]
        return json.dumps(doc).encode()

    proxy.answers.append(Answer("GET", r"/tags/list", edit=nexus))
    run = _release(tagger, repo, f"{proxy.host}/{image}", "--json")
    assert run.code == 0, run.err
    assert set(run.tags()) == {"1.0.0", *FLOATING}
    assert all(registry.state(image)[t] == digest for t in ("1.0.0", *FLOATING))


@pytest.mark.parametrize(
    "answer,what",
    [
        (
            Answer(
                "GET",
                r"/manifests/sha-",
                200,
                {"Content-Type": "text/html"},
                b"<!DOCTYPE html><html><body>Sign in</body></html>",
            ),
            "an HTML page",
        ),
        (
            Answer(
                "GET",
                r"/manifests/sha-",
                200,
                {"Content-Type": "application/json"},
                b'{"schemaVersion": 2, "mediaType": "applicat',
            ),
            "broken JSON",
        ),
        (
            Answer("GET", r"/manifests/sha-", 200, {"Content-Type": JSON}, b'{"hello": "world"}'),
            "not a manifest",
        ),
        (
            Answer("GET", r"/manifests/sha-", 200, {"Content-Type": JSON}, b'{"schemaVersion": 2}'),
            "not a manifest",
        ),
        (
            Answer(
                "GET",
                r"/tags/list",
                200,
                {"Content-Type": "text/html"},
                b"<html>maintenance</html>",
            ),
            "an HTML page",
        ),
        (Answer("GET", r"/tags/list", 200, {"Content-Type": JSON}, b'["1.0.0"]'), "not a tag list"),
    ],
    ids=[
        "html-manifest",
        "broken-json",
        "json-no-manifest",
        "schema-only",
        "html-tags",
        "tags-array",
    ],
)
def test_an_answer_that_is_not_the_distribution_api_exits_4(
    tagger: Any, registry: Registry, repo: Repo, proxy: Proxy, answer: Answer, what: str
) -> None:
    image, _ = _setup(registry, repo)
    before = registry.state(image)
    proxy.answers.append(answer)
    run = _release(tagger, repo, f"{proxy.host}/{image}")
    assert run.code == 4, run.err
    assert f"{proxy.host} answered something that is not the Distribution API: {what}" in run.err
    assert "Traceback" not in run.err and "unexpected" not in run.err
    assert registry.state(image) == before  # nothing "published"


def test_upload_accepted_without_location_exits_4(
    tagger: Any, registry: Registry, registry2: Registry, repo: Repo
) -> None:
    repo.tag("v1.0.0")
    src = registry.new_repo("ci")
    registry.push_image(src, repo.sha_tag)
    target = Proxy(registry2.url)
    try:
        target.answers.append(Answer("POST", r"/blobs/uploads/", 202))
        app = registry2.new_repo()
        run = _release(
            tagger,
            repo,
            f"{target.host}/{app}",
            "--source",
            f"docker://{registry.host}/{src}:{repo.sha_tag}",
        )
        assert run.code == 4, run.err
        assert "not the Distribution API: 202 without a Location header" in run.err
        assert "Traceback" not in run.err and registry2.tags(app) == set()
    finally:
        target.close()


# --- 5. reconcile of a repository that does not exist ----------------------------------
def test_reconcile_of_a_missing_repository_says_so(
    tagger: Any, registry: Registry, repo: Repo
) -> None:
    run = tagger("-C", str(repo.path), "reconcile", "-i", f"{registry.host}/no-such-repo-typo")
    assert run.code == 4
    assert f"repository {registry.host}/no-such-repo-typo not found" in run.err
    assert "NAME_UNKNOWN" in run.err and "check the repository name" in run.err


def test_plan_of_a_new_repository_is_a_first_release(
    tagger: Any, registry: Registry, repo: Repo
) -> None:
    repo.tag("v1.0.0")
    src = registry.new_repo("ci")
    registry.push_image(src, repo.sha_tag)
    run = tagger(
        "-C",
        str(repo.path),
        "plan",
        "-i",
        f"{registry.host}/brand-new-{repo.head[:8]}",
        "--source",
        f"docker://{registry.host}/{src}:{repo.sha_tag}",
        "--json",
    )
    assert run.code == 0, run.err
    assert {t["action"] for t in run.tags().values()} == {"create"}


# --- 6. capital letters ----------------------------------------------------------------
def test_uppercase_repository_names_the_lowercase_one(tagger: Any, repo: Repo) -> None:
    run = tagger("-C", str(repo.path), "plan", "-i", "ghcr.io/Acme/App")
    assert run.code == 2
    assert "use 'ghcr.io/acme/app'" in run.err
