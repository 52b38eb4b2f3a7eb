"""The distribution as PyPI gets it: built from a clean clone of this repository's HEAD
(the version comes from its git tags), installed into a new virtual environment, and
its console script run from there.

Offline: the build runs without isolation (setuptools and setuptools-scm come from the
test extra), and the new environment sees this one's site-packages through a .pth file
for the dependencies, so only the wheel itself is installed into it (--no-deps).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from support.git import GIT_ENV
from support.registry import REQUIRE

ROOT = Path(__file__).resolve().parent.parent
DIST = "oci-tagger"  # the PyPI name; import package and command: tagger
# what the built distribution may contain besides tagger/: its own metadata directory
METADATA_DIR = re.compile(r"oci_tagger-[^/]+\.dist-info/")


def clean_env() -> dict[str, str]:
    """This environment minus what would change the build or the imports: a pretended
    version, PYTHONPATH (it could put this checkout's tagger before the wheel's)."""
    drop = ("SETUPTOOLS_SCM_", "VCS_VERSIONING_", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(drop)},
        **GIT_ENV,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


def run(*args: str | Path, cwd: Path) -> str:
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=clean_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(autouse=True)
def build_tools() -> None:
    """What an offline build needs here, from the test extra."""
    missing = [m for m in ("build", "setuptools_scm") if importlib.util.find_spec(m) is None]
    try:  # pyproject.toml's build requirement (an SPDX license string)
        have = importlib.metadata.version("setuptools")
        if int(have.split(".")[0]) < 77:
            missing.append(f"setuptools>=77 (this is {have})")
    except importlib.metadata.PackageNotFoundError:
        missing.append("setuptools")
    if missing:
        msg = f"not installed: {', '.join(missing)}; pip install -e '.[test]' (scripts/test does)"
        if REQUIRE:
            pytest.fail(msg + " and TAGGER_REQUIRE_INTEGRATION=1 forbids skipping")
        pytest.skip(msg)


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A clone of HEAD (what is committed: a build never sees uncommitted changes)
    with no tags at all, whatever tags this repository has."""
    try:
        run("git", "-C", ROOT, "rev-parse", "HEAD", cwd=tmp_path)
    except AssertionError:
        pytest.skip("not a git checkout: nothing to clone")
    dest = tmp_path / "clone"
    run("git", "clone", "-q", "--no-tags", f"file://{ROOT}", dest, cwd=tmp_path)
    assert run("git", "tag", cwd=dest) == ""
    return dest


def build(source: Path, out: Path) -> Path:
    """`python -m build` as the release workflow runs it (an sdist, then the wheel from
    that sdist), without isolation; returns the wheel."""
    run(sys.executable, "-m", "build", "-q", "--no-isolation", "-o", out, source, cwd=out.parent)
    (wheel,) = out.glob("*.whl")
    return wheel


def install(wheel: Path, venv: Path) -> Path:
    """A new virtual environment with only the wheel installed in it; returns its bin/."""
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=venv.parent)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(run(python, "-c", purelib, cwd=venv.parent).strip())
    here = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "this-environment.pth").write_text("".join(f"{p}\n" for p in sorted(here)))
    pip: list[str | Path] = [sys.executable, "-m", "pip", "--python", python, "install", "-q"]
    run(*pip, "--no-deps", "--no-index", "--no-build-isolation", wheel, cwd=venv.parent)
    return venv / "bin"


def check_contents(wheel: Path, version: str) -> None:
    assert wheel.name == f"oci_tagger-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(f"oci_tagger-{version}.dist-info/METADATA").decode()
        entry_points = z.read(f"oci_tagger-{version}.dist-info/entry_points.txt").decode()
    stray = [n for n in names if not (n.startswith("tagger/") or METADATA_DIR.match(n))]
    assert stray == [], "only tagger/ ships (no tests/, bench/, examples/)"
    assert not [n for n in names if n.startswith(("tests/", "bench/"))]
    # every package of the source tree ships, the subpackages added later too
    packages = {
        p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "tagger").rglob("__init__.py")
    }
    assert packages <= {n.rsplit("/", 1)[0] for n in names if n.endswith("/__init__.py")}
    assert f"Name: {DIST}\n" in meta
    assert f"Version: {version}\n" in meta
    runtime = [r for r in re.findall(r"^Requires-Dist: (.*)$", meta, re.M) if "extra ==" not in r]
    assert "click" in str(runtime)
    assert "setuptools" not in str(runtime), "setuptools-scm is a build requirement only"
    assert "tagger = tagger.__main__:run" in entry_points


