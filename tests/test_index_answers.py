"""Homework answers in index notation: read in text and LaTeX, judged at symbolic sizes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import chainrule
from chainrule.homework.answers import parse_answer_text
from chainrule.homework.check import Truth, check_answer
from chainrule.homework.index_answers import is_index_answer

CORRECT_LATEX = r"""% two-layer MLP, index notation (csc311 lecture 6)
\bar{y}_k = y_k - t_k
\overline{w_{ki}^{(2)}} = \bar{y}_k h_i
\bar{b}^{(2)}_k = \bar{y}_k
\bar{h}_i = \sum_k \bar{y}_k W^{(2)}_{ki}
\delta_i = \bar{h}_i \, \sigma'(z_i)
\bar{W}^{(1)}_{ij} = \delta_i x_j
\bar{b}^{(1)}_{i} = \bar{z}_i
"""

CORRECT_TEXT = """# the same in plain text
ybar_k = y_k - t_k
W2bar_ki = ybar_k * h_i
b2_bar_k = ȳ_k
hbar_i = Σ_k ybar_k W2_ki
zbar_i = hbar_i σ'(z_i)
W1bar_ij = δ_i x_j
b1bar_i = zbar_i
"""

TWO_SWAPS = r"""\bar{y}_k = y_k - t_k
\bar{W}^{(2)}_{ki} = \bar{y}_k h_i
\bar{b}^{(2)}_k = \bar{y}_k
\bar{h}_i = \sum_k \bar{y}_k W^{(2)}_{ik}
\bar{z}_i = \bar{h}_i \sigma'(z_i)
\bar{W}^{(1)}_{ij} = \bar{z}_j x_i
\bar{b}^{(1)}_i = \bar{z}_i
"""


def _check(model: str, text: str):  # noqa: ANN202
    program = chainrule.load(model)
    return check_answer(Truth(program), parse_answer_text(text, "a", program))


@pytest.mark.parametrize("text", [CORRECT_LATEX, CORRECT_TEXT])
def test_correct_index_backward_pass_is_correct(text: str) -> None:
    res = _check("vector_mlp", text)
    assert res.verdict == "correct", [(r.line, r.message) for r in res.lines]
    assert {r.target for r in res.lines} >= {"W1_bar", "b1_bar", "W2_bar", "b2_bar", "h_bar"}
    assert not res.missing


def test_two_swapped_index_pairs_fail_at_exactly_those_lines() -> None:
    res = _check("vector_mlp", TWO_SWAPS)
    assert res.verdict == "incorrect"
    wrong = {r.line: r.message for r in res.lines if r.status != "correct"}
    assert sorted(wrong) == [4, 6]
    assert all("indices swapped (a missing transpose)" in m for m in wrong.values())
    assert "w⁽²⁾_ik should be w⁽²⁾_ki" in wrong[4]


def test_swap_on_square_weights_is_found_numerically() -> None:
    """W is n×n, so the sizes cannot tell W_jk from W_kj; the values do."""
    text = (
        "ybar = y - t\n"
        "h2bar_j = ybar v_j\n"
        "h1bar_j = sum_k h2bar_k * sigma'(b_k + sum_l W_kl h1_l) W_jk\n"
        "h1bar_j = sum_k h2bar_k * sigma'(b_k + sum_l W_kl h1_l) W_kj\n"
    )
    res = _check("shared_weights", text)
    status = [r.status for r in res.lines]
    assert status == ["correct", "correct", "incorrect", "correct"]
    assert "indices swapped" in res.lines[2].message


def test_wrong_value_gets_a_counterexample_and_a_stray_index_is_named() -> None:
    res = _check("vector_mlp", "hbar_i = sum_k ybar_k W2_ki h_i\nzbar_i = hbar_i sigma'(z_k)\n")
    assert res.lines[0].status == "incorrect" and res.lines[0].counterexample
    assert "index k is neither summed" in res.lines[1].message


def test_bad_lines_are_located_and_never_raise() -> None:
    text = "\\bar{h}_i = \\sum_k \\bar{y}_k W^{(2)}_{ki\n\\bar{y}_k = y_k - q_k\n" + (
        "\\bar{z}_i = " + "(" * 500 + "x_i\n"
    )
    res = _check("vector_mlp", text)
    assert [r.status for r in res.lines] == ["unparseable"] * 3
    assert "unknown name 'q'" in res.lines[1].message and res.lines[1].column == 19
    assert "nested" in res.lines[2].message


def test_matrix_and_scalar_answers_are_not_taken_for_index_answers() -> None:
    mlp = chainrule.load("vector_mlp")
    assert not is_index_answer("W2bar = ybar @ h.T\nz_bar = h_bar * sigma'(z)", mlp)
    assert not is_index_answer(
        r"\overline{\mathbf{W}^{(2)}} = \bar{\mathbf{y}}\mathbf{h}^\top", mlp
    )
    assert not is_index_answer(r"\bar{w}_{11} = \bar{z}_1 x_1", chainrule.load("xor"))
    assert is_index_answer(r"\overline{w_{ki}^{(2)}} = \bar{y}_k h_i", mlp)


def test_cli_check_and_grade_accept_index_answers(tmp_path: Path) -> None:
    (tmp_path / "good.tex").write_text(CORRECT_LATEX, encoding="utf-8")
    (tmp_path / "swapped.tex").write_text(TWO_SWAPS, encoding="utf-8")
    run = [sys.executable, "-m", "chainrule"]
    r = subprocess.run(
        [
            *run,
            "check",
            "vector_mlp",
            "--answer",
            str(tmp_path / "swapped.tex"),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1, r.stderr
    lines = json.loads(r.stdout)["lines"]
    assert [x["line"] for x in lines if x["status"] == "incorrect"] == [4, 6]
    r = subprocess.run(
        [*run, "grade", "vector_mlp", str(tmp_path), "-o", str(tmp_path / "g.csv")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    rows = (tmp_path / "g.csv").read_text(encoding="utf-8").splitlines()
    assert any(row.startswith("good.tex,correct,1.0000") for row in rows)
    assert any(row.startswith("swapped.tex,incorrect") for row in rows)


def test_sum_bounds_and_latex_spacing_are_read() -> None:
    text = (
        "\\bar{h}_i = \\sum_{k=1}^{K} \\bar{y}_k \\, W^{(2)}_{ki}\n"
        "$\\bar{z}_i = \\bar{h}_i\\,\\sigma(z_i)\\left(1 - \\sigma(z_i)\\right)$\n"
        "\\bar{W}^{(1)}_{ij} = \\bar{z}_{i} \\cdot x_{j}\n"
    )
    res = _check("vector_mlp", text)
    assert [r.status for r in res.lines] == ["correct"] * 3, [r.message for r in res.lines]


def test_naive_closed_forms_in_index_notation() -> None:
    text = (
        "dL/dW1_ij = sum_k (y_k - t_k) W2_ki sigma'(z_i) x_j\n"
        "∂L/∂w⁽²⁾_ki = (y_k − t_k) h_i\n"
        "\\frac{\\partial \\mathcal{L}}{\\partial b^{(1)}_{i}} = \\sum_k (y_k - t_k) W^{(2)}_{ik}"
        " \\sigma'(z_i)\n"
    )
    res = _check("vector_mlp", text)
    assert [r.target for r in res.lines] == ["W1_bar", "W2_bar", "b1_bar"]
    assert [r.status for r in res.lines] == ["correct", "correct", "incorrect"]
    assert "indices swapped" in res.lines[2].message
    assert is_index_answer("dL/dW1_ij = z_i", chainrule.load("vector_mlp"))
    assert not is_index_answer("dL/dW2 = ybar @ h.T", chainrule.load("vector_mlp"))


def test_hostile_lines_are_refused_quickly() -> None:
    import time

    text = (
        "hbar_i = sum_k 2^{9^9} ybar_k W2_ki\n"
        "zbar_i = sum_a sum_b sum_c sum_d sum_e sum_f sum_g hbar_i\n"
        "W1bar_ij = sum_k zbar_i x_j\n"
        "b1bar_i = 123456789012345678901234567890123 zbar_i\n"
        "b2bar_k = " + "ybar_k + " * 400 + "0\n"
    )
    start = time.perf_counter()
    res = _check("vector_mlp", text)
    assert time.perf_counter() - start < 20
    messages = [r.message for r in res.lines]
    assert "exponent too large" in messages[0]
    assert "nested sums" in messages[1]
    assert "runs over nothing" in messages[2]
    assert "30 digits" in messages[3]
    assert res.lines[4].status == "incorrect"  # 400·ȳ_k, evaluated, not refused
