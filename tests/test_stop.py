"""The run's stop (release/stop.py) as the user sees it: its exit code and report."""

from __future__ import annotations

import os
import signal

from tagger.errors import RegistryUnreachable
from tagger.release import StopFlag


def test_a_signal_a_library_swallowed_still_ends_the_run_as_stopped() -> None:
    """GitPython catches ``Exception`` in places (``Repo.__del__``, config reads): the
    handler's exception can vanish there, and the run then fails on a request the stop
    cut short. It still exits 143, with the report of what was done."""
    stop = StopFlag()
    stop.install()
    try:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(3):  # the handler runs between two bytecodes of this block
                pass
        except Exception:  # noqa: BLE001, S110 - what such a library does
            pass
        failed = RegistryUnreachable("127.0.0.1:1: connection reset")
        failed.result = report = object()
        err = stop.outcome(failed)
    finally:
        stop.restore()
    assert err.exit_code == 143
    assert str(err).startswith("stopped by SIGTERM")
    assert "connection reset" in str(err)  # what went wrong too, in the same line
    assert err.result is report


def test_without_a_signal_an_error_is_reported_as_it_is() -> None:
    stop = StopFlag()
    failed = RegistryUnreachable("127.0.0.1:1: connection refused")
    assert stop.outcome(failed) is failed
