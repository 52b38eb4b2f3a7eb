"""One exception tree for tagger; only the entry point turns it into an exit code.

Every error carries a message of one or two lines that says what happened and what to
do next. Messages never contain a secret: the registry client builds them from the
request's method, host and path only, never from headers, and whatever a message or
hint is set to passes through ``redact`` (a password, token or auth header that slipped
in is masked) and ``printable`` (a registry's message cannot add lines, workflow
commands or terminal escapes: control characters are escaped).
"""

from __future__ import annotations

from typing import Any

from .redact import printable, redact


class TaggerError(Exception):
    """Root of every error tagger reports; ``exit_code`` is what the process exits with."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(printable(redact(message)))
        self.message = message
        self.hint = hint
        self.result: Any = None  # the release report so far, when there is one

    @property
    def message(self) -> str:
        return self._message

    @message.setter
    def message(self, text: str) -> None:
        self._message = printable(redact(text))

    @property
    def hint(self) -> str | None:
        return self._hint

    @hint.setter
    def hint(self, text: str | None) -> None:
        self._hint = None if text is None else printable(redact(text))

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class UsageError(TaggerError):
    """Bad flags, configuration or references (exit 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration file or TAGGER_* variable that cannot be used (exit 2)."""


class PolicyRefusal(TaggerError):
    """Refused by the tag policy: dirty tree, immutable tag conflict, missing source,
    source built from another commit (exit 3)."""

    exit_code = 3


class RegistryError(TaggerError):
    """A registry or network error after retries (exit 4)."""

    exit_code = 4

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.status = status
        self.code = code


class AuthError(RegistryError):
    """Authentication or authorization failed, or credentials could not be read (a
    credential helper missing or failing): exit 4, like every registry error."""


class NotFound(RegistryError):
    """The registry answered 404 for a manifest or blob."""


class RegistryUnreachable(RegistryError):
    """No connection could be made to the registry (refused, DNS, timeout)."""


class DeadlineExceeded(RegistryError):
    """The run's deadline passed before the work was done (exit 4)."""


class GitError(TaggerError):
    """Not a repository, no commits, or git failed (exit 5)."""

    exit_code = 5


STOPPED_HINT = "what is written is consistent; run the same command again to finish"


class Interrupted(TaggerError):
    """Stopped by SIGINT (130) or SIGTERM (143) at a safe point."""

    def __init__(self, signum: int, message: str, hint: str | None = STOPPED_HINT) -> None:
        super().__init__(message, hint)
        self.signum = signum
        self.exit_code = 128 + signum
