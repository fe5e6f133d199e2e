"""The evaluators, the NumPy printer and the lecture printers work from the registry alone:
one evaluation rule per operation serves both evaluators, and a model's own functions
evaluate without any table being taught about them."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from chainrule.derive import backprop
from chainrule.homework.evaluate import evaluate
from chainrule.numeric.agreement import rel_err
from chainrule.numeric.evaluate import gradient_at
from chainrule.numeric.numpy_printer import numpy_code
from chainrule.numeric.vector_eval import Evaluator, random_point, vector_gradient_at
from chainrule.ops import REGISTRY
from chainrule.reports.notation import to_latex
from chainrule.symbolic import parse_program

SWISH = "def swish(z) = z*sigma(z)\n"


def _swish(z: np.ndarray) -> np.ndarray:
    return z / (1 + np.exp(-z))


def test_vector_gradient_of_a_defined_function_matches_finite_differences() -> None:
    p = parse_program(SWISH + "param W[2, 3]\ninput x[3]\nL = sum(swish(W @ x))\nloss L")
    point = random_point(p, seed=3)
    _, grads = vector_gradient_at(backprop(p), point)
    W, x = np.asarray(point["W"]), np.asarray(point["x"])
    num = np.zeros_like(W)
    for idx in np.ndindex(*W.shape):
        d = np.zeros_like(W)
        d[idx] = 1e-6
        num[idx] = (np.sum(_swish((W + d) @ x)) - np.sum(_swish((W - d) @ x))) / 2e-6
    assert rel_err(grads["W"], num) < 1e-7


def test_scalar_gradient_of_a_defined_function_matches_finite_differences() -> None:
    p = parse_program(SWISH + "param w\ninput x\nL = swish(w*x)\nloss L")
    _, grads = gradient_at(backprop(p), {"w": 0.5, "x": 2.0})
    num = (_swish((0.5 + 1e-6) * 2.0) - _swish((0.5 - 1e-6) * 2.0)) / 2e-6
    assert rel_err(float(grads["w"]), num) < 1e-7


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "sum", "mean", "norm2", "diag"])
def test_one_rule_serves_columns_and_stacks(name: str) -> None:
    """The vector evaluator (one (n, 1) column) and the homework evaluator (a stack of
    them) give the same numbers through the entry's single ``evaluate`` rule."""
    z = sp.MatrixSymbol("z", 3, 1)
    e = REGISTRY.by_name(name).node(z)
    rng = np.random.default_rng(0)
    stack = rng.normal(size=(4, 3, 1))
    for k in range(4):
        one = Evaluator({z: stack[k]}, {})(e)
        many = evaluate(e, {z: stack})[k]
        assert np.allclose(np.asarray(one, dtype=float).reshape(-1), many.reshape(-1))


def test_homework_evaluator_uses_a_defined_functions_body() -> None:
    p = parse_program(SWISH + "param w\ninput x\nL = swish(w*x)\nloss L")
    swish = p.functions.by_name("swish").node
    x = sp.Symbol("x")
    got = evaluate(swish(x), {x: np.array([-1.0, 0.0, 2.0])})
    assert np.allclose(got, _swish(np.array([-1.0, 0.0, 2.0])))


def test_printers_fold_and_power_by_the_entry() -> None:
    a, b, c = sp.symbols("a b c")
    assert numpy_code(sp.Max(a, b, c)) == "np.maximum(np.maximum(a, b), c)"
    sigma = REGISTRY.by_name("sigma").node
    assert to_latex(sigma(sp.Symbol("z")) ** 2) == r"\sigma\left(z\right)^{2}"
    with pytest.raises(ValueError, match="no NumPy name"):
        numpy_code(sp.cosh(a))


@pytest.mark.parametrize(
    "loss", ["sum(sqrt(w*w + 1))", "sum(log(w*w + 1))", "sum(exp(-(w*w + 1)))"]
)
def test_printed_numpy_code_brackets_entrywise_arguments(loss: str) -> None:
    """``sqrt``/``1/u`` bodies of compound arguments print as runnable, bracketed code."""
    from chainrule.numeric.vector_eval import NUMPY_NAMESPACE, backward_values

    p = parse_program(f"param w[3]\nL = {loss}\nloss L")
    d = backprop(p)
    point = random_point(p, seed=1)
    _, signals, _ = backward_values(d, point)
    env = dict(NUMPY_NAMESPACE, w=np.asarray(point["w"]).reshape(-1, 1))
    for a in p.assignments:
        env[a.name] = eval(numpy_code(a.expr), env)  # noqa: S307 - generated, safe names
    for s in d.steps:
        env[str(s.signal)] = eval(numpy_code(s.expression), env)  # noqa: S307
    assert rel_err(np.asarray(env["w_bar"]).reshape(-1), signals["w"]) < 1e-12
