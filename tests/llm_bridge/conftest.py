"""The session's tiny bridge run (tests/bridge_runs.py) as fixtures."""

import pytest

import bridge_runs


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory):
    return bridge_runs.tiny_run(tmp_path_factory).config


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """Output directory of ``markovfork bridge run`` on the tiny config."""
    return bridge_runs.tiny_run(tmp_path_factory).out
