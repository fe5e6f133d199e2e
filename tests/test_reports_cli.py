"""``chainrule report`` and ``chainrule demo``, and the charts they embed."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from chainrule.cli import main
from chainrule.reports import plots

HISTORY = {
    "epochs": [
        {
            "epoch": e,
            "loss": 1.0 / e,
            "accuracy": 1 - 0.5 / e,
            "val_loss": 1.2 / e,
            "val_accuracy": 1 - 0.6 / e,
        }
        for e in range(1, 21)
    ]
}


def test_learning_curves_svg(tmp_path):
    svg = plots.learning_curves(HISTORY, tmp_path / "c.svg")
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag.endswith("svg")
    assert svg.count("<polyline") == 4  # loss, accuracy × training, validation
    assert (tmp_path / "c.svg").read_text() == svg
    # every point lies inside its panel
    for pts in re.findall(r'points="([^"]+)"', svg):
        ys = [float(p.split(",")[1]) for p in pts.split()]
        assert min(ys) >= 30 - 1e-6 and max(ys) <= 200 + 1e-6


def test_learning_curves_png_needs_matplotlib(tmp_path):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="matplotlib"):
            plots.learning_curves(HISTORY, tmp_path / "c.png")
    else:
        plots.learning_curves(HISTORY, tmp_path / "c.png")
        assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_cost_chart_log_scale_and_unfinished():
    svg = plots.cost_chart(
        [
            {"route": "forward", "total": 10},
            {"route": "naive", "total": 100_000},
            {"route": "naive + CSE", "total": None},
        ]
    )
    ET.fromstring(svg)
    assert "log scale" in svg and "not finished" in svg and "100,000" in svg


def test_report_command_formats(tmp_path, capsys):
    html = tmp_path / "r.html"
    assert main(["report", "sum_times", "-o", str(html), "--no-checks"]) == 0
    assert "<math" in html.read_text()
    md = tmp_path / "r.md"
    assert main(["report", "logistic_least_squares", "-o", str(md), "--no-naive"]) == 0
    text = md.read_text()
    assert "Naive derivation" not in text and "](r-graph.svg)" in text
    assert (tmp_path / "r-graph.svg").read_text().startswith("<svg")
    assert main(["report", "sum_times", "--format", "tex", "--no-checks", "--no-code"]) == 0
    assert "\\documentclass" in capsys.readouterr().out
    assert main(["report", "sum_times", "-o", str(tmp_path / "r.pdf")]) == 2
    assert "suffix" in capsys.readouterr().err


def test_report_with_history(tmp_path):
    h = tmp_path / "h.json"
    h.write_text(json.dumps({**HISTORY, "config": {"lr": 0.5, "seed": 7}}))
    out = tmp_path / "r.html"
    assert (
        main(
            ["report", "sum_times", "-o", str(out), "--history", str(h), "--no-checks", "--no-code"]
        )
        == 0
    )
    html = out.read_text()
    assert 'id="training"' in html and "learning curves" in html and ">7<" in html
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert main(["report", "sum_times", "-o", str(out), "--history", str(bad)]) == 2


def test_report_bad_model_exits_2(tmp_path, capsys):
    model = tmp_path / "bad.chain"
    model.write_text("param w\nz = w * q\nloss z\n")
    assert main(["report", str(model), "-o", str(tmp_path / "r.html")]) == 2
    assert "bad.chain:2" in capsys.readouterr().err


@pytest.mark.slow
def test_report_with_training_run(tmp_path):
    out = tmp_path / "xor.html"
    assert (
        main(
            [
                "report",
                "xor",
                "-o",
                str(out),
                "--train",
                "xor",
                "--epochs",
                "200",
                "--lr",
                "2",
                "--batch",
                "4",
                "--seed",
                "3",
                "--no-naive",
            ]
        )
        == 0
    )
    html = out.read_text()
    assert 'id="training"' in html and "<polyline" in html


def test_demo_builds_gallery(tmp_path, monkeypatch, capsys):
    import chainrule.examples as examples

    monkeypatch.setattr(examples, "example_names", lambda: ["sum_times", "vector_mlp"])
    out = tmp_path / "gallery"
    assert main(["demo", "-o", str(out)]) == 0
    index = (out / "index.html").read_text()
    for name in ("sum_times", "vector_mlp"):
        assert f'href="{name}.html"' in index
        assert "<math" in (out / f"{name}.html").read_text()
    assert "wrote 2 reports" in capsys.readouterr().err
