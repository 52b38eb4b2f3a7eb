"""The test suite's infrastructure, with real parts: git repositories, docker-registry
processes, an HTTP proxy in front of them, registries that need credentials, a Docker
daemon, a stand-in for GitHub's runner.

- ``fixtures``: every shared fixture; registered by tests/conftest.py (``pytest_plugins``)
- ``git``: ``Repo`` (a repository in a temp dir), ``GIT_ENV``, ``CI_VARS``
- ``registry``: docker-registry processes (``start_registry``, ``running_registry``),
  ``Registry`` with raw API helpers to push and read images (not tagger's client),
  media types, ``free_port``, ``wait_http``, ``need_binary``, ``REQUIRE``
- ``proxy``: ``Proxy`` in front of a registry: paging, request log, holds, faults
- ``hostile``: ``Stub``, a registry stand-in whose every answer the test chooses
  (``serving(route)``: one route for every request), with a log of requests and headers
- ``listen``: ``serve``, the HTTP listener on 127.0.0.1 under the proxy, the token
  issuer and the stub
- ``auth``: registries with htpasswd, token and TLS auth; the token issuer, test CA,
  credential helpers
- ``daemon``: ``Daemon``, ``running_dockerd``
- ``ghactions``: the simulated GitHub Actions runner for composite actions
- ``cli``: ``Run`` and ``run_cli``, tagger's entry point in this process

bench/run.py uses ``registry``, ``proxy`` (and ``listen``), ``git`` and ``daemon``: those import no
pytest, so the bench runs where only tagger's own dependencies are installed.
"""
