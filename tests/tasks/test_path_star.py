"""The path-star task: the tree's size and the base model's pass@1 in closed form."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from markovfork.engines.exact import exact_pass_at_k, success_probability
from markovfork.model.policy import transition_probs
from markovfork.sft.config import TrainSettings
from markovfork.sft.data import SFTMix
from markovfork.tasks.path_star import PathStarTask
from markovfork.sft.train import train_analytic


def test_base_model_pass_at_1_is_the_closed_form():
    """Base: mode prior x (forward 1/arms a^depth, reverse a^(depth+1), rationale a^(r+1+depth))."""
    task = PathStarTask(depth=4, rationale_steps=2, feature_dim=10, n_train=10, n_test=30)
    ps = task.build(1)
    base = next(train_analytic(ps, SFTMix(1.0), TrainSettings(epochs=0), 0))
    probs = transition_probs(ps.tree, base.test_logits())
    pass1 = exact_pass_at_k(success_probability(ps.tree, probs, ps.test.correct, ps.test.start), [1])
    a = task.base_step_accuracy
    expected = (0.5 * a**4 + a**5 + a**7) / 3
    assert pass1[0] == pytest.approx(expected, rel=1e-12)


@given(arms=st.integers(2, 4), depth=st.integers(1, 4), branching=st.integers(2, 4), rationale=st.integers(0, 3))
@settings(max_examples=20)
def test_node_count_is_the_built_trees(arms, depth, branching, rationale):
    task = PathStarTask(arms=arms, depth=depth, branching=branching, rationale_steps=rationale,
                        feature_dim=2, n_train=2, n_test=2)
    assert task.n_nodes == task.build(0).tree.n_nodes
