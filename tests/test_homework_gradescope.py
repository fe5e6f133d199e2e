"""Gradescope results.json, the autograder bundle, TOML rubrics and feedback pages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import chainrule
from chainrule.cli import main
from chainrule.homework.answers import parse_answer_text
from chainrule.homework.check import Truth, check_answer
from chainrule.homework.rubric import Rubric, diagnosis_kind, gradescope_results, load_rubric
from chainrule.symbolic.errors import ChainruleError

ANSWERS = Path(__file__).resolve().parent.parent / "examples" / "answers"
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
#: Gradescope's documented results.json keys (autograder specifications) and their types.
TOP_KEYS = {
    "score": (int, float),
    "max_score": (int, float),
    "execution_time": (int, float),
    "output": str,
    "output_format": str,
    "test_output_format": str,
    "test_name_format": str,
    "visibility": str,
    "stdout_visibility": str,
    "extra_data": dict,
    "tests": list,
    "leaderboard": list,
}
TEST_KEYS = {
    "score": (int, float),
    "max_score": (int, float),
    "status": str,
    "name": str,
    "name_format": str,
    "number": str,
    "output": str,
    "output_format": str,
    "tags": list,
    "visibility": str,
    "extra_data": dict,
}


def validate_results(data: dict) -> None:
    """Keys and types as Gradescope documents them."""
    assert set(data) <= set(TOP_KEYS), set(data) - set(TOP_KEYS)
    for key, value in data.items():
        assert isinstance(value, TOP_KEYS[key]) and not isinstance(value, bool), key
    assert "score" in data and "tests" in data
    assert data.get("visibility", "visible") in VISIBILITY
    for t in data["tests"]:
        assert set(t) <= set(TEST_KEYS), set(t) - set(TEST_KEYS)
        for key, value in t.items():
            assert isinstance(value, TEST_KEYS[key]) and not isinstance(value, bool), key
        assert {"name", "score", "max_score", "output", "visibility", "status"} <= set(t)
        assert t["status"] in ("passed", "failed") and t["visibility"] in VISIBILITY
        assert 0 <= t["score"] <= t["max_score"]
    assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"]))
    assert data["max_score"] == pytest.approx(sum(t["max_score"] for t in data["tests"]))


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_check_format_gradescope(capsys: pytest.CaptureFixture[str]) -> None:
    answer = ANSWERS / "vector_mlp" / "wrong_transpose.txt"
    code, out, _ = run_cli(
        ["check", "vector_mlp", "--answer", str(answer), "--format", "gradescope"], capsys
    )
    assert code == 1
    data = json.loads(out)
    validate_results(data)
    w2 = next(t for t in data["tests"] if "W2_bar" in t["name"])
    assert w2["status"] == "failed" and w2["score"] == 0
    assert "transpose" in w2["output"] and "expected" in w2["output"]  # diagnosis, counterexample
    assert "you wrote: W2bar = h @ ybar.T" in w2["output"]
    assert data["score"] < data["max_score"]


def test_gradescope_counts_missing_parameters_and_correct_answers() -> None:
    p = chainrule.load("logistic_least_squares")
    res = check_answer(Truth(p), parse_answer_text("ybar = y - t\nzbar = ybar*sigma'(z)", "a", p))
    data = gradescope_results(res)
    validate_results(data)
    names = [t["name"] for t in data["tests"]]
    assert names[:2] == ["line 1: y_bar", "line 2: z_bar"]
    assert "missing: w_bar" in names and "missing: b_bar" in names
    assert data["score"] == 2 and data["max_score"] == 4


RUBRIC = """\
[points]
default = 1
W2 = 3          # node names
b2_bar = 2      # or signal names

