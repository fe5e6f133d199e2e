"""Second order: forward-over-reverse Hessian, hvp in generated code, the hessian command."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import sympy as sp

import chainrule
from chainrule.cli import main
from chainrule.derive.second_order import second_order
from chainrule.numeric.codegen import compiled
from chainrule.numeric.gradcheck import random_point, relative_error
from chainrule.numeric.hessian import check_hessian, gradient_differences, hessian_at

SCALAR = ["logistic_least_squares", "logistic_least_squares_l2", "xor", "softmax_regression"]
SCALAR += ["mlp_2_2_2", "tanh_mlp3", "residual", "shared_weights", "computation_graph"]
VECTOR = ["vector_mlp", "softmax_regression_vector"]
RELU = "param w, v\ninput x, t\nh = relu(w*x)\ny = v*h\nL = (y - t)^2/2\nloss L"
RELU_VECTOR = (
    "param W1[2, 2], w2[2]\ninput x[2], t\nh = relu(W1 @ x)\ny = dot(w2, h)\n"
    "L = (y - t)^2/2\nloss L"
)


def one_example(program: Any, seed: int = 0) -> dict[str, Any]:
    params, data = random_point(program, np.random.default_rng(seed), batch=1)
    return {**params, **{k: v[0] for k, v in data.items()}}


@pytest.mark.parametrize("model", SCALAR + VECTOR)
def test_hessian_equals_differences_of_the_gradient_and_is_symmetric(model: str) -> None:
    program = chainrule.load(model)
    for seed in (0, 1):
        point = one_example(program, seed)
        h = hessian_at(program, point)
        labels, fd = gradient_differences(program, point)
        assert labels == h.parameters
        n = len(labels)
        assert h.hessian.shape == (n, n)
        errors = [relative_error(h.hessian[i, j], fd[i, j]) for i in range(n) for j in range(n)]
        assert max(errors) <= 1e-6
        np.testing.assert_allclose(h.hessian, h.hessian.T, rtol=1e-12, atol=1e-14)


def test_hessian_independently_of_generated_code() -> None:
    """Central differences of the evaluator's gradient (chainrule.gradient_at), not codegen."""
    program = chainrule.load("xor")
    point = one_example(program, 3)
    h = hessian_at(program, point)
    names = [v.name for v in program.params]
    for j, q in enumerate(names):
        step = 1e-5
        up = chainrule.gradient_at(program, {**point, q: point[q] + step})[1]
        down = chainrule.gradient_at(program, {**point, q: point[q] - step})[1]
        col = np.array([(up[p] - down[p]) / (2 * step) for p in names])
        np.testing.assert_allclose(h.hessian[:, j], col, rtol=1e-5, atol=1e-8)


def _sympy_hessian(program: Any, point: dict[str, Any]) -> np.ndarray:
    full: dict[sp.Basic, sp.Basic] = {}
    for a in program.assignments:
        full[a.symbol] = a.expr.xreplace(full)
    loss = full[program.loss_assignment.symbol]
    params = [v.symbol for v in program.params]
    values = {program.symbol(k): sp.Float(v) for k, v in point.items()}
    values.update({v.symbol: sp.sympify(v.value) for v in program.consts})
    hess = sp.hessian(loss, params)
    return np.array(
        [
            [float(sp.N(e.xreplace(values).rewrite(sp.exp), 30)) for e in row]
            for row in hess.tolist()
        ]
    )


@pytest.mark.parametrize("model", ["logistic_least_squares_l2", "xor", "softmax_regression"])
def test_hessian_equals_sympys_symbolic_hessian(model: str) -> None:
    program = chainrule.load(model)
    point = one_example(program, 2)
    expected = _sympy_hessian(program, point)
    got = hessian_at(program, point).hessian
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-13)


