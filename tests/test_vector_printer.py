"""The NumPy printer: generated code computes what the interpreter computes."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import chainrule
from chainrule.derive import backprop
from chainrule.numeric.agreement import rel_err
from chainrule.numeric.numpy_printer import numpy_code
from chainrule.numeric.vector_eval import NUMPY_NAMESPACE, backward_values, random_point
from chainrule.ops.scalar import sigma_prime
from chainrule.ops.tensor import elementwise
from chainrule.symbolic import parse_program

EXAMPLES = ["vector_mlp", "softmax_regression_vector", "tanh_mlp3", "residual", "shared_weights"]


def run_generated(derivation, point):  # noqa: ANN001, ANN201
    """Evaluate forward lines and error signals from generated NumPy code."""
    program = derivation.program
    env = dict(NUMPY_NAMESPACE)
    for v in program.variables:
        value = point.get(v.name, v.value)
        arr = np.asarray(value, dtype=float)
        env[v.name] = (
            arr.reshape(-1, 1) if len(v.shape) == 1 else (float(arr) if not v.shape else arr)
        )
    for name, n in _sizes(program, point).items():
        env.setdefault(name, n)
    for a in program.assignments:
        env[a.name] = eval(numpy_code(a.expr), env)  # noqa: S307 - generated, safe names
    out = {}
    for s in derivation.steps:
        env[str(s.signal)] = eval(numpy_code(s.expression), env)  # noqa: S307
        out[s.node] = env[str(s.signal)]
    return out


def _sizes(program, point):  # noqa: ANN001, ANN202
    sizes = dict(program.sizes)
    for v in program.variables:
        if v.name in point:
            for d, n in zip(v.shape, np.shape(point[v.name]), strict=True):
                if isinstance(d, str):
                    sizes[d] = n
    return sizes


@pytest.mark.parametrize("name", EXAMPLES)
def test_generated_code_matches_the_interpreter(name: str) -> None:
    d = backprop(chainrule.load(name))
    point = random_point(d.program, seed=2)
    _, signals, _ = backward_values(d, point)
    generated = run_generated(d, point)
    for node, value in signals.items():
        got = np.asarray(generated[node]).reshape(np.shape(value))
        assert rel_err(got, value) < 1e-12, node


def test_lecture_lines_print_as_numpy() -> None:
    d = backprop(chainrule.load("vector_mlp"))
    code = {s.node: numpy_code(s.expression) for s in d.steps}
    assert code == {
        "L": "1",
        "y": "L_bar * (y - t)",
        "W2": "y_bar @ h.T",
        "b2": "y_bar",
        "h": "W2.T @ y_bar",
        "z": "h_bar * sigma_prime(z)",
        "W1": "z_bar @ x.T",
        "b1": "z_bar",
    }


def test_batch_code_uses_axis_sums_and_sizes() -> None:
    p = parse_program("param W[m, n], b[m]\ninput X[n, B]\nL = sum(tanh(W @ X + b))\nloss L")
    d = backprop(p)
    assert numpy_code(d.gradient("b")) == "np.sum(z_bar, axis=1, keepdims=True)".replace(
        "z_bar", numpy_code(d.gradient("b").arg)
    )
    assert (
        numpy_code(sp.OneMatrix(sp.Symbol("m", integer=True, positive=True), 1), {"m": 3})
        == "np.ones((3, 1))"
    )


def test_unsafe_names_never_reach_code() -> None:
    with pytest.raises(ValueError, match="unsafe"):
        numpy_code(sp.Symbol("__import__('os')"))
    assert numpy_code(elementwise(sigma_prime, sp.MatrixSymbol("z", 2, 1))) == "sigma_prime(z)"
