"""Where registry credentials come from: the way ``docker login`` users expect.

For a registry that hosts a target image (``--image``) the first match wins:

1. ``--username USER`` with ``--password-stdin`` (the password is read from stdin;
   never from a flag value);
2. ``TAGGER_USERNAME`` / ``TAGGER_PASSWORD``;
3. the Docker config: ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``:
   ``credHelpers`` / ``credsStore`` (a ``docker-credential-NAME`` program, run with the
   ``get`` protocol), then ``auths`` (``auth``: base64 ``user:password``;
   ``identitytoken``: an OAuth2 refresh token).

Any other registry (a ``--source`` on another host) gets the Docker config only: the
credentials a pipeline passes for its target are never sent to another registry's
auth server.

On a pull request (GitHub Actions) a registry named only by a repository file (an
``image`` or ``source`` in ``.tagger.toml`` / ``pyproject.toml``, which the pull request
can edit) gets no credentials at all: the resolver is given the registries the caller
named (flags, environment) and answers None for any other, saying so on stderr once.

The Docker config is parsed and matched by the docker SDK's ``docker.auth`` (no daemon
involved; imported only when a registry asks for credentials), so keys are matched as
docker does (``https://index.docker.io/v1/`` is Docker Hub, a URL key matches its
host). Credential helpers are run here rather than through the SDK's ``Store``, so their
output (and error text) is captured and never printed unfiltered, and so the different
key spellings helpers answer with are normalised. Every secret read is registered with
``redact`` before it is used.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from . import redact
from .errors import AuthError, ConfigError, UsageError
from .reference import DOCKER_HUB_API, parse_reference

log = logging.getLogger("tagger.credentials")

HUB_KEY = "docker.io"  # docker.auth's name for Docker Hub
HUB_SERVER = "https://index.docker.io/v1/"  # what docker asks helpers for
HELPER_PREFIX = "docker-credential-"
HELPER_TIMEOUT = 60.0
HELPER_NAME = re.compile(r"[A-Za-z0-9._-]+")  # a program name, never a path
TOKEN_USERNAME = "<token>"  # a helper's way of saying "Secret is an identity token"


@dataclass(frozen=True)
class Credentials:
    """What a registry login needs; ``identity_token`` is an OAuth2 refresh token."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)
    source: str = ""  # where they came from, for messages (never the secret itself)
    withheld: bool = False  # none are sent on purpose (a pull request, session.py)

    @property
    def anonymous(self) -> bool:
        """Nothing to log in with (withheld, or an entry with nothing in it)."""
        return not (self.username or self.password or self.identity_token)


CredentialLookup = Callable[[str], "Credentials | None"]


def make(
    username: str | None,
    password: str | None = None,
    identity_token: str | None = None,
    *,
    source: str,
) -> Credentials:
    """Credentials, with every secret registered for redaction first."""
    redact.register(password, username)
    redact.register(identity_token, username)
    return Credentials(username or None, password or None, identity_token or None, source)


def explicit(
    username: str | None, password_stdin: bool, stdin: TextIO, env: Mapping[str, str]
) -> Credentials | None:
    """Credentials from ``--username`` + ``--password-stdin``, else from
    ``TAGGER_USERNAME`` / ``TAGGER_PASSWORD`` (empty counts as unset), else None."""
    if password_stdin:
        if not username:
            raise UsageError(
                "--password-stdin needs --username USER",
                'pipe the password or token: echo "$TOKEN" | tagger … --username USER'
                " --password-stdin",
            )
        password = stdin.read()
        password = password.removesuffix("\n").removesuffix("\r")  # as docker login does
        if not password:
            raise UsageError(
                "--password-stdin read an empty password from stdin",
                'pipe the password or token: echo "$TOKEN" | tagger … --password-stdin',
            )
        return make(username, password, source="--username / --password-stdin")
    if username:
        raise UsageError(
            "--username needs --password-stdin: a password is never taken from a flag value",
            'pipe it: echo "$TOKEN" | tagger … --username USER --password-stdin,'
            " or set TAGGER_USERNAME / TAGGER_PASSWORD",
        )
    env_user = env.get("TAGGER_USERNAME") or None
    env_password = env.get("TAGGER_PASSWORD") or None
    if env_user and env_password:
        return make(env_user, env_password, source="TAGGER_USERNAME / TAGGER_PASSWORD")
    if env_user or env_password:
        have, missing = ("TAGGER_USERNAME", "TAGGER_PASSWORD")[:: 1 if env_user else -1]
        raise ConfigError(
            f"{have} is set but {missing} is not", "set both, or neither to use the Docker config"
        )
    return None


