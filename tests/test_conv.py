"""Tensors with 3–4 axes and the CNN layer (ops/conv.py): conv1d / conv2d with bias,
stride and padding, pooling per channel, flatten of tensors.

Values are checked against direct loops (PyTorch's definition), gradients against
central finite differences in float64 (relative error ≤ 1e-7) and against the
unit-form route; generated (batched) code against the per-example derivation.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_batched_equals_per_example, assert_gradient_equals_differences

from chainrule.derive import backprop
from chainrule.numeric.agreement import unit_form_agreement
from chainrule.numeric.codegen import generate
from chainrule.numeric.vector_eval import forward_values, random_point, vector_gradient_at
from chainrule.ops.conv import conv1d, conv2d, conv2d_input_grad, conv2d_kernel_grad
from chainrule.reports.text import render_text
from chainrule.symbolic import ModelError, parse_program

LOSS = "L = sum(tanh(y) * t)\nloss L"

#: name → declarations and the line ``y = …`` (t is shaped like y).
MODELS = {
    "conv2d": "param X[2, 5, 4], K[3, 2, 2, 3]\ninput t[3, 4, 2]\ny = conv2d(X, K)",
    "conv2d_bias": "param X[1, 4, 4], K[2, 1, 3, 3], b[2]\ninput t[2, 2, 2]\ny = conv2d(X, K, b)",
    "conv2d_stride": "param X[2, 7, 6], K[2, 2, 3, 2]\ninput t[2, 3, 3]\n"
    "y = conv2d(X, K, stride=2)",
    "conv2d_padding": "param X[1, 3, 3], K[2, 1, 2, 2], b[2]\ninput t[2, 4, 4]\n"
    "y = conv2d(X, K, b, padding=1)",
    "conv2d_stride_padding": "param X[2, 5, 5], K[1, 2, 3, 3]\ninput t[1, 3, 3]\n"
    "y = conv2d(X, K, stride=2, padding=1)",
    "conv1d": "param X[2, 6], K[3, 2, 3], b[3]\ninput t[3, 4]\ny = conv1d(X, K, b)",
    "conv1d_stride_padding": "param X[1, 7], K[2, 1, 3]\ninput t[2, 4]\n"
    "y = conv1d(X, K, stride=2, padding=1)",
    "maxpool2d_channels": "param Z[3, 5, 4]\ninput t[3, 2, 2]\ny = maxpool2d(Z, 2)",
    "avgpool2d_channels": "param Z[2, 5, 5]\ninput t[2, 2, 2]\ny = avgpool2d(Z, 2)",
    "maxpool1d_last_axis": "param Z[2, 7]\ninput t[2, 3]\ny = maxpool1d(Z, 2)",
    "flatten_tensor": "param Z[2, 3, 2]\ninput t[12]\ny = flatten(Z)",
    "elementwise_tensor": "param Z[2, 2, 3], W[2, 2, 3]\ninput t[2, 2, 3]\n"
    "y = relu(Z) * W + 2 * Z - W / 3",
    "two_layers": "param X[1, 6, 6], K1[2, 1, 3, 3], b1[2], K2[3, 2, 2, 2]\ninput t[3, 1, 1]\n"
    "Y1 = conv2d(X, K1, b1)\nH1 = tanh(Y1)\nY2 = conv2d(H1, K2)\ny = maxpool2d(Y2, 2)",
}


def _program(name: str):  # noqa: ANN202
    return parse_program(f"# {name}\n{MODELS[name]}\n{LOSS}\n")


# ------------------------------------------------------------------ values
def conv2d_loop(x: np.ndarray, k: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """PyTorch's conv2d by its definition: Y[f,i,j] = Σ_c Σ_s Σ_t X[c, iσ+s, jσ+t] K[f,c,s,t]."""
    c, h, w = x.shape
    f, _, kh, kw = k.shape
    xp = np.zeros((c, h + 2 * padding, w + 2 * padding))
    xp[:, padding : padding + h, padding : padding + w] = x
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    y = np.zeros((f, ho, wo))
    for fi in range(f):
        for i in range(ho):
            for j in range(wo):
                patch = xp[:, i * stride : i * stride + kh, j * stride : j * stride + kw]
                y[fi, i, j] = np.sum(patch * k[fi])
    return y


