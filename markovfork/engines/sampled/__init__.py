"""Sampled engine: Monte Carlo rollouts over the reasoning tree, n samples per problem.

A rollout of problem p starts at ``start[p]`` and ends at a leaf v below it, reached with
probability reach(v) = product of ``probs[p, w]`` over the steps w on the path. Two exact
samplers draw it; ``method`` picks one:

* **walk** (:mod:`.walk`), one uniform per step: at each internal node, step to the first child
  c whose cumulative probability (children in order) exceeds the uniform (inverse CDF), until a
  leaf. O(steps) per rollout, no set-up.
* **path** (:mod:`.paths`), one uniform per rollout: the nodes, in id order, split [0, 1) into
  intervals of width reach(v) at the leaves below the start (0 elsewhere); rollout i returns the
  leaf whose interval holds its uniform (inverse CDF over leaves). Set-up per problem is O(N):
  one pass validates the row and computes reach, one computes the leaves' integer thresholds,
  one builds a guide table (Chen and Asau, 1974) that jumps close to the right interval; then
  per rollout one guide read and four compares.
* **auto** (the default) takes, per problem, paths once the rollouts could take N/6 steps or
  more (``drivers.uses_path``), walks otherwise.

Both give exactly the leaf distribution reach(v) (up to floating-point rounding: path intervals
are reach(v) rounded to a multiple of 2^-53), but consume the stream differently, so the same
seed gives different leaves under the two methods.

Random streams: problem p draws from its own stream (:mod:`markovfork.engines.sampled.streams`), a function of
``(seed, p)`` only, so results do not depend on how problems are split across threads (same
seed, same result, whatever the thread count). Walks consume the stream's uniforms in order, one
per step, rollout after rollout; paths give rollout i the stream's i-th uniform.

Floating-point guards: probabilities sum to 1 only up to rounding. A walk's uniform at or beyond
a node's rounded row sum takes the last child with positive probability; a path's uniform
beyond the rounded total takes the last leaf with positive width. Zero-probability steps are
never taken by either.

Modules: :mod:`.api` (the Python layer), :mod:`.inputs` (input checks), :mod:`.kernel_tree`
(the tree arrays the kernels take, cached per tree), :mod:`.rows` (row validation kernels),
:mod:`.walk` and :mod:`.paths` (the two samplers), :mod:`.drivers` (per-problem and parallel
drivers), :mod:`.reference` (NumPy references). Speed: ``docs/performance.md``.
"""

from markovfork.plumbing.lazy import lazy_exports

# The names below are loaded on first use (PEP 562): a module that needs only the streams or the
# kernel tree (RL training, pretraining) does not import the samplers and their drivers.
_EXPORTS = {
    "markovfork.engines.sampled.api": ["RolloutCounts", "sample_leaves", "sample_rollouts"],
    "markovfork.engines.sampled.reference": ["path_types_reference", "sample_leaves_reference"],
    "markovfork.engines.sampled.streams": ["stream_states", "stream_uniforms"],
}

__all__ = [
    "RolloutCounts",
    "sample_rollouts",
    "sample_leaves",
    "sample_leaves_reference",
    "stream_states",
    "stream_uniforms",
    "path_types_reference",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
