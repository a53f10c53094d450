"""Input checks shared by every public function that hands arrays to a compiled kernel.

One place, one message style: ``ValueError("<name> must be <what>, got <value>")``. Compiled
kernels index without bounds checks, so every shape, dtype and id range they rely on is checked
here first; each checker returns the value in the exact form the kernels take (Python ``int``,
C-contiguous arrays of the kernel's dtype).
"""

from __future__ import annotations

import functools
import numbers
import os

import numpy as np

__all__ = [
    "first_repeat",
    "is_integer",
    "is_real",
    "integer",
    "seed",
    "real",
    "k_values",
    "start_ids",
    "probability_rows",
    "bool_matrix",
    "n_threads",
    "physical_memory",
    "memory_needed",
    "fits_in_memory",
    "array",
    "logit_rows",
    "counts",
]

SEED_MAX = 2**64 - 1
INT64_MAX = 2**63 - 1  # the largest count the compiled kernels hold


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def is_integer(value) -> bool:
    """Whether ``value`` is an integer (Python or NumPy), bools excluded."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value) -> bool:
    """Whether ``value`` is a real number (Python or NumPy, integers included), bools excluded."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def first_repeat(values):
    """The first (hashable) value of ``values`` that an earlier one equals (None when all differ): a list
    option or a config list that names a value twice would run or print it twice."""
    seen = set()
    for v in values:
        if v in seen:
            return v
        seen.add(v)
    return None


