"""A small stand-in for GitHub's runner, enough to run a composite action's steps the
way the runner does: ``${{ }}`` expressions (contexts inputs, github, runner, env,
steps; operators ! == != && || and the usual functions), ``if:`` conditions, each
``run:`` step in ``bash --noprofile --norc -eo pipefail`` with fresh GITHUB_OUTPUT /
GITHUB_ENV / GITHUB_PATH / GITHUB_STEP_SUMMARY files, workflow commands read from both
output streams, and the action's ``outputs`` evaluated at the end.

GitHub's runner itself cannot run here; this is the simulation the tests use instead.
A ``uses:`` step whose condition says it would run is an error: the test then cannot
claim to have run the action as written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BASH = shutil.which("bash") or "/bin/bash"  # found once: a step may run with any PATH

# --- expressions -------------------------------------------------------------------
_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)|(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|<=|>=|&&|\|\||[!<>()\[\].,])"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)


class ExpressionError(Exception):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ExpressionError(f"cannot parse {text[pos:]!r} in {text!r}")
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m[kind]))
        pos = m.end()
    return out


def truthy(v: Any) -> bool:
    return v not in (None, False, 0, "") and v == v


def to_string(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if type(a) is type(b):
        return bool(a == b)

    def num(v: Any) -> float:  # GitHub compares mixed types as numbers (null is 0)
        if v is None:
            return 0.0
        if isinstance(v, bool):
            return float(v)
        if isinstance(v, (int, float)):
            return float(v)
        try:
            return float(v) if str(v).strip() else 0.0
        except ValueError:
            return float("nan")

    return num(a) == num(b)


class _Parser:
    def __init__(self, text: str, contexts: Mapping[str, Any], status: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.contexts = contexts
        self.status = status
        self.text = text

    def peek(self) -> str | None:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise ExpressionError(f"unexpected end of {self.text!r}")
        tok = self.toks[self.i]
        if expected is not None and tok[1] != expected:
            raise ExpressionError(f"expected {expected!r}, got {tok[1]!r} in {self.text!r}")
        self.i += 1
        return tok

    def parse(self) -> Any:
        v = self.or_()
        if self.i != len(self.toks):
            raise ExpressionError(f"trailing {self.toks[self.i][1]!r} in {self.text!r}")
        return v

    def or_(self) -> Any:
        v = self.and_()
        while self.peek() == "||":
            self.take()
            rhs = self.and_()
            v = v if truthy(v) else rhs
        return v

    def and_(self) -> Any:
        v = self.cmp()
        while self.peek() == "&&":
            self.take()
            rhs = self.cmp()
            v = rhs if truthy(v) else v
        return v

    def cmp(self) -> Any:
        v = self.unary()
        while self.peek() in ("==", "!=", "<", "<=", ">", ">="):
            op = self.take()[1]
            rhs = self.unary()
            if op == "==":
                v = _equal(v, rhs)
            elif op == "!=":
                v = not _equal(v, rhs)
            else:
                v = {"<": v < rhs, "<=": v <= rhs, ">": v > rhs, ">=": v >= rhs}[op]
        return v

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not truthy(self.unary())
        return self.postfix()

    def postfix(self) -> Any:
        v = self.primary()
        while self.peek() in (".", "["):
            if self.take()[1] == ".":
                kind, name = self.take()
                if kind != "name":
                    raise ExpressionError(f"bad property {name!r} in {self.text!r}")
                key: Any = name
            else:
                key = self.or_()
                self.take("]")
            if isinstance(v, dict):
                low = {str(k).lower(): val for k, val in v.items()}
                v = low.get(str(key).lower())
            elif isinstance(v, list) and isinstance(key, (int, float)):
                v = v[int(key)] if 0 <= int(key) < len(v) else None
            else:
                v = None
        return v

    def primary(self) -> Any:
        kind, tok = self.take()
        if kind == "num":
            return float(tok) if "." in tok else int(tok)
        if kind == "str":
            return tok[1:-1].replace("''", "'")
        if tok == "(":
            v = self.or_()
            self.take(")")
            return v
        if kind != "name":
            raise ExpressionError(f"unexpected {tok!r} in {self.text!r}")
        low = tok.lower()
        if low in ("true", "false"):
            return low == "true"
        if low == "null":
            return None
        if self.peek() == "(":
            self.take()
            args = []
            while self.peek() != ")":
                args.append(self.or_())
                if self.peek() == ",":
                    self.take()
            self.take(")")
            return self.call(low, args)
        if low not in self.contexts:
            raise ExpressionError(f"unknown context {tok!r} in {self.text!r}")
        return self.contexts[low]

    def call(self, name: str, args: list[Any]) -> Any:
        s = [to_string(a).lower() for a in args]
        if name == "success":
            return self.status == "success"
        if name == "failure":
            return self.status == "failure"
        if name == "always":
            return True
        if name == "cancelled":
            return False
        if name == "startswith":
            return s[0].startswith(s[1])
        if name == "endswith":
            return s[0].endswith(s[1])
        if name == "contains":
            if isinstance(args[0], list):
                return any(_equal(x, args[1]) for x in args[0])
            return s[1] in s[0]
        if name == "format":
            out = to_string(args[0])
            for n, a in enumerate(args[1:]):
                out = out.replace("{" + str(n) + "}", to_string(a))
            return out
        if name == "join":
            sep = to_string(args[1]) if len(args) > 1 else ","
            return sep.join(to_string(x) for x in args[0]) if isinstance(args[0], list) else args[0]
        if name == "tojson":
            return json.dumps(args[0], indent=2)
        if name == "fromjson":
            return json.loads(to_string(args[0]))
        raise ExpressionError(f"function {name}() is not simulated")


def evaluate(expr: str, contexts: Mapping[str, Any], status: str = "success") -> Any:
    return _Parser(expr, contexts, status).parse()


_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def substitute(text: Any, contexts: Mapping[str, Any]) -> str:
    """Replace every ``${{ expr }}`` in a string value."""
    return _TEMPLATE.sub(lambda m: to_string(evaluate(m[1], contexts)), to_string(text))


def condition(text: Any, contexts: Mapping[str, Any], status: str) -> bool:
    """An ``if:``: a bare expression or one in ``${{ }}``; without a status function it
    means ``success() && (...)``."""
    if text is None:
        return status == "success"
    src = to_string(text).strip()
    m = re.fullmatch(r"\$\{\{(.*)\}\}", src, re.S)
    if m:
        src = m[1]
    if not re.search(r"\b(success|failure|always|cancelled)\s*\(", src):
        src = f"success() && ({src})"
    return truthy(evaluate(src, contexts, status))


# --- workflow files ----------------------------------------------------------------
def read_outputs_file(path: Path) -> dict[str, str]:
    """``name=value`` lines and ``name<<DELIM`` heredocs, as the runner reads them."""
    out: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").split("\n") if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            value: list[str] = []
            while i < len(lines) and lines[i] != delim:
                value.append(lines[i])
                i += 1
            if i >= len(lines):
                raise ValueError(f"{path}: no closing {delim!r} for {name!r}")
            i += 1
            out[name] = "\n".join(value)
        else:
            name, _, value_ = line.partition("=")
            out[name] = value_
    return out


_COMMAND = re.compile(r"^::([a-z-]+)(?: ([^:]*))?::(.*)$")


def _unescape(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


@dataclass
class Annotation:
    level: str
    title: str
    message: str


@dataclass
class StepResult:
    id: str
    ran: bool
    code: int = 0
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class ActionRun:
    code: int
    outputs: dict[str, str]
    summary: str
    steps: list[StepResult]
    annotations: list[Annotation]

    @property
    def log(self) -> str:
        return "\n".join(s.stdout + s.stderr for s in self.steps)

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.outputs["json"]))


@dataclass
class Runner:
    """One job's runner: its temp directory, workspace and environment."""

    temp: Path  # RUNNER_TEMP
    workspace: Path  # GITHUB_WORKSPACE
    env: dict[str, str]  # the job's environment (GITHUB_REF, GITHUB_SHA, ...)

    def github_context(self, action_path: Path) -> dict[str, Any]:
        e = self.env
        return {
            "action_path": str(action_path),
            "workspace": str(self.workspace),
            "ref": e.get("GITHUB_REF", ""),
            "ref_name": e.get("GITHUB_REF_NAME", ""),
            "sha": e.get("GITHUB_SHA", ""),
            "event_name": e.get("GITHUB_EVENT_NAME", ""),
            "repository": e.get("GITHUB_REPOSITORY", ""),
            "actor": e.get("GITHUB_ACTOR", ""),
        }

    def run_action(
        self, action_dir: Path, inputs: Mapping[str, str], *, metadata: str = "action.yml"
    ) -> ActionRun:
        spec = yaml.safe_load((action_dir / metadata).read_text())
        assert spec["runs"]["using"] == "composite", "only composite actions are simulated"
        declared = spec.get("inputs") or {}
        unknown = set(inputs) - set(declared)
        assert not unknown, f"inputs not declared in {metadata}: {sorted(unknown)}"
        values = {}
        for name, meta in declared.items():
            if name in inputs:
                values[name] = inputs[name]
            else:
                assert not meta.get("required"), f"required input {name} not given"
                values[name] = to_string(meta.get("default", ""))

        base_env = dict(self.env)
        base_env.update(
            GITHUB_ACTIONS="true",
            GITHUB_WORKSPACE=str(self.workspace),
            GITHUB_ACTION_PATH=str(action_dir),
            RUNNER_TEMP=str(self.temp),
            RUNNER_OS="Linux",
            CI="true",
        )
        steps_ctx: dict[str, Any] = {}
        results: list[StepResult] = []
        annotations: list[Annotation] = []
        summary: list[str] = []
        status = "success"
        code = 0
        path_prefix: list[str] = []
        for n, step in enumerate(spec["runs"]["steps"]):
            sid = step.get("id") or f"__{n}"
            contexts = {
                "inputs": values,
                "github": self.github_context(action_dir),
                "runner": {"temp": str(self.temp), "os": "Linux"},
                "env": base_env,
                "steps": steps_ctx,
            }
            if not condition(step.get("if"), contexts, status):
                steps_ctx[sid] = {"outputs": {}, "outcome": "skipped", "conclusion": "skipped"}
                results.append(StepResult(sid, ran=False))
                continue
            if "uses" in step:
                raise AssertionError(
                    f"step {sid} would run `uses: {step['uses']}`, which this simulation cannot"
                )
            result = self._run_step(sid, step, contexts, base_env, path_prefix, summary)
            results.append(result)
            for stream in (result.stdout, result.stderr):
                for line in stream.splitlines():
                    m = _COMMAND.match(line)
                    if m and m[1] in ("error", "warning", "notice"):
                        props = dict(p.split("=", 1) for p in (m[2] or "").split(",") if "=" in p)
                        annotations.append(
                            Annotation(m[1], _unescape(props.get("title", "")), _unescape(m[3]))
                        )
            outcome = "success" if result.code == 0 else "failure"
            steps_ctx[sid] = {"outputs": result.outputs, "outcome": outcome, "conclusion": outcome}
            if result.code != 0:
                status, code = "failure", result.code
        contexts = {"steps": steps_ctx, "inputs": values, "github": self.github_context(action_dir)}
        outputs = {
            name: substitute(meta.get("value", ""), contexts)
            for name, meta in (spec.get("outputs") or {}).items()
        }
        return ActionRun(code, outputs, "".join(summary), results, annotations)

    def _run_step(
        self,
        sid: str,
        step: Mapping[str, Any],
        contexts: Mapping[str, Any],
        base_env: dict[str, str],
        path_prefix: list[str],
        summary: list[str],
    ) -> StepResult:
        assert step.get("shell") == "bash", f"step {sid}: composite run steps need shell: bash"
        files = self.temp / "_runner_files" / f"{len(list(self.temp.glob('_runner_files/*')))}"
        files.mkdir(parents=True)
        paths = {
            "GITHUB_OUTPUT": files / "output",
            "GITHUB_ENV": files / "env",
            "GITHUB_PATH": files / "path",
            "GITHUB_STEP_SUMMARY": files / "summary",
        }
        for p in paths.values():
            p.touch()
        env = dict(base_env)
        env.update({k: substitute(v, contexts) for k, v in (step.get("env") or {}).items()})
        env.update({k: str(v) for k, v in paths.items()})
        env["PATH"] = os.pathsep.join([*path_prefix, env.get("PATH", os.defpath)])
        script = files / "script.sh"
        script.write_text(substitute(step["run"], contexts))
        cwd = self.workspace
        if step.get("working-directory"):
            cwd = self.workspace / substitute(step["working-directory"], contexts)
        proc = subprocess.run(
            [BASH, "--noprofile", "--norc", "-e", "-o", "pipefail", str(script)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        base_env.update(read_outputs_file(paths["GITHUB_ENV"]))
        path_prefix[:0] = [p for p in paths["GITHUB_PATH"].read_text().splitlines() if p]
        summary.append(paths["GITHUB_STEP_SUMMARY"].read_text())
        return StepResult(
            sid,
            True,
            proc.returncode,
            proc.stdout,
            proc.stderr,
            read_outputs_file(paths["GITHUB_OUTPUT"]),
        )
