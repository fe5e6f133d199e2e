"""Vector programs: batched matrix code equals the symbolic gradient, trains digits."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule.derive import backprop
from chainrule.examples import example_names
from chainrule.numeric.codegen import compiled, generate
from chainrule.numeric.gradcheck import gradcheck, random_point
from chainrule.numeric.vector_eval import vector_gradient_at

VECTOR_EXAMPLES = [n for n in example_names() if chainrule.load(n).is_vector and n != "mlp_digits"]


@pytest.mark.parametrize("name", VECTOR_EXAMPLES)
def test_batched_code_equals_mean_of_symbolic_per_example_gradients(name: str) -> None:
    prog = chainrule.load(name)
    params, data = random_point(prog, np.random.default_rng(3), batch=4)
    loss, grads = compiled(prog).function(params, data)
    d = backprop(prog)
    if prog.batch is not None:  # a whole-minibatch program: one evaluation of the batch
        want_loss, want = vector_gradient_at(d, {**params, **data})
        assert abs(loss - want_loss) <= 1e-12 * max(1.0, abs(want_loss))
        for k in grads:
            assert np.allclose(grads[k], want[k], rtol=1e-10, atol=1e-13), k
        return
    want = {k: np.zeros_like(v) for k, v in grads.items()}
    want_loss = 0.0
    for i in range(4):
        l, g = vector_gradient_at(d, {**params, **{k: v[i] for k, v in data.items()}})
        want_loss += l / 4
        for k in g:
            want[k] = want[k] + np.asarray(g[k]) / 4
    assert abs(loss - want_loss) <= 1e-12 * max(1.0, abs(want_loss))
    for k in grads:
        assert grads[k].shape == np.asarray(params[k]).shape
        assert np.allclose(grads[k], want[k], rtol=1e-10, atol=1e-13), k


@pytest.mark.parametrize("name", VECTOR_EXAMPLES)
def test_vector_gradcheck_passes(name: str) -> None:
    r = gradcheck(name, points=1)
    assert r.passed, r.summary()


def test_matrix_code_is_vectorized_and_reuses_forward_values() -> None:
    src = generate(chainrule.load("vector_mlp")).source
    body = src.split("def loss_and_grad")[1].split("def forward")[0]
    assert "'W1': z_bar @ x.T" in body and "xp.sum(z_bar, axis=1)" in body
    assert "h_bar = W2.T @ y_bar" in body and "h*(1 - h)" in body
    assert "for " not in body


def test_softmax_cross_entropy_is_stable() -> None:
    prog = chainrule.load("mlp_digits")
    fn = compiled(prog).function
    params = {
        "W1": np.zeros((32, 64)),
        "b1": np.zeros(32),
        "W2": np.zeros((10, 32)),
        "b2": np.r_[1000.0, np.zeros(9)],
    }
    data = {"x": np.zeros((2, 64)), "t": np.eye(10)[[0, 3]]}
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, grads = fn(params, data)
    assert np.isclose(loss, 500.0)
    assert np.all(np.isfinite(grads["b2"]))


def test_digits_trains_when_sklearn_installed() -> None:
    pytest.importorskip("sklearn")
    from chainrule.numeric.data import load_dataset
    from chainrule.numeric.train import TrainConfig, train

    r = train(
        "mlp_digits",
        load_dataset("digits"),
        TrainConfig(epochs=8, lr=0.5, batch=32, val_split=0.2, seed=0),
    )
    last = r.history["epochs"][-1]
    assert last["val_accuracy"] > 0.9