def test_vector_parameter_names_are_row_major_and_zero_based() -> None:
    program = chainrule.parse(RELU_VECTOR)
    point = {"W1": [[1, 2], [3, -4]], "w2": [1, -1], "x": [1, 0.5], "t": 1}
    h = hessian_at(program, point)
    assert h.parameters == ["W1[0,0]", "W1[0,1]", "W1[1,0]", "W1[1,1]", "w2[0]", "w2[1]"]
    # unit 2 is off (3 - 2 < 0 is false: 3*1 - 4*0.5 = 1 > 0; unit 1: 1 + 1 = 2 > 0)
    # L = (w2 . W1 x - t)^2/2 with both units on: H[w2[0], w2[0]] = h1^2 = 4
    assert h.hessian[4, 4] == pytest.approx(4.0)
    assert any("relu(W1 @ x)" in k for k in h.almost_everywhere)


def test_relu_model_says_the_hessian_is_the_almost_everywhere_one() -> None:
    h = hessian_at(chainrule.parse(RELU), {"w": 1.0, "v": 2.0, "x": 1.5, "t": 0.0})
    np.testing.assert_allclose(h.hessian, [[9.0, 9.0], [9.0, 2.25]])
    assert "almost-everywhere" in h.note and "w*x = 0" in h.note
    assert hessian_at("xor", one_example(chainrule.load("xor"))).note == ""


def test_generated_hvp_is_hessian_times_v_over_a_batch_in_the_inputs_dtype() -> None:
    program = chainrule.load("xor")
    params, data = random_point(program, np.random.default_rng(5), batch=4)
    v = {k: float(i + 1) / 10 for i, k in enumerate(params)}
    code = compiled(program)
    hv = code.hvp(params, data, v)
    # H of the batch mean = mean of per-example Hessians
    total = np.zeros((len(params), len(params)))
    for b in range(4):
        total += hessian_at(program, {**params, **{k: x[b] for k, x in data.items()}}).hessian
    expected = total / 4 @ np.array(list(v.values()))
    np.testing.assert_allclose([float(hv[k]) for k in params], expected, rtol=1e-10, atol=1e-14)
    p32 = {k: np.float32(x) for k, x in params.items()}
    d32 = {k: x.astype(np.float32) for k, x in data.items()}
    hv32 = code.hvp(p32, d32, v)
    assert all(x.dtype == np.float32 for x in hv32.values())


def test_tangent_program_is_in_dotted_names() -> None:
    d = second_order(chainrule.load("logistic_least_squares"))
    lines = {str(s.tangent): str(s.expression) for s in d.steps}
    assert lines["z_dot"] == "x*w_dot + b_dot"
    assert lines["w_bar_dot"] == "x*z_bar_dot"
    x = d.program.symbol("x")
    assert sp.expand(d.hessian_entry("w", "b") - d.hessian_entry("b", "w")) == 0
    assert sp.expand(d.hessian_entry("w", "b") - x * d.hessian_entry("b", "b")) == 0
    assert sp.expand(d.hessian_entry("w", "w") - x**2 * d.hessian_entry("b", "b")) == 0


def test_check_hessian_passes_and_reports() -> None:
    report = check_hessian(chainrule.load("tanh_mlp3"), points=1)
    assert report.passed and report.max_rel_error < 1e-9
    assert report.to_dict()["order"] == 2


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_hessian_json_keys_and_values(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys,
        "hessian",
        "logistic_least_squares",
        "--at",
        "w=0.5,b=-0.3,x=1.5,t=1",
        "--format",
        "json",
    )
    assert code == 0
    doc = json.loads(out)
    assert list(doc) == ["loss", "parameters", "hessian"]
    assert doc["parameters"] == ["w", "b"]
    h = np.array(doc["hessian"])
    assert h.shape == (2, 2) and h[0, 1] == h[1, 0]
    # L = (σ(z) - t)²/2: ∂²L/∂b² = σ'(z)² + (σ(z) - t) σ''(z)
    s = 1 / (1 + np.exp(-(0.5 * 1.5 - 0.3)))
    ds, d2s = s * (1 - s), s * (1 - s) * (1 - 2 * s)
    assert h[1, 1] == pytest.approx(ds**2 + (s - 1) * d2s, rel=1e-12)
    assert h[0, 0] == pytest.approx(1.5**2 * h[1, 1], rel=1e-12)


