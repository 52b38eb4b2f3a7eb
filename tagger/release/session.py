"""What a run against registries needs, set up from the configuration: the logins
(credentials.py), the trusted CAs (tls.py), one client per registry host, and the
safe points (signals, deadline), installed for the run and restored after it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TextIO

from .. import credentials, tls
from ..config import Config
from ..registry import Registries
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
) -> Iterator[tuple[Registries, StopFlag]]:
    login = credentials.resolver(
        cfg.images, username=username, password_stdin=password_stdin, stdin=stdin, env=env
    )
    stop = StopFlag(cfg.deadline)
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
        yield regs, stop
    finally:
        stop.restore()
        regs.close()
