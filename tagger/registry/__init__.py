"""A client for the OCI Distribution API (the registry HTTP API v2), split by concern:

- ``transport``: the session per host (built in ``sessions``: tracked connection
  pools, capped retries), timeouts, TLS, the run's deadline, bounded reads, each
  answer a ``reply.Reply``; ``origin`` (where a URL goes: origin,
  proxy), ``body`` (a streamed upload of exactly its size and digest), ``abort`` (a
  signal ends every read);
- ``auth``: challenges (``challenge``), credentials per host, the token cache and fetch;
- ``errors``: all the registry wording: every registry answer or exception turned
  into tagger's error, and what tagger refuses from a hostile registry or source
  (``errors.refusals``);
- ``api``: the endpoints (manifests as exact bytes, tags, blobs, mounts, uploads);
- ``pool``: one client per host for a run.
"""

from __future__ import annotations

from .abort import abort_reads, arm
from .api import RegistryClient
from .pool import Registries

__all__ = ["RegistryClient", "Registries", "abort_reads", "arm"]
