"""Homework checking for vector programs: matrix answers, shapes, diagnoses, CLI, safety."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import chainrule
from chainrule.cli import main
from chainrule.homework.answers import parse_answer_text
from chainrule.homework.check import Truth, check_answer
from chainrule.homework.evaluate import evaluate
from chainrule.numeric.vector_eval import loss_at

ANSWERS = Path(__file__).resolve().parents[1] / "examples" / "answers" / "vector_mlp"
CORRECT = """\
ybar = y - t
W2bar = ybar @ h.T
b2bar = ybar
hbar = W2.T @ ybar
zbar = hbar * sigma'(z)
W1bar = zbar @ x.T
b1bar = zbar
"""
CORRECT_TEX = r"""
\bar{\mathbf{y}} = \mathbf{y} - \mathbf{t}
\overline{\mathbf{W}^{(2)}} = \bar{\mathbf{y}}\mathbf{h}^\top
\overline{\mathbf{b}^{(2)}} = \bar{\mathbf{y}}
\bar{\mathbf{h}} = \mathbf{W}^{(2)\top}\bar{\mathbf{y}}
\bar{\mathbf{z}} = \bar{\mathbf{h}} \circ \sigma'(\mathbf{z})
\overline{\mathbf{W}^{(1)}} = \bar{\mathbf{z}}\mathbf{x}^\top
\overline{\mathbf{b}^{(1)}} = \bar{\mathbf{z}}
"""
DECAY = """param W1[m, n], W2[k, m]
input x[n], t[k]
const lam = 0.1
h = tanh(W1 @ x)
y = W2 @ h
E = sum((y - t)^2) / 2
R = norm2(W2) / 2
L = E + lam * R
loss L"""


@pytest.fixture(scope="module")
def mlp() -> Truth:
    return Truth(chainrule.load("vector_mlp")).prepare()


def check(truth: Truth, text: str, fmt: str = "auto"):
    return check_answer(truth, parse_answer_text(text, "a.txt", truth.program, fmt))


def statuses(res) -> list[str]:
    return [r.status for r in res.lines]


# ------------------------------------------------------------------ the truth
def test_truth_agrees_with_finite_differences(mlp: Truth) -> None:
    """Independent route: W̄⁽¹⁾ at a point is the loss's central difference."""
    point = {k: np.array(v, dtype=float) for k, v in mlp.point(0).items()}
    w1_bar = mlp.value("W1")[0]
    h = 1e-6
    for i, j in np.ndindex(*point["W1"].shape):
        up = {k: v.copy() for k, v in point.items()}
        down = {k: v.copy() for k, v in point.items()}
        up["W1"][i, j] += h
        down["W1"][i, j] -= h
        fd = (loss_at(mlp.program, up) - loss_at(mlp.program, down)) / (2 * h)
        assert abs(fd - w1_bar[i, j]) <= 1e-7 * (abs(fd) + abs(w1_bar[i, j])) + 1e-9


def test_stacked_evaluator_matches_vector_eval(mlp: Truth) -> None:
    """The answer evaluator (stacks, tree walk) reproduces vector_eval's signals."""
    env = dict(mlp.env)
    for step in mlp.derivation.steps:
        got = np.broadcast_to(evaluate(step.expression, env), mlp.value(step.node).shape)
        assert np.allclose(got, mlp.value(step.node), rtol=1e-12, atol=1e-14), step.node


def test_sizes_are_distinct(mlp: Truth) -> None:
    assert mlp.sizes == {"m": 3, "n": 2, "k": 4}


# ------------------------------------------------------------------ correct answers
@pytest.mark.parametrize("text", [CORRECT, CORRECT_TEX], ids=["plain", "latex"])
def test_correct_backward_pass(mlp: Truth, text: str) -> None:
    res = check(mlp, text)
    assert res.verdict == "correct", [(r.line, r.message) for r in res.lines]
    assert [r.target for r in res.lines] == [
        "y_bar",
        "W2_bar",
        "b2_bar",
        "h_bar",
        "z_bar",
        "W1_bar",
        "b1_bar",
    ]
    assert all(r.symbolic == "proved" for r in res.lines)
    assert res.missing == [] and res.score == 1.0


