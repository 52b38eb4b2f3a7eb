"""Hostile sources, registries, layouts and pull requests (the security issue): what an
attacker would want must not happen: a workflow command forged in the job log, a
credential sent to the wrong listener, a file outside a layout streamed to a registry,
a release hung or made to eat memory, an immutable tag burned by a bad digest."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support.git import Repo

ESC = "\x1b"
FORGED = "denied\n::add-mask::x\n::warning::forged\x1b[31m\u202e\u2028::notice::y"


# --- a hostile registry on 127.0.0.1 ------------------------------------------------
@dataclass
class Stub:
    """A registry stand-in answering from ``answer(method, path, headers)`` and
    recording every request with its Authorization header."""

    answer: Callable[[str, str, dict[str, str]], tuple[int, dict[str, str], bytes]]
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Stub:
        stub = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                headers = {k: v for k, v in self.headers.items()}
                stub.seen.append((self.command, self.path, self.headers.get("Authorization")))
                status, out_headers, body = stub.answer(self.command, self.path, headers)
                self.send_response(status)
                for k, v in out_headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _hostile(method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    j = {"Content-Type": "application/json"}
    if path.rstrip("/") == "/v2":
        return 200, j, b"{}"
    if "/tags/list" in path:
        tags = ["1.0.0", "2.0.0\n::warning::tag", ESC + "[2J", "<img src=x>|`x`"]
        return 200, j, json.dumps({"name": "app", "tags": tags}).encode()
    doc = {"errors": [{"code": "NAME_INVALID", "message": FORGED}]}
    return 400, j, json.dumps(doc).encode()


@pytest.fixture
def hostile() -> Iterator[Stub]:
    s = Stub(_hostile).start()
    yield s
    s.close()


def _actions_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, Path]:
    out, summary = tmp_path / "gh-output", tmp_path / "gh-summary"
    out.touch()
    summary.touch()
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    return out, summary


def _commands(text: str) -> list[str]:
    """Lines the runner would read as workflow commands (it strips leading spaces)."""
    return [line for line in text.splitlines() if line.lstrip().startswith("::")]


@pytest.mark.parametrize("debug", [False, True])
def test_a_registry_message_forges_no_workflow_command(
    debug: bool,
    hostile: Stub,
    repo: Repo,
    tmp_path: Path,
    tagger: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, summary = _actions_env(monkeypatch, tmp_path)
    image = f"{hostile.host}/app"
    args = ["--debug"] if debug else []
    for cmd in (["plan"], ["release"]):
        run = tagger(*args, "-C", str(repo.path), *cmd, "-i", image, "--json")
        assert run.code == 4, run.err
        everything = run.out + run.err
        assert ESC not in everything and "\u202e" not in everything
        assert "\u2028" not in everything
        commands = _commands(everything)
        assert commands, run.err  # tagger's own annotation is there
        for line in commands:
            assert line.startswith("::error title=tagger::"), line
        # the registry's message is still shown, escaped, inside tagger's one annotation
        assert len(commands) == 1
        assert "denied\\n::add-mask::x\\n::warning::forged\\x1b[31m" in commands[0]
    text = summary.read_text()
    assert ESC not in text and "<img" not in text
    assert not any(line.lstrip().startswith("::") for line in text.splitlines())
    assert "denied&#92;n::add-mask::x" in text  # the error, on one line, escaped


@pytest.mark.parametrize("debug", [False, True])
def test_without_actions_no_terminal_escape_reaches_the_terminal(
    debug: bool, hostile: Stub, repo: Repo, tagger: Any
) -> None:
    args = ["--debug"] if debug else []
    run = tagger(*args, "-C", str(repo.path), "plan", "-i", f"{hostile.host}/app")
    assert run.code == 4, run.err
    assert ESC not in run.out + run.err
    assert _commands(run.out + run.err) == []
    assert "::add-mask::x" in run.err  # shown, but inside one line
