"""SFT on branching data: the loss against a token-by-token sum, the gradient against finite
differences, and the sampled engine tracking the analytic one as the dataset grows."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from markovfork.branching import (
    BranchingTask, Counts, Params, Teacher, expected_counts, loss_and_gradient, teacher_trajectories, train_sft,
)


def _token_loss(task: BranchingTask, params: Params, branches: int, length: int) -> float:
    """Summed cross-entropy of one trajectory token by token, from the softmax itself."""
    m, b = task.n_correct, task.children
    logits = np.r_[np.full(m, params.a), np.zeros(b - m)]
    logp = logits - np.logaddexp.reduce(logits)
    back = -np.logaddexp(0.0, -params.c)  # log sigma(c)
    decisions = -task.points * logp[0] - branches * logp[-1]  # D correct picks, B wrong picks
    forced = length - task.points - 2 * branches  # zero-loss tokens
    assert forced >= 1
    return decisions - branches * back


def test_loss_is_the_token_average():
    task = BranchingTask(points=5, children=5, n_correct=2)
    data = teacher_trajectories(task, Teacher(0.5), 300, seed=2)
    params = Params(0.7, -0.4)
    expect = sum(_token_loss(task, params, int(bb), int(ll)) for bb, ll in zip(data.branches, data.length))
    loss, _ = loss_and_gradient(task, params, data.counts())
    assert loss == pytest.approx(expect / data.length.sum(), rel=1e-12)


@given(a=st.floats(-4, 6), c=st.floats(-4, 6), children=st.integers(2, 6), ok=st.floats(1, 10),
       bad=st.floats(0, 10), extra=st.floats(1, 50))
def test_gradient_matches_finite_differences(a, c, children, ok, bad, extra):
    task = BranchingTask(children=children, n_correct=max(1, children // 2))
    counts = Counts(ok, bad, bad, ok + 2 * bad + extra)
    _, grad = loss_and_gradient(task, Params(a, c), counts)
    eps = 1e-6
    for i in range(2):
        step = np.eye(2)[i] * eps
        up = loss_and_gradient(task, Params(*(np.array([a, c]) + step)), counts)[0]
        down = loss_and_gradient(task, Params(*(np.array([a, c]) - step)), counts)[0]
        assert grad[i] == pytest.approx((up - down) / (2 * eps), abs=1e-7)


def test_analytic_descends_and_convergent_data_never_moves_c():
    task = BranchingTask()
    conv = train_sft(task, expected_counts(task, Teacher(0.0)), "analytic", epochs=20, lr=1.0)
    assert np.all(np.diff(conv.loss) < 0) and np.all(conv.params[:, 1] == task.base_c)
    branchy = train_sft(task, expected_counts(task, Teacher(0.4)), "analytic", epochs=20, lr=1.0)
    assert np.all(np.diff(branchy.loss) < 0) and np.all(np.diff(branchy.params[:, 1]) > 0)
    # the optimum of a under beta-data: P = share of correct picks among decision tokens = 1 - beta
    long = train_sft(task, expected_counts(task, Teacher(0.4)), "analytic", epochs=3000, lr=5.0)
    a = long.params[-1, 0]
    assert 1 / (1 + 3 * np.exp(-a)) == pytest.approx(0.6, abs=1e-3)


def test_sampled_tracks_analytic_as_the_dataset_grows():
    task = BranchingTask(points=6)
    teacher = Teacher(0.4)
    exact = train_sft(task, expected_counts(task, teacher), "analytic", epochs=10, lr=2.0, steps_per_epoch=1)
    errors = []
    for n in (200, 50_000):
        data = teacher_trajectories(task, teacher, n, seed=7)
        full = train_sft(task, data, "sampled", epochs=10, lr=2.0, batch_size=n, seed=7)  # one full batch an epoch
        errors.append(np.abs(full.params - exact.params).max())
        assert np.abs(full.loss[1:] - exact.loss[:-1]).max() < (0.05 if n == 200 else 0.005)
    assert errors[1] < 0.01 and errors[1] < errors[0]
    # minibatches follow the gradient flow (many small analytic steps)
    data = teacher_trajectories(task, teacher, 50_000, seed=8)
    mini = train_sft(task, data, "sampled", epochs=5, lr=2.0, batch_size=500, seed=8)
    flow = train_sft(task, expected_counts(task, teacher), "analytic", epochs=5, lr=2.0, steps_per_epoch=100)
    assert np.abs(mini.params - flow.params).max() < 0.02


def test_engine_and_data_checks():
    task = BranchingTask()
    data = teacher_trajectories(task, Teacher(0.2), 10, seed=0)
    with pytest.raises(ValueError, match="engine 'analytic' trains on Counts, got Trajectories"):
        train_sft(task, data, "analytic")
    with pytest.raises(ValueError, match="engine must be one of"):
        train_sft(task, data, "exact")
    with pytest.raises(ValueError, match="lr must be a finite number in"):
        train_sft(task, data, "sampled", lr=0.0)
    again = train_sft(task, data, "sampled", epochs=3, batch_size=3, seed=1)
    assert np.array_equal(again.params, train_sft(task, data, "sampled", epochs=3, batch_size=3, seed=1).params)


def test_freezing_a_keeps_it_and_leaves_c_on_its_own_path():
    """The loss is a sum of an a-part and a c-part, so with a frozen (an indecipherable decision)
    c follows exactly the path it follows when a trains, in both engines."""
    from markovfork.branching.data import expected_counts, teacher_trajectories
    from markovfork.branching.task import BranchingTask, Teacher
    from markovfork.branching.train import train_sft

    task = BranchingTask(points=2, children=2)
    teacher = Teacher(0.5)
    for engine, data in (("analytic", expected_counts(task, teacher, 0.0)),
                         ("sampled", teacher_trajectories(task, teacher, 300, 0))):
        free = train_sft(task, data, engine, epochs=5)
        frozen = train_sft(task, data, engine, epochs=5, freeze_a=True)
        assert np.all(frozen.params[:, 0] == task.base_a)
        np.testing.assert_allclose(frozen.params[:, 1], free.params[:, 1], rtol=0, atol=1e-12)
