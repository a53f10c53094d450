"""Numba's CPU target set up without importing all of scipy.linalg (plumbing/numba_start.py),
checked in fresh processes: the kernels load without ``scipy.linalg``, and SciPy and Numba's
BLAS still work afterwards."""

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kernels_load_without_scipy_linalg_and_scipy_still_works():
    out = _run("""
        import sys
        import numpy as np
        from markovfork.tasks import tmc_chain
        from markovfork.model.policy import transition_probs
        tree = tmc_chain(4, 2, 2, 1, seed=0).tree
        transition_probs(tree, np.zeros((1, tree.n_nodes)))  # a kernel: Numba's CPU target is set up
        assert "numba.np.arraymath" in sys.modules and "scipy.linalg" not in sys.modules
        blas = sys.modules["scipy.linalg.cython_blas"]

        import scipy.linalg
        import scipy.linalg.cython_blas
        assert scipy.linalg.cython_blas is blas  # the package's submodule, the same extension module
        from scipy.optimize import least_squares
        assert abs(least_squares(lambda x: x - 3.0, np.zeros(1)).x[0] - 3.0) < 1e-9

        import numba
        @numba.njit
        def dot(a, b):
            return np.dot(a, b)
        a = np.arange(6.0).reshape(2, 3)
        assert np.array_equal(dot(a, np.ones(3)), a @ np.ones(3))  # BLAS through the preloaded module
        print("ok")
    """)
    assert out.strip() == "ok"


def test_scipy_linalg_imported_first_is_left_alone():
    out = _run("""
        import sys
        import scipy.linalg
        import numpy as np
        from markovfork.tasks import tmc_chain
        from markovfork.model.policy import transition_probs
        tree = tmc_chain(4, 2, 2, 1, seed=0).tree
        transition_probs(tree, np.zeros((1, tree.n_nodes)))
        assert scipy.linalg.cython_blas is sys.modules["scipy.linalg.cython_blas"]
        print("ok")
    """)
    assert out.strip() == "ok"
