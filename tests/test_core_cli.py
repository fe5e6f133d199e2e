"""The derive and grad commands: output contracts, exit statuses, help with examples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule.cli import main

ROOT = Path(__file__).resolve().parent.parent
LLS = str(ROOT / "examples" / "logistic_least_squares.chain")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_derive_text_shows_both_routes_in_bar_notation(capsys):
    code, out, _ = run(capsys, "derive", "logistic_least_squares_l2")
    assert code == 0
    for line in ("L̄_reg = 1", "ȳ = L̄ (y − t)", "z̄ = ȳ σ'(z)", "w̄ = z̄ x + R̄ w", "b̄ = z̄"):
        assert line in out
    assert "fan-out 2" in out
    assert "∂L_reg/∂w = " in out
    assert "Operation counts" in out and "backprop" in out and "naive + CSE" in out


def test_derive_steps_show_children_and_rules(capsys):
    code, out, _ = run(capsys, "derive", LLS, "--steps")
    assert code == 0
    assert "z̄ = ȳ ∂y/∂z" in out and "where ∂y/∂z = σ'(z)" in out
    assert "chain rule (sigma)" in out and "power rule" in out


def test_derive_method_and_expand(capsys):
    _, out, _ = run(capsys, "derive", LLS, "--method", "backprop", "--expand", "sigma")
    assert "Naive" not in out
    assert "σ(z) (1 − σ(z))" in out or "(1 − σ(z)) σ(z)" in out


def test_derive_json(capsys):
    code, out, _ = run(capsys, "derive", LLS, "--format", "json", "--steps")
    assert code == 0
    data = json.loads(out)
    assert [s["node"] for s in data["backprop"]] == ["L", "y", "z", "b", "w"]
    assert data["backprop"][2]["text"] == "ȳ σ'(z)"
    assert set(data["naive"]["gradients"]) == {"w", "b"}
    assert data["naive"]["gradients"]["w"]["steps"][0]["rule"] == "constant multiple"
    assert {r["route"] for r in data["costs"]} == {"forward", "naive", "naive + CSE", "backprop"}
    assert data["gradients"]["b"] == "z_bar"


def test_grad_json_contract(capsys):
    code, out, _ = run(capsys, "grad", "computation_graph", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data == {"loss": 25.0, "gradient": {"x1": 3.0, "x2": 3.0, "x3": 9.0, "x4": -1.0}}


def test_grad_at_overrides_and_at_file(capsys, tmp_path):
    point = tmp_path / "p.json"
    point.write_text(json.dumps({"x": -2, "y": 5}))
    code, out, _ = run(
        capsys,
        "grad",
        str(ROOT / "examples" / "sum_times.chain"),
        "--at-file",
        str(point),
        "--at",
        "z=-4",
        "--format",
        "json",
    )
    assert code == 0
    assert json.loads(out)["gradient"] == {"x": -4.0, "y": -4.0, "z": 3.0}


@pytest.mark.parametrize(
    "argv, words",
    [
        (["grad", LLS, "--at", "w=1"], "no value for b, x, t"),
        (["grad", LLS, "--at", "w=1,b=0,x=1,t=1,zz=3"], "unknown name"),
        (["grad", LLS, "--at", "w=abc"], "not a number"),
        (["grad", LLS, "--at", "w"], "NAME=VALUE"),
        (["derive", "no/such/model.chain"], "cannot read"),
    ],
)
def test_bad_usage_exits_2_without_traceback(capsys, argv, words):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert words in err
    assert "Traceback" not in err


def test_model_error_is_located(capsys, tmp_path):
    bad = tmp_path / "bad.chain"
    bad.write_text("param w\ny = w + q\nloss y\n")
    code, _, err = run(capsys, "derive", str(bad))
    assert code == 2
    assert f"{bad}:2:9: error: unknown name 'q'" in err
    assert "^" in err


def test_help_teaches_with_examples():
    out = subprocess.run(
        [sys.executable, "-m", "chainrule", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "examples:" in out and "chainrule derive" in out
    commands = (
        "derive",
        "grad",
        "codegen",
        "check-grad",
        "train",
        "report",
        "demo",
        "check",
        "grade",
    )
    for cmd in commands:
        sub = subprocess.run(
            [sys.executable, "-m", "chainrule", cmd, "--help"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "examples:" in sub


def test_console_script_runs_and_fails_cleanly(tmp_path):
    bad = tmp_path / "bad.chain"
    bad.write_bytes(b"\xff\xfe")
    r = subprocess.run(
        [sys.executable, "-m", "chainrule", "derive", str(bad)], capture_output=True, text=True
    )
    assert r.returncode == 2 and "UTF-8" in r.stderr and "Traceback" not in r.stderr


def test_vector_derive_shows_agreement_shapes_and_jacobians(capsys):
    code, out, _ = run(
        capsys, "derive", "vector_mlp", "--method", "backprop", "--shapes", "--show-jacobians"
    )
    assert code == 0
    assert "W̄⁽¹⁾ = z̄ xᵀ      [m × n]" in out
    assert "check: unit form agrees" in out
    assert "∂h/∂z = diag(σ'(z))   (diagonal)" in out


def test_swollen_naive_expressions_are_summarized_in_text(capsys):
    code, out, _ = run(capsys, "derive", "vector_mlp", "--method", "naive", "--no-cse")
    assert code == 0
    assert "too long to print" in out
    assert max(len(line) for line in out.splitlines()) < 700


def test_grad_vector_program_json_arrays_and_point_file(capsys, tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    point = {
        "W1": rng.normal(size=(3, 2)).tolist(),
        "b1": rng.normal(size=3).tolist(),
        "W2": rng.normal(size=(4, 3)).tolist(),
        "b2": rng.normal(size=4).tolist(),
        "x": rng.normal(size=2).tolist(),
    }
    f = tmp_path / "point.json"
    f.write_text(json.dumps(point))
    code, out, _ = run(
        capsys,
        "grad",
        "vector_mlp",
        "--at-file",
        str(f),
        "--at",
        "t=[0.1,0.2,0.3,0.4],W1=[[0.1,0.2],[0.3,0.4],[0.5,0.6]]",
        "--format",
        "json",
    )
    assert code == 0
    data = json.loads(out)
    g = data["gradient"]
    assert np.shape(g["W1"]) == (3, 2) and np.shape(g["b1"]) == (3,)
    assert np.shape(g["W2"]) == (4, 3) and np.shape(g["b2"]) == (4,)
    # independent check: W̄⁽²⁾ = ȳ hᵀ and b̄⁽²⁾ = ȳ computed by hand in NumPy
    W1 = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    h = 1 / (1 + np.exp(-(W1 @ np.array(point["x"]) + np.array(point["b1"]))))
    y = np.array(point["W2"]) @ h + np.array(point["b2"])
    ybar = y - np.array([0.1, 0.2, 0.3, 0.4])
    assert np.allclose(g["b2"], ybar, rtol=1e-12)
    assert np.allclose(g["W2"], np.outer(ybar, h), rtol=1e-12)
    assert abs(data["loss"] - 0.5 * np.sum(ybar**2)) < 1e-12


def test_forward_pass_prints_as_written(capsys):
    code, out, _ = run(capsys, "derive", "logistic_least_squares_l2", "--method", "backprop")
    assert code == 0
    forward = out.split("Forward pass")[1].split("Backward pass")[0]
    assert "z = w x + b" in forward and "L_reg = L + λ R" in forward
    assert "L = (y − t)²/2" in forward
