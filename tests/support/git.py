"""Git repositories in a temporary directory, committed to with a fixed identity and no
user or system git configuration."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

# what the clean_env fixture removes: a test sees no CI hints from the machine running it
CI_VARS = (
    "GITHUB_REF",
    "GITHUB_SHA",
    "GITHUB_ACTIONS",
    "CI_COMMIT_TAG",
    "CI_COMMIT_SHA",
    "CI_COMMIT_BRANCH",
    "GITHUB_REPOSITORY",
    "GITHUB_SERVER_URL",
    "CI_PROJECT_URL",
    "SOURCE_DATE_EPOCH",
)

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.commit("initial")

    def git(self, *args: str) -> str:
        env = {**os.environ, **GIT_ENV}
        out = subprocess.run(
            ["git", *args], cwd=self.path, env=env, check=True, capture_output=True, text=True
        )
        return out.stdout.strip()

    def commit(self, message: str = "change") -> str:
        f = self.path / "file.txt"
        f.write_text(f"{message}\n{f.read_text() if f.exists() else ''}")
        self.git("add", "file.txt")
        self.git("commit", "-q", "-m", message)
        return self.head

    def tag(self, name: str) -> None:
        self.git("tag", name)

    @property
    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    @property
    def sha_tag(self) -> str:
        return "sha-" + self.head[:7]
