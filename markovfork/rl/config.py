"""Settings of an RL post-training run: the update rule, its hyper-parameters and the engine.

Methods (the update each uses is in :mod:`markovfork.rl.objectives`; the equations are in
``docs/posttraining.md``):

* ``reinforce``: REINFORCE with the 0/1 verifiable reward, no baseline;
* ``reinforce-baseline``: REINFORCE with a leave-one-out baseline over the group (RLOO);
* ``raft``: SFT on the policy's own correct samples (each group's correct samples, averaged);
* ``ppo``: PPO with per-step ratio clipping, ``ppo_epochs`` gradient steps per batch;
* ``grpo``: group-relative advantages ``(r_i - mean r) / (std r + eps)`` over ``group_size``;
* ``passk``: the pass@k objective ``1 - (1 - p)^k`` (closed-form advantage, Chen et al. 2025);
* ``unlikely``: REINFORCE with an unlikeliness penalty on correct samples that are more likely
  than other correct samples of their group (after He et al. 2025).

Options shared by every method: a KL penalty to the starting policy (``kl``, beta) and "reject
easy instances" (``reject_easy`` = r: no update on an instance where one of r fresh samples of
the reference policy, ``reject_reference`` = ``base`` or ``current``, is correct).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from markovfork.plumbing import checks

__all__ = ["METHODS", "ENGINES", "REJECT_REFERENCES", "RLConfig", "GRPO_EPS"]

METHODS = ("reinforce", "reinforce-baseline", "raft", "ppo", "grpo", "passk", "unlikely")
ENGINES = ("analytic", "sampled")
REJECT_REFERENCES = ("base", "current")
GRPO_EPS = 1e-6  # added to the group's standard deviation in the GRPO advantage

# positions in the packed parameter arrays the kernels take (see RLConfig.packed)
I_METHOD, I_ITERATIONS, I_GROUP, I_BATCH, I_REJECT, I_REJECT_CURRENT, I_PPO_EPOCHS, I_PASSK, I_TRAIN_SKILL = range(9)
F_LR, F_KL, F_CLIP, F_UNLIKELY = range(4)


@dataclass(frozen=True)
class RLConfig:
    """One RL run. ``group_size`` rollouts per instance; ``batch_instances`` instances per
    iteration (sampled engine; the analytic engine takes the exact expectation over every
    instance at once)."""

    method: str = "grpo"
    engine: str = "analytic"
    iterations: int = 200
    lr: float = 1.0
    group_size: int = 8
    batch_instances: int = 1
    kl: float = 0.0  # beta of the KL penalty to the starting policy (0: off)
    reject_easy: int = 0  # r fresh samples decide whether an instance is easy (0: off)
    reject_reference: str = "base"  # which policy draws those r samples
    clip: float = 0.2  # PPO ratio clipping epsilon
    ppo_epochs: int = 4  # PPO gradient steps per batch of rollouts
    passk_k: int = 4  # k of the pass@k objective
    unlikeliness: float = 0.5  # lambda of the unlikeliness penalty
    train_skill: bool = True  # train the shared decipherable-step skill (fork task)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.reject_reference not in REJECT_REFERENCES:
            raise ValueError(
                f"reject_reference must be one of {', '.join(REJECT_REFERENCES)}, got {self.reject_reference!r}"
            )
        checks.integer("iterations", self.iterations, 0, 10**8)
        checks.real("lr", self.lr, 0.0, low_open=True)
        checks.integer("group_size", self.group_size, 1, 10**6)
        checks.integer("batch_instances", self.batch_instances, 1, 10**6)
        checks.real("kl", self.kl, 0.0)
        checks.integer("reject_easy", self.reject_easy, 0, 10**6)
        checks.real("clip", self.clip, 0.0, 1.0, low_open=True)
        checks.integer("ppo_epochs", self.ppo_epochs, 1, 10**4)
        checks.integer("passk_k", self.passk_k, 1, 10**6)
        checks.real("unlikeliness", self.unlikeliness, 0.0, 1.0)
        checks.seed(self.seed)
        if self.method == "grpo" and self.group_size < 2:
            raise ValueError(f"method grpo needs group_size >= 2 (a group of one has no relative advantage), got {self.group_size}")
        if self.engine == "sampled" and self.method in ("reinforce-baseline", "ppo", "unlikely") and self.group_size < 2:
            raise ValueError(f"method {self.method} needs group_size >= 2 (a leave-one-out baseline), got {self.group_size}")
        if self.method == "passk" and self.engine == "sampled" and self.group_size < self.passk_k + 1:
            raise ValueError(
                f"method passk needs group_size >= passk_k + 1 = {self.passk_k + 1} (a leave-one-out "
                f"pass@k baseline), got {self.group_size}"
            )

    def packed(self) -> tuple[np.ndarray, np.ndarray]:
        """(int64 array, float64 array) of the settings, indexed by the I_* and F_* constants."""
        ints = np.array(
            [METHODS.index(self.method), self.iterations, self.group_size, self.batch_instances,
             self.reject_easy, self.reject_reference == "current", self.ppo_epochs, self.passk_k,
             bool(self.train_skill)],
            dtype=np.int64,
        )
        floats = np.array([self.lr, self.kl, self.clip, self.unlikeliness], dtype=np.float64)
        return ints, floats
