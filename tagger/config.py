"""Configuration: flags > ``TAGGER_*`` environment > ``[tool.tagger]`` in pyproject.toml
or ``.tagger.toml`` > defaults.

The file is looked for in the directory tagger runs in (``-C``), then at the root of
its git work tree; the first ``.tagger.toml``, or ``pyproject.toml`` with a
``[tool.tagger]`` table, wins. Keys are spelt as the flags: ``image`` (a string or a
list), ``source``, ``tag-prefix``, ``sha-prefix``, ``sha-length``, ``latest``,
``major-zero``, ``untracked-dirty``, ``require-revision``, ``insecure-registry`` (a
string or a list), ``retries``, ``timeout`` and ``deadline`` (seconds).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError, GitError
from .policy import LatestPolicy

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Config:
    images: tuple[str, ...] = ()
    source: str | None = None
    tag_prefix: str = "v"
    sha_prefix: str = "sha-"
    sha_length: int = 7
    latest: LatestPolicy = LatestPolicy()
    major_zero: bool = False
    untracked_dirty: bool = False
    require_revision: bool = False  # refuse images without a revision label
    insecure_registries: frozenset[str] = frozenset()
    retries: int = 4  # per request, on connection errors, timeouts, 408/429/5xx
    timeout: float = 30.0  # seconds per request
    deadline: float = 600.0  # seconds for the whole run
    file: str | None = None  # where the file settings came from, for messages
    # the fields whose value came from that file (not overridden by the environment or a
    # flag): a pull request can edit them, so on one they are trusted less (session.py)
    from_file: frozenset[str] = frozenset()


_KEYS = {
    "image": "images",
    "images": "images",
    "source": "source",
    "tag-prefix": "tag_prefix",
    "sha-prefix": "sha_prefix",
    "sha-length": "sha_length",
    "latest": "latest",
    "major-zero": "major_zero",
    "untracked-dirty": "untracked_dirty",
    "require-revision": "require_revision",
    "insecure-registry": "insecure_registries",
    "insecure-registries": "insecure_registries",
    "retries": "retries",
    "timeout": "timeout",
    "deadline": "deadline",
}
_ENV = {
    "TAGGER_IMAGE": "images",
    "TAGGER_SOURCE": "source",
    "TAGGER_TAG_PREFIX": "tag_prefix",
    "TAGGER_SHA_PREFIX": "sha_prefix",
    "TAGGER_SHA_LENGTH": "sha_length",
    "TAGGER_LATEST": "latest",
    "TAGGER_MAJOR_ZERO": "major_zero",
    "TAGGER_UNTRACKED_DIRTY": "untracked_dirty",
    "TAGGER_REQUIRE_REVISION": "require_revision",
    "TAGGER_INSECURE_REGISTRY": "insecure_registries",
    "TAGGER_RETRIES": "retries",
    "TAGGER_TIMEOUT": "timeout",
    "TAGGER_DEADLINE": "deadline",
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _split(value: str) -> list[str]:
    return [p.strip() for p in value.replace("\n", ",").split(",") if p.strip()]


_EXPECTED = {
    "images": "a repository name or a list of them",
    "insecure_registries": "a HOST[:PORT] or a list of them",
    "sha_length": "a whole number from 4 to 40",
    "retries": "a whole number from 0 to 20",
    "timeout": "a number of seconds above 0 (and below a day)",
    "deadline": "a number of seconds above 0 (and below a day)",
    "major_zero": "true or false",
    "untracked_dirty": "true or false",
    "require_revision": "true or false",
    "latest": "highest, never, always or branch:NAME",
}


def _coerce(name: str, value: Any, where: str, hint: str) -> Any:
    """Turn a file or environment value into the field's type, or say what the setting
    expects (never Python's words about the value)."""
    try:
        return _convert(name, value)
    except (TypeError, ValueError):
        expected = _EXPECTED.get(name, "a string")
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise ConfigError(f"{where}: expected {expected}, got {shown}", hint) from None


def _convert(name: str, value: Any) -> Any:
    """The value as the field's type; TypeError or ValueError when it is not one."""
    if name in ("images", "insecure_registries"):
        if isinstance(value, str):
            items = _split(value)
        elif isinstance(value, (list, tuple)) and all(isinstance(i, str) for i in value):
            items = [i.strip() for i in value if i.strip()]
        else:
            raise TypeError(name)
        return tuple(items) if name == "images" else frozenset(items)
    if name in ("sha_length", "retries"):
        low, high = (4, 40) if name == "sha_length" else (0, 20)
        if isinstance(value, bool) or not isinstance(value, (int, str)):  # no 7.5 -> 7
            raise TypeError(name)
        n = int(value)
        if not low <= n <= high:
            raise ValueError(name)
        return n
    if name in ("timeout", "deadline"):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise TypeError(name)
        x = float(value)
        if not 0 < x < 86400:  # also refuses nan
            raise ValueError(name)
        return x
    if name in ("major_zero", "untracked_dirty", "require_revision"):
        if isinstance(value, bool):
            return value
        text = value.strip().lower() if isinstance(value, str) else None
        if text not in _TRUE | _FALSE:
            raise ValueError(name)
        return text in _TRUE
    if name == "latest":
        if not isinstance(value, str):
            raise TypeError(name)
        return LatestPolicy.parse(value)
    if not isinstance(value, str):
        raise TypeError(name)
    return value


def find_file(start: Path, root: Path | None) -> tuple[Path, dict[str, Any]] | None:
    for d in dict.fromkeys([start, *([root] if root else [])]):
        for name in (".tagger.toml", "pyproject.toml"):
            f = d / name
            if not f.is_file():
                continue
            try:
                data = tomllib.loads(f.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
                raise ConfigError(f"cannot read {f}: {e}", "fix the file's TOML syntax") from e
            if name == ".tagger.toml":
                table = data.get("tool", {}).get("tagger", data)
                return f, table
            if "tagger" in data.get("tool", {}):
                return f, data["tool"]["tagger"]
    return None


def load(
    start: Path,
    root: Path | None,
    env: Mapping[str, str],
    flags: Mapping[str, Any],
) -> Config:
    """Merge defaults, the file, the environment and flags (``None`` flags are unset)."""
    values: dict[str, Any] = {}
    cfg = Config()
    outside: set[str] = set()  # fields set by the environment or a flag
    found = find_file(start, root)
    if found:
        path, table = found
        for key, value in table.items():
            name = _KEYS.get(key)
            if name == "insecure_registries":
                raise ConfigError(
                    f"{path}: insecure-registry is not taken from a repository file"
                    " (a pull request can edit it, and it turns off TLS checks)",
                    "pass --insecure-registry HOST[:PORT] or set TAGGER_INSECURE_REGISTRY",
                )
            if name is None:
                raise ConfigError(
                    f"{path}: unknown setting {key!r}",
                    "known settings: " + ", ".join(sorted(k for k in _KEYS if k[-1] != "s")),
                )
            hint = f"fix {key} in {path}"
            values[name] = _anchor(name, _coerce(name, value, f"{path}: {key}", hint), path.parent)
        values["file"] = str(path)
    for var, name in _ENV.items():
        # an empty variable is unset (CI templates pass empty inputs), except for the
        # prefixes, where empty is a real choice: tags like 1.2.3 with no prefix
        if var in env and (env[var] != "" or name in ("tag_prefix", "sha_prefix")):
            hint = f"fix or unset {var}"
            values[name] = _anchor(name, _coerce(name, env[var], var, hint), start)
            outside.add(name)
    known = {f.name for f in fields(Config)}
    for name, value in flags.items():
        if value is None or value == ():
            continue
        assert name in known, name
        flag = {"images": "--image", "insecure_registries": "--insecure-registry"}.get(
            name, f"--{name.replace('_', '-')}"
        )
        hint = f"pass {flag} a valid value"
        values[name] = _anchor(name, _coerce(name, value, flag, hint), start)
        outside.add(name)
    from_file = frozenset(values) - outside - {"file"}
    return replace(cfg, **values, from_file=from_file)


def load_at(path: str, env: Mapping[str, str], flags: Mapping[str, Any]) -> Config:
    """The configuration for a run started in ``path`` (``-C``): its file is looked
    for there, then at the root of its git work tree."""
    start = Path(path)
    if not start.is_dir():
        raise GitError(f"{path}: no such directory", "pass -C with an existing path")
    here = start.resolve()
    root = next((d for d in [here, *here.parents] if (d / ".git").exists()), None)
    return load(start, root, env, flags)


def _anchor(name: str, value: Any, base: Path) -> Any:
    """A relative path in ``oci:DIR`` or ``docker-archive:FILE`` is relative to where it
    was written: the configuration file's directory, or the ``-C`` directory for flags
    and the environment (``-C`` runs tagger as if started there)."""
    if name != "source" or not isinstance(value, str):
        return value
    transport, sep, rest = value.partition(":")
    if transport in ("oci", "docker-archive") and sep and rest and not rest.startswith("/"):
        return f"{transport}:{base / rest}"
    return value