@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (2, 0), (1, 2), (3, 1)])
def test_conv2d_equals_the_direct_loop(stride: int, padding: int) -> None:
    rng = np.random.default_rng(stride * 10 + padding)
    x, k, b = rng.normal(size=(3, 9, 8)), rng.normal(size=(4, 3, 3, 2)), rng.normal(size=4)
    text = (
        "param K[4, 3, 3, 2], b[4]\ninput X[3, 9, 8]\n"
        f"Y = conv2d(X, K, b, stride={stride}, padding={padding})\nL = sum(Y)\nloss L"
    )
    y = forward_values(parse_program(text), {"X": x, "K": k, "b": b})["Y"]
    want = conv2d_loop(x, k, stride, padding) + b[:, None, None]
    assert y.shape == want.shape
    assert np.allclose(y, want, rtol=1e-13, atol=1e-13)


def test_conv1d_is_conv2d_of_height_one() -> None:
    rng = np.random.default_rng(4)
    x, k = rng.normal(size=(2, 11)), rng.normal(size=(3, 2, 4))
    y = conv1d(x, k, stride=2, padding=1)
    xp = np.pad(x, [(0, 0), (1, 1)])  # padding=1 pads the length only
    want = conv2d_loop(xp[:, None, :], k[:, :, None, :], 2, 0)[:, 0, :]
    assert np.allclose(y, want, rtol=1e-13, atol=1e-13)


def test_helpers_broadcast_leading_axes_and_sum_examples_for_the_kernel() -> None:
    rng = np.random.default_rng(5)
    x, k = rng.normal(size=(4, 2, 6, 5)), rng.normal(size=(3, 2, 3, 3))
    g = rng.normal(size=(4, 3, 4, 3))
    y = conv2d(x, k)
    assert all(np.allclose(y[n], conv2d_loop(x[n], k)) for n in range(4))
    kbar = conv2d_kernel_grad(g, x, 3, 3)
    per = conv2d_kernel_grad(g, x, 3, 3, over_examples=False)
    assert per.shape == (4, 3, 2, 3, 3) and np.allclose(kbar, per.sum(axis=0))
    xbar = conv2d_input_grad(g, k, 6, 5)
    assert xbar.shape == x.shape
    # ⟨Ȳ, conv(X)⟩ = ⟨X̄, X⟩ and = ⟨K̄, K⟩: the adjoint identities of a bilinear map
    inner = float(np.sum(g * y))
    assert np.isclose(inner, float(np.sum(xbar * x))) and np.isclose(inner, np.sum(kbar * k))


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize("name", sorted(MODELS))
def test_gradient_equals_finite_differences(name: str) -> None:
    # scale 0.4: tanh unsaturated, no vanishing entries
    assert_gradient_equals_differences(_program(name), seed=3, scale=0.4)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_unit_form_route_agrees(name: str) -> None:
    agreement = unit_form_agreement(_program(name), seed=2)
    assert agreement.ok, agreement.max_rel_err


BATCHED = [
    "param K[2, 1, 3, 3], b[2], V[3, 8], c[3]\ninput X[1, 6, 6], t[3]\n"
    "h = flatten(maxpool2d(relu(conv2d(X, K, b)), 2))\nu = V @ h + c\n"
    "L = -sum(t * log(softmax(u)))\nloss L",
    "param K1[2, 2, 3, 3], K2[1, 2, 2, 2], V[2, 6]\ninput X[2, 6, 7], t[2]\n"
    "H = tanh(conv2d(X, K1, stride=2, padding=1))\nP = avgpool2d(conv2d(H, K2), 1)\n"
    "u = V @ flatten(P)\nL = sum((u - t)^2)\nloss L",
    "param K[3, 2, 3], b[3], V[2, 12]\ninput X[2, 8], t[2]\n"
    "Y = conv1d(X, K, b, padding=1)\nh = flatten(maxpool1d(relu(Y), 2) * 2)\n"
    "L = sum((V @ h - t)^2)\nloss L",
    # a matrix per example: products, transposes and the lecture's 2-D conv on it
    "param W[3, 4], K[2, 2], v[5]\ninput X[4, 5], t[3]\nY = W @ X\n"
    'Z = conv(tanh(Y), K, "valid")\nh = Y @ v\nL = sum(flatten(Z)^2) / 10 + sum((h - t)^2)\n'
    "loss L",
    # global average pooling: a per-example scalar meets each example's tensor
    "param K1[2, 3, 3, 3], b1[2], K2[2, 2, 2, 2]\ninput X[3, 6, 6], t\n"
    "Y1 = relu(conv2d(X, K1, b1, padding=1))\nY2 = conv2d(avgpool2d(Y1, 2), K2, stride=2)\n"
    "Z = sigma(Y2) * 2 + 0.5 * Y2\nL = (mean(Z) - t)^2 + sum(Y2 * Y2) / 100\nloss L",
]


