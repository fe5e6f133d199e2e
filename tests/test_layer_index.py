"""Index notation of the layers (conv, pooling, flatten, max/min, normalization, dropout):
every line equals the matrix form at random points, and ``derive --notation index`` works
on the shipped layer examples."""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy as sp
from conftest import rel_err

from chainrule.cli import main
from chainrule.derive.index_form import (
    Converter,
    contract,
    index,
    index_derivation,
    lecture_letters,
)
from chainrule.derive.vector import vector_backprop
from chainrule.numeric.index_eval import (
    IndexEvaluator,
    bridge_check,
    index_forward_backward,
    random_sizes,
)
from chainrule.numeric.vector_eval import (
    backward_values,
    loss_at,
    random_point,
    vector_gradient_at,
)
from chainrule.ops import REGISTRY
from chainrule.ops.layer_index import InRange
from chainrule.reports.index_notation import index_unicode
from chainrule.symbolic import parse_program

TOL = 1e-9

MODELS = {
    "conv1d_full": """param x[n], w[k]
const n = 5, k = 3
input t[7]
y = conv(x, w)
L = sum((y - t)^2) / 2
loss L""",
    "conv1d_valid": """const n = 6, k = 3
param x[n], w[k]
input t[4]
y = conv(x, w, "valid")
L = sum((y - t)^2) / 2
loss L""",
    "conv2d_full": """param X[3, 4], K[2, 2]
input T[4, 5]
Y = conv(X, K)
L = sum((Y - T)^2) / 2
loss L""",
    "conv2d_valid": """param X[4, 5], K[2, 3]
input T[3, 3]
Y = conv(X, K, "valid")
L = sum((Y - T)^2) / 2
loss L""",
    "pool1d": """param z[7]
input t[3]
p = maxpool1d(z, 2)
q = avgpool1d(z, 2)
L = sum((p - t)^2) / 2 + sum(q * t)
loss L""",
    "pool1d_rows": """param Z[3, 7]
input T[3, 3]
P = maxpool1d(Z, 2)
Q = avgpool1d(Z, 3)
L = sum((P - T)^2) / 2 + sum(Q * Q)
loss L""",
    "pool2d": """param Z[5, 4]
input T[2, 2]
P = maxpool2d(Z, 2)
Q = avgpool2d(Z, 2)
L = sum((P - T)^2) / 2 + sum(Q * T)
loss L""",
    "flatten": """param Z[2, 3], v[6]
input t
h = flatten(Z)
L = (dot(v, h) - t)^2 / 2
loss L""",
    "max_min": """param W1[m, n], W2[m, n], W3[m, n]
input x[n], t[m]
h = max(W1 @ x, W2 @ x, W3 @ x)
g = min(W1 @ x, W2 @ x)
s = max(h)
r = min(g)
L = sum((h - t)^2) / 2 + sum(g * t) + s * r
loss L""",
    "layernorm": """param W[m, n], g[m], Z[2, 3]
input x[n], t[m]
a = g * layernorm(W @ x, 0.001)
B = layernorm(Z, 0.01)
L = sum((a - t)^2) / 2 + sum(B * B * Z)
loss L""",
    "batchnorm": """batch B
param W[m, n]
input X[B, n], T[B, m]
Y = batchnorm(X @ W.T, 0.001)
L = sum((Y - T)^2) / 2 + sum(Y * (X @ W.T))
loss L""",
    "dropout": """param W[m, n]
input x[n], mask[m], t[m]
h = dropout(tanh(W @ x), mask, 0.3)
L = sum((h - t)^2) / 2
loss L""",
    # layers composed: a small CNN, padded convolution of a computed node, a convolution
    # of a convolution, pooling of expressions with one window along an axis
    "cnn2d": """param K[2, 2], V[2, 4], c[2]
input X[5, 5], t[2]
A = relu(conv(X, K, "valid"))
P = maxpool2d(A, 2)
f = flatten(P)
y = V @ f + c
L = sum((y - t)^2) / 2
loss L""",
    "full_conv_of_a_node": """param w[3], b, u[2]
input x[4], t[7]
h = tanh(x + b)
y = conv(conv(h, w), u)
L = sum((y - t)^2) / 2
loss L""",
    "pooled_expressions": """param z[6], W[3, 3]
input t[3]
p = maxpool1d(tanh(z), 2)
q = avgpool2d(W * W, 2)
L = sum((p - t)^2) / 2 + sum(q) * max(W @ p)
loss L""",
}


