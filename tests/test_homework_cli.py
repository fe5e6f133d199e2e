"""``chainrule check`` and ``chainrule grade``: exit codes, JSON keys, CSV, determinism."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from chainrule.cli import main

ANSWERS = Path(__file__).resolve().parents[1] / "examples" / "answers"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_correct_json(capsys: pytest.CaptureFixture[str]) -> None:
    answer = ANSWERS / "logistic_least_squares" / "correct_backprop.tex"
    code, out, _ = run(
        capsys, "check", "logistic_least_squares", "--answer", str(answer), "--format", "json"
    )
    assert code == 0
    data = json.loads(out)
    assert data["verdict"] == "correct"
    line = data["lines"][1]
    assert {"line", "target", "status", "message", "counterexample"} <= set(line)
    assert (line["line"], line["target"], line["status"]) == (4, "y_bar", "correct")


def test_check_wrong_text(capsys: pytest.CaptureFixture[str]) -> None:
    answer = ANSWERS / "logistic_least_squares" / "wrong_missing_sigma_prime.txt"
    code, out, _ = run(capsys, "check", "logistic_least_squares", "--answer", str(answer))
    assert code == 1
    assert "missing local derivative sigma'(z)" in out
    assert "expected" in out and "got" in out


def test_check_json_counterexample(capsys: pytest.CaptureFixture[str]) -> None:
    answer = ANSWERS / "logistic_least_squares_l2" / "wrong_fan_out.txt"
    code, out, _ = run(
        capsys, "check", "logistic_least_squares_l2", "--answer", str(answer), "--format", "json"
    )
    assert code == 1
    data = json.loads(out)
    assert data["verdict"] == "incorrect"
    (bad,) = [x for x in data["lines"] if x["status"] == "incorrect"]
    assert bad["target"] == "w_bar"
    assert set(bad["counterexample"]) >= {"point", "expected", "student"}


def test_check_model_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.chain"
    bad.write_text("param w\ny = w +\nloss y\n")
    answer = tmp_path / "a.txt"
    answer.write_text("wbar = 1\n")
    code, _, err = run(capsys, "check", str(bad), "--answer", str(answer))
    assert code == 2 and "bad.chain:2" in err
    code, _, err = run(
        capsys, "check", "logistic_least_squares", "--answer", str(tmp_path / "missing.txt")
    )
    assert code == 2
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    code, out, _ = run(
        capsys, "check", "logistic_least_squares", "--answer", str(empty), "--format", "json"
    )
    assert code == 1 and json.loads(out)["verdict"] == "error"


def test_grade_csv_json_deterministic(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    subs.mkdir()
    for p in (ANSWERS / "logistic_least_squares").iterdir():
        shutil.copy(p, subs / p.name)
    (subs / "hostile.txt").write_text("zbar = __import__('os').system('id')\n")
    (subs / "binary.txt").write_bytes(b"\x00\x01")
    (subs / ".hidden.txt").write_text("zbar = 1\n")
    outputs = []
    for jobs in ("1", "2"):
        csv_path, json_path = tmp_path / f"g{jobs}.csv", tmp_path / f"g{jobs}.json"
        code, _, err = run(
            capsys,
            "grade",
            "logistic_least_squares",
            str(subs),
            "-o",
            str(csv_path),
            "--json",
            str(json_path),
            "--jobs",
            jobs,
            "--timeout",
            "10",
        )
        assert code == 0 and "graded 9 submissions" in err
        outputs.append((csv_path.read_text(), json_path.read_text()))
    assert outputs[0] == outputs[1]
    rows = list(csv.DictReader(outputs[0][0].splitlines()))
    by = {r["submission"]: r for r in rows}
    assert len(rows) == 9 and ".hidden.txt" not in by
    assert by["correct_backprop.txt"]["verdict"] == "correct"
    assert by["correct_backprop.txt"]["score"] == "1.0000"
    assert by["wrong_sign.tex"]["y_bar"] == "incorrect"
    assert by["wrong_sign.tex"]["z_bar"] == "correct"
    assert by["hostile.txt"]["unparseable"] == "1"
    assert by["binary.txt"]["verdict"] == "error"
    data = json.loads(outputs[0][1])
    assert len(data["submissions"]) == 9


def test_grade_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(
        capsys,
        "grade",
        "logistic_least_squares",
        str(tmp_path / "none"),
        "-o",
        str(tmp_path / "g.csv"),
    )
    assert code == 2 and "not a folder" in err
    code, _, err = run(
        capsys, "grade", "logistic_least_squares", str(tmp_path), "-o", str(tmp_path / "g.csv")
    )
    assert code == 2 and "no answer files" in err
