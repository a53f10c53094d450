"""A slow, independent reference for the likelihood's base-rate integral (tests and
docs/examples/real/quadrature_check.py): adaptive Gauss-Kronrod (:func:`scipy.integrate.quad_vec`)
in x = logit p (not the fit's per-type variable) over [-X_LIMIT, X_LIMIT], started on 400 pieces
of length 0.25, each problem's integrand scaled by its maximum on a 4001-point scan, the map
evaluated by :func:`markovfork.real.model.markov_components` (Newton solve of the split); the atom at
p = 0 is added exactly."""

from __future__ import annotations

import numpy as np
from scipy import integrate, special

from markovfork.real.model import X_LIMIT, base_posterior

__all__ = ["reference_log_likelihood"]


def _log_binomial(n, c, q):
    with np.errstate(divide="ignore"):
        return (special.gammaln(n + 1.0) - special.gammaln(c + 1.0) - special.gammaln(n - c + 1.0)
                + special.xlogy(c, q) + special.xlog1py(n - c, -q))


def _log_integrand(post, components_fn, n_t, c_t, x):
    """(P, X) log of Post_beta(x) sum_t P(t) Bin(c'_i | f_t(p)), p = sigma(x)."""
    x = np.atleast_2d(x)
    p = special.expit(x) * np.ones((post.a_post.size, 1))
    with np.errstate(divide="ignore"):
        terms = np.stack([np.log(w) + _log_binomial(n_t[:, None], c_t[:, None], q) for w, q in components_fn(p)])
    return post.log_beta[:, None] + post.log_density_x(x) + special.logsumexp(terms, axis=0)


def reference_log_likelihood(n_b, c_b, n_t, c_t, prior, components_fn, epsrel: float = 1e-10) -> np.ndarray:
    """Per-problem log L_i (with the binomial coefficients) by adaptive quadrature;
    ``components_fn``: p -> [(P(type), tuned rate)]."""
    post = base_posterior(n_b, c_b, prior)
    n_t = np.asarray(n_t, dtype=np.float64)
    c_t = np.asarray(c_t, dtype=np.float64)
    scan = np.linspace(-X_LIMIT, X_LIMIT, 4001)
    top = _log_integrand(post, components_fn, n_t, c_t, scan[None, :]).max(axis=1)
    value, _ = integrate.quad_vec(lambda x: np.exp(_log_integrand(post, components_fn, n_t, c_t, np.array([[x]]))[:, 0] - top),
                                  -X_LIMIT, X_LIMIT, epsabs=0.0, epsrel=epsrel, norm="max", limit=20000,
                                  points=np.linspace(-X_LIMIT, X_LIMIT, 401)[1:-1])
    atom = post.log_zero + _log_binomial(n_t, c_t, np.zeros_like(n_t))
    return np.logaddexp(atom, top + np.log(value))
