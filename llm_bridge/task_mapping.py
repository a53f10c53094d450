"""One task definition: a bridge run's configuration as simulator configurations.

A bridge :class:`~markovfork.llm_bridge.config.RunConfig` trains one SFT model per (diversity,
rho) arm of its ``[sft]`` section; :func:`simulation_configs` maps each arm to the
:class:`~markovfork.sft.config.SimulationConfig` of the same task, mix and evaluation, and
:func:`simulation_config` maps one arm. The correspondence of the two tasks (counting the steps
that need a look-up; copying a name from the prompt is not a step):

========================  =====================================  ==========================
bridge                    simulator                              why
========================  =====================================  ==========================
task.arms = A             task.arms = A                          branches of the fork
task.depth = D            task.depth = D                         forward: the arm choice, then
(nodes per arm)           (nodes per arm, the same meaning)      D - 1 look-ups (a2 .. aD)
                          (reverse: D look-ups)                  reverse: aD-1 .. a1, s
                          task.rationale_steps = D               rationale: t's chain back to s
base: forward and reverse task.mode_prior = (1/2, 1/2, 0)        the base's undirected
walks with equal odds     (fork_format "rationale":              derivations never use "?";
                          (0.49, 0.49, 0.02))                    a zero prior stays zero
sft.n_problems = N        task.n_train = N (data);               distinct training problems
                          N - min(F, N - F) (problem),
                          F = round(rho N)
sft.rhos, diversities     rho, diversity                         fork_format "rationale":
                                                                 diversity "rationale"
sft.epochs                train.epochs                           passes over the SFT set
eval.epochs (+ 0)         train.eval_epochs
eval.n_test               task.n_test
eval.ks, eval.n_samples   train.ks, train.n_samples
eval.sampling             train.decoding (temperature, top_k,    the same warpers on the
                          top_p, min_p)                          step distribution
spread_first = M,         train.spread = Spread(M, at=0,         position 0 is the mode
spread_position = 0,      min_p=P)                               token, the root's step;
spread_min_p = P                                                 positions > 0: refused
seed                      seed                                   (different streams)
========================  =====================================  ==========================

Spread-first decoding maps exactly at response position 0: the bridge forces sample j onto
candidate j mod m of the first token's processed distribution, the simulator onto child j mod m
of the root's decoded step distribution (:mod:`markovfork.model.spread`, ``at = 0``), and both tokens
and steps choose the mode. (The bridge ranks the whole vocabulary: a non-mode token that a trained
model still gives ``spread_min_p`` of the top would be a candidate there and not here.) A later
position is no single tree depth (the arm choice is token 2 of a forward path response, token 5
of an arith one, and a look-up in reverse): refused.

Problem-level diversity differs in detail: the bridge shows B = min(F, N - F) problems in both
formats and the rest in the majority format; the simulator shows every one of its distinct
problems in both formats with weights rho and 1 - rho. The two coincide at rho = 1/2.

Everything else in the simulator has no bridge counterpart and is *free* (fitted or set by the
caller through ``free``): the effective learning rate per epoch (``train.lr``), the memorisation
capacity and strength (``task.feature_dim``, ``task.feature_scale``), the base skill at the
decipherable steps (``task.base_step_accuracy``), the dead ends per step (``task.branching``),
the integration steps (``train.steps_per_epoch``) and the engine. The bridge's model size,
optimiser and base schedule have no simulator counterpart; their effect is what the free
parameters absorb (``docs/fit.md``). This module imports no torch.
"""

from __future__ import annotations

from markovfork.llm_bridge.config import RunConfig
from markovfork.llm_bridge.run_files import sft_settings
from markovfork.fit.experiment import Experiment
from markovfork.model.policy import Decoding
from markovfork.sft.config import SimulationConfig, TrainSettings
from markovfork.tasks.path_star import PathStarTask, distinct_problems
from markovfork.model.spread import Spread

__all__ = ["BASE_MODE_PRIOR", "RATIONALE_MODE_PRIOR", "FREE_FIELDS", "sft_arms", "simulation_config",
           "simulation_configs", "distinct_problems", "experiment", "RESULT_LABELS"]

BASE_MODE_PRIOR = (0.5, 0.5, 0.0)  # the bridge base: forward or reverse walks with equal odds, never "?"
# with a rationale fork format the simulator needs some prior on "?": a zero prior is a -inf logit
# that SFT cannot raise (the bridge's network learns the new first token from scratch)
RATIONALE_MODE_PRIOR = (0.49, 0.49, 0.02)
# simulator fields without a bridge counterpart, settable through ``free`` (dotted as in load_config)
FREE_FIELDS = (
    "train.lr", "train.steps_per_epoch", "task.feature_dim", "task.feature_scale",
    "task.base_step_accuracy", "task.branching", "task.mode_prior", "engine",
)