def _program(name: str):  # noqa: ANN202
    return parse_program(MODELS[name], filename=f"{name}.chain")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_index_lines_equal_the_matrix_form(name: str) -> None:
    """Forward lines, error signals and the naive route, entry by entry, against the
    matrix route at random points of random sizes (float64)."""
    d = index_derivation(_program(name))
    check = bridge_check(d, seeds=(0, 1))
    assert check.forward <= TOL and check.backprop <= TOL and check.naive <= TOL, check.worst
    assert len(d.naive) == len(d.program.params)


def _matrix_steps_by_index_rules(program, seed: int) -> dict[str, float]:  # noqa: ANN001
    """The matrix route's VJP expressions (correlate, flip, maxpool_route, avgpool_route,
    first_extreme, first_extreme_entry, unflatten, σ̂ …) converted by the index rules,
    evaluated entry by entry: relative error against the matrix evaluation per node."""
    matrix = vector_backprop(program)
    d = index_derivation(program, naive=False)
    sizes = random_sizes(d, seed)
    point = random_point(program, sizes, seed=seed)
    fwd, signals, _ = backward_values(matrix, point)
    from chainrule.derive.sizes import concrete_sizes

    values = {k: np.asarray(v, dtype=float) for k, v in {**point, **fwd}.items()}
    values |= {f"{k}_bar": np.asarray(v, dtype=float) for k, v in signals.items()}
    ev = IndexEvaluator(values, concrete_sizes(program, sizes))
    letters = lecture_letters(program)
    out = {}
    for step in matrix.steps:
        if step.role == "loss" or not hasattr(step.expression, "shape"):
            continue
        conv = Converter(letters, registry=program.functions)
        r, c = conv.free_indices(step.expression.shape)
        entry = conv(step.expression, r, c)
        want = np.asarray(signals[step.node], dtype=float)
        got = np.zeros(want.shape)
        for pos in np.ndindex(*want.shape):
            env = {}
            if r is not None:
                env[r] = pos[0] + 1
            if c is not None:
                env[c] = pos[1] + 1 if len(pos) > 1 else pos[0] + 1
            got[pos] = ev(entry, env)
        out[step.node] = rel_err(got, want)
    return out


@pytest.mark.parametrize(
    "name", ["conv1d_full", "conv1d_valid", "conv2d_valid", "pool1d", "pool2d", "flatten"]
)
def test_backward_nodes_by_index_rules_equal_numpy(name: str) -> None:
    errors = _matrix_steps_by_index_rules(_program(name), seed=3)
    assert errors and max(errors.values()) <= TOL, errors


@pytest.mark.parametrize("name", ["max_min", "layernorm", "batchnorm", "dropout"])
def test_backward_nodes_of_max_and_norms_by_index_rules(name: str) -> None:
    errors = _matrix_steps_by_index_rules(_program(name), seed=4)
    assert errors and max(errors.values()) <= TOL, errors


def test_a_missing_index_form_is_named_and_explained() -> None:
    """An operation without an index rule stops the index route with a located message
    (an IndexFormError is a ChainruleError: the CLI prints it and exits 2)."""
    from dataclasses import replace

    from chainrule.derive.index_form import IndexFormError
    from chainrule.symbolic.errors import ChainruleError

    program = parse_program("const n = 6\nparam z[n]\np = maxpool1d(z, 2)\nL = sum(p)\nloss L")
    without = REGISTRY.extend()  # the same operations, maxpool without its index rule
    without.register(replace(REGISTRY.by_name("maxpool2d"), index_form=None))
    conv = Converter(lecture_letters(program), registry=without)
    with pytest.raises(IndexFormError) as err:
        conv(program["p"].expr, index("i"), None)
    assert isinstance(err.value, ChainruleError)
    assert "no index form for maxpool2d (maxpool(z))" in str(err.value)
    assert "its registry entry has no index_form" in str(err.value)


