"""Per-problem random streams of the sampled engine: xoshiro256** seeded through splitmix64.

Problem p draws from its own stream, a function of ``(seed, p)`` only, so results do not depend
on how problems are split across threads (same seed, same result, whatever the thread count):

* ``mix64`` is the splitmix64 output function (a bijection on 64-bit words);
* splitmix64 is started at ``mix64(mix64(seed) + p)`` (mod 2^64) and its first four outputs are
  the 256-bit state of a xoshiro256** generator (Blackman & Vigna, 2018), the problem's stream;
* a uniform in [0, 1) is the top 53 bits of a xoshiro256** output times 2^-53.

Distinct (seed, p) pairs give pseudo-random, distinct starting points in xoshiro's 2^256 - 1
period; overlapping stretches are astronomically unlikely (not provably impossible: we do not use
``jump()``, which would cost O(p) to reach stream p). How the samplers consume a stream is in
:mod:`markovfork.engines.sampled`.
"""

from __future__ import annotations

import numba
import numpy as np

from markovfork.plumbing import checks

__all__ = ["stream_states", "stream_uniforms"]

_U64 = np.uint64
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # splitmix64 increment
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 2.0**-53  # 53-bit integer -> [0, 1)


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True, inline="always")
def _mix64(z):
    """splitmix64's output function on a uint64."""
    z = (z ^ (z >> _U64(30))) * _M1
    z = (z ^ (z >> _U64(27))) * _M2
    return z ^ (z >> _U64(31))


@numba.njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << _U64(k)) | (x >> _U64(64 - k))


@numba.njit(cache=True, inline="always")
def xoshiro_next(s0, s1, s2, s3):
    """One xoshiro256** step: (64-bit output, new state)."""
    result = _rotl(s1 * _U64(5), 7) * _U64(9)
    t = s1 << _U64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    return result, s0, s1, s2, s3


@numba.njit(cache=True, inline="always")
def to_unit(x):
    """Top 53 bits of a uint64 as a double in [0, 1)."""
    return np.float64(x >> _U64(11)) * _TO_UNIT


@numba.njit(cache=True)
def stream_states_kernel(seed, out):
    """out[p] = initial xoshiro256** state of stream (seed, p); see the module docstring."""
    key = _mix64(seed)
    for p in range(out.shape[0]):
        x = _mix64(key + _U64(p))
        for j in range(4):
            x += _GOLDEN
            out[p, j] = _mix64(x)


@numba.njit(cache=True)
def _uniforms_kernel(states, out):
    """out[p, i] = i-th uniform of stream p, starting from states[p] (states are not advanced)."""
    for p in range(out.shape[0]):
        s0, s1, s2, s3 = states[p, 0], states[p, 1], states[p, 2], states[p, 3]
        for i in range(out.shape[1]):
            x, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
            out[p, i] = to_unit(x)


# --------------------------------------------------------------------------------------------
# Python layer
# --------------------------------------------------------------------------------------------


def stream_states(seed: int, n_streams: int) -> np.ndarray:
    """(n_streams, 4) uint64 initial xoshiro256** states of streams (seed, 0..n_streams-1)."""
    seed = np.uint64(checks.seed(seed))
    n_streams = checks.integer("n_streams", n_streams, 0)
    checks.fits_in_memory("n_streams", n_streams, 32 * n_streams, "the stream states")
    out = np.empty((n_streams, 4), dtype=np.uint64)
    stream_states_kernel(seed, out)
    return out


def stream_uniforms(seed: int, n_streams: int, n_draws: int) -> np.ndarray:
    """(n_streams, n_draws) the first uniforms of each stream: what rollouts of problem p consume."""
    n_streams = checks.integer("n_streams", n_streams, 0)
    n_draws = checks.integer("n_draws", n_draws, 0)
    checks.fits_in_memory("n_draws", n_draws, 8 * n_streams * n_draws, f"{n_streams} streams x n_draws uniforms")
    states = stream_states(seed, n_streams)
    out = np.empty((n_streams, n_draws))
    _uniforms_kernel(states, out)
    return out
