"""Vector programs: parsing with shapes, VJP backprop in lecture form, numbers vs FD."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import chainrule
from chainrule.derive import backprop
from chainrule.derive.records import ErrorSignal, ErrorSignalMatrix
from chainrule.derive.vector import jacobians, vector_backprop
from chainrule.numeric.agreement import rel_err, unit_form_agreement
from chainrule.numeric.vector_eval import loss_at, random_point, vector_gradient_at
from chainrule.ops.scalar import sigma_prime
from chainrule.ops.tensor import MatSum, Softmax, elementwise
from chainrule.symbolic import ChainruleError, ModelError, parse_program

VECTOR_EXAMPLES = [
    "vector_mlp",
    "softmax_regression_vector",
    "tanh_mlp3",
    "residual",
    "shared_weights",
]

MLP = """# 2-layer MLP
param W1[m, n], b1[m], W2[k, m], b2[k]
input x[n], t[k]
z = W1 @ x + b1
h = sigma(z)
y = W2 @ h + b2
L = sum((y - t)^2) / 2
loss L
"""


def central_differences(program, point, h=1e-5):  # noqa: ANN001, ANN201
    """Tiny central-difference gradient of the loss in every parameter entry."""
    out = {}
    for p in program.params:
        base = np.array(point[p.name], dtype=float)
        grad = np.zeros_like(base)
        for idx in np.ndindex(*base.shape):
            plus, minus = base.copy(), base.copy()
            plus[idx] += h
            minus[idx] -= h
            lp = loss_at(program, {**point, p.name: plus})
            lm = loss_at(program, {**point, p.name: minus})
            grad[idx] = (lp - lm) / (2 * h)
        out[p.name] = grad
    return out


def test_mlp_backward_pass_is_the_eight_lecture_lines() -> None:
    p = parse_program(MLP)
    d = vector_backprop(p)
    s = {n: p.symbol(n) for n in ("W1", "b1", "W2", "b2", "x", "t", "z", "h", "y")}
    bar = d.signals
    expected = [
        ("L", sp.S.One),
        ("y", bar["L"] * (s["y"] - s["t"])),
        ("W2", bar["y"] * s["h"].T),
        ("b2", bar["y"]),
        ("h", s["W2"].T * bar["y"]),
        ("z", sp.HadamardProduct(bar["h"], elementwise(sigma_prime, s["z"]))),
        ("W1", bar["z"] * s["x"].T),
        ("b1", bar["z"]),
    ]
    assert [st.node for st in d.steps] == [n for n, _ in expected]
    for st, (_, want) in zip(d.steps, expected, strict=True):
        assert st.expression == want, (st.node, st.expression, want)
    assert [str(st.expression) for st in d.steps] == [
        "1",
        "L_bar*(-t + y)",
        "y_bar*h.T",
        "y_bar",
        "W2.T*y_bar",
        "HadamardProduct(h_bar, sigma_prime(z))",
        "z_bar*x.T",
        "z_bar",
    ]
    assert isinstance(d.step("L").signal, ErrorSignal)
    assert isinstance(d.step("W1").signal, ErrorSignalMatrix)
    assert d.step("W1").signal.name == "W1_bar"
    assert d.step("W1").signal.shape == s["W1"].shape


def test_gradients_in_declared_shapes_and_match_finite_differences() -> None:
    p = parse_program(MLP)
    point = {
        "W1": np.arange(6.0).reshape(3, 2) / 10,
        "b1": [0.1, -0.2, 0.3],
        "W2": [[0.5, -0.4, 0.3]],
        "b2": [0.05],
        "x": [1.0, -2.0],
        "t": [0.7],
    }
    loss, grads = chainrule.gradient_at(p, point)
    assert grads["b1"].shape == (3,) and grads["W1"].shape == (3, 2)
    assert grads["W2"].shape == (1, 3) and grads["b2"].shape == (1,)
    fd = central_differences(p, point)
    for name in fd:
        assert rel_err(grads[name], fd[name]) < 1e-7, name
    assert isinstance(loss, float)


@pytest.mark.parametrize("name", VECTOR_EXAMPLES)
def test_example_gradients_match_finite_differences(name: str) -> None:
    p = chainrule.load(name)
    d = backprop(p)
    for seed in (0, 1):
        point = random_point(p, seed=seed)
        _, grads = vector_gradient_at(d, point)
        fd = central_differences(p, point)
        for param, g in fd.items():
            assert np.shape(grads[param]) == np.shape(g)
            assert rel_err(grads[param], g) < 1e-6, (name, param)


@pytest.mark.parametrize("name", VECTOR_EXAMPLES)
def test_unit_form_agrees_with_vector_form(name: str) -> None:
    p = chainrule.load(name)
    ok, err = unit_form_agreement(p, seed=3)
    assert ok and err <= 1e-10


def test_softmax_cross_entropy_step_states_its_condition() -> None:
    p = chainrule.load("softmax_regression_vector")
    d = backprop(p)
    z = d.step("z")
    assert z.expression == d.signals["E"] * (p.symbol("y") - p.symbol("t"))
    assert "sums to 1" in z.note and "t" in z.note
    assert "y" not in d.signals  # ȳ is folded into the simplified step
    # without the simplification the generic softmax VJP gives the same numbers
    general = vector_backprop(p, simplify_softmax=False)
    point = random_point(p, seed=4)
    a, b = vector_gradient_at(d, point)[1], vector_gradient_at(general, point)[1]
    assert all(rel_err(a[k], b[k]) < 1e-12 for k in a)


def test_simplification_is_wrong_off_the_simplex_so_points_respect_it() -> None:
    p = chainrule.load("softmax_regression_vector")
    point = random_point(p, seed=5)
    assert np.isclose(np.sum(point["t"]), 1.0)
    off = {**point, "t": np.asarray(point["t"]) * 2}
    a = vector_gradient_at(backprop(p), off)[1]["b"]
    b = vector_gradient_at(vector_backprop(p, simplify_softmax=False), off)[1]["b"]
    assert rel_err(a, b) > 1e-3


def test_fan_out_contributions_are_explicit() -> None:
    res = backprop(chainrule.load("residual"))
    assert res.step("h1").fan_out == 2  # skip path + ReLU branch, both from h2
    shared = backprop(chainrule.load("shared_weights"))
    assert sorted(c.child for c in shared.step("W").contributions) == ["h1", "h2"]
    assert shared.step("W").fan_out == 2


def test_elementwise_jacobian_is_diagonal_for_show_jacobians() -> None:
    views = jacobians(backprop(parse_program(MLP)))
    forms = {(v.child, v.parent): v.form for v in views}
    assert forms[("h", "z")] == "diagonal"
    assert forms[("y", "h")] == "matrix"
    assert forms[("z", "b1")] == "identity"
    assert "sigma_prime(z)" in str([v.jacobian for v in views if v.parent == "z"][0])


def test_batch_bias_gradient_sums_over_columns() -> None:
    p = parse_program(
        "param W[m, n], b[m]\ninput X[n, B], T[m, B]\n"
        "Y = tanh(W @ X + b)\nL = mean((Y - T)^2)\nloss L"
    )
    d = backprop(p)
    assert "sum_cols" in str(d.gradient("b"))
    rng = np.random.default_rng(0)
    point = {
        "W": rng.normal(size=(3, 2)),
        "b": rng.normal(size=3),
        "X": rng.normal(size=(2, 5)),
        "T": rng.normal(size=(3, 5)),
    }
    _, g = vector_gradient_at(d, point)
    fd = central_differences(p, point)
    assert all(rel_err(g[k], fd[k]) < 1e-7 for k in fd)
    assert unit_form_agreement(p, point=point).ok


OPS_TEXT = """
param W[k, n], v[n], c, A[n, n]
input x[n], t[k]
const lam = 0.1
u = W @ x
u += c * t
s = softmax(u)
q = log_softmax(u)
r = x @ A
r2 = A^T @ x - A.T @ v
ev = exp(v / 2) * log(1 + x * x)
L = -sum(t * q) + dot(s, t) + mean(r * r2) + norm2(ev) / 3 + lam * sum(A * A) + x @ v
loss L
"""


def test_every_operation_against_finite_differences() -> None:
    p = parse_program(OPS_TEXT)
    d = backprop(p)
    point = random_point(p, seed=7)
    _, g = vector_gradient_at(d, point)
    fd = central_differences(p, point)
    for k in fd:
        assert rel_err(g[k], fd[k]) < 1e-6, k
    assert isinstance(g["c"], float)
    assert unit_form_agreement(p, point=point).ok


def test_reductions_are_scalars_and_functions_componentwise() -> None:
    p = parse_program("param w[3]\nh = relu(w)\nS = sum(h)\nloss S")
    assert isinstance(p["S"].expr, MatSum) and p["S"].shape == ()
    assert p["h"].shape == (3,)
    y = parse_program("param z[3]\ny = softmax(z)\nL = sum(y*y)\nloss L")["y"]
    assert isinstance(y.expr, Softmax)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "param W2[k, m]\ninput h[n]\ny = W2 @ h\nL = sum(y)\nloss L",
            "W2 @ h: (k, m) @ (n,) — inner sizes m and n differ",
        ),
        ("param a[3]\ninput b[4]\nL = sum(a + b)\nloss L", "shapes (3,) and (4,) do not match"),
        ("param a[3]\ny = a * 2\nloss y", "the loss must be a scalar"),
        ("param a[3]\nL = a @ 2\nloss L", "'@' needs vectors or matrices"),
        ("param a[3]\nL = sum(foo(a))\nloss L", "unknown function 'foo'"),
        ("param a[3], b[3]\nL = dot(a, b, a)\nloss L", "dot() takes 2 argument(s)"),
        ("param a[3]\nL = sum(a^a)\nloss L", "the exponent must be a scalar"),
        ("param W[m, n]\nconst m = 2.5\nL = sum(W)\nloss L", "must be a positive integer"),
    ],
)
def test_shape_and_model_errors_are_located(text: str, message: str) -> None:
    with pytest.raises(ModelError) as err:
        parse_program(text, "net.chain")
    assert message in str(err.value)
    assert str(err.value).startswith("net.chain:")
    assert err.value.span.line >= 1 and err.value.span.column >= 1


def test_shape_error_points_at_the_operator() -> None:
    with pytest.raises(ModelError) as err:
        parse_program("param W2[k, m]\ninput h[n]\ny = W2 @ h\nL = sum(y)\nloss L", "m.chain")
    assert (err.value.span.line, err.value.span.column) == (3, 8)


def test_size_binding_by_const_and_by_data() -> None:
    p = parse_program("const n = 2\nparam w[n]\ninput x[n]\nL = dot(w, x)\nloss L")
    assert p.sizes == {"n": 2}
    with pytest.raises(ChainruleError, match="declared|size n"):
        chainrule.gradient_at(p, {"w": [1.0, 2.0, 3.0], "x": [1.0, 2.0, 3.0]})
    q = parse_program("param w[n]\ninput x[n]\nL = dot(w, x)\nloss L")
    _, g = chainrule.gradient_at(q, {"w": [1.0, 2.0, 3.0], "x": [4.0, 5.0, 6.0]})
    assert g["w"].tolist() == [4.0, 5.0, 6.0]
    with pytest.raises(ChainruleError, match="size n"):
        chainrule.gradient_at(q, {"w": [1.0, 2.0], "x": [4.0, 5.0, 6.0]})


def test_unused_parameter_gets_zero_gradient_in_its_shape() -> None:
    p = parse_program("param w[2], u[2, 3]\nL = sum(w)\nloss L")
    _, g = chainrule.gradient_at(p, {"w": [1.0, 2.0], "u": np.zeros((2, 3))})
    assert g["u"].shape == (2, 3) and not g["u"].any()