def test_every_layer_operation_has_an_index_form() -> None:
    from chainrule.ops import layers

    layer_ops = [op for op in REGISTRY if op.node.__module__ == layers.__name__]
    assert len(layer_ops) >= 20
    assert [op.name for op in layer_ops if op.index_form is None] == []


def test_index_backprop_alone_equals_finite_differences() -> None:
    program = _program("conv1d_valid")
    d = index_derivation(program, naive=False)
    point = random_point(program, {}, seed=5)
    _, signals = index_forward_backward(d, point, {})  # index lines only
    _, grads = vector_gradient_at(vector_backprop(program), point)
    h = 1e-6
    for p in program.params:
        base = np.array(point[p.name], dtype=float)
        fd = np.zeros_like(base)
        for idx in np.ndindex(*base.shape):
            up, down = base.copy(), base.copy()
            up[idx] += h
            down[idx] -= h
            fd[idx] = (
                loss_at(program, {**point, p.name: up}) - loss_at(program, {**point, p.name: down})
            ) / (2 * h)
        assert rel_err(signals[p.name], grads[p.name]) <= TOL
        assert rel_err(signals[p.name], fd) < 1e-6


def test_seed_example_by_the_index_form() -> None:
    """The lecture's conv([2, −1, 1], [1, 1, 2]) = [2, 1, 4, −1, 2], entry by entry."""
    program = parse_program(
        "const n = 3, k = 3\nparam x[n], w[k]\ny = conv(x, w)\nL = sum(y)\nloss L"
    )
    d = index_derivation(program, naive=False)
    line = d.line("y", "forward")
    ev = IndexEvaluator({"x": np.array([2.0, -1, 1]), "w": np.array([1.0, 1, 2])}, program.sizes)
    got = [ev(line.rhs, {line.free[0]: t}) for t in range(1, 6)]
    assert got == [2.0, 1.0, 4.0, -1.0, 2.0]


def test_lecture_notation_of_the_lines() -> None:
    conv = index_derivation(_program("conv1d_full"), naive=False)
    text = index_unicode(conv.line("y", "forward").rhs)
    assert text == "Σ_τ 𝟙[1 ≤ j−τ+1 ≤ 5] w_τ x_{j−τ+1}", text  # zero padding written out
    x_bar = index_unicode(conv.line("x").rhs)
    assert x_bar == "Σ_τ ȳ_{i+τ−1} w_τ", x_bar  # flip-and-filter; ȳ outside 1…7 is 0
    pool = index_derivation(_program("pool1d"), naive=False)
    assert "max_{" in index_unicode(pool.line("p", "forward").rhs)
    assert "argmax_{" in index_unicode(pool.line("z", "backprop").rhs)
    flat = index_derivation(_program("flatten"), naive=False)
    assert index_unicode(flat.line("Z").rhs).count("δ") == 0  # contracted: Z̄_ab = h̄_{3a+b−3}