@pytest.mark.parametrize("text", BATCHED)
def test_batched_code_equals_per_example_gradients(text: str) -> None:
    assert_batched_equals_per_example(text)


def test_generated_code_has_no_python_loop_and_reads_like_the_layer() -> None:
    src = generate(parse_program(BATCHED[0])).source
    body = src[src.index("def loss_and_grad") :]
    assert "for " not in body.replace("for each", "")
    assert "X_patches = conv_patches(X, 3, 3)" in body  # im2col once, read by K̄ too
    assert "conv2d_from_patches(X_patches, K)" in body
    assert "conv2d_kernel_grad_from_patches(" in body and ", X_patches)," in body
    assert "maxpool(" in body and "maxpool_route(" in body


# ------------------------------------------------------------------ printing
def test_backprop_prints_the_lecture_forms() -> None:
    p = _program("two_layers")
    text = render_text(_derivation(p))
    assert "K̄⁽²⁾[f,c,s,t] = Σ_{i,j}" in text
    assert "∗_full K⁽²⁾" in text  # X̄ as a full convolution of Ȳ with K
    p = _program("conv2d_bias")
    text = render_text(_derivation(p))
    assert "K̄[f,c,s,t] = Σ_{i,j} Ȳ[f,i,j] X[c,i+s,j+t]" in text.replace("ȳ", "Ȳ")
    assert "b̄[f] = Σ_{i,j}" in text


def _derivation(p):  # noqa: ANN001, ANN202
    import chainrule

    return chainrule.derivation(p, method="backprop")


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "param K[8, 3, 3, 3]\ninput X[1, 8, 8]\ny = conv2d(X, K)",
            "conv2d: K has 3 input channels, X has 1",
        ),
        ("param K[2, 1, 5, 5]\ninput X[1, 3, 3]\ny = conv2d(X, K)", "larger than the input"),
        ("param K[2, 1, 3]\ninput X[1, 8, 8]\ny = conv2d(X, K)", "K must have 4 axes"),
        ("param K[2, 1, 3, 3]\ninput X[8, 8]\ny = conv2d(X, K)", "X must have 3 axes"),
        ("param K[2, 1, 3, 3], b[3]\ninput X[1, 8, 8]\ny = conv2d(X, K, b)", "bias"),
        ("param K[2, 1, 3, 3]\ninput X[1, 8, 8]\ny = conv2d(X, K, stride=0)", "stride="),
        ("param K[2, 1, 3, 3]\ninput X[1, 8, 8]\ny = conv2d(X, K, dilation=2)", "dilation"),
        ("param K[2, 1, 3, 3]\ninput X[1, 8, 8]\ny = conv2d(X, K, padding=-1)", "padding="),
        ("param K[2, 1, 3, 3]\ninput X[1, 8, 8]\ny = sigma(X, stride=1)", "no keyword"),
        ("input Z[2, 3, 3]\ny = maxpool2d(Z, 4)", "does not fit"),
        (
            "param K[2, 1, 3, 3]\ninput X[1, 8, 8]\ny = conv2d(X, K, padding=99999)",
            "at least the kernel's size",
        ),
        ("param K[2, 1, 3, 3]\ninput X[1, 8, 8]\ny = conv2d(X, K, stride=1.5)", "whole number"),
        ('param K[2, 1, 3, 3]\ninput X[1, 8, 8]\ny = conv2d(X, K, "valid")', "quoted options"),
        ("param K[2, 1, 3, 3]\ninput X[1, 8, 8]\ny = conv2d(X, K, stride=1, 2)", "positional"),
        ("input Z[2, 3, 3]\ny = Z.T", "has no transpose"),
        ("input Z[2, 3, 3], v[2]\ny = Z + v", "do not match"),
        ("input Z[2, 3, 3, 1, 1]\ny = Z", "at most four axes"),
        ("param K[2, 1, C, 3]\ninput X[1, 8, 8]\ny = conv2d(X, K)", "must be a number"),
    ],
)
def test_bad_use_is_a_located_error(text: str, message: str) -> None:
    with pytest.raises(ModelError) as info:
        parse_program(f"{text}\nL = sum(y)\nloss L", "m.chain")
    assert message in str(info.value)
    assert info.value.span is not None and info.value.span.line >= 1


