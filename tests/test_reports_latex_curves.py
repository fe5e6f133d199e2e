"""LaTeX reports draw the learning curves as a picture (not only a table)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from chainrule.cli import main
from chainrule.reports.plots import learning_curves_latex

HISTORY = {
    "epochs": [
        {
            "epoch": e,
            "loss": 1.0 / e,
            "accuracy": min(1.0, 0.5 + e / 20),
            "val_loss": 1.2 / e,
            "val_accuracy": min(1.0, 0.4 + e / 20),
        }
        for e in range(1, 11)
    ]
}


def test_curves_as_latex_picture():
    tex = learning_curves_latex(HISTORY)
    assert tex.count(r"\begin{picture}") == 1 and tex.endswith(r"\end{picture}")
    assert tex.count(r"\qbezier") == 4 * 9  # 2 panels × (train + val) × 9 segments
    assert "loss" in tex and "accuracy" in tex


def test_tex_report_with_history_compiles(tmp_path, capsys):
    hist = tmp_path / "h.json"
    hist.write_text(json.dumps(HISTORY))
    out = tmp_path / "r.tex"
    assert (
        main(
            [
                "report",
                "logistic_least_squares",
                "-o",
                str(out),
                "--history",
                str(hist),
                "--no-naive",
                "--no-checks",
                "--no-code",
            ]
        )
        == 0
    )
    text = out.read_text()
    assert r"\qbezier" in text.split("Training")[-1]
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed")
    r = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", out.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout[-2000:]
