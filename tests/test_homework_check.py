"""Homework checking: verdicts, diagnoses, carried-forward errors, shipped sample answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import chainrule
from chainrule.homework.answers import parse_answer_text, read_answer
from chainrule.homework.check import Truth, check_answer, close

ANSWERS = Path(__file__).resolve().parents[1] / "examples" / "answers"
SAMPLES = sorted(p for p in ANSWERS.rglob("*") if p.is_file())

LLS = "param w, b\ninput x, t\nz = w*x + b\ny = sigma(z)\nL = (y - t)^2/2\nloss L"


@pytest.fixture(scope="module")
def lls() -> Truth:
    return Truth(chainrule.parse(LLS)).prepare()


def check(truth: Truth, text: str, fmt: str = "auto"):
    return check_answer(truth, parse_answer_text(text, "a.txt", truth.program, fmt))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_answers(path: Path) -> None:
    truth = Truth(chainrule.load(path.parent.name))
    res = check_answer(truth, read_answer(path, truth.program))
    if path.name.startswith("correct"):
        assert res.verdict == "correct", [(r.line, r.message) for r in res.lines]
        assert all(r.symbolic == "proved" for r in res.lines)
    else:
        assert res.verdict == "incorrect"
        wrong = [r for r in res.lines if r.status == "incorrect"]
        assert wrong and all(r.counterexample for r in wrong)


def test_truth_agrees_with_finite_differences(lls: Truth) -> None:
    """Independent route: the checker's truth is the loss's central difference."""
    prog = lls.program
    point = lls.point(0)
    for p in ("w", "b"):
        h = 1e-6
        hi, lo = dict(point), dict(point)
        hi[p] += h
        lo[p] -= h
        fd = (
            float(chainrule.gradient_at(prog, hi)[0]) - float(chainrule.gradient_at(prog, lo)[0])
        ) / (2 * h)
        exact = float(lls.value(p)[0])
        assert abs(fd - exact) / (abs(fd) + abs(exact)) < 1e-7


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("zbar = (y - t)", "missing local derivative sigma'(z)"),
        ("ybar = t - y", "sign error"),
        ("ybar = 2*(y - t)", "factor of 2"),
        ("ybar = (y - t)/2", "half"),
        ("wbar = (y-t)*sigma'(z)", "missing local derivative x"),
        ("dL/dw = (y - t)*x", "missing local derivative sigma'(z)"),
        ("zbar = ybar*sigma(z)", "σ where σ' belongs"),
    ],
)
def test_diagnoses(lls: Truth, text: str, needle: str) -> None:
    (r,) = check(lls, text).lines
    assert r.status == "incorrect"
    assert needle in r.message
    cx = r.counterexample
    assert set(cx["point"]) == {"w", "b", "x", "t"}
    assert cx["expected"] != cx["student"]


def test_equal_forms_are_accepted(lls: Truth) -> None:
    text = "\n".join(
        [
            "zbar = ybar*sigma'(z)",
            "zbar = ybar*sigma(z)*(1 - sigma(z))",
            "z_bar = y_bar * exp(-z)/(1 + exp(-z))^2",
            "dL/dw = (sigma(w*x+b) - t)*sigma(w*x+b)*(1 - sigma(w*x+b))*x",
            "∂L/∂b = (y − t)·σ'(z)",
            "ȳ = y - t",
        ]
    )
    res = check(lls, text)
    assert [r.status for r in res.lines] == ["correct"] * 6
    assert all(r.symbolic == "proved" for r in res.lines)


def test_error_carried_forward_is_reported_once(lls: Truth) -> None:
    res = check(
        lls, "ybar = 2*(y - t)\nzbar = ybar*sigma'(z)\nwbar = zbar*x\nbbar = zbar\nbbar = ybar"
    )
    st = [r.status for r in res.lines]
    assert st == ["correct" if i else "incorrect" for i in range(4)] + ["incorrect"]
    assert res.lines[1].carried_from == [1]
    assert res.lines[3].carried_from == [1]  # the origin, not the carrying line 2
    assert "carried forward" in res.lines[2].message
    assert "missing local derivative" in res.lines[4].message
    assert res.verdict == "incorrect"


def test_own_lines_used_only_when_they_differ(lls: Truth) -> None:
    """A right line after a wrong one is right on its own: no carried-forward note."""
    res = check(lls, "ybar = y + t\nzbar = (y - t)*sigma'(z)")
    assert [r.status for r in res.lines] == ["incorrect", "correct"]
    assert res.lines[1].carried_from == []


def test_fan_out_names_the_missing_child() -> None:
    truth = Truth(chainrule.load("logistic_least_squares_l2"))
    (r,) = check(truth, "wbar = zbar*x").lines
    assert "fan-out" in r.message and "through R" in r.message


def test_missing_parameters_and_score(lls: Truth) -> None:
    res = check(lls, "wbar = zbar*x")
    assert res.missing == ["b_bar"]
    assert res.score == 0.5


def test_points_are_seeded_and_valid() -> None:
    prog = chainrule.load("xor")
    a, b = Truth(prog, seed=3), Truth(prog, seed=3)
    for s in a.env:
        assert np.array_equal(a.env[s], b.env[s])
        assert np.all(np.isfinite(a.env[s]))
    assert not np.array_equal(Truth(prog, seed=4).value("w11"), a.value("w11"))


def test_close_is_the_lecture_relative_error() -> None:
    assert close(np.array([1.0]), np.array([1.0 + 1e-8])).all()
    assert not close(np.array([1.0]), np.array([1.001])).any()
    assert close(np.array([0.0]), np.array([1e-15])).all()
    assert not close(np.array([np.nan]), np.array([np.nan])).any()


def test_unparseable_lines_have_columns(lls: Truth) -> None:
    res = check(lls, "zbar = ybar * q\nzbar = (ybar\nw = zbar*x\nqbar = 1\nzbar ybar")
    assert [r.status for r in res.lines] == ["unparseable"] * 5
    assert res.lines[0].column == 15
    assert "did you mean" in res.lines[1].message or "')'" in res.lines[1].message
    assert "error signal" in res.lines[2].message


def test_vector_models_get_a_matrix_truth() -> None:
    """Vector programs are checked with matrix answers (tests/test_homework_vector.py)."""
    prog = chainrule.parse("param W[2, 2]\ninput x[2]\nz = W @ x\nL = sum(z)\nloss L")
    truth = Truth(prog)
    assert type(truth).__name__ == "VectorTruth"
    res = check(truth, "zbar = 1 + 0*z\nWbar = zbar @ x.T")
    assert [r.status for r in res.lines] == ["correct", "correct"], res.lines
