"""Shared test helpers: relative error as the lectures define it, finite differences."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pytest


def rel_err(a: object, b: object, floor: float = 1e-300) -> float:
    """max |a − b| / (|a| + |b|) over entries; two zeros count as agreement."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    num = np.abs(a - b)
    den = np.abs(a) + np.abs(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > floor, num / np.maximum(den, floor), 0.0)
    return float(np.max(r)) if r.size else 0.0


def central_difference(
    f: Callable[[dict[str, float]], float], point: Mapping[str, float], name: str
) -> float:
    """Two-sided difference of f in one scalar coordinate, float64, h = ε^(1/3)·max(1, |x|)."""
    x = float(point[name])
    h = np.finfo(float).eps ** (1 / 3) * max(1.0, abs(x))
    h = (x + h) - x  # exactly representable step
    up, down = dict(point), dict(point)
    up[name], down[name] = x + h, x - h
    return (f(up) - f(down)) / (2 * h)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def assert_batched_equals_per_example(text: str, batch: int = 5) -> None:
    """The generated (batched) loss and gradient of a vector program equal the mean of
    the per-example derivation's values, float64, at a seeded random minibatch."""
    from chainrule.derive import backprop
    from chainrule.numeric.codegen import compiled
    from chainrule.numeric.gradcheck import random_point
    from chainrule.numeric.vector_eval import vector_gradient_at
    from chainrule.symbolic import parse_program

    prog = parse_program(text)
    params, data = random_point(prog, np.random.default_rng(3), batch=batch)
    loss, grads = compiled(prog).function(params, data)
    d = backprop(prog)
    want_loss, want = 0.0, {k: np.zeros_like(np.asarray(v)) for k, v in grads.items()}
    for i in range(batch):
        l, g = vector_gradient_at(d, {**params, **{k: v[i] for k, v in data.items()}})
        want_loss += l / batch
        for k in g:
            want[k] = want[k] + np.asarray(g[k]) / batch
    assert abs(loss - want_loss) <= 1e-12 * max(1.0, abs(want_loss))
    for k in grads:
        assert grads[k].shape == np.shape(params[k])
        assert np.allclose(grads[k], want[k], rtol=1e-10, atol=1e-13), k


def assert_gradient_equals_differences(program, seed: int, scale: float) -> None:  # noqa: ANN001
    """Backprop's gradient of a vector program equals central differences of the loss
    (h = 1e-5, float64) at a seeded random point: relative error ≤ 1e-7 entrywise."""
    from chainrule.derive import backprop
    from chainrule.numeric.vector_eval import loss_at, random_point, vector_gradient_at

    point = random_point(program, seed=seed, scale=scale)
    _, grads = vector_gradient_at(backprop(program), point)
    h = 1e-5
    for k, g in grads.items():
        base = np.array(point[k], dtype=float)
        numeric = np.zeros_like(base)
        for idx in np.ndindex(*base.shape):
            plus, minus = base.copy(), base.copy()
            plus[idx] += h
            minus[idx] -= h
            up, down = loss_at(program, {**point, k: plus}), loss_at(program, {**point, k: minus})
            numeric[idx] = (up - down) / (2 * h)
        assert np.shape(g) == np.shape(point[k])
        assert rel_err(g, numeric) <= 1e-7, (k, g, numeric)