def docker_config_path(env: Mapping[str, str]) -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"]) / "config.json"
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".docker" / "config.json"


def _normalise(entry: Mapping[str, Any] | None, source: str) -> Credentials | None:
    """Credentials from a helper's answer or a docker.auth entry, whatever the spelling:
    ``Username``/``username``, ``Secret``/``Password``/``password``,
    ``IdentityToken``/``identitytoken``; a username ``<token>`` marks an identity token."""
    if not entry:
        return None
    keys = {str(k).lower().replace("_", ""): v for k, v in entry.items()}

    def text(*names: str) -> str | None:
        for n in names:
            v = keys.get(n)
            if isinstance(v, str) and v:
                return v
        return None

    username = text("username", "user")
    secret = text("secret", "password")
    token = text("identitytoken")
    if username == TOKEN_USERNAME:
        username, token, secret = None, token or secret, None
    if token:
        return make(username, identity_token=token, source=source)
    if username and secret:
        return make(username, secret, source=source)
    return None


def run_helper(
    name: str, server: str, env: Mapping[str, str], *, where: str
) -> Mapping[str, Any] | None:
    """``docker-credential-NAME get`` with the server on stdin: its JSON answer, or None
    when it has no credentials for the server. ``where`` says what named the helper."""
    program = HELPER_PREFIX + name
    if not HELPER_NAME.fullmatch(name) or name in (".", ".."):
        raise AuthError(
            f"credential helper name {name!r} is not a program name",
            f"{where} names it: a helper is docker-credential-NAME on PATH, NAME made of"
            " letters, digits, '.', '_' and '-'; fix the entry",
        )
    # on PATH only: its absolute directories (an empty or relative entry is the cwd)
    path = os.pathsep.join(
        d for d in (env.get("PATH") or "").split(os.pathsep) if d and os.path.isabs(d)
    )
    exe = shutil.which(program, path=path)
    if exe is None:
        raise AuthError(
            f"credential helper {program} is not installed or not on PATH",
            f"{where} names it: install {program}, remove that entry, or set TAGGER_USERNAME"
            " / TAGGER_PASSWORD",
        )
    try:
        proc = subprocess.run(
            [exe, "get"],
            input=server.encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT,
            env=_child_env(env),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        reason = "timed out" if isinstance(e, subprocess.TimeoutExpired) else e.strerror
        raise AuthError(
            f"credential helper {program} could not run for {server}: {reason}",
            f"check the helper ({where} names it), or set TAGGER_USERNAME / TAGGER_PASSWORD",
        ) from None
    out = proc.stdout.decode(errors="replace").strip()
    if proc.returncode != 0:
        said = (out or proc.stderr.decode(errors="replace").strip()).splitlines()
        first = said[0][:200] if said else f"exit status {proc.returncode}"
        if "credentials not found" in first.lower():
            return None
        raise AuthError(
            f"credential helper {program} failed for {server}: {first}",
            f"log in again with the helper (docker login), fix it ({where} names it),"
            " or set TAGGER_USERNAME / TAGGER_PASSWORD",
        )
    try:
        answer = json.loads(out)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise AuthError(
            f"credential helper {program} answered something other than credentials for {server}",
            f"check the helper ({where} names it), or set TAGGER_USERNAME / TAGGER_PASSWORD",
        )
    return answer


def _child_env(env: Mapping[str, str]) -> dict[str, str]:
    """The helper's environment: ours without TAGGER_PASSWORD or any other secret."""
    hidden = set(redact.secret_variables(env))
    return {k: v for k, v in env.items() if k not in hidden}


def from_docker_config(registry: str, env: Mapping[str, str]) -> Credentials | None:
    """The Docker config's credentials for ``registry`` (host[:port] as tagger reaches it;
    Docker Hub is ``registry-1.docker.io``), or None."""
    path = docker_config_path(env)
    if not path.exists():
        return None
    if not path.is_file():
        raise ConfigError(
            f"the Docker config {path} is not a file",
            "remove it, or point DOCKER_CONFIG at a directory with a valid config.json",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        reason = e.msg if isinstance(e, json.JSONDecodeError) else type(e).__name__
        raise ConfigError(
            f"cannot read the Docker config {path}: {reason}",
            "fix the file, or point DOCKER_CONFIG at a directory with a valid config.json",
        ) from None
    _check_shape(data, path)

    import docker.auth  # the SDK's config parsing and matching; needs no daemon

    hub = registry == DOCKER_HUB_API
    key = HUB_KEY if hub else registry
    try:
        config = docker.auth.load_config(config_dict=dict(data))
    except Exception as e:  # noqa: BLE001 - a bad auths entry: name the file, never its content
        raise ConfigError(
            f"cannot read the Docker config {path}: an auths entry is invalid ({type(e).__name__})",
            "fix it (auth is base64 user:password), or log in again with docker login",
        ) from None
    store = config.get_credential_store(key)
    if store:
        server = HUB_SERVER if hub else registry
        section = "credHelpers" if config.cred_helpers.get(server) else "credsStore"
        where = f"{path} ({section})"
        creds = _normalise(run_helper(store, server, env, where=where), where)
        if creds is not None:
            log.debug("credentials for %s: %s from %s", registry, creds.username, where)
            return creds
    entry = docker.auth.AuthConfig({"auths": config.auths}).resolve_authconfig(key)
    creds = _normalise(entry, f"{path} (auths)")
    if creds is not None:
        log.debug("credentials for %s: %s from %s (auths)", registry, creds.username, path)
    return creds


def _check_shape(data: Any, path: Path) -> None:
    """Valid JSON that is no Docker config is an error naming the file, not "no
    credentials": ``auths`` maps registries to objects, ``credHelpers`` registries to
    helper names, ``credsStore`` is a helper name."""
    what = None
    if not isinstance(data, dict):
        what = "it is not a JSON object"
    elif not isinstance(data.get("auths", {}), dict) or not all(
        isinstance(v, dict) for v in data.get("auths", {}).values()
    ):
        what = '"auths" must be an object of registry: {"auth": ...} entries'
    elif not isinstance(data.get("credHelpers", {}), dict) or not all(
        isinstance(v, str) for v in data.get("credHelpers", {}).values()
    ):
        what = '"credHelpers" must be an object of registry: helper-name entries'
    elif not isinstance(data.get("credsStore", ""), str):
        what = '"credsStore" must be a helper name'
    if what:
        raise ConfigError(
            f"the Docker config {path} is not a valid Docker config: {what}",
            "fix the file, or point DOCKER_CONFIG at a directory with a valid config.json",
        )


class Resolver:
    """The credential lookup a RegistryClient calls on its first challenge: thread-safe,
    one lookup per registry (a helper runs once)."""

    def __init__(
        self,
        explicit: Credentials | None,
        targets: frozenset[str],
        env: Mapping[str, str],
        *,
        allowed: frozenset[str] | None = None,
        withheld: str = "",
    ) -> None:
        self.explicit = explicit
        self.targets = targets
        self.env = env
        self.allowed = allowed  # None: every registry; else only these get credentials
        self.withheld = withheld  # why the others get none (a pull request), for the note
        self._cache: dict[str, Credentials | None] = {}
        self._lock = threading.Lock()

    def __call__(self, registry: str) -> Credentials | None:
        with self._lock:
            if registry not in self._cache:
                self._cache[registry] = self._lookup(registry)
            return self._cache[registry]

    def _lookup(self, registry: str) -> Credentials | None:
        if self.allowed is not None and registry not in self.allowed:
            log.warning("note: %s", self.withheld.replace("{registry}", registry))
            return Credentials(withheld=True)
        if self.explicit is not None and registry in self.targets:
            log.debug(
                "credentials for %s: %s from %s",
                registry,
                self.explicit.username,
                self.explicit.source,
            )
            return self.explicit
        creds = from_docker_config(registry, self.env)
        if creds is None:
            log.debug("no credentials for %s", registry)
        return creds


def resolver(
    images: tuple[str, ...],
    *,
    username: str | None,
    password_stdin: bool,
    stdin: TextIO,
    env: Mapping[str, str],
    allowed: frozenset[str] | None = None,
    withheld: str = "",
) -> Resolver:
    """The lookup for a run: explicit credentials for the registries of ``images``, the
    Docker config for every registry; with ``allowed``, none for any other registry
    (``withheld``, with ``{registry}``, says why on stderr)."""
    targets = frozenset(parse_reference(i, allow_tag=False).registry for i in images)
    creds = explicit(username, password_stdin, stdin, env)
    return Resolver(creds, targets, env, allowed=allowed, withheld=withheld)
