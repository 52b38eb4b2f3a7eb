"""One RegistryClient per registry host for a run, shared by sources and targets
(one connection pool, one login and one token cache per host)."""

from __future__ import annotations

import threading
from typing import Any

from ..credentials import CredentialLookup
from .api import RegistryClient
from .auth import no_credentials
from .transport import Transport


class Registries:
    def __init__(
        self,
        insecure: frozenset[str] = frozenset(),
        credentials: CredentialLookup | None = None,
        **client_opts: Any,
    ) -> None:
        self.insecure = insecure
        self.credentials = credentials
        self.client_opts = client_opts
        self._clients: dict[str, RegistryClient] = {}
        self._lock = threading.Lock()

    def client(self, registry: str) -> RegistryClient:
        with self._lock:
            if registry not in self._clients:
                transport = Transport(registry, insecure=self.insecure, **self.client_opts)
                self._clients[registry] = RegistryClient(
                    transport, self.credentials or no_credentials
                )
            return self._clients[registry]

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