def test_cli_hessian_vector_model_from_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    model = tmp_path / "r.chain"
    model.write_text(RELU_VECTOR)
    point = tmp_path / "p.json"
    point.write_text(json.dumps({"W1": [[1, 2], [3, -4]], "w2": [1, -1], "x": [1, 0.5], "t": 1}))
    code, out, err = run_cli(
        capsys, "hessian", str(model), "--at-file", str(point), "--format", "json"
    )
    assert code == 0 and json.loads(out)["parameters"][1] == "W1[0,1]"
    assert "almost-everywhere" in err
    code, out, _ = run_cli(capsys, "hessian", str(model), "--at-file", str(point))
    assert code == 0 and "W1[1,1]" in out and "almost-everywhere" in out


@pytest.mark.parametrize(
    "at",
    ["w=0.5,b=-0.3,x=1.5", "w=0.5,b=-0.3,x=1.5,t=1,q=2", "w=[1,2],b=0,x=1,t=1", "w=abc"],
)
def test_cli_hessian_bad_points_exit_2(capsys: pytest.CaptureFixture[str], at: str) -> None:
    code, out, err = run_cli(
        capsys, "hessian", "/dev/null/x.chain" if at == "" else "xor", "--at", at
    )
    assert code == 2 and "Traceback" not in err and err.strip()


