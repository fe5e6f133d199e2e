"""The codegen, check-grad and train commands: output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from chainrule.cli import main


def test_codegen_prints_self_contained_module(capsys, tmp_path) -> None:  # noqa: ANN001
    assert main(["codegen", "xor"]) == 0
    src = capsys.readouterr().out
    (tmp_path / "xor_grad.py").write_text(src)
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import xor_grad, numpy as np;"
        "p = {k: np.array(0.1) for k in 'w11 w12 w21 w22 b1 b2 v1 v2 c'.split()};"
        "d = {'x1': np.array([0., 1.]), 'x2': np.array([1., 1.]), 't': np.array([1., 0.])};"
        "l, g = xor_grad.loss_and_grad(p, d); print(sorted(g), float(l))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert "'w11'" in out.stdout
    assert "chainrule" not in src.split('"""', 2)[2]  # imports only numpy


def test_check_grad_exit_codes(capsys) -> None:  # noqa: ANN001
    assert main(["check-grad", "xor", "--points", "1"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "z1_bar" in out
    assert main(["check-grad", "xor", "--points", "1", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"] is True
    assert main(["check-grad", "no_such_model.chain"]) == 2


def test_train_writes_history_and_params(tmp_path, capsys) -> None:  # noqa: ANN001
    h, p = tmp_path / "h.json", tmp_path / "p.npz"
    rc = main(
        [
            "train",
            "xor",
            "--data",
            "xor",
            "--epochs",
            "400",
            "--lr",
            "2",
            "--batch",
            "4",
            "--seed",
            "3",
            "--history",
            str(h),
            "--save",
            str(p),
        ]
    )
    assert rc == 0
    hist = json.loads(h.read_text())
    assert hist["epochs"][-1]["accuracy"] == 1.0
    with np.load(p) as z:
        assert set(z.files) == {"w11", "w12", "w21", "w22", "b1", "b2", "v1", "v2", "c"}
    assert "accuracy 100.00%" in capsys.readouterr().out


def test_train_bad_input_exit_2(tmp_path) -> None:  # noqa: ANN001
    assert main(["train", "xor", "--data", "nope"]) == 2
    assert main(["train", "xor", "--data", "xor", "--lr", "-1"]) == 2
    assert main(["train", "xor", "--data", "xor", "--map", "q=a"]) == 2
    assert main(["train", "xor", "--data", "xor", "--history", str(tmp_path / "h.txt")]) == 2


def test_train_divergence_exit_1(tmp_path, capsys) -> None:  # noqa: ANN001
    model = tmp_path / "lin.chain"
    model.write_text("param w, b\ninput x, t\ny = w*x + b\nL = (y - t)^2/2\nloss L\n")
    data = tmp_path / "d.csv"
    data.write_text("x,t\n" + "".join(f"{v},{3 * v}\n" for v in range(-50, 50, 5)))
    rc = main(["train", str(model), "--data", str(data), "--lr", "10", "--epochs", "100"])
    assert rc == 1
    assert "smaller --lr" in capsys.readouterr().err