def sft_arms(run: RunConfig) -> list[tuple[float, str]]:
    """The (rho, diversity) arms a bridge run trains, in its order (``counts.sft_settings``:
    problem-level arms at rho 0 and 1 are skipped when data-level ones exist, the same mix)."""
    return [(rho, diversity) for diversity, rho in sft_settings(run.sft.diversities, run.sft.rhos)]


def simulation_config(run: RunConfig, rho: float, diversity: str, free: dict | None = None) -> SimulationConfig:
    """The simulator configuration of the bridge arm (``rho``, ``diversity``) of ``run``.

    ``free`` sets simulator fields that have no bridge counterpart, by dotted name (one of
    :data:`FREE_FIELDS`, e.g. ``{"train.lr": 5.0, "task.feature_dim": 800}``); the rest keep the
    simulator's defaults. Raises ``ValueError`` for a bridge setting the simulator cannot
    represent (depth 1, spread-first decoding after the first token, a diversity the run does
    not use)."""
    free = dict(free or {})
    unknown = sorted(set(free) - set(FREE_FIELDS))
    if unknown:
        raise ValueError(f"free must name simulator fields without a bridge counterpart {list(FREE_FIELDS)}, got {unknown}")
    if diversity not in ("data", "problem"):
        raise ValueError(f"diversity must be 'data' or 'problem', got {diversity!r}")
    if run.task.depth < 2:
        raise ValueError(f"the simulator needs a bridge depth >= 2 nodes per arm (the arm choice and >= 1 look-up), got {run.task.depth}")
    sampling = run.eval.sampling
    if sampling.spread_first and sampling.spread_position:
        raise ValueError(
            f"the simulator spreads at a tree depth, and response position {sampling.spread_position} is no single "
            f"depth (only spread_position = 0, the mode token, maps), got spread_first = {sampling.spread_first}"
        )
    if run.sft.fork_format == "rationale":
        if diversity == "problem":
            raise ValueError("the simulator's rationale mix is data-level only, got fork_format 'rationale' with diversity 'problem'")
        sim_diversity = "rationale"
    else:
        sim_diversity = diversity
    task = PathStarTask(
        arms=run.task.arms,
        depth=run.task.depth,
        rationale_steps=run.task.depth,
        mode_prior=free.pop("task.mode_prior", RATIONALE_MODE_PRIOR if sim_diversity == "rationale" else BASE_MODE_PRIOR),
        n_train=distinct_problems(run.sft.n_problems, rho, diversity),
        n_test=run.eval.n_test,
        **{k.split(".", 1)[1]: free.pop(k) for k in list(free) if k.startswith("task.")},
    )
    train = TrainSettings(
        epochs=run.sft.epochs,
        eval_epochs=tuple(sorted({0, *run.eval.epochs})),
        ks=tuple(run.eval.ks),
        n_samples=run.eval.n_samples,
        decoding=Decoding(temperature=sampling.temperature, top_k=sampling.top_k, top_p=sampling.top_p, min_p=sampling.min_p),
        spread=Spread(sampling.spread_first, 0, sampling.spread_min_p) if sampling.spread_first else Spread(),
        **{k.split(".", 1)[1]: free.pop(k) for k in list(free) if k.startswith("train.")},
    )
    return SimulationConfig(task=task, train=train, rho=float(rho), diversity=sim_diversity, seed=run.seed, **free)


def simulation_configs(run: RunConfig, free: dict | None = None) -> list[SimulationConfig]:
    """One simulator configuration per SFT arm of ``run`` (:func:`sft_arms`), in the run's order."""
    return [simulation_config(run, rho, diversity, free) for rho, diversity in sft_arms(run)]



RESULT_LABELS = ("seed", "arms", "depth", "n_samples", "n_test", "fork_format", "answer")  # shared by a run's rows


def experiment(run: RunConfig, free: dict | None = None) -> Experiment:
    """``run`` as the fit sees it: its SFT arms (:func:`sft_arms`), their simulator configurations
    (:func:`simulation_configs`), the SFT set size, the results-table columns its rows share
    (:data:`RESULT_LABELS`) and the run's configuration (saved with a fit)."""
    columns = dict(seed=run.seed, arms=run.task.arms, depth=run.task.depth, n_samples=run.eval.n_samples,
                   n_test=run.eval.n_test, fork_format=run.sft.fork_format, answer=run.task.answer)
    return Experiment(arms=tuple(sft_arms(run)), configs=tuple(simulation_configs(run, free)),
                      n_problems=run.sft.n_problems, columns=columns, run_config=run.to_dict())
