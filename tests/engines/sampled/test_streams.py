"""Random streams (markovfork.engines.sampled.streams) against the published xoshiro256** / splitmix64
algorithms, crude uniformity and independence, and argument checks."""

import numpy as np
import pytest
from scipy import stats

from markovfork.engines.sampled.streams import stream_states, stream_uniforms

MASK64 = 2**64 - 1


def _splitmix_mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def _xoshiro256ss(state, n):
    """Plain-Python xoshiro256** (Blackman & Vigna reference C code)."""
    s = list(state)
    rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & MASK64  # noqa: E731
    out = []
    for _ in range(n):
        out.append((rotl((s[1] * 5) & MASK64, 7) * 9) & MASK64)
        t = (s[1] << 17) & MASK64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
    return out


def test_streams_follow_the_documented_construction():
    seed = 987654321
    states = stream_states(seed, 3)
    for p in range(3):
        x = _splitmix_mix((_splitmix_mix(seed) + p) & MASK64)
        expect = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK64
            expect.append(_splitmix_mix(x))
        assert [int(v) for v in states[p]] == expect
        draws = _xoshiro256ss(expect, 5)
        assert np.array_equal(stream_uniforms(seed, 3, 5)[p], np.array([d >> 11 for d in draws]) * 2.0**-53)
    assert _xoshiro256ss([1, 2, 3, 4], 2) == [11520, 0]  # published first outputs for state 1,2,3,4


def test_uniforms_are_crudely_uniform_and_streams_uncorrelated():
    u = stream_uniforms(42, 8, 50_000)
    assert np.all((u >= 0) & (u < 1))
    for row in u:
        assert stats.kstest(row, "uniform").pvalue > 1e-3
    corr = np.corrcoef(u)[np.triu_indices(8, 1)]
    assert np.max(np.abs(corr)) < 5 / np.sqrt(50_000)
    # consecutive draws within a stream are uncorrelated too
    assert abs(np.corrcoef(u[0, :-1], u[0, 1:])[0, 1]) < 5 / np.sqrt(50_000)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="seed must be an integer in"):
        stream_states(-1, 2)
    with pytest.raises(ValueError, match="n_streams must be an integer >= 0, got -1"):
        stream_states(0, -1)
    with pytest.raises(ValueError, match="n_draws must be an integer, got 2.0"):
        stream_uniforms(0, 2, 2.0)


def test_requests_beyond_memory_are_rejected_up_front():
    """(10^6 streams x 10^9 draws: 8 PB) a one-line error with the bytes needed, not a MemoryError."""
    with pytest.raises(ValueError, match=r"n_draws must be small enough .* \(8,000,000,000,000,000 bytes"):
        stream_uniforms(0, 10**6, 10**9)
