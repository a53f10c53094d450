"""Per-problem success-count histograms: predicted (binomial mixture), measured, distances."""

import numpy as np
import pytest

from markovfork.metrics.estimators import pass_at_k
from markovfork.fit import CurvePredictor, histogram_distance, measured_histogram, predicted_histogram
from markovfork.llm_bridge.config import config_from_dict


def test_predicted_histogram_gives_back_the_exact_pass_at_k():
    """The unbiased estimator averaged over the predicted count histogram is the exact pass@k
    1 - (1 - s)^k averaged over problems (the estimator is unbiased): two independent routes."""
    run = config_from_dict({"task": {"depth": 3}, "sft": {"n_problems": 40, "epochs": 3, "diversities": ["data", "problem"],
                                                          "rhos": [0.0, 0.25, 1.0]},
                            "eval": {"n_test": 30, "n_samples": 16, "epochs": [1, 3]}})
    pred = CurvePredictor(run, steps_per_epoch=8)
    values = {"lr": 8.0, "base_step_accuracy": 0.7}
    success = pred.success(values)
    hist = predicted_histogram(success, 16)
    assert hist.shape == (4, 3, 17) and np.allclose(hist.sum(axis=-1), 1.0)
    per_count = pass_at_k(16, np.arange(17), pred.ks)  # (17, K): estimator at each count
    np.testing.assert_allclose(hist @ per_count, pred.predict(values), rtol=0, atol=1e-12)


def test_predicted_histogram_of_one_problem_is_its_binomial():
    h = predicted_histogram([0.3], 4)
    expect = [0.7**4, 4 * 0.3 * 0.7**3, 6 * 0.09 * 0.49, 4 * 0.027 * 0.7, 0.3**4]
    np.testing.assert_allclose(h, expect, rtol=1e-12)
    np.testing.assert_allclose(predicted_histogram([[0.0, 1.0, np.nan]], 2), [[0.5, 0.0, 0.5]])


def test_measured_histogram_and_distances():
    g = measured_histogram(np.array([0, 0, 3, 4]), 4)
    np.testing.assert_allclose(g, [0.5, 0, 0, 0.25, 0.25])
    assert histogram_distance(g, g) == {"tv": 0.0, "w1": 0.0}
    point = lambda c: np.eye(5)[c]  # noqa: E731
    assert histogram_distance(point(0), point(4)) == {"tv": 1.0, "w1": 1.0}
    assert histogram_distance(point(1), point(3))["w1"] == pytest.approx(0.5)
    # W1 is the mean shift of the success rate: moving every problem up by one count is 1 / n
    assert histogram_distance(measured_histogram(np.array([0, 1, 2]), 4),
                              measured_histogram(np.array([1, 2, 3]), 4))["w1"] == pytest.approx(0.25)


@pytest.mark.parametrize("args,message", [
    ((np.array([0, 5]), 4), r"counts in \[0, n_samples=4\]"),
    ((np.array([], dtype=int), 4), "non-empty"),
    ((np.array([0.5]), 4), "counts"),
    ((np.array([1]), 0), "n_samples must be an integer >= 1, got 0"),
])
def test_measured_histogram_errors(args, message):
    with pytest.raises(ValueError, match=message):
        measured_histogram(*args)


def test_histogram_distance_needs_matching_shapes():
    with pytest.raises(ValueError, match="same counts"):
        histogram_distance(np.ones(3) / 3, np.ones(4) / 4)
