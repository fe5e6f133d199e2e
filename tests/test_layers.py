"""The lectures' other layers (ops/layers.py): conv, pooling, flatten, maxout's max.

Every operation's gradient is checked against central finite differences in float64
(relative error ≤ 1e-7), against the unit-form route (scalar backprop of the entrywise
expansion), and its values against np.convolve / direct loops.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_batched_equals_per_example, assert_gradient_equals_differences

from chainrule.derive import backprop
from chainrule.numeric.agreement import unit_form_agreement
from chainrule.numeric.codegen import compiled
from chainrule.numeric.vector_eval import (
    forward_values,
    vector_gradient_at,
)
from chainrule.symbolic import ModelError, parse_program

LOSS = "L = sum(tanh(y) * t)\nloss L"

#: name → (declarations and the layer line ``y = …``); t is shaped like y.
MODELS = {
    "conv_full_1d": "param x[5], w[3]\ninput t[7]\ny = conv(x, w)",
    "conv_valid_1d": 'param x[6], w[3]\ninput t[4]\ny = conv(x, w, "valid")',
    "conv_full_2d": "param X[3, 4], K[2, 3]\ninput t[4, 6]\ny = conv(X, K)",
    "conv_valid_2d": 'param X[4, 5], K[2, 3]\ninput t[3, 3]\ny = conv(X, K, "valid")',
    "maxpool1d": "param z[7]\ninput t[3]\ny = maxpool1d(z, 2)",
    "avgpool1d": "param z[7]\ninput t[2]\ny = avgpool1d(z, 3)",
    "maxpool2d": "param Z[5, 4]\ninput t[2, 2]\ny = maxpool2d(Z, 2)",
    "avgpool2d": "param Z[5, 5]\ninput t[2, 2]\ny = avgpool2d(Z, 2)",
    "flatten": "param Z[2, 3]\ninput t[6]\ny = flatten(Z)",
    "maxout": "param W1[3, 2], W2[3, 2], b1[3], b2[3]\ninput x[2], t[3]\n"
    "y = max(W1 @ x + b1, W2 @ x + b2)",
    "min3": "param a[4], b[4], c[4]\ninput t[4]\ny = min(a, b, c)",
    "max_scalar_arg": "param a[4]\ninput t[4]\ny = max(a, 0.1)",
    "max_reduction": "param Z[3, 2]\ninput t\ny = max(Z) * Z",
    "min_reduction": "param v[5]\ninput t\ny = min(v) + v",
    "layernorm": "param z[5], g[5], beta[5]\ninput t[5]\ny = g * layernorm(z, 0.00001) + beta",
    "layernorm_2d": "param Z[2, 3]\ninput t[2, 3]\ny = layernorm(Z * Z, 0.1)",
    "dropout": "param W[3, 2]\ninput x[2], m[3], t[3]\ny = dropout(tanh(W @ x), m, 0.25)",
    "batchnorm": "batch B\nconst B = 4\nparam W[3, 2], g[3], beta[3]\ninput X[B, 2], t[B, 3]\n"
    "y = g * batchnorm(X @ W.T, 0.01) + beta",
    "axis_sums": "batch B\nconst B = 3\nparam Z[B, 2], b[2]\ninput t[2]\n"
    "y = mean(Z + b, 0) + sum(Z, 0) * sum(sum(Z, 1))",
}


def _program(name: str):  # noqa: ANN202
    body = MODELS[name]
    loss = "L = sum(tanh(y)) * t\nloss L" if name.endswith("reduction") else LOSS
    return parse_program(f"# {name}\n{body}\n{loss}\n")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_gradient_equals_finite_differences(name: str) -> None:
    assert_gradient_equals_differences(_program(name), seed=1, scale=1.0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_unit_form_route_agrees(name: str) -> None:
    agreement = unit_form_agreement(_program(name), seed=2)
    assert agreement.ok, agreement.max_rel_err


def test_seed_example_is_np_convolve() -> None:
    p = parse_program("param w[3]\ninput x[3]\ny = conv(x, w)\nL = sum(y)\nloss L")
    y = forward_values(p, {"x": [2, -1, 1], "w": [1, 1, 2]})["y"]
    assert y.tolist() == [2, 1, 4, -1, 2]
    assert y.tolist() == np.convolve([2, -1, 1], [1, 1, 2]).tolist()


def test_valid_1d_is_np_convolve_valid() -> None:
    p = parse_program('param w[3]\ninput x[6]\ny = conv(x, w, "valid")\nL = sum(y)\nloss L')
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=6), rng.normal(size=3)
    y = forward_values(p, {"x": x, "w": w})["y"]
    assert np.allclose(y, np.convolve(x, w, "valid"), rtol=1e-14, atol=1e-15)


def _convolve2d_loop(x: np.ndarray, k: np.ndarray, mode: str) -> np.ndarray:
    """scipy.signal.convolve2d by its definition: out[i, j] = Σ x[i−s, j−t] k[s, t]."""
    (n1, n2), (k1, k2) = x.shape, k.shape
    full = np.zeros((n1 + k1 - 1, n2 + k2 - 1))
    for i in range(n1):
        for j in range(n2):
            for s in range(k1):
                for t in range(k2):
                    full[i + s, j + t] += x[i, j] * k[s, t]
    if mode == "full":
        return full
    return full[k1 - 1 : n1, k2 - 1 : n2]


@pytest.mark.parametrize("mode", ["full", "valid"])
def test_2d_conv_equals_a_direct_loop(mode: str) -> None:
    word = ', "valid"' if mode == "valid" else ""
    p = parse_program(f"param K[2, 3]\ninput X[4, 5]\nY = conv(X, K{word})\nL = sum(Y)\nloss L")
    rng = np.random.default_rng(1)
    x, k = rng.normal(size=(4, 5)), rng.normal(size=(2, 3))
    y = forward_values(p, {"X": x, "K": k})["Y"]
    assert np.allclose(y, _convolve2d_loop(x, k, mode), rtol=1e-13, atol=1e-14)


def test_pooling_values_drop_leftover_rows_and_columns() -> None:
    p = parse_program(
        "param Z[5, 5]\nM = maxpool2d(Z, 2)\nA = avgpool2d(Z, 2)\nL = sum(M) + sum(A)\nloss L"
    )
    z = np.arange(25.0).reshape(5, 5)
    fwd = forward_values(p, {"Z": z})
    assert fwd["M"].tolist() == [[6, 8], [16, 18]]
    assert fwd["A"].tolist() == [[3, 5], [13, 15]]


def test_flatten_is_row_major() -> None:
    p = parse_program("param Z[2, 3]\nv = flatten(Z)\nL = sum(v)\nloss L")
    z = np.arange(6.0).reshape(2, 3)
    assert forward_values(p, {"Z": z})["v"].tolist() == z.reshape(-1).tolist()


def test_ties_go_to_the_first_maximum() -> None:
    p = parse_program(
        "param Z[2, 2], a[2], b[2]\n"
        "y = maxpool2d(Z, 2)\nm = max(a, b)\nL = sum(y) + sum(m) + max(a)\nloss L"
    )
    point = {"Z": [[1.0, 1.0], [1.0, 0.0]], "a": [2.0, 2.0], "b": [2.0, 1.0]}
    _, g = vector_gradient_at(backprop(p), point)
    assert g["Z"].tolist() == [[1, 0], [0, 0]]  # first in row-major order
    assert g["a"].tolist() == [2, 1]  # max(a, b): a is first; max(a): first entry
    assert g["b"].tolist() == [0, 0]


def test_backprop_prints_flip_and_filter() -> None:
    p = _program("conv_full_1d")
    steps = {s.node: str(s.expression) for s in backprop(p).steps}
    assert steps["x"] == "correlate(y_bar, w)" and steps["w"] == "correlate(y_bar, x)"
    p = _program("conv_valid_1d")
    steps = {s.node: str(s.expression) for s in backprop(p).steps}
    assert steps["x"] == "correlate(y_bar, w)" and steps["w"] == "flip(correlate(x, y_bar))"


BATCHED = [
    'param w[3], v[2]\ninput x[9], t[2]\nz = conv(x, w, "valid")\n'
    'h = maxpool1d(tanh(z), 2)\na = avgpool1d(z, 3)\ny = conv(h, v, "valid") + a\n'
    "g = max(y, t) + min(y)\nL = sum(g * t)\nloss L",
    "param W1[3, 4], W2[3, 4], b1[3], b2[3], w[2]\ninput x[4], t[4]\n"
    "h = max(W1 @ x + b1, W2 @ x + b2)\ny = conv(h, w)\nL = sum(tanh(y) * t) + max(y)\n"
    "loss L",
    "param W[4, 3], g[4], beta[4]\ninput x[3], t[4]\n"
    "y = g * layernorm(W @ x, 0.00001) + beta\nL = sum(tanh(y) * t)\nloss L",
]


@pytest.mark.parametrize("text", BATCHED)
def test_batched_code_equals_per_example_gradients(text: str) -> None:
    assert_batched_equals_per_example(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('input x[3], w[4]\ny = conv(x, w, "valid")', "larger than the input"),
        ("input x[3], W[2, 2]\ny = conv(x, W)", "two vectors or two matrices"),
        ('input x[3], w[2]\ny = conv(x, w, "same")', 'takes "valid" or "full"'),
        ("input Z[3, 3]\ny = maxpool2d(Z, 4)", "does not fit"),
        ("input v[3], z\ny = maxpool1d(z, 2)", "needs a vector or a tensor"),
        ("input z[4]\ny = avgpool1d(z, 0)", "positive whole number"),
        ("input a[3], b[4]\ny = max(a, b)", "argument 2 (b) has shape (4,)"),
        ("input x[n], w[2]\ny = conv(x, w)", "must be a number here"),
        ('input x[3]\ny = sum("valid")', "option"),
        ("input h[3], m[4]\ny = dropout(h, m, 0.5)", "the mask m has shape (4,)"),
        ("input h[3], m[3]\ny = dropout(h, m, 1)", "drop probability"),
        ("input Z[4, 3]\ny = batchnorm(Z, 0.1)", "declare the example axis with 'batch B'"),
        ("batch B\ninput Z[3, B]\ny = batchnorm(Z, 0.1)", "needs a (B, m) matrix"),
        ("input Z[4, 3]\ny = sum(Z, 2)", "the axis is 0"),
    ],
)
def test_bad_use_is_a_located_error(text: str, message: str) -> None:
    with pytest.raises(ModelError) as info:
        parse_program("param q\n" + text + "\nL = sum(y) * q\nloss L", filename="m.chain")
    assert message in str(info.value)
    assert "m.chain:" in str(info.value)


def test_layernorm_is_the_formula_with_population_variance() -> None:
    p = parse_program("param z[4]\ny = layernorm(z, 0.001)\nL = sum(y)\nloss L")
    z = np.array([1.0, 2.0, 4.0, 7.0])
    y = forward_values(p, {"z": z})["y"]
    assert np.allclose(y, (z - z.mean()) / np.sqrt(z.var() + 0.001), rtol=1e-14)


def test_dropout_uses_the_given_mask_and_is_identity_in_evaluation() -> None:
    from chainrule.numeric.train import with_drawn_inputs

    p = parse_program("param w[3]\ninput m[3]\ny = dropout(w, m, 0.25)\nL = sum(y)\nloss L")
    _, g = vector_gradient_at(backprop(p), {"w": [1.0, 2.0, 3.0], "m": [1.0, 0.0, 1.0]})
    assert g["w"].tolist() == [1 / 0.75, 0.0, 1 / 0.75]
    evaluation = with_drawn_inputs(p, {"w": np.ones((2, 3))})
    assert np.all(evaluation["m"] == 0.75)  # h ∘ m / (1 − p) = h
    drawn = with_drawn_inputs(p, {"w": np.ones((4000, 3))}, np.random.default_rng(0))
    assert set(np.unique(drawn["m"])) == {0.0, 1.0}
    assert abs(drawn["m"].mean() - 0.75) < 0.02


def test_batch_program_code_is_one_evaluation_of_the_minibatch() -> None:
    p = parse_program(
        "batch B\nparam W[3, 4], g[3], beta[3], V[2, 3], c[2]\ninput X[B, 4], T[B, 2]\n"
        "Z = X @ W.T\nH = relu(g * batchnorm(Z, 0.00001) + beta)\nU = H @ V.T + c\n"
        "L = mean(sum((U - T)^2, 1))\nloss L"
    )
    rng = np.random.default_rng(0)
    params = {
        "W": rng.normal(size=(3, 4)),
        "g": rng.normal(size=3),
        "beta": rng.normal(size=3),
        "V": rng.normal(size=(2, 3)),
        "c": rng.normal(size=2),
    }
    data = {"X": rng.normal(size=(6, 4)), "T": rng.normal(size=(6, 2))}
    loss, grads = compiled(p).function(params, data)
    want_loss, want = vector_gradient_at(backprop(p), {**params, **data})
    assert abs(loss - want_loss) <= 1e-12 * abs(want_loss)
    for k in grads:
        assert np.allclose(grads[k], want[k], rtol=1e-10, atol=1e-13), k
    assert p.batch == "B"


def test_batchnorm_normalizes_each_column_over_the_examples() -> None:
    p = parse_program("batch B\nparam Z[B, 2]\nY = batchnorm(Z, 0.001)\nL = sum(Y)\nloss L")
    z = np.array([[1.0, 5.0], [2.0, -1.0], [4.0, 0.5]])
    y = forward_values(p, {"Z": z})["Y"]
    assert np.allclose(y, (z - z.mean(0)) / np.sqrt(z.var(0) + 0.001), rtol=1e-14)


@pytest.mark.parametrize("name", ["batchnorm_digits", "dropout_layernorm_digits"])
def test_closed_form_is_proved_equal_to_the_paths(name: str) -> None:
    import chainrule
    from chainrule.derive.closed_forms import closed_forms

    (cf,) = closed_forms(chainrule.load(name))
    assert cf.symbolic_ok and cf.max_rel_err <= 1e-10
    fan_out = {s.node: s.fan_out for s in cf.paths.steps}
    assert fan_out["Z"] == 2 and fan_out["D"] == 2  # through the mean; through x̂ and v


def test_derive_prints_the_paths_and_the_proof() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "chainrule", "derive", "batchnorm_digits", "--method", "backprop"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "batchnorm in H: its paths, then the closed form" in out
    assert "(fan-out 2: D, μ)" in out and "proved equal" in out


def test_initialization_scales_by_fan_in() -> None:
    from chainrule.numeric.train import fan_in, init_params

    p = parse_program(
        "const n = 40, k = 25\nparam K[5, 5], W[3, 1296]\ninput X[n, n], t[3]\n"
        'Y = conv(X, K, "valid")\nh = W @ flatten(tanh(Y))\nL = sum((h - t)^2)\nloss L'
    )
    assert fan_in(p, "K") == 25 and fan_in(p, "W") == 1296  # kh·kw; the matrix's columns
    he = init_params(p, seed=0, init="he")
    assert abs(he["K"].std() - (2 / 25) ** 0.5) < 0.06
    assert abs(he["W"].std() - (2 / 1296) ** 0.5) < 0.005
    assert not init_params(p, init="zeros")["W"].any()


def test_zeros_initialization_warns_about_symmetry() -> None:
    import subprocess
    import sys

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "chainrule",
            "train",
            "xor",
            "--data",
            "xor",
            "--init",
            "zeros",
            "--epochs",
            "1",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0
    assert "symmetry" in run.stderr and "--init auto" in run.stderr


def test_generated_layer_code_has_no_python_loop() -> None:
    from chainrule.numeric.codegen import generate

    for text in BATCHED:
        source = generate(parse_program(text)).source
        body = source.split("def loss_and_grad")[1]
        assert "for " not in body and "while " not in body
        if "convolve(" in body:
            assert "sliding_window_view" in source  # the helpers are vectorized too


def test_report_notes_show_both_views_of_the_seed_convolution() -> None:
    from chainrule.reports.document import build_report

    notes = build_report("conv_signal", naive=False, checks=False, code=False).notes
    joined = " ".join(notes)
    assert "translate-and-scale" in joined and "flip-and-filter" in joined
    assert "= [2, 1, 4, -1, 2]" in joined