@pytest.mark.parametrize(
    "line",
    [
        "W2bar = ybar @ h.T",
        "W2_bar = y_bar @ h.T",
        "dL/dW2 = ȳ @ h.T",
        r"\bar{W}^{(2)} = \bar{y} h^\top",
        r"\overline{\mathbf{W}^{(2)}} = \bar{\mathbf{y}}\mathbf{h}^{T}",
        r"\frac{\partial \mathcal{L}}{\partial \mathbf{W}^{(2)}}"
        r" = \bar{\mathbf{y}}\,\mathbf{h}^\top",
        "W2bar = (h @ ybar.T).T",
    ],
)
def test_target_names_and_products(mlp: Truth, line: str) -> None:
    res = check(mlp, line)
    assert [(r.target, r.status) for r in res.lines] == [("W2_bar", "correct")], res.lines


@pytest.mark.parametrize(
    "line",
    [
        "zbar = hbar * sigma'(z)",
        "zbar = hbar ∘ σ'(z)",
        "zbar = hbar * sigma(z) * (1 - sigma(z))",
        r"\bar{\mathbf{z}} = \bar{\mathbf{h}} \circ \sigma'(\mathbf{z})",
        r"\bar{\mathbf{z}} = \bar{\mathbf{h}} \odot \sigma(\mathbf{z})"
        r" \odot (1 - \sigma(\mathbf{z}))",
        r"\bar{\mathbf{z}} = \mathbf{W}^{(2)\top}\bar{\mathbf{y}} \circ \sigma'(\mathbf{z})",
    ],
)
def test_hadamard_spellings(mlp: Truth, line: str) -> None:
    res = check(mlp, line)
    assert statuses(res) == ["correct"], res.lines
    assert res.lines[0].symbolic == "proved"


# ------------------------------------------------------------------ shapes
def test_wrong_transpose_shows_both_shapes(mlp: Truth) -> None:
    res = check(mlp, "W2bar = h @ ybar.T")
    (r,) = res.lines
    assert r.status == "incorrect"
    assert "4×3" in r.message and "3×4" in r.message and "transpose" in r.message
    assert "W̄⁽²⁾" in r.message and "ȳᵀ" in r.message
    cx = r.counterexample
    assert np.array(cx["expected"]).shape == (4, 3)
    assert np.array(cx["student"]).shape == (3, 4)
    assert np.allclose(np.array(cx["student"]), np.array(cx["expected"]).T)
    assert np.array(cx["point"]["W1"]).shape == (3, 2)


def test_ill_shaped_expression_is_incorrect_with_column(mlp: Truth) -> None:
    res = check(mlp, "W2bar = ybar @ h")
    (r,) = res.lines
    assert r.status == "incorrect"
    assert r.message.startswith("shape error") and "inner sizes 1 and m differ" in r.message
    assert r.column == len("W2bar = ybar ") + 1  # the '@'


def test_juxtaposed_vectors_are_elementwise_and_at_hints_hadamard(mlp: Truth) -> None:
    # side by side, two m-vectors fit only the elementwise product (issue 12: h̄(1 − h²))
    (r,) = check(mlp, r"\bar{z} = \bar{h}\,\sigma'(z)").lines
    assert r.status == "correct"
    (r,) = check(mlp, "zbar = hbar @ sigma'(z)").lines
    assert r.status == "incorrect" and "Hadamard" in r.message


def test_scalar_for_a_matrix(mlp: Truth) -> None:
    (r,) = check(mlp, "W1bar = zbar.T @ W1 @ x").lines
    assert r.status == "incorrect" and "a scalar" in r.message


# ------------------------------------------------------------------ diagnoses
def test_missing_sigma_prime_and_carried_forward(mlp: Truth) -> None:
    res = check(mlp, CORRECT.replace("zbar = hbar * sigma'(z)", "zbar = hbar"))
    by_target = {r.target: r for r in res.lines}
    z = by_target["z_bar"]
    assert z.status == "incorrect" and "missing local derivative sigma'(z)" in z.message
    assert len(z.counterexample["expected"]) == 3  # z̄ ∈ R^m, m = 3
    assert by_target["W1_bar"].status == "correct" and by_target["W1_bar"].carried_from == [z.line]
    assert by_target["b1_bar"].carried_from == [z.line]
    assert res.verdict == "incorrect" and res.score == pytest.approx(6 / 7, abs=1e-4)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("ybar = t - y", "sign error"),
        ("ybar = 2*(y - t)", "factor of 2"),
        ("ybar = (y - t)/2", "factor of 2"),
        ("hbar = W2.T @ ybar + 0.1*h", "does not match"),
    ],
)
def test_sign_and_factor_two(mlp: Truth, line: str, words: str) -> None:
    (r,) = check(mlp, line).lines
    assert r.status == "incorrect" and words in r.message
    assert r.counterexample["relative_error"] > 1e-3


