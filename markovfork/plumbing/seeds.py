"""Child seeds: the one way to derive independent random streams from a seed and labels.

A stream is named by a seed and a list of labels; its seed sequence is

    SeedSequence([seed, *labels])

where an integer label enters as itself and a string label as its UTF-8 bytes (one entropy word
per byte). NumPy's ``SeedSequence`` hashes the whole list, so streams with different labels are
unrelated even for the same seed, and ``child_rng(seed, a, b)`` is exactly
``np.random.default_rng([seed, a, b])``. NumPy pads the entropy with zero words, so trailing
zero labels name the same stream (``(seed,)`` and ``(seed, 0)``): give labels non-zero tags.
"""

from __future__ import annotations

import numpy as np

from markovfork.plumbing import checks

__all__ = ["seed_sequence", "child_rng", "child_rngs", "child_seed"]


def _entropy(seed, labels) -> list[int]:
    words = [checks.seed(seed)]
    for i, label in enumerate(labels):
        if isinstance(label, str):
            words.extend(label.encode())
        else:
            words.append(checks.integer(f"seed label {i}", label, 0))
    return words


def seed_sequence(seed, *labels) -> np.random.SeedSequence:
    """``SeedSequence([seed, *labels])``, string labels as their UTF-8 bytes."""
    return np.random.SeedSequence(_entropy(seed, labels))


def child_rng(seed, *labels) -> np.random.Generator:
    """A generator on the stream ``(seed, *labels)``: ``default_rng([seed, *labels])``."""
    return np.random.default_rng(seed_sequence(seed, *labels))


def child_rngs(n: int, seed, *labels) -> list[np.random.Generator]:
    """``n`` independent generators spawned from the stream ``(seed, *labels)``."""
    return [np.random.default_rng(s) for s in seed_sequence(seed, *labels).spawn(checks.integer("n", n, 0))]


def child_seed(seed, *labels) -> int:
    """A 32-bit integer seed for another library (torch, a worker), from ``(seed, *labels)``:
    the first word of the stream's state, ``SeedSequence([seed, *labels]).generate_state(1)[0]``."""
    return int(seed_sequence(seed, *labels).generate_state(1)[0])