def test_a_shifted_delta_contracts_with_its_range() -> None:
    t, tau, j = index("t"), index("τ"), index("j")
    y, w = sp.IndexedBase("y_bar"), sp.IndexedBase("w")
    # Σ_τ δ_{t−τ+1, j} w_τ = w_{t−j+1} (w zero-padded: no indicator needed)
    padded = contract(sp.Sum(sp.KroneckerDelta(t - tau + 1, j) * w[tau], (tau, 1, 3)))
    assert padded == w[t - j + 1]
    # Σ_τ δ_{t−τ+1, j} y_t: nothing read at τ, so the range stays as 𝟙[1 ≤ t−j+1 ≤ 3]
    bare = contract(sp.Sum(sp.KroneckerDelta(t - tau + 1, j) * y[t], (tau, 1, 3)))
    assert bare == y[t] * InRange(t - j + 1, 1, 3)


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        (
            "conv_signal",
            [
                r"z_s = Σ_τ w_τ x_\{s−τ\+3\} \+ b",
                r"max_\{s=2r−1…2r\} z_s",
                r"z̄_s = Σ_r p̄_r 𝟙\[s = argmax_\{2r−1…2r\} z\]",
                r"w̄_i = Σ_s z̄_s x_\{s−i\+3\}",
            ],
        ),
        ("maxout", [r"h_i = max\(Σ_j w⁽¹⁾_ij x_j \+ b⁽¹⁾_i, ", r"𝟙\[argmax\(.*\) = 2\] x_j"]),
        (
            "dropout_layernorm_digits",
            [
                r"a_i = \(\(z_i − μ\(z\)\) g_i\)/√\(1/100000 \+ σ²\(z\)\) \+ β_i",
                r"where μ\(z\) = \(Σ_i z_i\)/m, σ²\(z\) = \(Σ_i \(z_i − μ\(z\)\)²\)/m",
                r"h_i = \(5 ReLU\(a_i\) mask_i\)/4",
                r"z̄_i = \(ā_i g_i − \(Σ_i′ ā_i′ g_i′\)/m − \(Σ_i′ ā_i′ \(z_i′ − μ\(z\)\) \(z_i",
            ],
        ),
        (
            "batchnorm_digits",
            [r"μ_i\(Z\)\) g_i\)/√", r"where μ_i\(Z\) = \(Σ_j Z_ji\)/B", r"M_ji"],
        ),
    ],
)
def test_cli_derive_notation_index_on_layer_examples(
    example: str, expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["derive", f"examples/{example}.chain", "--notation", "index"])
    out = capsys.readouterr().out
    assert code == 0
    for pattern in expected:
        assert re.search(pattern, out), pattern


@pytest.mark.parametrize("height", [4, 5])
def test_pooling_rules_per_channel_of_a_carried_tensor(height: int) -> None:
    """Pooling nodes of a tensor [C, H, W] (carried by its (C·H, W) matrix) pool each
    channel apart; their index rules agree with the entries' NumPy evaluation, also where
    s does not divide H (each channel drops its own leftover rows)."""
    from chainrule.ops import layers

    channels, width, s = 2, 5, 2
    rows, ho, wo = channels * height, channels * (height // s), width // s
    rng = np.random.default_rng(7)
    z_val, g_val = rng.normal(size=(rows, width)), rng.normal(size=(ho, wo))
    z, g = sp.MatrixSymbol("Z", rows, width), sp.MatrixSymbol("G", ho, wo)
    nodes = [
        layers.MaxPool(z, s, s, channels, ho, wo),
        layers.AvgPool(z, s, s, channels, ho, wo),
        layers.MaxPoolRoute(g, z, s, s, channels, rows, width),
        layers.AvgPoolRoute(g, s, s, channels, rows, width),
    ]
    values = {"Z": z_val, "G": g_val}
    for node in nodes:
        op = REGISTRY.for_node(node)
        want = op.evaluate(None, node, lambda a: values[str(a.name)])
        conv = Converter({}, registry=REGISTRY)
        r, c = conv.free_indices(node.shape)
        entry = conv(node, r, c)
        ev = IndexEvaluator(values, {})
        got = np.array(
            [
                [ev(entry, {r: i + 1, c: j + 1}) for j in range(want.shape[1])]
                for i in range(want.shape[0])
            ]
        )
        assert rel_err(got, want) <= TOL, op.name


def test_tensors_with_three_or_four_axes_stop_with_a_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["derive", "cnn_digits", "--notation", "index"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "has 4 axes [F, 1, 3, 3] (in conv2d)" in err
    assert "index notation here writes vectors and matrices" in err
