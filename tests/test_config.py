"""Configuration precedence: flags > TAGGER_* > .tagger.toml / [tool.tagger] > defaults,
read from real files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tagger.config import Config, load
from tagger.errors import ConfigError
from tagger.policy import LatestPolicy


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_without_file_env_or_flags(tmp_path: Path) -> None:
    cfg = load(tmp_path, tmp_path, {}, {})
    assert cfg == Config()
    assert (cfg.tag_prefix, cfg.sha_prefix, cfg.sha_length) == ("v", "sha-", 7)
    assert cfg.latest == LatestPolicy("highest")
    assert (cfg.images, cfg.major_zero, cfg.untracked_dirty, cfg.file) == ((), False, False, None)


def test_tagger_toml_settings(tmp_path: Path) -> None:
    f = write(
        tmp_path / ".tagger.toml",
        """
image = ["ghcr.io/acme/api", "127.0.0.1:5000/api"]
source = "docker-daemon:api:dev"
tag-prefix = "api/v"
sha-prefix = "git-"
sha-length = 10
latest = "branch:main"
major-zero = true
untracked-dirty = true
""",
    )
    cfg = load(tmp_path, None, {}, {})
    assert cfg == Config(
        images=("ghcr.io/acme/api", "127.0.0.1:5000/api"),
        source="docker-daemon:api:dev",
        tag_prefix="api/v",
        sha_prefix="git-",
        sha_length=10,
        latest=LatestPolicy("branch", "main"),
        major_zero=True,
        untracked_dirty=True,
        file=str(f),
        from_file=frozenset(
            {"images", "source", "tag_prefix", "sha_prefix", "sha_length", "latest"}
            | {"major_zero", "untracked_dirty"}
        ),
    )


def test_pyproject_tool_tagger_table(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n\n[tool.tagger]\nsha-length = 9\n')
    cfg = load(tmp_path, None, {}, {})
    assert cfg.sha_length == 9
    assert cfg.file == str(tmp_path / "pyproject.toml")


def test_file_at_the_work_tree_root_is_found_from_a_subdirectory(tmp_path: Path) -> None:
    sub = tmp_path / "services" / "api"
    write(sub / "pyproject.toml", '[project]\nname = "api"\n')  # no [tool.tagger]: skipped
    write(tmp_path / ".tagger.toml", 'tag-prefix = "api/v"\n')
    assert load(sub, tmp_path, {}, {}).tag_prefix == "api/v"


def test_file_in_the_start_directory_beats_the_root(tmp_path: Path) -> None:
    sub = tmp_path / "api"
    write(sub / ".tagger.toml", 'tag-prefix = "api/v"\n')
    write(tmp_path / ".tagger.toml", 'tag-prefix = "root/v"\n')
    assert load(sub, tmp_path, {}, {}).tag_prefix == "api/v"


def test_tagger_toml_beats_pyproject_in_the_same_directory(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.tagger]\nsha-length = 9\n")
    write(tmp_path / ".tagger.toml", "[tool.tagger]\nsha-length = 11\n")
    assert load(tmp_path, None, {}, {}).sha_length == 11


def test_precedence_flags_over_env_over_file_over_defaults(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        """[tool.tagger]
tag-prefix = "file/v"
sha-length = 8
latest = "never"
image = "file.example/app"
""",
    )
    env = {
        "TAGGER_SHA_LENGTH": "12",
        "TAGGER_LATEST": "always",
        "TAGGER_IMAGE": "env.example/a, env.example/b",
        "TAGGER_MAJOR_ZERO": "yes",
    }
    flags: dict[str, Any] = {
        "latest": "branch:main",
        "images": ("flag.example/app",),
        "sha_length": None,  # an unset flag does not hide the environment
        "tag_prefix": None,
    }
    cfg = load(tmp_path, None, env, flags)
    assert cfg.latest == LatestPolicy("branch", "main")  # flag
    assert cfg.images == ("flag.example/app",)  # flag
    assert cfg.sha_length == 12  # env
    assert cfg.major_zero is True  # env
    assert cfg.tag_prefix == "file/v"  # file
    assert cfg.sha_prefix == "sha-"  # default
    assert load(tmp_path, None, env, {}).images == ("env.example/a", "env.example/b")


@pytest.mark.parametrize(
    ("var", "value", "field", "expected"),
    [
        ("TAGGER_TAG_PREFIX", "api/v", "tag_prefix", "api/v"),
        ("TAGGER_SHA_PREFIX", "git-", "sha_prefix", "git-"),
        ("TAGGER_SOURCE", "oci:/tmp/layout", "source", "oci:/tmp/layout"),
        ("TAGGER_UNTRACKED_DIRTY", "true", "untracked_dirty", True),
        ("TAGGER_MAJOR_ZERO", "0", "major_zero", False),
        (
            "TAGGER_INSECURE_REGISTRY",
            "a.lan,b.lan:5000",
            "insecure_registries",
            frozenset({"a.lan", "b.lan:5000"}),
        ),
    ],
)
def test_each_environment_variable(
    tmp_path: Path, var: str, value: str, field: str, expected: object
) -> None:
    assert getattr(load(tmp_path, None, {var: value}, {}), field) == expected


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("sha-length = 3", "sha-length"),
        ("sha-length = 41", "sha-length"),
        ('sha-length = "seven"', "sha-length"),
        ("sha-length = 7.5", "sha-length"),
        ("sha-length = true", "sha-length"),
        ('latest = "sometimes"', "latest"),
        ('major-zero = "maybe"', "major-zero"),
        ("tag-prefix = 5", "tag-prefix"),
        ("image = 5", "image"),
        ("image = [1, 2]", "image"),
    ],
)
def test_bad_file_values_name_the_key(tmp_path: Path, toml: str, key: str) -> None:
    f = write(tmp_path / ".tagger.toml", toml + "\n")
    with pytest.raises(ConfigError) as e:
        load(tmp_path, None, {}, {})
    assert e.value.exit_code == 2
    assert f"{f}: {key}" in str(e.value)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("TAGGER_SHA_LENGTH", "abc"),
        ("TAGGER_SHA_LENGTH", "2"),
        ("TAGGER_LATEST", "branch:"),
        ("TAGGER_MAJOR_ZERO", "maybe"),
    ],
)
def test_bad_environment_values_name_the_variable(tmp_path: Path, var: str, value: str) -> None:
    with pytest.raises(ConfigError) as e:
        load(tmp_path, None, {var: value}, {})
    assert e.value.exit_code == 2
    assert var in str(e.value)


def test_bad_flag_value_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--sha-length") as e:
        load(tmp_path, None, {}, {"sha_length": 99})
    assert e.value.exit_code == 2


def test_flag_overrides_a_bad_environment_value_only_after_checking_it(tmp_path: Path) -> None:
    # a broken TAGGER_* variable is reported even when a flag would win
    with pytest.raises(ConfigError, match="TAGGER_LATEST"):
        load(tmp_path, None, {"TAGGER_LATEST": "sometimes"}, {"latest": "never"})


@pytest.mark.parametrize("where", [".tagger.toml", "pyproject.toml"])
def test_unknown_key_is_refused(tmp_path: Path, where: str) -> None:
    prefix = "[tool.tagger]\n" if where == "pyproject.toml" else ""
    write(tmp_path / where, prefix + 'sha_len = 8\ntag-prefix = "v"\n')
    with pytest.raises(ConfigError, match="unknown setting 'sha_len'") as e:
        load(tmp_path, None, {}, {})
    assert e.value.exit_code == 2
    assert "sha-length" in str(e.value)  # the hint lists the known settings


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    f = write(tmp_path / ".tagger.toml", "tag-prefix = \n")
    with pytest.raises(ConfigError) as e:
        load(tmp_path, None, {}, {})
    assert e.value.exit_code == 2
    assert str(f) in str(e.value)


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        ("image = 5", "image: expected a repository name or a list of them, got 5"),
        ('image = ["a", 3]', "image: expected a repository name or a list of them"),
        ('sha-length = "abc"', "sha-length: expected a whole number from 4 to 40, got 'abc'"),
        ('timeout = "fast"', "timeout: expected a number of seconds above 0"),
        ("deadline = [1]", "deadline: expected a number of seconds above 0"),
        ('retries = "many"', "retries: expected a whole number from 0 to 20"),
        ("latest = 5", "latest: expected highest, never, always or branch:NAME, got 5"),
        ("major-zero = 3", "major-zero: expected true or false, got 3"),
        ("source = 1", "source: expected a string, got 1"),
    ],
)
def test_wrong_types_say_what_the_key_expects(tmp_path: Path, toml: str, says: str) -> None:
    f = write(tmp_path / ".tagger.toml", toml + "\n")
    with pytest.raises(ConfigError) as e:
        load(tmp_path, None, {}, {})
    assert f"{f}: {says}" in e.value.message
    for python_words in ("object is not", "invalid literal", "could not convert", "iterable"):
        assert python_words not in str(e.value)
    assert e.value.hint == f"fix {toml.split()[0]} in {f}"


def test_hints_fit_where_the_value_came_from(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load(tmp_path, None, {}, {"latest": "sometimes"})
    assert e.value.message.startswith("--latest: expected highest, never, always or branch")
    assert e.value.hint is not None and "flag" not in e.value.hint.replace("--latest", "")
    assert "override" not in e.value.hint
    with pytest.raises(ConfigError) as e:
        load(tmp_path, None, {"TAGGER_TIMEOUT": "fast"}, {})
    assert e.value.hint == "fix or unset TAGGER_TIMEOUT"


@pytest.mark.parametrize("key", ["insecure-registry", "insecure-registries"])
def test_insecure_registry_is_never_taken_from_a_repository_file(tmp_path: Path, key: str) -> None:
    """A pull request can edit the file: it must not downgrade a registry to HTTP."""
    write(tmp_path / ".tagger.toml", f'{key} = "registry.lan:5000"\n')
    with pytest.raises(ConfigError, match="not taken from a repository file") as e:
        load(tmp_path, None, {}, {})
    assert e.value.exit_code == 2
