"""Predicted pass@k curves of a bridge run's SFT arms as a function of the free parameters.

For each arm (rho, diversity) of the run, the simulator configuration is the one its
:class:`~markovfork.fit.experiment.Experiment` holds (a bridge run's: mapped by
:func:`markovfork.llm_bridge.task_mapping.experiment`), run with the analytic engine (exact
expectations; the measurement noise is the fit's business). Two devices make the prediction a
cheap, smooth function of the parameters, evaluated in one process on compiled kernels:

* **Fewer problems.** The SFT dynamics depend on the training set through d / n_train (the
  capacity) and the per-problem feature scale, not its size: with ``max_train_problems`` below the
  run's N, every arm is simulated with its distinct-problem count scaled by the same factor.
* **A continuous capacity.** The features of each arm are drawn once, wider than the bounds
  allow (D columns), and a capacity c weights column j by w_j, so that every Gram matrix
  phi phi'^T = sum_j w_j phi_j phi'_j moves smoothly with c. The weights are a logistic ramp
  of width tau = ``capacity_ramp`` n_train columns around c n_train,

      w_j = 1 / (1 + exp(-(c n_train - j - 1/2) / tau)),   sum_j w_j ~ c n_train,

  so that the effective dimension is c n_train and a change of c moves many columns at once
  (with one column at a time, the derivative in c would follow the draw of a single column and
  the Jacobian would be noise). ``capacity_ramp = 0`` is a hard cut: the first floor(c n_train)
  columns and the next one weighted by the fractional part; at c n_train = D the features are
  then the simulator's own (``simulate`` with feature_dim D gives the same curves).
  ``feature_spectrum = "exponential"`` (the bridge fit's predictor) weights the columns
  w_j = exp(-(j + 1/2) / (c n_train)) instead: the same effective dimension sum_j w_j ~ c n_train,
  but a decaying spectrum, every column moving with c. Fits of the bridge sweep with the ramp ended
  on capacity's lower bound, where the ramp's own width sets a soft, decaying spectrum of ~28
  effective columns (of 400); the exponential spectrum fits the sweep better (reduced chi2 0.94
  against 0.97) with capacity inside its bounds (docs/fit.md).

Options that bring the simulator closer to a bridge run (``markovfork.fit.heterogeneity``; all off
by default, so a fit saved without them predicts as it did): ``base_spread`` gives each problem
its own base skill from a distribution fitted to the base's per-problem counts; ``lr_schedule``
scales each epoch's gradient-flow time by the bridge's mean learning-rate multiplier in that
epoch (warm-up, cosine); ``first_epoch_ratio`` spaces the first epoch's integration steps
geometrically (accurate at a large ``lr``, where the flow moves fastest at the start);
``skill_per_mode`` gives the forward, reverse and rationale walks each its own decipherable-step
skill, learnt from that mode's SFT steps only (``sft.model``).

The table is ``(arms, epochs, ks)``: pass@k on the test problems after each evaluation epoch
(epoch 0 is the base model).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from markovfork.engines.exact import exact_pass_at_k, success_probability
from markovfork.fit.heterogeneity import (base_success_curve, bridge_lr_factors, check_spread, skill_for_success,
                                          spread_quantiles)
from markovfork.fit.parameters import PARAMETERS, check_names
from markovfork.model.policy import transition_probs
from markovfork.fit.experiment import Experiment
from markovfork.plumbing.seeds import child_rng
from markovfork.sft.config import MAX_STEPS_PER_EPOCH
from markovfork.sft.train import derive_seeds, train_analytic
from markovfork.tasks.path_star import MAX_FEATURE_SCALE

# the largest change of a pass@k table with 4x the substeps that counts as integrated (fit.solve warns above it)
INTEGRATION_TOLERANCE = 0.005

__all__ = ["CurvePredictor", "pass_at_k_table"]

CAPACITY_HIGH_BEFORE = 2.0  # capacity's upper bound before issue 20 (the features' first columns are drawn as then)


def pass_at_k_table(success: np.ndarray, ks) -> np.ndarray:
    """(..., K) mean over the last axis (problems; nan entries left out) of 1 - (1 - s)^k."""
    s = np.asarray(success, dtype=np.float64)
    flat = s.reshape(-1, s.shape[-1])
    out = np.array([exact_pass_at_k(r[~np.isnan(r)], ks) for r in flat])
    return out.reshape(*s.shape[:-1], len(np.atleast_1d(ks)))


FEATURE_SPECTRA = ("ramp", "exponential")  # how capacity weights the feature columns (module docstring)


def feature_scale(values: dict) -> float:
    """The feature scale of memorisation rate M and capacity c: M = lr scale^2 c (fit.parameters)."""
    return math.sqrt(values["memorisation"] / (values["lr"] * values["capacity"]))


class CurvePredictor:
    """pass@k of every SFT arm of ``experiment`` (an :class:`Experiment`) for given free-parameter values.

    ``fixed`` sets parameters that are not passed to :meth:`predict` (default: each one's
    declared default). ``seed`` seeds the simulated task (features, arms, SFT subset);
    ``steps_per_epoch`` is the analytic engine's integration steps per epoch."""

    def __init__(self, experiment: Experiment, *, fixed: dict | None = None, max_train_problems: int = 400, steps_per_epoch: int = 16,
                 seed: int = 0, capacity_ramp: float = 0.1, base_spread: dict | None = None,
                 lr_schedule: bool = False, first_epoch_ratio: float | None = None, feature_spectrum: str = "ramp",
                 skill_per_mode: bool = False, threads: int = 1):
        fixed = dict(fixed or {})
        check_names(fixed, "fixed parameters")
        if not isinstance(max_train_problems, int) or max_train_problems < 1:
            raise ValueError(f"max_train_problems must be an integer >= 1, got {max_train_problems!r}")
        if not isinstance(experiment, Experiment):
            raise ValueError(f"CurvePredictor needs an Experiment (a bridge run: map it with "
                             f"markovfork.llm_bridge.task_mapping.experiment), got {type(experiment).__name__}")
        self.experiment = experiment
        self.fixed = {name: p.default for name, p in PARAMETERS.items()} | fixed
        self.arms = list(experiment.arms)
        self.epochs = experiment.epochs
        self.ks = experiment.ks
        self.scale = min(1.0, max_train_problems / experiment.n_problems)
        if not (isinstance(capacity_ramp, (int, float)) and 0.0 <= capacity_ramp <= 1.0):
            raise ValueError(f"capacity_ramp must be in [0, 1], got {capacity_ramp!r}")
        self.capacity_ramp = float(capacity_ramp)
        if feature_spectrum not in FEATURE_SPECTRA:
            raise ValueError(f"feature_spectrum must be one of {list(FEATURE_SPECTRA)}, got {feature_spectrum!r}")
        self.feature_spectrum = feature_spectrum
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
        self.threads = threads  # arms run side by side (not a setting: the curves do not depend on it)
        self.base_spread = None if base_spread is None else check_spread(base_spread)
        if first_epoch_ratio is not None and not (isinstance(first_epoch_ratio, (int, float)) and 1.0 <= first_epoch_ratio <= 2.0):
            raise ValueError(f"first_epoch_ratio must be None or in [1, 2], got {first_epoch_ratio!r}")
        self.first_epoch_ratio = None if first_epoch_ratio is None else float(first_epoch_ratio)
        self.lr_factors = bridge_lr_factors(experiment.run_config, int(self.epochs[-1])) if lr_schedule else None
        if lr_schedule and self.lr_factors is None:
            raise ValueError("lr_schedule needs the run's SFT schedule (a bridge run_config with an [sft] section "
                             "and batch_size, not tokens_per_step)")
        self._settings = dict(max_train_problems=max_train_problems, steps_per_epoch=steps_per_epoch, seed=seed,
                              capacity_ramp=capacity_ramp)
        if base_spread is not None:  # saved only when used: an older fit's settings stay what they were
            self._settings["base_spread"] = self.base_spread
        if lr_schedule:
            self._settings["lr_schedule"] = True
        if first_epoch_ratio is not None:
            self._settings["first_epoch_ratio"] = self.first_epoch_ratio
        if feature_spectrum != "ramp":
            self._settings["feature_spectrum"] = feature_spectrum
        if not isinstance(skill_per_mode, bool):
            raise ValueError(f"skill_per_mode must be True or False, got {skill_per_mode!r}")
        self.skill_per_mode = skill_per_mode
        if skill_per_mode:
            self._settings["skill_per_mode"] = True
        self._curves: dict = {}  # base success over the skill grid, per forward_prior
        self.evaluations = 0  # calls of predict
        self.seconds = 0.0  # time spent in them
        self._arms = [self._prepare(cfg, steps_per_epoch, seed) for cfg in experiment.configs]

    def _prepare(self, cfg, steps_per_epoch: int, seed: int) -> dict:
        cfg = replace(cfg, train=replace(cfg.train, steps_per_epoch=steps_per_epoch))
        n_train = max(1, round(cfg.task.n_train * self.scale))
        # the first columns as drawn when capacity's bound was 2 (older fits predict as they did), the
        # columns that the wider bound needs from a stream of their own, centred the same way
        d_old = math.ceil((CAPACITY_HIGH_BEFORE + 8 * self.capacity_ramp) * n_train)
        d_max = max(d_old, math.ceil((PARAMETERS["capacity"].high + 8 * self.capacity_ramp) * n_train))
        task = replace(cfg.task, n_train=n_train, feature_dim=d_old, feature_scale=1.0)
        cfg = replace(cfg, task=task, train=replace(cfg.train, epochs=int(self.epochs[-1])), seed=seed)
        task_seed = derive_seeds(seed)["task"]
        full = task.build(task_seed)  # the features, drawn once
        train_f, test_f = full.train.features, full.test.features
        if d_max > d_old:
            extra = child_rng(seed, "capacity-columns").normal(0.0, 1.0, size=(train_f.shape[0] + test_f.shape[0], d_max - d_old))
            extra -= extra[: train_f.shape[0]].mean(axis=0, keepdims=True)
            train_f = np.hstack([train_f, extra[: train_f.shape[0]]])
            test_f = np.hstack([test_f, extra[train_f.shape[0]:]])
        out = dict(config=cfg, task_seed=task_seed, train_features=train_f, test_features=test_f)
        if self.base_spread is not None:  # each problem's base success rate (module docstring)
            out["q_train"] = spread_quantiles(self.base_spread, task.n_train, seed, "train")
            out["q_test"] = spread_quantiles(self.base_spread, task.n_test, seed, "test")
        return out

    def skill_offsets(self, arm: int, ps, cfg) -> tuple[np.ndarray, np.ndarray] | None:
        """(train, test) per-problem skill offsets delta_x of arm ``arm`` (None without a base spread)."""
        if self.base_spread is None:
            return None
        key = cfg.task.mode_prior
        if key not in self._curves:
            self._curves[key] = base_success_curve(ps, cfg.train.decoding)
        curve, arm_ = self._curves[key], self._arms[arm]
        base = cfg.task.base_skill
        return (skill_for_success(arm_["q_train"], curve) - base, skill_for_success(arm_["q_test"], curve) - base)

    def settings(self) -> dict:
        """The predictor's own settings (saved with a fit)."""
        return dict(self._settings)

    def values(self, free: dict) -> dict[str, float]:
        """All parameter values: ``free`` over the fixed ones (each checked against its bounds)."""
        check_names(free)
        out = self.fixed | {k: float(v) for k, v in free.items()}
        for name, v in out.items():
            p = PARAMETERS[name]
            if not (np.isfinite(v) and p.low <= v <= p.high):
                raise ValueError(f"{name} must be in [{p.low:g}, {p.high:g}], got {v!r}")
        return out

    def config(self, arm: int, free: dict | None = None):
        """The simulator configuration arm ``arm`` runs with at these parameters (its features
        differ: see the module docstring). Its feature_scale is capped at the simulator's limit
        100: at a corner of the bounds (large memorisation, small lr and capacity) the predictor's
        own features carry a larger scale, which ``simulate`` would refuse."""
        v = self.values(free or {})
        cfg = self._arms[arm]["config"]
        fwd, rev, rat = cfg.task.mode_prior
        rest = fwd + rev
        task = replace(cfg.task, feature_dim=0, feature_scale=min(feature_scale(v), MAX_FEATURE_SCALE),
                       base_step_accuracy=v["base_step_accuracy"],
                       mode_prior=(v["forward_prior"] * rest, (1.0 - v["forward_prior"]) * rest, rat))
        return replace(cfg, task=task, train=replace(cfg.train, lr=v["lr"]))

    def success(self, free: dict | None = None) -> np.ndarray:
        """(arms, epochs, test problems) exact success probability of one sample of the simulated
        post-trained model on each test problem (arms with different problem counts: padded with nan)."""
        return self.evaluate(free)[0]

    def evaluate(self, free: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(success, target-arm probability), each (arms, epochs, test problems): :meth:`success`,
        and each test problem's probability of its correct arm at the forward fork
        (``PathStar.target_arm_probability``; the bridge's ``q_target``; ``markovfork.fit.forks``).
        The arms are independent: with ``threads`` > 1 they run side by side (the kernels release
        the GIL; the result does not depend on the number of threads)."""
        t0 = time.perf_counter()
        v = self.values(free or {})
        width = max(a["test_features"].shape[0] for a in self._arms)
        out = np.full((2, len(self._arms), self.epochs.size, width), np.nan)
        jobs = [self._arm_job(a, free, v) for a in range(len(self._arms))]  # sequential: fills the base-curve cache
        if self.threads > 1 and len(jobs) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(self.threads, len(jobs))) as pool:
                rows = list(pool.map(lambda job: self._arm_success(*job), jobs))
        else:
            rows = [self._arm_success(*job) for job in jobs]
        for a, both in enumerate(rows):
            out[:, a, :, : both.shape[2]] = both
        self.evaluations += 1
        self.seconds += time.perf_counter() - t0
        return out[0], out[1]

    def _arm_job(self, a: int, free, v: dict):
        """The simulated task, configuration and skill offsets of arm ``a`` at values ``v``."""
        arm = self._arms[a]
        cfg = self.config(a, free)
        ps = cfg.task.build(arm["task_seed"])
        ps = replace(ps, train=replace(ps.train, features=self._features(arm["train_features"], cfg, v)),
                     test=replace(ps.test, features=self._features(arm["test_features"], cfg, v)))
        return ps, cfg, self.skill_offsets(a, ps, cfg), v["mode_memorisation"]

    def _arm_success(self, ps, cfg, offsets, mode_memorisation: float) -> np.ndarray:
        """(2, epochs, test problems): success probabilities and target-arm probabilities of one arm."""
        row = {int(e): i for i, e in enumerate(self.epochs)}
        out = np.full((2, self.epochs.size, len(ps.test)), np.nan)
        for state in train_analytic(ps, cfg.mix, cfg.train, cfg.seed, lr_factors=self.lr_factors, skill_offset=offsets,
                                    first_epoch_ratio=self.first_epoch_ratio, mode_memorisation=mode_memorisation,
                                    skill_per_mode=self.skill_per_mode):
            if state.epoch in row:
                logits = state.test_logits()
                probs = transition_probs(ps.tree, logits, cfg.train.decoding)
                out[0, row[state.epoch]] = success_probability(ps.tree, probs, ps.test.correct, ps.test.start)
                out[1, row[state.epoch]] = ps.target_arm_probability(logits)
        return out

    def finer(self, factor: int) -> "CurvePredictor":
        """The same predictor with ``factor`` times the analytic flow's substeps per epoch."""
        settings = self.settings() | {"steps_per_epoch": self._settings["steps_per_epoch"] * factor}
        return CurvePredictor(self.experiment, fixed=self.fixed, threads=self.threads, **settings)

    def integration_error(self, free: dict | None = None, factor: int = 4) -> float:
        """Largest change of the pass@k table at ``free`` when the analytic flow takes ``factor``
        times the substeps per epoch (the fit's check of its own step size)."""
        return float(np.nanmax(np.abs(self.finer(factor).predict(free) - self.predict(free))))

    def converged_success(self, free: dict | None = None, error: float | None = None,
                          tolerance: float = INTEGRATION_TOLERANCE, factor: int = 4, most: int = 64):
        """(success, substep multiple): the success probabilities at ``free`` of this predictor when
        its pass@k table moves by at most ``tolerance`` with ``factor`` times the substeps (``error``:
        that change, if already measured, e.g. the fit's ``integration_error``), else of the first
        finer one (``factor``, ``factor``^2, ... times the substeps, at most ``most`` and the flow's
        ``MAX_STEPS_PER_EPOCH``) whose next
        refinement moves it by at most ``tolerance`` (the finest tried, if none). A fit's fitted arms can be accurate where a
        held-out arm is not: at a large lr the coarse flow overshoots on a mixed arm's mode choice."""
        success = self.success(free)
        if error is not None and error <= tolerance:
            return success, 1
        multiple, steps = 1, self._settings["steps_per_epoch"]
        while multiple * factor <= most and steps * multiple * factor <= MAX_STEPS_PER_EPOCH:
            fine = self.finer(multiple * factor).success(free)
            change = float(np.nanmax(np.abs(pass_at_k_table(fine, self.ks) - pass_at_k_table(success, self.ks))))
            if change <= tolerance:
                break
            success, multiple = fine, multiple * factor
        return success, multiple

    def predict(self, free: dict | None = None) -> np.ndarray:
        """(arms, epochs, ks) exact pass@k, mean over test problems of 1 - (1 - s_x)^k."""
        return pass_at_k_table(self.success(free), self.ks)

    def converged_predict(self, free: dict | None = None, error: float | None = None) -> np.ndarray:
        """:meth:`predict` from :meth:`converged_success` (integrated until it converges)."""
        return pass_at_k_table(self.converged_success(free, error)[0], self.ks)

    def _features(self, full: np.ndarray, cfg, v: dict) -> np.ndarray:
        """The columns of ``full`` weighted by sqrt(w_j) (module docstring), times the feature scale
        sqrt(memorisation / (lr capacity)) (:func:`feature_scale`)."""
        d = v["capacity"] * cfg.task.n_train
        scale = feature_scale(v)
        if self.feature_spectrum == "exponential" or self.capacity_ramp > 0:
            j = np.arange(full.shape[1])
            if self.feature_spectrum == "exponential":  # effective dimension sum_j w_j ~ d
                weight = np.exp(-(j + 0.5) / d)
            else:
                tau = self.capacity_ramp * cfg.task.n_train
                weight = 0.5 * (1.0 + np.tanh((d - j - 0.5) / (2.0 * tau)))  # the logistic, without overflow
            keep = int(np.searchsorted(-weight, -1e-12))  # columns with a weight above 1e-12
            return full[:, :keep] * (scale * np.sqrt(weight[:keep]))
        whole = min(int(math.floor(d)), full.shape[1])
        frac = d - whole if whole < full.shape[1] else 0.0
        cols = full[:, : whole + (1 if frac > 0 else 0)].copy()
        if frac > 0:
            cols[:, whole] *= math.sqrt(frac)
        if scale != 1.0:
            cols *= scale
        return cols
