"""What a run against registries needs, set up from the configuration: the logins
(credentials.py), the trusted CAs (tls.py), one client per registry host, and the
safe points (signals, deadline), installed for the run and restored after it;
and the registry reads that need nothing from git, sent at once (prefetch.py).

On a pull request (``pull_request``, from github.py) credentials go only to the
registries the caller named: those of images and a ``docker://`` source given by a flag
or the environment. A registry named only by the repository's file, which the pull
request can edit, gets none (credentials.py says so on stderr)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO

from .. import credentials, tls
from ..config import Config
from ..errors import UsageError
from ..reference import parse_reference
from ..registry import Registries, abort_reads, arm
from .prefetch import Prefetch
from .stop import StopFlag


@contextlib.contextmanager
def session(
    cfg: Config,
    *,
    username: str | None,
    password_stdin: bool,
    ca_cert: str | None,
    stdin: TextIO,
    env: Mapping[str, str],
    pull_request: str | None = None,
    read_ahead: bool | None = None,
    ping: bool = False,
) -> Iterator[tuple[Registries, StopFlag, Prefetch | None]]:
    """``read_ahead``: list the targets' tags now (True: with push access, as a
    release writes); ``ping``: ping the first target's registry now."""
    allowed, withheld = None, ""
    if pull_request:
        allowed = named_by_caller(cfg)
        file = Path(cfg.file).name if cfg.file else "the repository's file"
        withheld = (
            f"{pull_request}: no credentials sent to {{registry}}, named only by {file};"
            " pass -i (or --source) to use them"
        )
    login = credentials.resolver(
        cfg.images,
        username=username,
        password_stdin=password_stdin,
        stdin=stdin,
        env=env,
        allowed=allowed,
        withheld=withheld,
    )
    stop = StopFlag(cfg.deadline)
    arm()
    stop.on_signal.append(abort_reads)
    stop.install()
    regs = Registries(
        cfg.insecure_registries,
        credentials=login,
        verify=tls.ca_bundle(ca_cert, env),
        retries=cfg.retries,
        timeout=cfg.timeout,
        expired=stop.expired,
        remaining=stop.remaining,
        pause=stop.pause,
    )
    try:
        ahead = Prefetch.start(cfg, regs, push=read_ahead, ping=ping)
        yield regs, stop, ahead
    finally:
        stop.restore()
        regs.close()


def named_by_caller(cfg: Config) -> frozenset[str]:
    """The registries of the images and the ``docker://`` source that came from a flag
    or the environment, not from the repository's file."""
    refs = [] if "images" in cfg.from_file else list(cfg.images)
    if cfg.source and "source" not in cfg.from_file and cfg.source.startswith("docker://"):
        refs.append(cfg.source.removeprefix("docker://"))
    hosts = set()
    for ref in refs:
        try:
            hosts.add(parse_reference(ref).registry)
        except UsageError:  # said when the image or source is used
            continue
    return frozenset(hosts)