def test_wheel_from_a_tagged_clone_is_that_release(clone: Path, tmp_path: Path) -> None:
    run("git", "tag", "v9.8.7", cwd=clone)
    run("git", "tag", "v9", cwd=clone)  # the action's major tag: never read as a version
    wheel = build(clone, tmp_path / "dist")
    assert (tmp_path / "dist" / "oci_tagger-9.8.7.tar.gz").is_file()
    check_contents(wheel, "9.8.7")

    bindir = install(wheel, tmp_path / "venv")
    assert run(bindir / "tagger", "--version", cwd=tmp_path) == "tagger, version 9.8.7\n"
    which = "import tagger; print(tagger.__file__, tagger.__version__)"
    where = run(bindir / "python", "-c", which, cwd=tmp_path)
    assert where.startswith(str(tmp_path / "venv")), "the wheel's tagger, not this checkout's"
    assert where.split()[1] == "9.8.7"
    plan = json.loads(run(bindir / "tagger", "-C", clone, "plan", "--json", cwd=tmp_path))
    assert plan["version"] == "9.8.7"


def test_wheel_from_an_untagged_clone_is_a_development_version(clone: Path, tmp_path: Path) -> None:
    head = run("git", "rev-parse", "HEAD", cwd=clone).strip()
    wheel = build(clone, tmp_path / "dist")
    version = wheel.name.split("-")[1]
    # X.Y.devN+gSHA: a pre-release to pip, and PyPI refuses a local version (+...)
    match = re.fullmatch(r"\d+(\.\d+)*\.dev\d+\+g([0-9a-f]{7,})", version)
    assert match, version
    assert head.startswith(match[2])
    check_contents(wheel, version)

    bindir = install(wheel, tmp_path / "venv")
    assert run(bindir / "tagger", "--version", cwd=tmp_path) == f"tagger, version {version}\n"


def _archive_build(clone: Path, tmp_path: Path) -> str:
    """The version pip builds from ``git archive HEAD`` of ``clone``, unpacked: a tree
    without .git, as GitHub's archive of a ref is (how a workflow's `uses:` fetches the
    action; the archive fills in .git_archival.txt)."""
    archive = tmp_path / "tree.tar"
    run("git", "archive", "-o", archive, "HEAD", cwd=clone)
    tree = tmp_path / "tree"
    tree.mkdir()
    run("tar", "-xf", archive, "-C", tree, cwd=tmp_path)
    out = tmp_path / "dist"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    run(*pip_wheel, "-w", out, tree, cwd=tmp_path)
    (wheel,) = out.glob("*.whl")
    return wheel.name.split("-")[1]


def test_an_archive_of_a_release_tag_is_that_release(clone: Path, tmp_path: Path) -> None:
    run("git", "tag", "v9.8.7", cwd=clone)
    run("git", "tag", "v9", cwd=clone)  # the action's major tag: never read as a version
    assert _archive_build(clone, tmp_path) == "9.8.7"


def test_an_archive_after_a_release_is_a_development_version(clone: Path, tmp_path: Path) -> None:
    run("git", "tag", "v9.8.7", cwd=clone)
    run("git", "commit", "-q", "--allow-empty", "-m", "after the release", cwd=clone)
    head = run("git", "rev-parse", "HEAD", cwd=clone).strip()
    version = _archive_build(clone, tmp_path)
    match = re.fullmatch(r"9\.8\.8\.dev1\+g([0-9a-f]{7,})", version)
    assert match, version
    assert head.startswith(match[1])


def test_a_tree_without_git_or_tags_still_builds(clone: Path, tmp_path: Path) -> None:
    """No release tag to describe (or a copy of the tree, not an archive): the fallback
    version, a development one, never one that reads as a release."""
    assert _archive_build(clone, tmp_path) == "0.0.dev0"