def test_a_tensor_point_in_the_wrong_shape_is_a_clear_error() -> None:
    from chainrule.symbolic.errors import ChainruleError

    p = _program("conv2d")
    point = random_point(p, seed=0)
    point["X"] = np.zeros(40)
    with pytest.raises(ChainruleError, match=r"X must be 3-d array of shape \[2, 5, 4\]"):
        vector_gradient_at(backprop(p), point)


# ------------------------------------------------------------------ training
@pytest.mark.slow
def test_cnn_digits_trains_to_97_percent_held_out() -> None:
    import chainrule
    from chainrule.numeric.data import load_dataset
    from chainrule.numeric.train import TrainConfig, train

    result = train(chainrule.load("cnn_digits"), load_dataset("digits"), TrainConfig(val_split=0.2))
    assert result.history["epochs"][-1]["val_accuracy"] >= 0.97


def test_kernel_fan_in_is_channels_times_kernel_size() -> None:
    import chainrule
    from chainrule.numeric.train import fan_in

    assert fan_in(chainrule.load("cnn_digits"), "K") == 1 * 3 * 3


def test_report_notes_explain_the_layer_and_both_views_of_the_seed_convolution() -> None:
    from chainrule.reports.document import operation_notes

    notes = operation_notes(_derivation(_program("conv2d_bias")))
    assert any("PyTorch" in n and "K̄ is the valid cross-correlation" in n for n in notes)
    assert any("translate-and-scale" in n and "[2, 1, 4, -1, 2]" in n for n in notes)
    assert any("flip-and-filter view" in n for n in notes)


def test_homework_check_on_a_cnn_reads_answers_and_abbreviates_large_points(
    tmp_path, capsys
) -> None:  # noqa: ANN001
    from chainrule.cli import main

    answer = tmp_path / "a.txt"
    answer.write_text("Y_bar = H_bar * step(Y)\nb_bar = sum(Y_bar)\n")
    assert main(["check", "cnn_digits", "--answer", str(answer)]) == 1
    out = capsys.readouterr().out
    assert "Y_bar        correct" in out and "b_bar        incorrect" in out
    assert "K=(8, 1, 3, 3) array [" in out  # not 72 numbers on one line


@pytest.mark.parametrize(
    "name", ["two_layers", "conv2d_stride_padding", "conv1d_stride_padding", "conv2d_bias"]
)
def test_second_order_of_the_layers_equals_differences_of_gradients(name: str, tmp_path) -> None:  # noqa: ANN001
    """H v by forward-over-reverse (the layers' tangent rules, in generated hvp) against
    central differences of the gradient (check-grad --order 2)."""
    from chainrule.cli import main

    path = tmp_path / f"{name}.chain"
    path.write_text(f"# {name}\n{MODELS[name]}\n{LOSS}\n")
    assert main(["check-grad", str(path), "--order", "2", "--points", "1"]) == 0
    assert main(["derive", str(path), "--order", "2", "--method", "backprop"]) == 0


def test_help_shows_a_cnn_that_parses() -> None:
    from chainrule.cli import EPILOG, build_parser

    block = EPILOG[EPILOG.index("  param K[8, 1, 3, 3]") :].strip().splitlines()
    program = parse_program("\n".join(line.strip() for line in block))
    assert [a.name for a in program.assignments][:1] == ["Y"]
    train_help = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "chainrule train cnn_digits --data digits" in train_help