def test_cli_derive_order_2_shows_the_tangent_program_and_the_closed_form(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(
        capsys, "derive", "logistic_regression", "--method", "backprop", "--order", "2"
    )
    assert code == 0
    section = out.split("Second order")[1]
    assert "ż = x₁ ẇ₁ + x₂ ẇ₂ + ḃ" in section
    assert "w̄̇₁ = x₁ z̄̇" in section and "(H v)_w₁" in section
    assert "∂²L/∂w₁∂w₂ = x₁ x₂ σ(z) (1 − σ(z))" in section
    assert "H = Σₙ σ(z) (1 − σ(z)) a aᵀ with a = (x₁, x₂, 1)" in section
    code, out, _ = run_cli(
        capsys,
        "derive",
        "logistic_regression",
        "--method",
        "backprop",
        "--order",
        "2",
        "--format",
        "json",
    )
    doc = json.loads(out)["second_order"]
    assert doc["rank_one"]["a"] == {"w1": "x₁", "w2": "x₂", "b": "1"}
    assert [t["tangent"] for t in doc["tangents"]][0] == "z_dot"


def test_derive_order_2_of_a_relu_model_says_almost_everywhere(
    capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    model = tmp_path / "r.chain"
    model.write_text(RELU)
    code, out, _ = run_cli(capsys, "derive", str(model), "--method", "backprop", "--order", "2")
    assert code == 0 and "almost-everywhere" in out and "relu" in out.split("Second order")[1]


def test_cli_check_grad_order_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "check-grad", "xor", "--order", "2", "--points", "1")
    assert code == 0 and "PASS" in out
    code, out, _ = run_cli(capsys, "check-grad", "vector_mlp", "--order", "2", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["passed"] and doc["max_rel_error"] < 1e-6


@pytest.mark.parametrize("fmt", ["md", "html", "tex"])
def test_report_of_the_shipped_logistic_model_has_the_closed_form_hessian(fmt: str) -> None:
    from chainrule.reports.document import build_report, render_report

    data = build_report("logistic_regression", naive=False, checks=False, code=False, order=2)
    text = render_report(data, fmt)
    assert "Second order: forward-over-reverse" in text
    so = data.backprop.second_order if data.backprop else None
    assert so is not None
    assert r"H = \sum_n \sigma\left(z\right) \left(1 - \sigma\left(z\right)\right)" in so.rank_one
    assert r"a = (x_{1}, x_{2}, 1)" in so.rank_one
    assert r"\dot{\bar{w}}_{1} = x_{1} \dot{\bar{z}}" in so.tangents
    if fmt != "html":  # HTML carries MathML, not the LaTeX source
        assert r"\dot{z}" in text


@pytest.mark.parametrize(
    "model", ["vector_mlp", "softmax_regression_vector", "shared_weights", "residual", "tanh_mlp3"]
)
def test_generated_vector_hvp_is_the_mean_of_unit_form_hessians_times_v(model: str) -> None:
    program = chainrule.load(model)
    code = compiled(program)
    params, data = random_point(program, np.random.default_rng(7), batch=3)
    rng = np.random.default_rng(8)
    v = {k: rng.normal(size=np.shape(p)) for k, p in params.items()}
    hv = code.hvp(params, data, v)
    flat_v = np.concatenate([np.ravel(v[k]) for k in params])
    total = 0
    for b in range(3):
        point = {**params, **{k: x[b] for k, x in data.items()}}
        total = total + hessian_at(program, point, unit=True).hessian @ flat_v
    got = np.concatenate([np.ravel(hv[k]) for k in params])
    assert [np.shape(hv[k]) for k in params] == [np.shape(params[k]) for k in params]
    np.testing.assert_allclose(got, total / 3, rtol=1e-9, atol=1e-12)


def test_vector_hvp_follows_the_inputs_dtype_and_the_array_api() -> None:
    xps = pytest.importorskip("array_api_strict")
    program = chainrule.load("softmax_regression_vector")
    code = compiled(program)
    params, data = random_point(program, np.random.default_rng(2), batch=4)
    v = {k: np.ones(np.shape(p)) for k, p in params.items()}
    hv64 = code.hvp(params, data, v)
    f32 = {k: np.asarray(a, np.float32) for k, a in params.items()}
    hv32 = code.hvp(f32, {k: a.astype(np.float32) for k, a in data.items()}, v)
    for k in params:
        assert hv32[k].dtype == np.float32
        np.testing.assert_allclose(hv32[k], hv64[k], rtol=1e-3, atol=1e-5)
    strict = code.hvp(
        {k: xps.asarray(a) for k, a in params.items()},
        {k: xps.asarray(a) for k, a in data.items()},
        {k: xps.asarray(a) for k, a in v.items()},
    )
    for k in params:
        np.testing.assert_allclose(np.from_dlpack(strict[k]), hv64[k], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("model", VECTOR + ["shared_weights", "residual", "tanh_mlp3"])
def test_vector_hessian_by_matrix_hvp_equals_the_unit_form_route(model: str) -> None:
    program = chainrule.load(model)
    point = one_example(program, 4)
    fast, unit = hessian_at(program, point), hessian_at(program, point, unit=True)
    assert fast.parameters == unit.parameters
    np.testing.assert_allclose(fast.hessian, unit.hessian, rtol=1e-10, atol=1e-13)
    assert fast.loss == pytest.approx(unit.loss, rel=1e-12)


def test_derive_order_2_of_a_vector_program_in_matrix_notation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(capsys, "derive", "vector_mlp", "--method", "backprop", "--order", "2")
    section = out.split("Second order")[1]
    assert code == 0
    assert "ż = Ẇ⁽¹⁾ x + ḃ⁽¹⁾" in section and "ḣ = σ'(z) ∘ ż" in section
    assert "W̄̇⁽¹⁾ = z̄̇ xᵀ" in section and "(H v)_W⁽¹⁾" in section


def test_cli_hessian_refuses_a_huge_hessian_with_a_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    model = tmp_path / "big.chain"
    model.write_text("param W[80, 80]\ninput x[80], t\ny = sum(W @ x)\nL = (y - t)^2\nloss L")
    point = tmp_path / "p.json"
    point.write_text(json.dumps({"W": np.zeros((80, 80)).tolist(), "x": [0.0] * 80, "t": 1}))
    code, _, err = run_cli(capsys, "hessian", str(model), "--at-file", str(point))
    assert code == 2 and "6,400 parameter entries" in err and "hvp" in err