[deductions]
transpose = 1   # a transposed W2_bar keeps 3 - 1 points
sign = 0.5
"""


def test_rubric_points_and_partial_credit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rubric_path = tmp_path / "rubric.toml"
    rubric_path.write_text(RUBRIC)
    rubric = load_rubric(rubric_path)
    assert rubric.line_points("W2_bar") == 3 and rubric.line_points("b2_bar") == 2
    assert rubric.line_points("y_bar") == 1
    answer = ANSWERS / "vector_mlp" / "wrong_transpose.txt"
    code, out, _ = run_cli(
        [
            "check",
            "vector_mlp",
            "--answer",
            str(answer),
            "--format",
            "gradescope",
            "--rubric",
            str(rubric_path),
        ],
        capsys,
    )
    data = json.loads(out)
    validate_results(data)
    w2 = next(t for t in data["tests"] if "W2_bar" in t["name"])
    assert (w2["score"], w2["max_score"]) == (2, 3)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[points]\nW1 = 'three'\n", "must be a number"),
        ("[deductions]\nsgn = 1\n", "unknown diagnosis kind"),
        ("[pts]\nW1 = 1\n", "unknown table"),
        ("[points\n", "not valid TOML"),
        ("[points]\nW1 = -1\n", "≥ 0"),
    ],
)
def test_bad_rubrics_are_clear_errors(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(ChainruleError, match=needle) as info:
        load_rubric(path)
    assert re.match(rf"{re.escape(str(path))}:\d+:\d+: ", str(info.value))  # file:line:col


def test_bad_rubric_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.toml"
    path.write_text("[points\n")
    answer = ANSWERS / "vector_mlp" / "correct_backprop.txt"
    code, _, err = run_cli(
        ["check", "vector_mlp", "--answer", str(answer), "--rubric", str(path)], capsys
    )
    assert code == 2 and "not valid TOML" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        ("incorrect", "sign error: the value is the negative", "sign"),
        ("incorrect", "factor of 2: twice", "factor_of_2"),
        ("incorrect", "wrong shape: you wrote h ybarᵀ; … check the transpose", "transpose"),
        ("incorrect", "transposed: your matrix is the transpose", "transpose"),
        ("incorrect", "shape error: ybar times h", "shape"),
        ("incorrect", "shape error: z times x … (hint: a missing transpose? …)", "transpose"),
        (
            "incorrect",
            "fan-out contribution left out: W1 also feeds the regularizer R",
            "regularization",
        ),
        ("incorrect", "fan-out contribution left out: h feeds y1, y2", "fan_out"),
        (
            "incorrect",
            "layer mix-up: you wrote W⁽¹⁾ where W⁽²⁾ belongs (shape error …)",
            "layer_mixup",
        ),
        ("incorrect", "σ where σ' belongs", "activation_for_derivative"),
        ("incorrect", "does not match the correct value", "mismatch"),
        ("unparseable", "unknown name", "unparseable"),
        ("correct", "correct", "correct"),
    ],
)
def test_diagnosis_kinds(status: str, message: str, kind: str) -> None:
    assert diagnosis_kind(status, message) == kind


def test_default_rubric_matches_the_score() -> None:
    p = chainrule.load("vector_mlp")
    text = (ANSWERS / "vector_mlp" / "wrong_transpose.txt").read_text()
    res = check_answer(Truth(p), parse_answer_text(text, "a", p))
    got, total = Rubric().score(res)
    assert got / total == pytest.approx(res.score, abs=1e-4)


# ------------------------------------------------------------------ feedback pages
def test_grade_feedback_pages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "ann.txt").write_text((ANSWERS / "vector_mlp" / "wrong_transpose.txt").read_text())
    (subs / "bob.tex").write_text((ANSWERS / "vector_mlp" / "correct_backprop.tex").read_text())
    (subs / "eve.txt").write_text("<img src=x onerror=alert(1)> = ybar\n")
    out = tmp_path / "feedback"
    code, _, err = run_cli(
        [
            "grade",
            "vector_mlp",
            str(subs),
            "-o",
            str(tmp_path / "g.csv"),
            "--feedback",
            str(out),
            "--no-progress",
            "--jobs",
            "1",
        ],
        capsys,
    )
    assert code == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "ann.txt.html",
        "ann.txt.md",
        "bob.tex.html",
        "bob.tex.md",
        "eve.txt.html",
        "eve.txt.md",
    ]
    import csv

    rows = {r["submission"]: r for r in csv.DictReader((tmp_path / "g.csv").open())}
    assert "points" not in rows["ann.txt"]  # no rubric: equal weights, as before
    ann = (out / "ann.txt.html").read_text()
    assert "W2_bar" in ann and "transpose" in ann and "expected" in ann and "0 / 1" in ann
    assert "W2bar = h @ ybar.T" in ann  # the line as the student wrote it
    assert "incorrect" in (out / "ann.txt.md").read_text()
    assert "correct" in (out / "bob.tex.md").read_text()
    eve = (out / "eve.txt.html").read_text()
    assert "<img" not in eve and "&lt;img" in eve
    md = (out / "eve.txt.md").read_text()
    assert "`` cannot tell which error signal '<img" in md  # student text only in code spans


# ------------------------------------------------------------------ the autograder bundle
def test_autograder_bundle_runs_in_a_temporary_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rubric = tmp_path / "rubric.toml"
    rubric.write_text(RUBRIC)
    bundle = tmp_path / "autograder.zip"
    code, _, err = run_cli(
        ["autograder", "vector_mlp", "--points", str(rubric), "-o", str(bundle)], capsys
    )
    assert code == 0, err
    with zipfile.ZipFile(bundle) as z:
        assert {"setup.sh", "run_autograder", "model.chain", "rubric.toml"} <= set(z.namelist())
        assert (z.getinfo("run_autograder").external_attr >> 16) & 0o111
        assert "pip install" in z.read("setup.sh").decode()
        root = tmp_path / "root"
        z.extractall(root / "source")
    (root / "submission").mkdir()
    (root / "submission" / "hw.txt").write_text(
        (ANSWERS / "vector_mlp" / "wrong_transpose.txt").read_text()
    )
    env = {
        **os.environ,
        "CHAINRULE_AUTOGRADER_ROOT": str(root),
        "CHAINRULE": f"{sys.executable} -m chainrule",
    }
    subprocess.run(
        ["bash", str(root / "source" / "run_autograder")], env=env, check=True, timeout=120
    )
    data = json.loads((root / "results" / "results.json").read_text())
    validate_results(data)
    w2 = next(t for t in data["tests"] if "W2_bar" in t["name"])
    assert (w2["score"], w2["max_score"]) == (2, 3)  # the rubric travelled with the bundle
    # an empty submission still gives valid results
    (root / "submission" / "hw.txt").unlink()
    subprocess.run(
        ["bash", str(root / "source" / "run_autograder")], env=env, check=True, timeout=120
    )
    data = json.loads((root / "results" / "results.json").read_text())
    validate_results(data)
    assert data["score"] == 0 and "no answer file" in data["output"]


def test_grade_with_a_rubric_scores_by_points(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import csv

    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "ann.txt").write_text((ANSWERS / "vector_mlp" / "wrong_transpose.txt").read_text())
    rubric = tmp_path / "rubric.toml"
    rubric.write_text(RUBRIC)
    args = ["grade", "vector_mlp", str(subs), "-o", str(tmp_path / "g.csv"), "--no-progress"]
    args += ["--rubric", str(rubric), "--json", str(tmp_path / "g.json"), "--jobs", "1"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    (row,) = csv.DictReader((tmp_path / "g.csv").open())
    got, total = float(row["points"]), float(row["max_points"])
    assert total == 1 + 3 + 2 + 1 + 1 + 1 + 1 - 0  # y, W2 (3), b2 (2), h, z, W1, b1
    assert got == total - 1  # the transposed W2_bar keeps 3 − 1
    assert float(row["score"]) == pytest.approx(got / total, abs=1e-4)
    data = json.loads((tmp_path / "g.json").read_text())
    assert data["submissions"][0]["points"] == got
