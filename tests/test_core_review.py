"""Regression tests for the problems a fresh-eyes review found in the core."""

from __future__ import annotations

import json

import numpy as np
import pytest

import chainrule
from chainrule.cli import main
from chainrule.symbolic import ModelError, parse_program
from chainrule.symbolic.program import program_from_expr


def grad_json(capsys, tmp_path, text: str, *at: str) -> tuple[int, dict, str]:
    path = tmp_path / "m.chain"
    path.write_text(text)
    argv = ["grad", str(path), "--format", "json"]
    for a in at:
        argv += ["--at", a]
    code = main(argv)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


def test_ssa_versions_never_collide_with_names_written_later(capsys, tmp_path):
    text = "param w\nc = w\nc = c*2\nc_2 = w*3\nL = c*c_2\nloss L\n"
    code, data, _ = grad_json(capsys, tmp_path, text, "w=1")
    assert code == 0
    assert data == {"loss": 6.0, "gradient": {"w": 12.0}}


def test_declared_e_and_eulers_number_are_different(capsys, tmp_path):
    code, data, _ = grad_json(
        capsys, tmp_path, "param w, e\ny = e*w^2 + exp(1)*w\nloss y\n", "w=0.5,e=2"
    )
    assert code == 0
    assert data["gradient"]["w"] == pytest.approx(2 * 2 * 0.5 + np.e, rel=1e-14)
    assert data["gradient"]["e"] == pytest.approx(0.25, rel=1e-14)


def test_a_node_may_be_called_e():
    p = parse_program("param w\ne = w*2\nloss e")
    assert p.loss == "e"


def test_long_flat_sums_on_one_line():
    p = parse_program("param w, v\ny = " + "+".join(["w*v"] * 1200) + " - w\nloss y")
    _, g = chainrule.gradient_at(p, {"w": 2.0, "v": 3.0})
    assert float(g["w"]) == 1200 * 3 - 1 and float(g["v"]) == 1200 * 2


def test_a_second_loss_line_is_an_error():
    with pytest.raises(ModelError, match="second loss") as info:
        parse_program("param w\ny = w\nz = 2*w\nloss y\nloss z", "m.chain")
    assert info.value.span.line == 5


def test_columns_point_into_the_line_as_written():
    with pytest.raises(ModelError) as info:
        parse_program("param w\ny = σ(w)² + q\nloss y")
    assert info.value.span.column == 13  # the q, counted in the original characters


def test_nesting_limit_counts_each_parenthesis_once():
    parse_program("param w\ny = " + "(" * 90 + "w" + ")" * 90 + "\nloss y")
    with pytest.raises(ModelError, match="nested deeper"):
        parse_program("param w\ny = " + "(" * 101 + "w" + ")" * 101 + "\nloss y")


def test_caret_keeps_tabs():
    with pytest.raises(ModelError) as info:
        parse_program("param w\n\ty = w + q\nloss y")
    lines = str(info.value).splitlines()
    assert lines[2].startswith("    \t") and lines[2].endswith("^")


def test_program_from_expr_avoids_its_own_generated_names():
    import sympy as sp

    v1, x = sp.symbols("v1 x", real=True)
    prog = program_from_expr(v1 * x + sp.exp(v1 * x))
    _, g = chainrule.gradient_at(prog, {"v1": 0.5, "x": 2.0})
    assert float(g["v1"]) == pytest.approx(2.0 + 2.0 * np.exp(1.0))


@pytest.mark.parametrize("z", [710.0, 800.0, -800.0])
def test_elu_and_leaky_relu_gradients_stay_finite(z):
    _, g = chainrule.gradient_at("param w\ny = elu(w, 0.5) + leaky_relu(w, 0.1)\nloss y", {"w": z})
    expected = 2.0 if z > 0 else 0.5 * np.exp(z) + 0.1
    assert float(g["w"]) == pytest.approx(expected)


def test_activation_derivatives_keep_their_names():
    d = chainrule.derivation(
        "param w, a\ny = elu(w, a) + leaky_relu(w, 0.1) + max(w, a)\nloss y", method="backprop"
    )
    text = str(d)
    assert "ELU'(w, a)" in text and "LeakyReLU'(w, 1/10)" in text
    assert "Max(" not in text


def test_max_ties_split_to_a_subgradient():
    _, g = chainrule.gradient_at("param w, v\ny = max(w, v)\nloss y", {"w": 1.0, "v": 1.0})
    assert float(g["w"]) + float(g["v"]) == 1.0


def test_no_plus_minus_in_printed_sums():
    d = chainrule.derivation(
        "param w, b\ninput x\nc = w*x - b\nd = -c\nL = c + d*w\nloss L", method="backprop"
    )
    assert "+ −" not in str(d)


@pytest.mark.parametrize(
    "at, words",
    [
        ("w=true", "must be a number"),
        ("w=[1,2]", "is a scalar"),
        ("w=1,z=3", "is computed by the model"),
    ],
)
def test_grad_rejects_values_it_cannot_use(capsys, tmp_path, at, words):
    code, _, err = grad_json(capsys, tmp_path, "param w\nz = w*w\nloss z\n", at)
    assert code == 2 and words in err


@pytest.mark.parametrize(
    "at, value", [("w=.5", 0.5), ("w=+1", 1.0), ("w=1.", 1.0), ("w=-2e-1", -0.2)]
)
def test_grad_reads_numbers_as_people_type_them(capsys, tmp_path, at, value):
    code, data, _ = grad_json(capsys, tmp_path, "param w\nz = w*w\nloss z\n", at)
    assert code == 0 and data["gradient"]["w"] == pytest.approx(2 * value)


def test_grad_non_finite_is_null_and_exit_1(capsys, tmp_path):
    code, data, err = grad_json(capsys, tmp_path, "param w\ny = log(w) + 1/w\nloss y\n", "w=0")
    assert code == 1
    assert data == {"loss": None, "gradient": {"w": None}}
    assert "not finite" in err and "Dummy" not in err


def test_budget_must_be_non_negative(capsys):
    with pytest.raises(SystemExit):
        main(["derive", "sum_times", "--budget", "-1"])
    assert "0 or more" in capsys.readouterr().err


def test_unused_nodes_cost_nothing():
    d = chainrule.derivation("param w, u\ninput x\njunk = exp(u)*u\nL = w*x\nloss L")
    rows = {r.route: r for r in d.costs}
    assert rows["forward"].ops.total == 1


def test_deep_polynomial_chain_is_derived_naively():
    text = "param w\nc0 = w\n" + "".join(f"c{i} = c{i - 1}*w + 1\n" for i in range(1, 201))
    d = chainrule.derivation(text + "loss c200", naive_budget=20)
    assert d.naive.complete
    assert "nested too deeply" not in str(d)
