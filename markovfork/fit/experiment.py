"""What the fit needs of a measured or planned run: its SFT arms as simulator configurations.

The fit never reads a bridge configuration: the caller that has one maps it first
(:func:`markovfork.llm_bridge.task_mapping.experiment`), so dependencies run one way (core <-
bridge <- cli, ``docs/architecture.md``). An :class:`Experiment` is plain data:

* ``arms``: the (rho, diversity) of each SFT arm, in the run's order;
* ``configs``: the simulator configuration of each arm (same evaluation epochs and ks);
* ``n_problems``: SFT trajectories per arm (the fit scales the simulated problem counts by
  ``max_train_problems / n_problems``);
* ``columns``: the results-table columns every row of the run shares (seed, arms, depth,
  n_samples, n_test, fork_format, answer), written into a prediction table;
* ``run_config``: the run's own configuration as a dict, saved with a fit and otherwise opaque.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Experiment"]


@dataclass(frozen=True)
class Experiment:
    """A run's SFT arms as simulator configurations (module docstring)."""

    arms: tuple[tuple[float, str], ...]
    configs: tuple  # one markovfork.sft.config.SimulationConfig per arm
    n_problems: int
    columns: dict = field(default_factory=dict)
    run_config: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.arms) != len(self.configs) or not self.arms:
            raise ValueError(f"an experiment needs one simulator configuration per arm (at least one), "
                             f"got {len(self.arms)} arms and {len(self.configs)} configurations")
        if not isinstance(self.n_problems, int) or self.n_problems < 1:
            raise ValueError(f"n_problems must be an integer >= 1, got {self.n_problems!r}")
        first = self.configs[0].train
        for cfg in self.configs[1:]:
            if cfg.train.eval_epochs != first.eval_epochs or tuple(cfg.train.ks) != tuple(first.ks):
                raise ValueError("every arm of an experiment must be evaluated at the same epochs and ks")

    @property
    def epochs(self) -> np.ndarray:
        """Evaluated epochs, 0 (the base model) first."""
        return np.array(sorted({0, *self.configs[0].train.eval_epochs}), dtype=np.int64)

    @property
    def ks(self) -> np.ndarray:
        return np.array(self.configs[0].train.ks, dtype=np.int64)
