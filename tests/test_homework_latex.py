"""The lecture-notation LaTeX grammar: same trees as the plain grammar, our own parser."""

from __future__ import annotations

import pytest

import chainrule
from chainrule.homework.answers import AnswerBuilder, parse_answer_text
from chainrule.homework.latex import latex_target, parse_latex
from chainrule.symbolic.errors import LimitError, ModelError
from chainrule.symbolic.grammar import parse_expression

KNOWN = {
    "w",
    "b",
    "x",
    "t",
    "z",
    "y",
    "L",
    "L_reg",
    "R",
    "lambda",
    "h",
    "W1",
    "W2",
    "y1",
    "y2",
    "v11",
    "v21",
    "v12",
    "v22",
    "h1",
    "x1",
}


@pytest.mark.parametrize(
    ("latex", "plain"),
    [
        (r"\bar{y}\,\sigma'(z)", "y_bar*sigma'(z)"),
        (r"\bar{y} \sigma^{\prime}(z)", "y_bar*sigma'(z)"),
        (r"\bar{y}\cdot\sigma^\prime(z)", "y_bar*sigma'(z)"),
        (r"\frac{1}{2}(y - t)^2", "1/2*(y - t)^2"),
        (r"\bar{z} x + \overline{\mathcal{R}}\, w", "z_bar*x + R_bar*w"),
        (r"\overline{\mathcal{L}}_{reg}\lambda", "L_reg_bar*lambda"),
        (r"wx + b", "w*x + b"),
        (r"\left( y - t \right) \circ \sigma(z)", "(y - t)*sigma(z)"),
        (r"e^{-z}", "e^(-z)"),
        (r"\exp(-z) + \log y + \ln(1 - y)", "exp(-z) + log(y) + log(1 - y)"),
        (r"\sigma(z)\left(1 - \sigma(z)\right)", "sigma(z)*(1 - sigma(z))"),
        (r"\mathbf{W}^{(2)\top}", "W2.T"),
        (r"\mathbf{h}^\top", "h.T"),
        (r"x^{2} y", "x^2*y"),
        (r"-\bar{z}", "-z_bar"),
        (r"\sum_k \bar{y}_k v_{k1}", "y1_bar*v11 + y2_bar*v21"),
        (r"\sum_{k=1}^{2} \bar{y}_k v_{k2}", "y1_bar*v12 + y2_bar*v22"),
        (r"\operatorname{ReLU}(z)", "relu(z)"),
        ("σ'(z)·ȳ".replace("ȳ", r"\bar{y}"), "sigma'(z)*y_bar"),
    ],
)
def test_same_tree_as_plain_grammar(latex: str, plain: str) -> None:
    assert parse_latex(latex, known_names=KNOWN) == parse_expression(plain)


@pytest.mark.parametrize(
    ("latex", "target"),
    [
        (r"\bar{z}", "z_bar"),
        (r"\overline{\mathbf{W}^{(2)}}", "W2_bar"),
        (r"\bar{\mathcal{L}}_{reg}", "L_reg_bar"),
        (r"\frac{\partial \mathcal{L}}{\partial w}", "dL/dw"),
        (r"\frac{d\mathcal{L}}{dy}", "dL/dy"),
        (r"\frac{\mathrm{d}\mathcal{L}}{\mathrm{d}y}", "dL/dy"),
        (r"\partial L / \partial x_1", "dL/dx1"),
        (r"\overline{w_{11}}", "w11_bar"),
    ],
)
def test_targets(latex: str, target: str) -> None:
    assert latex_target(latex, KNOWN) == target


@pytest.mark.parametrize(
    "bad",
    [
        r"\bar{y}\,\sigma'(z",
        r"\frac{1}",
        r"\foo{x}",
        r"x_",
        r"9^9^9",
        r"\partial y",
        r"\sum y",
        "y \u0430",
    ],
)
def test_errors_are_located(bad: str) -> None:
    with pytest.raises(ModelError) as info:
        parse_latex(bad, known_names=KNOWN)
    assert info.value.span.column >= 1


def test_nesting_limit() -> None:
    with pytest.raises(LimitError):
        parse_latex("(" * 500 + "x" + ")" * 500)
    with pytest.raises(LimitError):
        parse_latex(r"\frac{" * 200 + "1" + "}{2}" * 200)


def test_latex_file_builds_sympy_and_autodetects() -> None:
    prog = chainrule.load("logistic_least_squares")
    ans = parse_answer_text("$$\\bar{z} = \\bar{y}\\,\\sigma'(z)$$  % comment\n", "a", prog)
    assert ans.format == "latex"
    (line,) = ans.lines
    assert line.node == "z"
    assert str(AnswerBuilder(prog).build(line.tree)) == "y_bar*sigma_prime(z)"


def test_aligned_environment_lines() -> None:
    prog = chainrule.load("logistic_least_squares")
    text = "\\begin{aligned}\n\\bar{y} &= y - t \\\\\n\\bar{w} &= \\bar{z} x\n\\end{aligned}"
    ans = parse_answer_text(text, "a.tex", prog)
    assert [(a.line, a.node, a.error) for a in ans.lines] == [(2, "y", None), (3, "w", None)]