def integer(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """``value`` as a Python int in ``[low, high]``; bools, floats and strings are rejected."""
    if not is_integer(value):
        raise ValueError(f"{name} must be an integer, got {_show(value)}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            bound = f">= {low}"
        elif low is None:
            bound = f"<= {high}"
        else:
            bound = f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {bound}, got {value}")
    return value


def seed(value, name: str = "seed") -> int:
    """A seed: an integer in ``[0, 2^64 - 1]``."""
    return integer(name, value, 0, SEED_MAX)


def real(name: str, value, low: float | None = None, high: float | None = None, *,
         low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float in the interval given (open ends when asked); bools rejected."""
    if not is_real(value):
        raise ValueError(f"{name} must be a number, got {_show(value)}")
    value = float(value)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if not np.isfinite(value) or below or above:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value}")
    return value


def _int64(name: str, value: int) -> int:
    if value > INT64_MAX:
        raise ValueError(f"{name} must be below 2^63, got {value}")
    return value


def k_values(k, *, n: int | None = None, increasing: bool = False, name: str = "k") -> np.ndarray:
    """k of pass@k as a 1-D int64 array: a scalar or a non-empty list of integers >= 1 (and <= n
    when ``n`` is given; strictly increasing when asked)."""
    arr = np.atleast_1d(np.asarray(k, dtype=object if isinstance(k, (list, tuple)) else None))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be an integer or a non-empty 1-D list of integers, got {_show(k)}")
    values = (np.array([_int64(name, integer(name, v, 1)) for v in arr.tolist()], dtype=np.int64)
              if arr.dtype == object else None)
    if values is None:
        if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must be integers, got {_show(k)}")
        if np.any(arr < 1):
            raise ValueError(f"{name} must be integers >= 1, got {int(arr[arr < 1][0])}")
        if arr.dtype == np.uint64 and np.any(arr > INT64_MAX):
            raise ValueError(f"{name} must be below 2^63, got {int(arr.max())}")
        values = arr.astype(np.int64)
    if increasing and np.any(np.diff(values) <= 0):
        raise ValueError(f"{name} must be strictly increasing, got {values.tolist()}")
    if n is not None and values.max() > n:
        raise ValueError(f"{name} must be <= n = {n} (pass@k needs at least k samples), got {int(values.max())}")
    return values


def start_ids(start, n_nodes: int, n_rows: int | None = None, name: str = "start") -> np.ndarray:
    """Start node ids as a C-contiguous 1-D int64 array, each in ``[0, n_nodes)``, ``n_rows`` long
    when given. Kernels index with them unsigned: a negative id would read out of bounds."""
    arr = np.asarray(start)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):  # integers (not bool: kind "b")
        raise ValueError(f"{name} must be a 1-D array of node ids, got {_show(start)}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise ValueError(f"{name} must have one node id per row ({n_rows}), got {arr.shape[0]}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= n_nodes):
        bad = int(arr[(arr < 0) | (arr >= n_nodes)][0])
        raise ValueError(f"{name} must be node ids of the tree (0..{n_nodes - 1}), got {bad}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _node_rows(values, n_nodes: int, n_rows: int | None, name: str) -> np.ndarray:
    """Per-node rows as a C-contiguous (P, n_nodes) float64 array (a 1-D row is one problem):
    shape and dtype checked, values not."""
    arr = np.asarray(values)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != n_nodes or (n_rows is not None and arr.shape[0] != n_rows):
        rows = "P" if n_rows is None else str(n_rows)
        raise ValueError(f"{name} must have shape ({rows}, {n_nodes}), got {np.shape(values)}")
    if arr.dtype.kind not in "fiu":  # floats or integers (not bool: kind "b")
        raise ValueError(f"{name} must be real numbers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float64)


def probability_rows(probs, n_nodes: int, n_rows: int | None = None, name: str = "probs", *,
                     check_values: bool = True) -> np.ndarray:
    """Step probabilities as a C-contiguous (P, n_nodes) float64 array (a 1-D row is one problem),
    every entry finite and in [0, 1]; ``n_rows`` rows when given. Row sums are the caller's to
    check where its kernel relies on them. ``check_values=False`` checks shape and dtype only,
    for a caller whose kernel checks every entry before any index depends on it (the sampler:
    a second pass here would cost as much as its sampling)."""
    arr = _node_rows(probs, n_nodes, n_rows, name)
    if not check_values:
        return arr
    bad = ~((arr >= 0.0) & (arr <= 1.0))  # NaN compares False: caught here too
    if bad.any():
        p, v = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name}[{p}, {v}] must be a probability in [0, 1], got {arr[p, v]}")
    return arr


def bool_matrix(name: str, mask, shape: tuple[int, int]) -> np.ndarray:
    """A C-contiguous bool array of exactly ``shape`` (no broadcasting: kernels index it fully)."""
    arr = np.asarray(mask)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.integer) or np.any((arr != 0) & (arr != 1)):
            raise ValueError(f"{name} must be booleans, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.bool_)


def n_threads(value) -> int | None:
    """Worker threads for a parallel kernel: None (Numba's default) or an integer >= 1."""
    return None if value is None else integer("n_threads", value, 1)


@functools.cache
def physical_memory() -> int | None:
    """Bytes of memory this process may use: the machine's physical memory, or the cgroup's limit
    when lower; None where the platform does not tell. Read once per process (a file read costs
    more than a small sampling call)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
    except OSError:
        limit = ""
    return min(total, int(limit)) if limit.isdigit() else total


def fits_in_memory(name: str, value, n_bytes: int, what: str) -> None:
    """Reject ``value`` of ``name`` up front when the arrays it asks for (``n_bytes``, described by
    ``what``) exceed :func:`physical_memory`: they could not be held, and a kernel would fail
    part-way (or the system would start swapping) instead."""
    limit = physical_memory()
    if limit is not None and n_bytes > limit:
        raise ValueError(f"{name} must be small enough for {what} to fit in memory ({memory_needed(n_bytes, limit)}), "
                         f"got {value}")


def memory_needed(n_bytes: int, limit: int) -> str:
    """The one wording of a memory shortfall: ``N bytes = X GiB needed, Y GiB here``."""
    return f"{n_bytes:,} bytes = {n_bytes / 2**30:,.1f} GiB needed, {limit / 2**30:,.1f} GiB here"


def array(name: str, value, dtype, ndim: int = 1) -> np.ndarray:
    """``value`` (any array-like) as a new C-contiguous ``dtype`` array of ``ndim`` dimensions.

    Integers for an integer dtype (within its range), real numbers for a float dtype, booleans
    (or 0/1) for bool; never a silent cast. Always a copy: the caller's array stays its own."""
    arr = np.asarray(value)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {arr.shape}")
    target = np.dtype(dtype)
    src = arr.dtype
    if arr.size and src != target:
        if target == np.bool_:
            if not (np.issubdtype(src, np.integer) and np.all((arr == 0) | (arr == 1))):
                raise ValueError(f"{name} must be booleans, got dtype {src}")
        elif np.issubdtype(target, np.integer):
            if src == np.bool_ or not np.issubdtype(src, np.integer):
                raise ValueError(f"{name} must be integers, got dtype {src}")
            info = np.iinfo(target)
            low, high = int(arr.min()), int(arr.max())
            if low < info.min or high > info.max:
                raise ValueError(f"{name} must be integers in [{info.min}, {info.max}], got {low if low < info.min else high}")
        elif src == np.bool_ or not (np.issubdtype(src, np.floating) or np.issubdtype(src, np.integer)):
            raise ValueError(f"{name} must be real numbers, got dtype {src}")
    return np.array(arr, dtype=target, order="C", copy=True)


def logit_rows(logits, n_nodes: int, n_rows: int | None = None, name: str = "logits") -> np.ndarray:
    """Step logits as a C-contiguous (P, n_nodes) float64 array (a 1-D row is one problem), each
    entry finite or -inf (a step never taken); ``n_rows`` rows when given."""
    arr = _node_rows(logits, n_nodes, n_rows, name)
    bad = ~(np.isfinite(arr) | (arr == -np.inf))
    if bad.any():
        p, v = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name}[{p}, {v}] must be a real number or -inf, got {arr[p, v]}")
    return arr


def counts(name: str, value) -> np.ndarray:
    """Sample counts as an int64 array: integers (or integer-valued floats) in [0, 2^63)."""
    arr = np.asarray(value)
    if arr.dtype == object:  # Python integers beyond 64 bits, or mixed objects
        flat = arr.ravel().tolist()
        if all(is_integer(v) for v in flat):
            big = next((int(v) for v in flat if not 0 <= v <= INT64_MAX), None)
            if big is not None:
                raise ValueError(f"{name} must be integer counts in [0, 2^63), got {big}")
            return arr.astype(np.int64)
        raise ValueError(f"{name} must be integer counts, got {value!r}")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must be integer counts, got {value!r}")
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if np.any(bad):
            raise ValueError(f"{name} must be integer counts, got {arr[bad].flat[0].item()!r}")
    if arr.size:
        low, high = arr.min(), arr.max()
        if low < 0:
            raise ValueError(f"{name} must be integer counts in [0, 2^63), got {low.item()}")
        if high > INT64_MAX or (np.issubdtype(arr.dtype, np.floating) and high >= 2.0**63):
            raise ValueError(f"{name} must be integer counts in [0, 2^63), got {high.item()}")
    return arr.astype(np.int64)
