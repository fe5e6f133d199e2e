"""Generated NumPy code: equals the symbolic gradient and finite differences, batches."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule.examples import example_names, example_point
from chainrule.numeric.codegen import CodegenError, audit_source, compiled, generate, python_name
from chainrule.numeric.gradcheck import random_point

SCALAR_EXAMPLES = [n for n in example_names() if not chainrule.load(n).is_vector]


def rel(a, b):  # noqa: ANN001, ANN201
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-12)))


@pytest.mark.parametrize("name", SCALAR_EXAMPLES)
def test_generated_equals_symbolic_gradient_at_lecture_point(name: str) -> None:
    prog = chainrule.load(name)
    pt = example_point(name)
    params = {v.name: pt[v.name] for v in prog.params}
    data = {v.name: np.array([pt[v.name]]) for v in prog.inputs if v.name in pt}
    loss, grads = generate(prog)(params, data)
    loss_s, grads_s = chainrule.gradient_at(prog, pt)
    assert rel(loss, loss_s) < 1e-12
    for p in params:
        assert rel(grads[p], grads_s[p]) < 1e-10, p


@pytest.mark.parametrize("name", ["xor", "softmax_regression", "logistic_least_squares_l2"])
def test_batched_mean_is_mean_of_per_example_gradients(name: str) -> None:
    prog = chainrule.load(name)
    params, data = random_point(prog, np.random.default_rng(1), batch=5)
    fn = compiled(prog).function
    loss, grads = fn(params, data, "mean")
    per = [fn(params, {k: v[i : i + 1] for k, v in data.items()}, "sum") for i in range(5)]
    assert rel(loss, np.mean([p[0] for p in per])) < 1e-12
    for k in grads:
        assert rel(grads[k], np.mean([p[1][k] for p in per], axis=0)) < 1e-12
    loss_sum, grads_sum = fn(params, data, "sum")
    assert rel(loss_sum, 5 * loss) < 1e-12
    assert (
        rel(
            grads_sum["w11" if "w11" in grads else "w"], 5 * grads["w11" if "w11" in grads else "w"]
        )
        < 1e-12
    )


def test_generated_gradient_matches_finite_differences() -> None:
    prog = chainrule.load("mlp_2_2_2")
    params, data = random_point(prog, np.random.default_rng(2), batch=4)
    fn = compiled(prog).function
    _, grads = fn(params, data)
    for k in params:
        h = 1e-6
        up = {**params, k: params[k] + h}
        down = {**params, k: params[k] - h}
        fd = (fn(up, data)[0] - fn(down, data)[0]) / (2 * h)
        assert rel(fd, grads[k]) < 1e-6


def test_source_uses_program_names_and_reuses_forward_values() -> None:
    src = generate(chainrule.load("xor")).source
    imports = [ln for ln in src.splitlines() if "import " in ln]
    assert imports == ["import numpy as np", "from array_api_compat import array_namespace"]
    for name in ("z1", "h1", "u_bar", "h1_bar", "z1_bar"):
        assert f"    {name} = " in src
    assert "sigma_prime" not in src  # σ'(z1) written as h1*(1 - h1)
    assert "h1*(1 - h1)" in src
    assert "for " not in src.split("def loss_and_grad")[1]  # no Python loop over examples


def test_sigmoid_cross_entropy_is_stable_for_large_logits() -> None:
    prog = chainrule.load("xor")
    fn = compiled(prog).function
    params = {k: np.array(0.0) for k in ("w11", "w12", "w21", "w22", "b1", "b2", "v1", "v2")}
    params["c"] = np.array(800.0)  # y = σ(800) == 1.0 exactly in float64
    data = {"x1": np.array([0.0, 1.0]), "x2": np.array([1.0, 0.0]), "t": np.array([0.0, 1.0])}
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, grads = fn(params, data)
    assert np.isclose(loss, 400.0)  # mean of 800 and ~0
    assert np.isclose(grads["c"], 0.5)


def test_keywords_renamed_and_names_checked() -> None:
    assert python_name("lambda") == "lambda_"
    assert python_name("np") == "np_"
    with pytest.raises(CodegenError):
        python_name("__import__('os')")
    src = generate(chainrule.load("logistic_least_squares_l2")).source
    assert "lambda_ = 0.01" in src


def test_audit_refuses_unknown_names() -> None:
    with pytest.raises(CodegenError):
        audit_source("import numpy as np\nx = __import__('os')\n", ["x"], [])
    with pytest.raises(CodegenError):
        audit_source("import numpy as np\nx = eval\n", ["x"], [])


def test_dirac_delta_refused_before_codegen() -> None:
    import sympy as sp

    from chainrule.derive import backprop

    prog = chainrule.parse("param w\ninput x\nz = w*x\nL = z^2\nloss L")
    d = backprop(prog)
    d.steps[1].expression = sp.DiracDelta(prog.symbol("z"))
    with pytest.raises(CodegenError, match="DiracDelta"):
        generate(d)
    d.steps[1].expression = sp.Derivative(sp.Function("f")(prog.symbol("z")), prog.symbol("z"))
    with pytest.raises(CodegenError, match="Derivative"):
        generate(d)


def test_float32_code_keeps_float32() -> None:
    prog = chainrule.load("xor")
    params, data = random_point(prog, np.random.default_rng(0), batch=4)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    loss, grads = compiled(prog, dtype="float32").function(p32, data)
    assert all(g.dtype == np.float32 for g in grads.values())
    _, g64 = compiled(prog).function(params, data)
    assert rel(grads["w11"], g64["w11"]) < 1e-4


def test_compiled_once_per_model() -> None:
    prog = chainrule.load("xor")
    assert compiled(prog) is compiled(prog)
