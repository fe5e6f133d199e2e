"""Answers in the notation courses and chainrule itself write: each correct form is judged
correct, and a wrong twin incorrect with the expected diagnosis."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import chainrule
from chainrule.homework.answers import parse_answer_text
from chainrule.homework.check import Truth, check_answer

TANH_L2 = """\
# two-layer tanh MLP with L2 regularization; the pre-activation is computed inline
param W1[m, n], b1[m], W2[k, m], b2[k]
input x[n], t[k]
const lambda = 0.01
h = tanh(W1 @ x + b1)
y = W2 @ h + b2
E = sum((y - t)^2) / 2
R = (sum(W1 * W1) + sum(W2 * W2)) / 2
L = E + lambda * R
loss L
"""


@pytest.fixture(scope="module")
def lls() -> Truth:
    return Truth(chainrule.load("logistic_least_squares"))


@pytest.fixture(scope="module")
def tanh_l2(tmp_path_factory: pytest.TempPathFactory) -> Truth:
    path = tmp_path_factory.mktemp("m") / "tanh_l2.chain"
    path.write_text(TANH_L2)
    return Truth(chainrule.load(str(path)))


@pytest.fixture(scope="module")
def mlp() -> Truth:
    return Truth(chainrule.load("vector_mlp"))


def judge(truth: Truth, text: str, fmt: str = "auto") -> list[tuple[str, str, str]]:
    res = check_answer(truth, parse_answer_text(text, "a", truth.program, fmt))
    return [(r.target, r.status, r.message) for r in res.lines]


def only(truth: Truth, text: str, fmt: str = "auto") -> tuple[str, str]:
    (line,) = judge(truth, text, fmt)
    return line[1], line[2]


# ------------------------------------------------------------------ scalar notation
LLS_CORRECT = [
    r"\bar{z} = \bar{y}\,\sigma'(z)",
    r"\bar{z} = \bar{y}\,\sigma(z)\left(1 - \sigma(z)\right)",
    r"\bar{z} = \bar{y}\,\mathrm{sigmoid}(z)(1-\operatorname{sigmoid}(z))",
    r"\delta_z = (\hat{y} - t)\,\sigma'(z)",
    r"\delta = (\hat{y} - t)\sigma(z)(1 - \sigma(z))",
    r"\bar{z} = \frac{\partial \mathcal{L}}{\partial y}\,\sigma'(z)",
    r"\bar{z} = \bar{y}\frac{\partial y}{\partial z} = \bar{y}\,\sigma'(z)",
    r"$\bar{z} = \bar{y}\,\sigma'(z)$",
    r"\[ \bar{z} = \bar{y}\,\sigma'(z) \]",
    r"\bar{z} = \bar{y}\,\bigl(\sigma(z) - \sigma^2(z)\bigr)",
    r"\bar{z} = \bar{y}\,(\sigma(z) - \sigma(z)^{2})",
    r"\bar{z} = \bar{y} \tilde{y} (1 - \tilde{y})",
    "z̄ = ȳ σ′(z)",
    "z̄ = ȳ y (1 − y)",
    "zbar = ybar * sigmoid(z) * (1 - sigmoid(z))",
    "zbar = ybar sigma(z)(1 - sigma(z))",
    "zbar = ybar (sigma(z) - sigma^2(z))",
    "delta_z = (y_hat - t) y (1 - y)",
    "δ = (ŷ − t) σ'(z)",
    "zbar = dL/dy * sigma'(z)",
    "zbar = ∂L/∂y σ'(z)",
    "dL/dw = x (σ(b + w x) − t) σ'(b + w x)",
    "dL/dw = x (sigmoid(b + wx) - t) sigma(b+w x)(1-sigma(b + w x))",
]


@pytest.mark.parametrize("line", LLS_CORRECT)
def test_scalar_notation_correct(lls: Truth, line: str) -> None:
    assert only(lls, line)[0] == "correct", judge(lls, line)


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        (r"\bar{z} = \bar{y}\,\sigma(z)", "σ where σ' belongs"),
        (r"\delta_z = -(\hat{y} - t)\,\sigma'(z)", "sign error"),
        (r"\bar{z} = 2\bar{y}\,\sigma^2(z)", "does not match"),
        (r"\bar{z} = \frac{\partial \mathcal{L}}{\partial y}", "missing local derivative"),
        ("z̄ = ȳ σ(z)", "σ where σ' belongs"),
        ("zbar = 2 ybar sigma'(z)", "factor of 2"),
        ("δ = (ŷ − t)", "missing local derivative"),
        ("dL/dw = -x (σ(b + w x) − t) σ'(b + w x)", "sign error"),
    ],
)
def test_scalar_notation_wrong_twin(lls: Truth, line: str, needle: str) -> None:
    status, message = only(lls, line)
    assert status == "incorrect" and needle in message


# ------------------------------------------------------------------ tanh, sech, L2, diag
TANH_CORRECT = [
    r"\bar{b}^{(1)} = \bar{h}\circ\left(1 - \tanh^2(W^{(1)}x + b^{(1)})\right)",
    r"\bar{b}^{(1)} = \bar{h}\circ(1 - \mathrm{tanh}^2(W^{(1)}x + b^{(1)}))",
    r"\bar{b}^{(1)} = \bar{h}\circ(1 - \operatorname{tanh}"
    r"^{2}(\mathbf{W}^{(1)}\mathbf{x} + \mathbf{b}^{(1)}))",
    r"\bar{b}^{(1)} = \bar{h}\odot\operatorname{sech}^2(W^{(1)}x + b^{(1)})",
    r"\bar{b}^{(1)} = \bar{h}\odot(1-h^2)",
    r"\bar{b}^{(1)} = \bar{h}\odot \frac{1}{\cosh^2(W^{(1)}x + b^{(1)})}",
    r"\bar{b}^{(1)} = \bar{h}\odot (1 - (\sinh(W^{(1)}x + b^{(1)}) / \cosh(W^{(1)}x + b^{(1)}))^2)",
    r"\bar{b}^{(1)} = \operatorname{diag}(1-h^2)\bar{h}",
    r"\bar{W}^{(1)} = \operatorname{diag}(1-h^2)\bar{h} x^\top + \lambda W^{(1)}",
    r"\bar{W}^{(1)} = \left(\bar{h}\circ(1-\tanh^2(W^{"
    r"(1)}x + b^{(1)}))\right)x^\top + \lambda W^{(1)}",
    r"\bar{\mathbf{W}}^{(2)} = \bar{\mathbf{y}}\mathbf{h}^\top + \lambda\mathbf{W}^{(2)}",
    r"\bar{y} = \hat{\mathbf{y}} - \mathbf{t}",
    "b1bar = hbar * (1 - tanh(W1 @ x + b1)^2)",
    "b1bar = hbar * (1 - tanh^2(W1 @ x + b1))",
    "b1bar = hbar * sech(W1 @ x + b1)^2",
    "b̄⁽¹⁾ = h̄ ∘ (1 − h²)",
    "W̄⁽²⁾ = ȳ hᵀ + λ W⁽²⁾",
    "W̄⁽²⁾ = ȳhᵀ + λW⁽²⁾",
    "b̄⁽¹⁾ = h̄ ∘ (1 − tanh²(W⁽¹⁾x + b⁽¹⁾))",
    "b̄⁽¹⁾ = h̄ ⊙ sech²(W⁽¹⁾ x + b⁽¹⁾)",
]


@pytest.mark.parametrize("line", TANH_CORRECT)
def test_tanh_notation_correct(tanh_l2: Truth, line: str) -> None:
    assert only(tanh_l2, line)[0] == "correct", judge(tanh_l2, line)


@pytest.mark.parametrize(
    ("line", "needles"),
    [
        (r"\bar{W}^{(1)} = (\bar{h}\circ(1-h^2))x^\top", ["fan-out", "regularizer R", "λ W⁽¹⁾"]),
        (r"\bar{W}^{(2)} = \bar{y}h^\top", ["regularization term λ W⁽²⁾"]),
        (
            r"\bar{W}^{(1)} = x(\bar{h}\circ(1-h^2))^\top + \lambda W^{(1)}",
            ["you wrote x(\\bar{h}\\circ(1-h^2))^\\top", "2×3", "3×2", "missing transpose"],
        ),
        (r"\bar{W}^{(1)} = (\bar{h}\circ h)x^\top + \lambda W^{(1)}", ["tanh where tanh'"]),
        (r"\bar{h} = W^{(1)\top}\bar{y}", ["layer mix-up", "W⁽¹⁾ where W⁽²⁾ belongs"]),
        (
            r"\bar{b}^{(1)} = \bar{h}\odot\operatorname{sech}(W^{(1)}x + b^{(1)})",
            ["does not match"],
        ),
        (r"\bar{b}^{(1)} = \bar{h}", ["missing local derivative"]),
        (r"\bar{y} = t - \hat{y}", ["sign error"]),
    ],
)
def test_vector_diagnoses(tanh_l2: Truth, line: str, needles: list[str]) -> None:
    status, message = only(tanh_l2, line)
    assert status == "incorrect"
    for needle in needles:
        assert needle in message
    assert "lambda @" not in message


# ------------------------------------------------------------------ δ, indicators, softmax
@pytest.mark.parametrize(
    ("line", "target"),
    [
        (r"\delta^{(2)} = \mathbf{y} - \mathbf{t}", "y_bar"),
        (r"\boldsymbol{\delta}^{(1)} = \bar{h}\circ\sigma'(z)", "z_bar"),
        (r"\delta_z = \bar{h}\circ\sigma'(z)", "z_bar"),
        ("δ⁽²⁾ = y − t", "y_bar"),
        ("delta2 = y - t", "y_bar"),
        ("delta_1 = hbar * sigma'(z)", "z_bar"),
        (r"\delta_k = y_k - t_k", "y_bar"),
    ],
)
def test_delta_rule(mlp: Truth, line: str, target: str) -> None:
    (r,) = judge(mlp, line)
    assert r[0] == target and r[1] == "correct", r


def test_delta_in_expressions(mlp: Truth) -> None:
    lines = judge(mlp, r"\delta^{(2)} = y - t" + "\n" + r"\bar{W}^{(2)} = \delta^{(2)} h^\top")
    assert [s for _, s, _ in lines] == ["correct", "correct"]


@pytest.mark.parametrize(
    "line",
    [
        r"\bar{b} = \bar{h} \circ \mathbb{1}[W x + b > 0]",
        r"\bar{b} = \bar{h} \circ \mathbb{1}_{W x + b > 0}",
        r"\bar{b} = \bar{h} \circ \mathbf{1}(W x + b \geq 0)",
        r"\bar{b} = \bar{h} \circ \operatorname{step}(W x + b)",
        "bbar = hbar * [W @ x + b > 0]",
        "bbar = hbar * 1[W @ x + b > 0]",
        "bbar = hbar * indicator(W @ x + b > 0)",
        "bbar = hbar * step(W @ x + b)",
        "b̄ = h̄ ∘ 𝟙[W x + b > 0]",
    ],
)
def test_indicator(line: str, tmp_path: Path) -> None:
    path = tmp_path / "relu.chain"
    path.write_text(
        "param W[m, n], b[m], V[k, m]\ninput x[n], t[k]\nh = relu(W @ x + b)\n"
        "y = V @ h\nL = sum((y - t)^2) / 2\nloss L\n"
    )
    truth = Truth(chainrule.load(str(path)))
    assert only(truth, line)[0] == "correct", judge(truth, line)
    twin = line.replace(">", "<").replace("\\geq", "\\leq").replace("step", "sigma")
    assert only(truth, twin)[0] == "incorrect"


@pytest.mark.parametrize(
    "line",
    [
        r"\bar{z} = \operatorname{softmax}(z) - t",
        r"\bar{z} = \mathrm{softmax}(\mathbf{z}) - \mathbf{t}",
        "zbar = softmax(z) - t",
        "zbar = y - t",
    ],
)
def test_softmax_spelled_out(line: str) -> None:
    truth = Truth(chainrule.load("softmax_regression_vector"))
    assert only(truth, line)[0] == "correct"
    assert only(truth, line.replace("- t", "+ t").replace("- \\mathbf{t}", "+ \\mathbf{t}"))[0] == (
        "incorrect"
    )


# ------------------------------------------------------------------ documents
def test_latex_document_with_prose_align_and_chains(lls: Truth) -> None:
    text = "\n".join(
        [
            r"\documentclass{article}",
            r"\begin{document}",
            r"First the output: $\bar{y} = \hat{y} - t$.",
            r"\begin{align}",
            r"\bar{z} &= \bar{y}\frac{\partial y}{\partial z} \\",
            r"        &= \bar{y}\,\sigma'(z) \\",
            r"\bar{w} &= \bar{z} x, \quad \text{and} \\ \bar{b} &= \bar{z}",
            r"\end{align}",
            r"\end{document}",
        ]
    )
    lines = judge(lls, text)
    assert [(t, s) for t, s, _ in lines] == [
        ("y_bar", "correct"),
        ("z_bar", "correct"),
        ("w_bar", "correct"),
        ("b_bar", "correct"),
    ]


# ------------------------------------------------------------------ chainrule's own output
MODELS = [
    "logistic_least_squares",
    "logistic_least_squares_l2",
    "vector_mlp",
    "mlp_2_2_2",
    "tanh_mlp3",
    "xor",
    "softmax_regression_vector",
    "residual",
    "shared_weights",
]


@pytest.mark.parametrize("model", MODELS)
def test_own_derive_output_reads_back(model: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "chainrule", "derive", model, "--method", "backprop"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    backward = out.split("Backward pass")[1].splitlines()[2:]
    lines = []
    for line in backward:
        if not line.strip() or line.startswith("check:"):
            break
        lines.append(line)
    assert len(lines) >= 3
    program = chainrule.load(model)
    res = check_answer(Truth(program), parse_answer_text("\n".join(lines), "own", program))
    assert res.verdict == "correct", [(r.line, r.message) for r in res.lines]
    # a wrong twin: the first line with a sign flipped is caught
    first_target, first_rhs = lines[1].split("=", 1)
    twin = "\n".join([f"{first_target}= -({first_rhs.split('  (')[0].strip()})"])
    (r,) = check_answer(Truth(program), parse_answer_text(twin, "twin", program)).lines
    assert r.status == "incorrect"


# ------------------------------------------------------------------ named intermediates
@pytest.mark.parametrize(
    "text",
    [
        "a = W^{(1)}x + b^{(1)}\n\\bar{a} = \\bar{h}\\circ(1-h^2)\n"
        "\\bar{W}^{(1)} = \\bar{a}x^\\top + \\lambda W^{(1)}\n\\bar{b}^{(1)} = \\bar{a}",
        "a = W1 @ x + b1\nabar = hbar * (1 - h^2)\nW1bar = abar @ x.T + lambda * W1",
        "s = \\mathbf{W}^{(1)}\\mathbf{x} + \\mathbf{b}^{(1)}"
        "\n\\bar{s} = \\bar{h}\\odot\\operatorname{sech}^2(s)",
        "\\bar{a} = \\bar{h}\\circ(1-h^2)\n\\bar{b}^{(1)} = \\bar{a}",  # no definition: inline
        "\\delta^{(1)} = \\bar{h}\\circ(1-h^2)\n\\bar{W}^"
        "{(1)} = \\delta^{(1)} x^\\top + \\lambda W^{(1)}",
        "u = W^{(2)}h + b^{(2)}\n\\bar{u} = u - t",  # another name for the node y
        "y = W^{(2)}h + b^{(2)}\n\\bar{y} = y - t",  # the forward pass restated: not graded
    ],
)
def test_named_intermediates(tanh_l2: Truth, text: str) -> None:
    lines = judge(tanh_l2, text)
    assert lines and all(s == "correct" for _, s, _ in lines), lines


def test_named_intermediate_wrong_twins(tanh_l2: Truth) -> None:
    (line,) = judge(tanh_l2, "a = W^{(1)}x + b^{(1)}\n\\bar{a} = \\bar{h}")
    assert line[0] == "a_bar" and line[1] == "incorrect"
    assert "missing local derivative" in line[2]
    (line,) = judge(tanh_l2, "q = W^{(1)}x\n\\bar{y} = y - t")[:1]
    assert line[1] == "unparseable" and "no later line uses it" in line[2]
    (line,) = judge(tanh_l2, "q = W^{(1)}x\n\\bar{q} = \\bar{h}")
    assert line[1] == "unparseable" and "your own shorthand" in line[2]
    (line,) = judge(tanh_l2, "y = W^{(1)}\\,x")
    assert line[1] == "unparseable" and "model value" in line[2]


def test_named_intermediates_in_residual() -> None:
    truth = Truth(chainrule.load("residual"))
    lines = judge(truth, "\\bar{a}^{(1)} = \\bar{h}^{(1)} \\circ (1 - (h^{(1)})^2)")
    assert lines == [("a1_bar", "correct", "correct")]


# ------------------------------------------------------------------ more course styles
@pytest.mark.parametrize(
    "text",
    [
        "dy = y - t\ndW2 = np.outer(dy, h)\ndh = np.dot(W2.T, dy)\n"
        "dz = dh * sigmoid(z) * (1 - sigmoid(z))\ndW1 = dz x'\ndb1 = dz",
        "grad_W1 = (W2.T @ (y - t) * sigma'(z)) @ x.T",
        "dW2 = (y - t).dot(h.T)\ndh = W2.transpose().dot(y - t)\ndW1 = (dh * sigma'(z)).dot(x.T)",
        "dz^{[1]} = W^{[2]T} (y - t) * \\sigma'(z^{(1)})",
        "\\nabla_{\\mathbf{W}^{(2)}} \\mathcal{L} = (\\mathbf{y}-\\mathbf{t})\\mathbf{h}^\\top",
        "dW^{[2]} = dy\\, h^{\\top}",
        "{\\bf\\bar{y}} = {\\bf y} - {\\bf t}",
        "\\bar{\\mathbf{z}} = \\left(\\mathbf{W}^{(2)}\\right)^"
        "{\\top}\\bar{\\mathbf{y}} \\odot \\sigma'(\\mathbf{z})",
    ],
)
def test_course_styles(mlp: Truth, text: str) -> None:
    lines = judge(mlp, text)
    assert lines and all(s == "correct" for _, s, _ in lines), lines


@pytest.mark.parametrize(
    "model", ["vector_mlp", "logistic_least_squares_l2", "tanh_mlp3", "mlp_2_2_2", "residual"]
)
def test_own_latex_report_reads_back(model: str, tmp_path: Path) -> None:
    import re

    from chainrule.cli import main

    out = tmp_path / f"{model}.tex"
    flags = ["--no-naive", "--no-graph", "--no-checks", "--no-code"]
    assert main(["report", model, "-o", str(out), *flags]) == 0
    text = out.read_text()
    section = text[text.index("Error signals") :]
    lines = re.findall(r"\\fiteq\{(.*)\}\\end\{center\}", section)
    assert len(lines) >= 3
    program = chainrule.load(model)
    answer = parse_answer_text("\n".join(lines), "report.tex", program, "latex")
    res = check_answer(Truth(program), answer)
    assert res.verdict == "correct", [
        (r.line, r.message) for r in res.lines if r.status != "correct"
    ]


def test_readme_backward_pass_reads_back() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("$ chainrule derive vector_mlp --method backprop\n", 1)[1]
    lines = [line for line in block.split("```")[0].splitlines() if " = " in line]
    assert len(lines) >= 6
    program = chainrule.load("vector_mlp")
    res = check_answer(Truth(program), parse_answer_text("\n".join(lines), "README", program))
    assert res.verdict == "correct", res.lines


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (r"\bar{y} = \hat{y} - y", "correct"),  # a course that names the label y
        (r"\bar{z} = (\hat{y} - y)\hat{y}(1-\hat{y})", "correct"),
        ("ybar = y_hat - y", "correct"),
        (r"\bar{y} = y - \hat{y}", "incorrect"),
        (r"\frac{\partial \ell}{\partial y} = y - t", "correct"),
        ("dLdz = dLdy * y * (1-y)", "correct"),
        ("dL_dw = dz * x", "correct"),
        ("bar_z = ybar∗sigma'(z)", "correct"),
        ("zbar = ybar .* y .* (1 - y)", "correct"),
        ("zbar = ybar .* y .* (1 + y)", "incorrect"),
        (r"\frac{\text{d}L}{\text{d}y} = y - t", "correct"),
        (r"\frac{\operatorname{d}\mathcal{L}}{\operatorname{d}z} = \bar{y}\sigma'(z)", "correct"),
        ("d_w = d_z * x", "correct"),
        ("d_w = d_z * w", "incorrect"),
        (r"\bar{z} := \bar{y}\sigma'(z)", "correct"),
        (r"\bar{z} \coloneqq \bar{y}\sigma'(z)", "correct"),
        ("zbar := ybar * sigma'(z)", "correct"),
        ("z̄ ≔ ȳ σ'(z)", "correct"),
        ("z̄ ≔ ȳ σ(z)", "incorrect"),
    ],
)
def test_more_scalar_styles(lls: Truth, line: str, status: str) -> None:
    assert only(lls, line)[0] == status, judge(lls, line)


@pytest.mark.parametrize(
    ("line", "status"),
    [
        ("W2bar = ybar ⊗ h", "correct"),
        ("W2bar = h ⊗ ybar", "incorrect"),
        (r"\bar{W}^{(2)} = \bar{y}\otimes h", "correct"),
        ("hbar = W2⊤ ybar", "correct"),
        (r"\bar{h} = W^{(2)^\top}\bar{y}", "correct"),
        (r"\bar{h} = W^{(2)\mathsf{T}}\bar{y}", "correct"),
        (r"\bar{h} = W^{(2)}\bar{y}", "incorrect"),
        ("zbar = (W2.T @ ybar) * sigma(z) * (1 - sigma(z))", "correct"),
    ],
)
def test_more_vector_styles(mlp: Truth, line: str, status: str) -> None:
    assert only(mlp, line)[0] == status, judge(mlp, line)


def test_relu_masks_in_code_style(tmp_path: Path) -> None:
    path = tmp_path / "relu.chain"
    path.write_text(
        "param W[m, n], b[m], V[k, m]\ninput x[n], t[k]\nh = relu(W @ x + b)\n"
        "y = V @ h\nL = sum((y - t)^2) / 2\nloss L\n"
    )
    truth = Truth(chainrule.load(str(path)))
    for line in [
        "dW = (V.T @ (y - t) * (h > 0).astype(float)) @ x.T",
        "dW = np.outer(V.T @ (y - t) * np.heaviside(W @ x + b, 0), x)",
        "db = V.T @ (y - t) * (W @ x + b > 0)",
        "dh = V.T @ (y - t)\ndb = dh * (np.maximum(0, W @ x + b) > 0)",
    ]:
        assert all(s == "correct" for _, s, _ in judge(truth, line)), judge(truth, line)
    assert only(truth, "db = V.T @ (y - t) * (h < 0)")[0] == "incorrect"


def test_sum_over_the_wrong_axis(mlp: Truth) -> None:
    status, message = only(mlp, "b2bar = sum(ybar)")
    assert status == "incorrect" and "sum over the wrong axis" in message
    assert "you wrote sum(ybar), a scalar" in message
    status, message = only(mlp, "W2bar = h @ ybar.T")
    assert "you wrote h @ ybar.T, a (m, k) = 3×4 matrix" in message
    assert "is (k, m) = 4×3: a missing transpose" in message


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (r"\bar{z} = \bar{h}\left(1 - \sigma(z)\right)\sigma(z)", "correct"),
        (r"\bar{z} = \bar{h}\cdot\sigma'(z)", "correct"),
        ("zbar = hbar sigma'(z)", "correct"),
        ("z̄ = h̄ σ'(z)", "correct"),
        ("zbar = hbar @ sigma'(z)", "incorrect"),  # an explicit matrix product does not fit
        (r"\bar{W}^{(2)} = \bar{y}h", "incorrect"),
        ("W^(2)_bar = ybar @ h.T", "correct"),
        ("hbar = W^(2).T @ ybar", "correct"),
        ("W_2_bar = y_bar h^T", "correct"),
        ("h_bar = W_2^T y_bar", "correct"),
    ],
)
def test_side_by_side_vectors_and_plain_layers(mlp: Truth, line: str, status: str) -> None:
    assert only(mlp, line)[0] == status, judge(mlp, line)


def test_a_names_the_pre_activation_the_model_names_z() -> None:
    truth = Truth(chainrule.load("tanh_mlp3"))
    text = "\\bar{a}_2 = W_3^T \\bar{z}_3 \\odot (1-h_2^2)\n\\bar{W}^{(2)} = \\bar{a}_2 h_1^T"
    assert judge(truth, text) == [
        ("z2_bar", "correct", "correct"),
        ("W2_bar", "correct", "correct"),
    ]
    (r,) = judge(truth, "\\bar{a}^{(1)} = W^{(2)\\top}\\bar{z}^{(2)}")
    assert r[:2] == ("z1_bar", "incorrect") and "missing local derivative" in r[2]


@pytest.mark.parametrize(
    "text",
    [
        "e = y - t\nW2bar = e h^T\nb2bar = e",
        "\\mathbf{r} = \\mathbf{y} - \\mathbf{t}\n"
        "\\bar{\\mathbf{W}}^{(2)} = \\mathbf{r}\\mathbf{h}^\\top",
        "g = \\bar{h}\\circ\\sigma'(z)\n\\bar{W}^{(1)} = g x^\\top\n\\bar{b}^{(1)} = g",
        "s = sigma(z)\nzbar = hbar * s * (1 - s)",
    ],
)
def test_shorthands_are_written_out(mlp: Truth, text: str) -> None:
    lines = judge(mlp, text)
    assert lines and all(s == "correct" for _, s, _ in lines), lines


def test_shorthand_wrong_twin_and_unused(mlp: Truth) -> None:
    lines = judge(mlp, "e = y + t\nW2bar = e h^T")
    assert lines[0][1] == "incorrect"
    lines = judge(mlp, "ybr = y - t\nW2bar = ybar h^T")
    assert [(t, s) for t, s, _ in lines] == [("ybr", "unparseable"), ("W2_bar", "correct")]


def test_prose_and_markdown_around_answers(lls: Truth) -> None:
    text = "\n".join(
        [
            "# My homework",
            "The backward pass (for part b):",
            "```",
            "ybar = y - t",
            "zbar = ybar * sigma'(z)",
            "```",
            "and in LaTeX: $\\bar{w} = \\bar{z}\\,x$",
            "- $\\bar{b} = \\bar{z}$",
        ]
    )
    lines = judge(lls, text)
    assert [(t, s) for t, s, _ in lines] == [
        ("y_bar", "correct"),
        ("z_bar", "correct"),
        ("w_bar", "correct"),
        ("b_bar", "correct"),
    ]
    # a formula that lost its '=' is still reported, not skipped as prose
    lines = judge(lls, "ybar = y - t\nzbar ybar sigma(z)")
    assert [s for _, s, _ in lines] == ["correct", "unparseable"]


VECTOR_LATEX = [
    r"\nabla_{\mathbf{h}} \mathcal{L} = (\mathbf{W}^{(2)})^{T} \nabla_{\mathbf{y}} \mathcal{L}",
    r"\bar{\mathbf z} = \bar{\mathbf h} \odot \mathbf h \odot (\mathbf 1 - \mathbf h)",
    r"\mathbf{\bar{W}}^{(1)} = \bar{\mathbf{z}}\mathbf{x}^\top",
    r"\frac{\partial L}{\partial \mathbf b_1} = \boldsymbol\delta_1",
    r"\bar{y} = \mathbf{y} - \mathbf{t}, \quad \bar{W}^{(2)} = \bar{y} h^\top",
    r"\bar z_i = \bar h_i \sigma'(z_i)",
    r"\bar{\boldsymbol{z}} = \bar{\boldsymbol{h}} \odot \boldsymbol{\sigma}'(\boldsymbol{z})",
    r"\bar{z} = \operatorname{diag}(\sigma'(z))\, W^{(2)\top}\bar{y}",
    r"\bar{W}^{(1)} = \left[\left(W^{(2)}\right)^T (y - t) \odot \sigma'(z)\right] x^T",
    r"\boldsymbol{\delta}^{(1)} = \left( \mathbf{W}^{(2)T} \boldsymbol{\delta}^{(2)} \right)"
    r" \odot \sigma'\!\left(\mathbf{z}\right)",
]


@pytest.mark.parametrize("line", VECTOR_LATEX)
def test_vector_latex_styles(mlp: Truth, line: str) -> None:
    lines = judge(mlp, line, "latex")
    assert lines and all(s == "correct" for _, s, _ in lines), lines


@pytest.mark.parametrize("line", VECTOR_LATEX)
def test_vector_latex_styles_wrong_twin(mlp: Truth, line: str) -> None:
    twin = line.replace(r"\odot", "+", 1) if r"\odot" in line else line.replace("=", "= -", 1)
    if "=" in twin.split("=", 2)[-1] and r"\quad" in twin:
        twin = twin.replace(r"\bar{y} h^\top", r"h \bar{y}^\top")
    lines = judge(mlp, twin, "latex")
    assert any(s == "incorrect" for _, s, _ in lines), lines


def test_fan_out_along_two_paths_to_one_child() -> None:
    truth = Truth(chainrule.load("residual"))  # h2 = h1 + relu(W @ h1)
    status, message = only(truth, "h1bar = h2bar")
    assert status == "incorrect" and "reaches h2 along 2 paths" in message
    status, message = only(truth, "h1bar = W.T @ (h2bar * step(W @ h1)) + h2bar")
    assert status == "correct"


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (r"\bar{z} = \hat{y} - t", "correct"),
        (r"\bar{z} = \operatorname{softmax}(z) - t", "correct"),
        ("zbar = ŷ − t", "correct"),
        (r"\bar{W} = (\hat{\mathbf{y}} - \mathbf{t})\mathbf{x}^\top", "correct"),
        (r"\bar{z} = t - \hat{y}", "incorrect"),
        (r"\bar{z} = \operatorname{softmax}(z)", "incorrect"),
    ],
)
def test_prediction_on_a_log_softmax_model(line: str, status: str, tmp_path: Path) -> None:
    path = tmp_path / "logsm.chain"
    path.write_text(
        "param W[K, D], b[K]\ninput x[D], t[K]\nz = W @ x + b\nl = log_softmax(z)\n"
        "L = -sum(t * l)\nloss L\n"
    )
    truth = Truth(chainrule.load(str(path)))
    assert only(truth, line)[0] == status, judge(truth, line)


def test_labels_tags_and_intertext(lls: Truth) -> None:
    text = "\n".join(
        [
            r"\begin{equation}\label{eq:zbar}",
            r"\bar{z} = \bar{y}\,\sigma'(z) \tag{3}",
            r"\end{equation}",
            r"\intertext{and then the weights}",
            r"\bar{w} = \bar{z}x \nonumber",
        ]
    )
    assert [(t, s) for t, s, _ in judge(lls, text)] == [("z_bar", "correct"), ("w_bar", "correct")]


def test_index_mix_up_in_unit_form() -> None:
    truth = Truth(chainrule.load("mlp_2_2_2"))
    status, message = only(truth, "z1bar = h2bar * sigma'(z1)")
    assert status == "incorrect" and "index mix-up: you wrote h̄₂ where h̄₁ belongs" in message
    status, message = only(truth, "w11bar = z1bar * x2")
    assert "you wrote x₂ where x₁ belongs" in message
    assert only(truth, "w11bar = z1bar * x1")[0] == "correct"


def test_inline_pre_activation_in_a_scalar_model(tmp_path: Path) -> None:
    path = tmp_path / "inline.chain"
    path.write_text("param w, b\ninput x, t\ny = sigma(w*x + b)\nL = (y - t)^2 / 2\nloss L\n")
    truth = Truth(chainrule.load(str(path)))
    lines = judge(truth, "z = w x + b\nzbar = (y - t) y (1 - y)\nwbar = zbar x")
    assert [(t, s) for t, s, _ in lines] == [("z_bar", "correct"), ("w_bar", "correct")]
    (r,) = judge(truth, "z = w x + b\nzbar = y - t")
    assert r[1] == "incorrect" and "missing local derivative" in r[2]
