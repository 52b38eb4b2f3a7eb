"""The shared test infrastructure is the ``support`` package next to this file (on
sys.path: pytest's default "prepend" import mode inserts this directory, the
conftest's own, before importing it). Its fixtures are registered here, for every
test module; helpers are imported from their modules (``from support.git import Repo``)."""

import pytest

# the support modules' asserts (the raw registry helpers') report their operands
pytest.register_assert_rewrite("support")

pytest_plugins = ["support.fixtures"]
