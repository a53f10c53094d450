"""Shared test configuration: hypothesis profiles.

``ci`` is derandomised (the same examples every run) and is selected by ``.ci/run`` through
HYPOTHESIS_PROFILE=ci; ``dev`` (default) explores fresh examples each run.
"""

import os
import signal
import sys

# One BLAS thread, as the `markovfork` command sets for itself, before anything imports NumPy:
# sweep workers run with one thread, and GEMM results can differ in the last bits between
# thread counts, so the in-process run (workers=1) must use one thread too to compare equal.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
assert "numpy" not in sys.modules or os.environ["OPENBLAS_NUM_THREADS"] == "1", "numpy was imported before conftest"

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def python_sigint_handler():
    """SIGINT raises KeyboardInterrupt in this process for the test (Python's own handler), then the
    handler found before is put back: a shell starts background jobs with SIGINT ignored, so a test
    that signals its own process would otherwise see nothing happen under `nohup ... &`."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)

# With MARKOVFORK_CHECK_IMPORTS=1 the session fails unless every module of the package (the core,
# markovfork.llm_bridge and markovfork.cli) was imported by the tests it ran: evidence that a
# lane that leaves tests out (`-m "not slow"`) still exercises every module. The module names come
# from the source folders, not from importing them.
RUN_ONLY_AS_A_COMMAND = {"markovfork.cli.__main__": "`python -m markovfork.cli`, run by the subprocess tests"}


def package_modules() -> set[str]:
    import importlib.util
    from pathlib import Path

    names = set()
    for package in ("markovfork", "markovfork.llm_bridge", "markovfork.cli"):
        (folder,) = importlib.util.find_spec(package).submodule_search_locations
        for path in Path(folder).rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((package, *parts))
            if not any(name.startswith(other + ".") for other in ("markovfork.llm_bridge", "markovfork.cli")
                       if package == "markovfork"):
                names.add(name)
    return names


_import_check = []  # the line pytest_terminal_summary prints


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("MARKOVFORK_CHECK_IMPORTS") != "1":
        return
    modules = package_modules()
    missing = sorted(modules - set(sys.modules) - set(RUN_ONLY_AS_A_COMMAND))
    if missing:
        _import_check.append(f"MARKOVFORK_CHECK_IMPORTS: {len(missing)} of {len(modules)} modules no test imported: "
                             + ", ".join(missing))
        session.exitstatus = 1
    else:
        _import_check.append(f"MARKOVFORK_CHECK_IMPORTS: all {len(modules)} modules of the package imported")


def pytest_terminal_summary(terminalreporter):
    for line in _import_check:
        terminalreporter.write_line(line, red="no test imported" in line)
