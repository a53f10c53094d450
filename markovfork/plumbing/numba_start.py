"""Numba's CPU target without importing all of ``scipy.linalg`` (start-up time).

The first kernel a process compiles or loads from the cache initialises Numba's CPU target,
which imports ``numba.np.arraymath``; that module checks at import time that BLAS is there
(``numba.np.linalg.ensure_blas``: ``import scipy.linalg.cython_blas``). Importing the extension
through its package runs ``scipy/linalg/__init__.py``: all of ``scipy.linalg``, SciPy's
array-API layer and, through it, ``numpy.f2py``, about 0.12 s of CPU at every start
(``docs/performance.md``, start-up), although no markovfork kernel calls BLAS.

:func:`install` (run by ``import markovfork``) adds a finder to ``sys.meta_path`` that finds
nothing itself. When ``numba.np.arraymath`` is about to be imported and ``scipy.linalg`` is not
loaded yet, it loads the ``scipy.linalg.cython_blas`` extension module on its own (its package
is not executed), so Numba's check finds it in ``sys.modules``. Numba's check is otherwise
unchanged (the LAPACK integer-width check reads ``scipy.__config__``), and so is what a kernel
that does call BLAS uses: Numba's C helpers fetch the function pointers from that same module.

When ``scipy.linalg`` itself is imported later (the fit, ``scipy.optimize``), the finder first
removes the lone extension module from ``sys.modules``, so the package loads as usual and
imports the extension again as its submodule (Cython hands back the same module object). The
finder then does nothing more (it stays in ``sys.meta_path``: removing it while the import
system iterates over that list would skip the next finder). Nothing happens if ``scipy.linalg`` was imported first, or if SciPy
cannot be found (then Numba's own import runs, and fails, as before).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys

TRIGGER = "numba.np.arraymath"
BLAS = "scipy.linalg.cython_blas"
PACKAGE = "scipy.linalg"


class _BlasFirst:
    """A ``sys.meta_path`` finder that never finds a module; see the module docstring."""

    state = "waiting"  # -> "loaded" (the extension stands alone) -> "done"

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if cls.state == "waiting" and name == TRIGGER:
            alone = PACKAGE not in sys.modules and BLAS not in sys.modules and _load_blas_alone()
            cls.state = "loaded" if alone else "done"
        elif cls.state == "loaded" and name == PACKAGE:
            cls.state = "done"
            if PACKAGE not in sys.modules:
                sys.modules.pop(BLAS, None)  # re-imported as the package's submodule: the same object
        return None


def _load_blas_alone() -> bool:
    """Load ``scipy.linalg.cython_blas`` without executing ``scipy/linalg/__init__.py``."""
    try:
        scipy = importlib.util.find_spec("scipy")
        if scipy is None or not scipy.submodule_search_locations:
            return False
        linalg = [f"{p}/linalg" for p in scipy.submodule_search_locations]
        spec = importlib.machinery.PathFinder.find_spec(BLAS, linalg)
        if spec is None or not isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            return False
        module = importlib.util.module_from_spec(spec)
        sys.modules[BLAS] = module
        spec.loader.exec_module(module)
    except Exception:  # leave it to Numba's own import
        sys.modules.pop(BLAS, None)
        return False
    return True


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once; not if Numba's target is already set up)."""
    if TRIGGER not in sys.modules and _BlasFirst not in sys.meta_path:
        sys.meta_path.insert(0, _BlasFirst)
