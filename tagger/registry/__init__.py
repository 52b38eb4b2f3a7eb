"""A client for the OCI Distribution API (the registry HTTP API v2), split by concern:

- ``transport``: the session per host, retries, timeouts, TLS, the run's deadline;
- ``auth``: challenges, credentials per host, the token cache and token fetch;
- ``errors``: every registry answer or exception turned into tagger's error (all
  registry wording in one place);
- ``api``: the endpoints (manifests as exact bytes, tags, blobs, mounts, uploads);
- ``pool``: one client per host for a run.
"""

from __future__ import annotations

from .abort import abort_reads, arm
from .api import RegistryClient
from .pool import Registries

__all__ = ["RegistryClient", "Registries", "abort_reads", "arm"]
