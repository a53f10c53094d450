"""The session's tiny bridge run (tests/bridge_runs.py) as fixtures, and one torch thread for a
module that asks for it (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""

import pytest

import bridge_runs


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory):
    return bridge_runs.tiny_run(tmp_path_factory).config


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """Output directory of ``markovfork bridge run`` on the tiny config."""
    return bridge_runs.tiny_run(tmp_path_factory).out


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for the module's tests (the machine's cores are shared), restored after."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
