"""Branch-heavy SFT data and a length budget (arXiv 2604.01702): why a lower training loss can
come with lower success, and what filtering the most-branching trajectories does.

**Task.** A chain of D decision points, each with b children: m correct (``n_correct``, default 1)
and b - m wrong. Every step is one token. At point i the solver emits a child: a correct child
moves it to point i + 1; a wrong child enters a dead-end branch of h tokens (``branch_tokens``; the choice is
the branch's first token). Each entry hides a contradiction at token g ~ Uniform{1..h}, drawn afresh
per entry; the tokens of the branch are forced (no choice) except at the contradiction, where the
solver either backtracks (one token, back to point i) or goes on (forced tokens to token h, then a
wrong answer: failure). After point D - 1 the answer follows (one forced token). A budget of T
tokens cuts generation: success = a correct answer with at most T tokens in all. A convergent
trajectory has D + 1 tokens.

**Policy** (two shared parameters). At a decision point each correct child has logit a, each
wrong one 0: P(correct) = m e^a / (m e^a + b - m). At a contradiction the backtrack logit is c
(going on: 0): q = sigma(c). No memory: a point revisited after a backtrack has the same logits.
Base policy: a = 1, c = 0.

**Teachers** (both always correct). At each decision point the teacher with branching rate beta
enters a uniformly random wrong branch with probability beta, walks g ~ Uniform{1..h} tokens to the
contradiction and backtracks, and repeats (probability beta each time, at most ``retries`` entries
per point; None: unbounded), then emits a uniformly random correct child. beta = 0: convergent.
Per trajectory: branch count B (wrong entries) and length L = D + 1 + sum_k (g_k + 1).

**Filter.** Drop the floor(f N) trajectories with the most branches (ties at random); analytically,
drop the top share f of the branch-count distribution.

**SFT.** Token-averaged cross-entropy on the trajectories: every token counts, forced tokens
(branch interiors, the answer) have zero loss, so branches dilute the loss per token. The loss
depends only on the totals of correct decisions, wrong decisions, backtracks and tokens
(:mod:`~markovfork.branching.train`); the analytic engine uses their expectations under the
(filtered) teacher, the sampled one a dataset of N trajectories and minibatch SGD.

**Evaluation.** Exact success within the budget by a dynamic program over (decision point, tokens
used) (:mod:`~markovfork.branching.evaluate`), and by rollouts (Numba, xoshiro streams).

Modules: ``task`` (task, policy, teachers), ``data`` (trajectories, filter, counts), ``train``
(loss, gradient, engines), ``evaluate`` (DP, rollouts), ``run`` (config and table).
"""

from markovfork.branching.data import Counts, Trajectories, expected_counts, filter_most_branching, teacher_trajectories
from markovfork.branching.evaluate import evaluate_rollouts, success_unbounded, success_within_budget
from markovfork.branching.run import BranchingConfig, run_branching
from markovfork.branching.task import BranchingTask, Params, Teacher
from markovfork.branching.train import loss_and_gradient, train_sft

__all__ = [
    "BranchingTask", "Params", "Teacher", "Trajectories", "Counts", "teacher_trajectories", "filter_most_branching",
    "expected_counts", "loss_and_gradient", "train_sft", "success_within_budget", "success_unbounded",
    "evaluate_rollouts", "BranchingConfig", "run_branching",
]
