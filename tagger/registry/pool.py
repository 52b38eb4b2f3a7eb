"""One RegistryClient per registry host for a run, shared by sources and targets
(one connection pool, one login and one token cache per host)."""

from __future__ import annotations

import threading
from typing import Any

from ..credentials import CredentialLookup
from .api import RegistryClient


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
                opts = dict(self.client_opts)
                if self.credentials is not None:
                    opts["credentials"] = self.credentials
                self._clients[registry] = RegistryClient(registry, insecure=self.insecure, **opts)
            return self._clients[registry]

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
