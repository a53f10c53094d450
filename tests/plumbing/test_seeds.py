"""Child seeds: the streams equal NumPy's SeedSequence of [seed, *labels] (the generators' and
the bridge's historical streams), and bad seeds or labels are rejected by name."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from markovfork.plumbing.seeds import child_rng, child_rngs, child_seed, seed_sequence

labels = st.lists(st.one_of(st.integers(0, 2**70), st.text(max_size=5)), max_size=3)


def _words(labels):
    out = []
    for label in labels:
        out.extend(label.encode() if isinstance(label, str) else [label])
    return out


@given(seed=st.integers(0, 2**64 - 1), labels=labels)
def test_streams_are_numpy_seed_sequences_of_seed_and_labels(seed, labels):
    entropy = [seed, *_words(labels)]
    assert child_rng(seed, *labels).integers(2**63, size=4).tolist() == np.random.default_rng(entropy).integers(2**63, size=4).tolist()
    assert child_seed(seed, *labels) == int(np.random.SeedSequence(entropy).generate_state(1)[0])
    spawned = [np.random.default_rng(s).random() for s in np.random.SeedSequence(entropy).spawn(3)]
    assert [g.random() for g in child_rngs(3, seed, *labels)] == spawned
    assert seed_sequence(seed, *labels).entropy == entropy


def test_labels_separate_streams_except_trailing_zeros():
    draws = {child_seed(7, *labels) for labels in [(), (1,), (0, 1), (2, 1), ("a",), ("b",)]}
    assert len(draws) == 6
    # NumPy pads the entropy with zero words: trailing zero labels name the same stream
    assert child_seed(7) == child_seed(7, 0) == child_seed(7, 0, 0)


@pytest.mark.parametrize(
    "seed, labels, message",
    [
        (-1, (), r"seed must be an integer in \[0, 18446744073709551615\], got -1"),
        (2**64, (), r"seed must be an integer in \[0, 18446744073709551615\], got 18446744073709551616"),
        (True, (), "seed must be an integer, got True"),
        (1.5, (), "seed must be an integer, got 1.5"),
        (3, (-2,), "seed label 0 must be an integer >= 0, got -2"),
        (3, (1, 0.5), "seed label 1 must be an integer, got 0.5"),
    ],
)
def test_bad_seeds_and_labels(seed, labels, message):
    with pytest.raises(ValueError, match=message):
        child_rng(seed, *labels)