def test_wrong_early_line_counted_once(mlp: Truth) -> None:
    res = check(mlp, "ybar = t - y\nW2bar = ybar @ h.T\nhbar = W2.T @ ybar")
    assert statuses(res) == ["incorrect", "correct", "correct"]
    assert res.lines[1].carried_from == [1]


def test_fan_out_names_the_missing_child() -> None:
    truth = Truth(chainrule.parse(DECAY))
    ok = check(truth, "ybar = y - t\nRbar = lam\nW2bar = ybar @ h.T + Rbar * W2")
    assert ok.verdict == "correct", ok.lines
    (r,) = check(truth, "W2bar = ybar @ h.T").lines
    assert r.status == "incorrect"
    assert "fan-out" in r.message and "through R" in r.message


def test_closed_form_matrix_gradient(mlp: Truth) -> None:
    text = "dL/dW2 = (W2 @ sigma(W1 @ x + b1) + b2 - t) @ sigma(W1 @ x + b1).T"
    (r,) = check(mlp, text).lines
    assert r.status == "correct" and r.symbolic == "proved"


# ------------------------------------------------------------------ safety
@pytest.mark.parametrize(
    "line",
    [
        "W2bar = __import__('os').system('touch /tmp/chainrule_pwned')",
        "W2bar = ().__class__.__mro__",
        "W2bar = ybar.__class__",
        "W2bar = (lambda: ybar)() @ h.T",
        'W2bar = f"{ybar}"',
        "W2bar = ybar @ h.T; import os",
        "W2bar = ybar @ h.T <script>alert(1)</script>",
        "W2bar = ybar @ h.T * 9^9^9^9",
        "W2bar = ybar @ h.T * 10**100000",
        "W2bar = " + "(" * 5000 + "ybar" + ")" * 5000 + " @ h.T",
    ],
)
def test_hostile_matrix_answers_are_inert(mlp: Truth, line: str) -> None:
    res = check(mlp, line)
    assert statuses(res) == ["unparseable"], res.lines
    assert not Path("/tmp/chainrule_pwned").exists()
    from chainrule.homework.results import result_json

    assert "<script" not in result_json(res)


# ------------------------------------------------------------------ CLI
def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_cli_check_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(
        capsys,
        "check",
        "vector_mlp",
        "--answer",
        str(ANSWERS / "wrong_transpose.txt"),
        "--format",
        "json",
    )
    assert code == 1
    data = json.loads(out)
    assert data["verdict"] == "incorrect"
    line = next(x for x in data["lines"] if x["status"] == "incorrect")
    assert {"line", "target", "status", "message", "counterexample"} <= set(line)
    assert (line["line"], line["target"]) == (3, "W2_bar")
    assert isinstance(line["counterexample"]["expected"][0], list)


@pytest.mark.parametrize("name", ["correct_backprop.txt", "correct_backprop.tex"])
def test_cli_check_correct_exit_zero(capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, out = run(capsys, "check", "vector_mlp", "--answer", str(ANSWERS / name))
    assert code == 0 and "correct (score 1.00)" in out


def test_cli_grade_vector_class(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    subs = tmp_path / "subs"
    subs.mkdir()
    for p in sorted(ANSWERS.iterdir()):
        (subs / p.name).write_bytes(p.read_bytes())
    (subs / "hostile.txt").write_text("W2bar = __import__('os').getpid()\n")
    out_csv = tmp_path / "grades.csv"
    code = main(["grade", "vector_mlp", str(subs), "-o", str(out_csv), "--jobs", "2"])
    capsys.readouterr()
    assert code in (0, 1)
    rows = {r["submission"]: r for r in csv.DictReader(out_csv.open())}
    assert rows["correct_backprop.tex"]["verdict"] == "correct"
    assert rows["wrong_transpose.txt"]["W2_bar"] == "incorrect"
    assert rows["hostile.txt"]["W2_bar"] == "unparseable"
