"""The layout holds: size limits, no import cycle (function-level imports included),
no private CPython API. The layers themselves are import-linter's contracts
(pyproject.toml), run by scripts/test."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tagger"
FILES = sorted(PACKAGE.rglob("*.py"))
LIMITS = {"module": 400, "class": 300, "function": 80}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_size_limits() -> None:
    over = []
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > LIMITS["module"]:
            over.append(f"{path.name}: {lines} lines")
        for node in ast.walk(_tree(path)):
            kind = (
                "class"
                if isinstance(node, ast.ClassDef)
                else "function"
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                else None
            )
            if kind is not None:
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > LIMITS[kind]:
                    over.append(f"{path.name}: {kind} {node.name} has {size} lines")
    assert over == []


def _imports(path: Path) -> set[str]:
    """Every tagger module this file imports, at any depth of the code."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("tagger")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            if not base.startswith("tagger"):
                continue
            for a in node.names:
                candidate = f"{base}.{a.name}"
                out.add(candidate if candidate in MODULES else base)
    return {m for m in out if m in MODULES and m != name}


MODULES = {_module_name(p) for p in FILES}


def test_no_import_cycle() -> None:
    graph = {_module_name(p): _imports(p) for p in FILES}
    # a package's __init__ re-exporting its submodules is not a cycle with them
    for mod, deps in graph.items():
        graph[mod] = {d for d in deps if not mod.startswith(d + ".")}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(mod: str, stack: list[str]) -> None:
        state[mod] = 1
        for dep in sorted(graph[mod]):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[mod] = 2

    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [mod])
    assert cycles == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_cpython_api(path: Path) -> None:
    stdlib = set(sys.stdlib_module_names)
    tree = _tree(path)
    imported = {
        (a.asname or a.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for a in node.names
        if a.name.split(".")[0] in stdlib
    }
    private = [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in imported
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
    ]
    private += [
        f"from {node.module} import {a.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in stdlib
        for a in node.names
        if a.name.startswith("_") and a.name != "__future__"
    ]
    allowed = {"os._exit"}  # documented, public: exit without cleanup handlers
    assert [p for p in private if p not in allowed] == []
