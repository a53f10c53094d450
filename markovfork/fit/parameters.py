"""The simulator's free parameters: the ones with no bridge counterpart that a fit may move.

Each is fitted in a unit coordinate u in [0, 1] between its bounds, linear in log(value) for the
scale parameters (``log = True``) and in the value otherwise:

    u = (t(v) - t(low)) / (t(high) - t(low)),   t = log or identity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["FreeParameter", "PARAMETERS", "DEFAULT_FREE", "check_names", "to_unit", "from_unit"]


@dataclass(frozen=True)
class FreeParameter:
    """One free simulator parameter: bounds, the value used when it is neither fitted nor set,
    whether it is fitted on a log scale, and what it means."""

    name: str
    low: float
    high: float
    default: float
    log: bool
    meaning: str

    def _t(self, v: float) -> float:
        return math.log(v) if self.log else v

    def to_unit(self, v: float) -> float:
        return (self._t(v) - self._t(self.low)) / (self._t(self.high) - self._t(self.low))

    def from_unit(self, u: float) -> float:
        t = self._t(self.low) + u * (self._t(self.high) - self._t(self.low))
        return math.exp(t) if self.log else t

    def unit_derivative(self, v: float) -> float:
        """dv/du at ``v`` (turns a standard error in u into one in the value)."""
        span = self._t(self.high) - self._t(self.low)
        return v * span if self.log else span


# The feature scale enters through the memorisation rate M = lr scale^2 capacity (scale = sqrt(M /
# (lr capacity))): the gradient moves the shared logits and the skill at a rate lr and a training
# problem's own fork logits W phi_x at a rate lr scale^2 |phi_x|^2 ~ M n_train, so lr and M are
# separate knobs. Capacity then sets only how much of that leaks onto other problems (the cross
# terms, relative to the own ones, fall like 1 / sqrt(capacity n_train)). Before format 2 of the fit
# file the knob was m = lr scale^2 = M / capacity: fits of the bridge sweep slid along the valley m
# capacity = const to a bound of m (docs/fit.md). The integration error grows with lr and with M over
# capacity; at corners of these bounds the bridge predictor's 16 substeps are off by up to 0.37, so
# every fit checks its own (fit.solve integration_error; CurvePredictor first_epoch_ratio integrates
# the large lr of the bridge's first epoch).
PARAMETERS: dict[str, FreeParameter] = {
    p.name: p
    for p in (
        FreeParameter("lr", 0.3, 1000.0, 5.0, True,
                      "effective learning rate: gradient-flow time per SFT epoch (train.lr; with the bridge's "
                      "schedule: per epoch at the peak learning rate)"),
        FreeParameter("base_step_accuracy", 0.3, 0.995, 0.8, False,
                      "base model's probability of the correct step at a decipherable node"),
        FreeParameter("memorisation", 0.01, 2000.0, 1.0, True,
                      "memorisation rate M = lr feature_scale^2 capacity: how fast a training problem's own fork "
                      "logits W phi grow per epoch"),
        FreeParameter("capacity", 0.01, 8.0, 1.0, True,
                      "memorisation capacity: feature dimension per training problem d / n_train (continuous); "
                      "the smaller, the more one problem's memorised fork leaks onto others"),
        FreeParameter("forward_prior", 0.05, 0.95, 0.5, False,
                      "base model's share of the forward (fork) mode among forward and reverse"),
        FreeParameter("mode_memorisation", 0.001, 10.0, 1.0, True,
                      "per-problem memorisation rate of the mode choice relative to the arm choice's "
                      "(1: the same; near 0: the mode is a shared choice, not memorised per problem)"),
    )
}

DEFAULT_FREE = ("lr", "base_step_accuracy", "memorisation", "capacity")  # fitted unless told otherwise


def check_names(names, what: str = "free parameters") -> tuple[str, ...]:
    """``names`` as a tuple, each a declared parameter (ValueError naming the first that is not)."""
    names = tuple(names)
    for name in names:
        if name not in PARAMETERS:
            raise ValueError(f"{what} must be among {list(PARAMETERS)}, got {name!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} must not repeat a name, got {list(names)}")
    return names


def to_unit(names, values: dict) -> list[float]:
    return [PARAMETERS[n].to_unit(values[n]) for n in names]


def from_unit(names, unit) -> dict[str, float]:
    return {n: PARAMETERS[n].from_unit(float(u)) for n, u in zip(names, unit)}
