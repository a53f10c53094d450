"""The two-group map against the package's RL engine, and the likelihood against brute-force
integration."""

import numpy as np
import pytest
from scipy import special, stats

from markovfork.metrics.extrapolate import BetaBinomialFit
from markovfork.model.problems import Problems
from markovfork.real.model import (
    MarkovParams, adapt_nodes, base_posterior, common_share, evaluate, log_likelihood, logit_map_components,
    markov_components, split_types, tilt, two_group_map,
)
from markovfork.rl.config import RLConfig
from markovfork.rl.train import RLStart, tabular_model, train_rl
from markovfork.model.tree import DECIPHERABLE, LEAF, TreeBuilder


def _two_group_population(u_e, u_h):
    """Root -> g_i (one per problem) -> E_i, H_i -> correct, wrong leaves; ids per problem."""
    b = TreeBuilder()
    root = b.add(DECIPHERABLE)
    ids = []
    for _ in u_e:
        g = b.add(DECIPHERABLE, 1.0 / len(u_e), root)
        e, h = b.add(DECIPHERABLE, 0.5, g), b.add(DECIPHERABLE, 0.5, g)
        leaves = [b.add(LEAF, 0.5, e), b.add(LEAF, 0.5, e), b.add(LEAF, 0.5, h), b.add(LEAF, 0.5, h)]
        ids.append((g, e, h, *leaves))
    tree, new = b.build()
    return tree, [tuple(int(new[v]) for v in row) for row in ids]


def test_tilt_multiplies_the_odds_and_fixes_0_and_1():
    u = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    out = tilt(u, 1.3)
    assert out[0] == 0.0 and out[-1] == 1.0
    np.testing.assert_allclose(special.logit(out[1:-1]), special.logit(u[1:-1]) + 1.3, atol=1e-12)


def test_closed_form_map_is_the_kl_regularised_engine_fixed_point():
    """REINFORCE with KL penalty beta (analytic engine, exact expected gradient), the group step
    tied across problems and each problem's leaf steps its own: at convergence every problem's
    success is p' = s' T(u_E) + (1 - s') T(u_H), lam = 1 / beta, Delta = mean(T(u_E) - T(u_H)) / beta
    (docs/real-models.md, "Derivation")."""
    u_e = np.array([0.6, 0.3, 0.0, 0.8, 0.05])
    u_h = np.array([0.2, 0.0, 0.4, 0.8, 0.3])
    s, beta = 0.8, 0.7
    tree, ids = _two_group_population(u_e, u_h)
    n = tree.n_nodes
    tie = np.arange(n, dtype=np.int64) + 2  # own logits; 0 and 1: the tied E and H steps
    tie[0] = -1
    theta = np.zeros(n + 2)
    correct = np.zeros((len(ids), n), dtype=bool)
    for i, (g, e, h, ce, we, ch, wh) in enumerate(ids):
        tie[g], tie[e], tie[h] = -1, 0, 1
        theta[[ce + 2, we + 2, ch + 2, wh + 2]] = np.log([max(u_e[i], 1e-300), 1 - u_e[i], max(u_h[i], 1e-300), 1 - u_h[i]])
        correct[i, [ce, ch]] = True
    theta[0], theta[1] = np.log(s), np.log(1 - s)
    theta[~np.isfinite(theta)] = -np.inf
    model = tabular_model(tree, tie, n + 2)
    problems = Problems(np.array([row[0] for row in ids]), correct, correct, np.zeros((len(ids), 0)), np.arange(len(ids)))
    trace = train_rl(model, problems, RLConfig(method="reinforce", kl=beta, iterations=4000, lr=2.0), RLStart(theta))
    th = trace.theta[-1]
    s_new = special.expit(th[0] - th[1])
    lam = 1.0 / beta
    delta = np.mean(tilt(u_e, lam) - tilt(u_h, lam)) / beta
    assert special.logit(s_new) - special.logit(s) == pytest.approx(delta, abs=1e-6)
    for i, (g, e, h, ce, we, ch, wh) in enumerate(ids):
        ue_new = special.expit(th[ce + 2] - th[we + 2])
        uh_new = special.expit(th[ch + 2] - th[wh + 2])
        engine_p = s_new * ue_new + (1 - s_new) * uh_new
        assert engine_p == pytest.approx(float(two_group_map(u_e[i], u_h[i], s, delta, lam)), abs=1e-6)


def test_split_types_are_feasible_and_kappa_zero_is_the_plain_tilt():
    params = MarkovParams.with_delta(0.3, 0.0, 1.0, 0.8, 1.4)
    types = split_types(params)
    assert np.exp([lw for lw, _ in types]).sum() == pytest.approx(1.0, abs=1e-12)
    p = np.array([1e-9, 0.01, 0.2, 0.5, 0.95, 0.999])
    for _, kappa in types:
        u_e = common_share(p, kappa, params.r)
        u_h = tilt(u_e, kappa)
        assert np.all((u_e >= 0) & (u_e <= 1) & (u_h >= 0) & (u_h <= 1))
        np.testing.assert_allclose(0.7 * u_e + 0.3 * u_h, p, rtol=1e-9)
    np.testing.assert_allclose(common_share(p, 0.0, 0.3), p, rtol=1e-12)  # equal shares: u_E = u_H = p
    comps = markov_components(p, params)
    assert sum(w for w, _ in comps) == pytest.approx(1.0, abs=1e-12)
    for w, q in comps:
        assert np.all((q >= 0) & (q <= 1))


@pytest.mark.parametrize("c_b,c_t", [(0, 0), (0, 3), (5, 12), (16, 16), (16, 0)])
def test_likelihood_matches_brute_force_integration(c_b, c_t):
    """L = int prior(p) Bin(c_b | p) sum_t P(t) Bin(c_t | f_t(p)) dp / int prior(p) Bin(c_b | p) dp,
    with the prior's atom at 0, by a midpoint sum over 400,000 cells in p (the fit integrates in
    each type's own variable on adapted windows)."""
    prior = BetaBinomialFit(a=1.5, b=1.2, w=0.05, log_likelihood=0.0, n_problems=1, zero_mass=True)
    n = 16
    params = MarkovParams.with_delta(0.3, 1.5, 1.2, 0.8, 1.3)
    post = base_posterior(np.array([n]), np.array([c_b]), prior)
    cells = 400_000
    p = (np.arange(cells) + 0.5) / cells
    base = stats.beta.pdf(p, prior.a, prior.b) * stats.binom.pmf(c_b, n, p) / cells
    for kind, theta, comps in (("markov", params, markov_components(p, params)),
                               ("logit", (1.0, 1.5), logit_map_components(p, 1.0, 1.5))):
        like_t = sum(w * stats.binom.pmf(c_t, n, q) for w, q in comps)
        zero = prior.w * (c_b == 0) * (c_t == 0)  # the atom at p = 0: Bin(0 | 0) = 1 for both models
        expected = np.log(((1 - prior.w) * np.sum(base * like_t) + zero) / ((1 - prior.w) * base.sum() + prior.w * (c_b == 0)))
        nodes = adapt_nodes(kind, theta, post, np.array([n]), np.array([c_t]))
        got = log_likelihood(evaluate(kind, theta, post, nodes), np.array([n]), np.array([c_t]))
        assert got == pytest.approx(expected, rel=1e-5, abs=1e-5)
