"""Naive and backprop derivations agree with each other, with SymPy and with finite
differences, on every shipped scalar example and on generated nets."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from conftest import central_difference, rel_err

import chainrule
from chainrule.derive import backprop, count_ops, differentiate, naive
from chainrule.derive.records import ErrorSignal
from chainrule.examples import example_expected_gradient, example_names, example_path, example_point
from chainrule.numeric.evaluate import evaluate_expr, forward, gradient_at
from chainrule.numeric.functions import namespace_for
from chainrule.ops.scalar import sigma, sigma_prime
from chainrule.symbolic import (
    ProgramBuilder,
    load_program,
    parse_program,
    program_from_expr,
)
from chainrule.symbolic.generators import scalar_mlp

SCALAR_EXAMPLES = [n for n in example_names() if not load_program(example_path(n)).is_vector]


def random_point(program, rng, avoid_kinks: bool = True) -> dict[str, float]:
    point = {}
    for v in program.variables:
        if v.role == "const":
            continue
        point[v.name] = float(rng.uniform(-1.5, 1.5))
    return point


def loss_at(program):
    def f(point):
        values = forward(program, point)
        return float(values[program.loss_assignment.symbol])

    return f


def test_every_scalar_example_is_covered():
    assert {
        "logistic_least_squares",
        "logistic_least_squares_l2",
        "mlp_2_2_2",
        "softmax_regression",
        "computation_graph",
        "sum_times",
        "multivariate_chain",
        "xor",
    } <= set(SCALAR_EXAMPLES)


@pytest.mark.parametrize("name", SCALAR_EXAMPLES)
def test_naive_equals_backprop_numerically(name, rng):
    program = load_program(example_path(name))
    bp = backprop(program)
    nv = naive(program, steps=False)
    assert nv.complete
    syms = [v.symbol for v in program.variables]
    params = [p.name for p in program.params]
    naive_grads = [nv.gradients[p].gradient for p in params]
    bp_grads = [bp.substituted_gradient(p) for p in params]
    modules = [namespace_for(sp.Tuple(*naive_grads, *bp_grads)), "numpy"]  # a model's defs too
    f_naive = sp.lambdify(syms, naive_grads, modules=modules)
    f_bp = sp.lambdify(syms, bp_grads, modules=modules)
    for _ in range(3):
        point = random_point(program, rng)
        args = [float(point.get(v.name, v.value)) for v in program.variables]
        assert rel_err(f_naive(*args), f_bp(*args)) < 1e-10, name


@pytest.mark.parametrize("name", SCALAR_EXAMPLES)
def test_backprop_matches_finite_differences(name, rng):
    program = load_program(example_path(name))
    bp = backprop(program)
    f = loss_at(program)
    for _ in range(2):
        point = random_point(program, rng)
        _, grads = gradient_at(bp, point)
        for p in program.params:
            fd = central_difference(f, point, p.name)
            assert rel_err(grads[p.name], fd) < 1e-6 or abs(grads[p.name] - fd) < 1e-9


@pytest.mark.parametrize(
    "name",
    [
        "logistic_least_squares",
        "logistic_least_squares_l2",
        "sum_times",
        "computation_graph",
        "multivariate_chain",
    ],
)
def test_naive_equals_backprop_symbolically(name):
    program = load_program(example_path(name))
    bp = backprop(program)
    nv = naive(program, steps=False)
    for p in program.params:
        diff = sp.simplify(nv.gradients[p.name].gradient - bp.substituted_gradient(p.name))
        assert diff == 0


@pytest.mark.parametrize("name", SCALAR_EXAMPLES)
def test_naive_matches_sympy_diff(name, rng):
    """Our traced rule-by-rule differentiation agrees with SymPy's own diff."""
    program = load_program(example_path(name))
    nv = naive(program, steps=False)
    loss = program.substituted()
    point = random_point(program, rng)
    syms = [v.symbol for v in program.variables]
    args = [float(point.get(v.name, v.value)) for v in program.variables]
    mine = [g.gradient for g in nv.gradients.values()]
    sympys = [sp.diff(loss, p.symbol) for p in program.params]
    modules = [namespace_for(sp.Tuple(*mine, *sympys)), "numpy"]  # a model's defs too
    ours = sp.lambdify(syms, mine, modules=modules)
    theirs = sp.lambdify(syms, sympys, modules=modules)
    assert rel_err(ours(*args), theirs(*args)) < 1e-10


def test_lecture_values():
    for name in ("computation_graph", "sum_times"):
        expected = example_expected_gradient(name)
        _, grads = chainrule.gradient_at(name, example_point(name))
        assert {k: float(v) for k, v in grads.items()} == pytest.approx(expected, abs=1e-12)


def test_multivariate_chain_rule_matches_the_lecture():
    # df/dt = (y e^{xy})(−sin t) + (1 + x e^{xy}) 2t, with x = cos t, y = t²
    t = 0.7
    x, y = np.cos(t), t**2
    expected = y * np.exp(x * y) * (-np.sin(t)) + (1 + x * np.exp(x * y)) * 2 * t
    _, grads = chainrule.gradient_at("multivariate_chain", {"t": t})
    assert rel_err(grads["t"], expected) < 1e-14


def test_backward_pass_reads_like_the_lecture():
    d = backprop(load_program(example_path("logistic_least_squares_l2")))
    got = {s.node: s.expression for s in d.steps}
    S = {n: sp.Symbol(n, real=True) for n in ("w", "x", "t", "y", "z", "lambda")}
    bar = {n: ErrorSignal(f"{n}_bar", real=True) for n in ("L_reg", "L", "R", "y", "z")}
    assert [s.node for s in d.steps][:5] == ["L_reg", "R", "L", "y", "z"]
    assert got["L_reg"] == 1
    assert got["R"] == bar["L_reg"] * S["lambda"]
    assert got["y"] == bar["L"] * (S["y"] - S["t"])
    assert got["z"] == bar["y"] * sigma_prime(S["z"])
    assert got["w"] == bar["z"] * S["x"] + bar["R"] * S["w"]
    assert d.step("w").fan_out == 2
    assert [c.child for c in d.step("w").contributions] == ["z", "R"]
    assert got["b"] == bar["z"]


def test_every_rule_step_is_a_true_derivative(rng):
    program = load_program(example_path("xor"))
    nv = naive(program, steps=True, max_steps=10_000)
    g = nv.gradients["w11"]
    assert g.steps and not g.steps_truncated
    rules = {s.rule for s in g.steps}
    assert {"sum", "product", "chain", "constant multiple"} & rules
    syms = sorted(program.substituted().free_symbols, key=lambda s: s.name)
    values = {s: float(rng.uniform(0.1, 0.9)) for s in syms}
    for s in g.steps:
        ours = evaluate_expr(s.result, values) if s.result.free_symbols else float(s.result)
        truth = sp.diff(s.expr, s.wrt)
        theirs = evaluate_expr(truth, values) if truth.free_symbols else float(truth)
        assert rel_err(ours, theirs) < 1e-10, (s.rule, s.expr)


def test_sigma_derivative_keeps_its_name():
    z = sp.Symbol("z", real=True)
    assert differentiate(sigma(z), z) == sigma_prime(z)
    assert sp.diff(sigma(z), z) == sigma_prime(z)
    assert not differentiate(sigma(z), z).has(sp.exp)


@pytest.mark.parametrize(
    "fn", ["relu", "softplus", "tanh", "leaky_relu", "elu", "abs", "step", "exp", "sqrt", "log"]
)
def test_activation_derivatives_match_finite_differences(fn, rng):
    arg = "z" if fn != "log" and fn != "sqrt" else "z*z + 1"
    second = ", 0.2" if fn in ("leaky_relu", "elu") else ""
    program = parse_program(f"param w\ninput x\nz = w*x\ny = {fn}({arg}{second})\nL = y*y\nloss L")
    bp = backprop(program)
    f = loss_at(program)
    for _ in range(4):
        point = {
            "w": float(rng.uniform(0.2, 1.5)) * rng.choice([-1, 1]),
            "x": float(rng.uniform(0.3, 1.2)),
        }
        _, g = gradient_at(bp, point)
        assert rel_err(g["w"], central_difference(f, point, "w")) < 1e-6


def test_max_and_min_use_step_not_heaviside(rng):
    program = parse_program("param a, b\nm = max(a, b) - min(a, 2*b)\nloss m")
    bp = backprop(program)
    for s in bp.steps:
        assert not s.expression.has(sp.Heaviside, sp.DiracDelta)
    _, g = gradient_at(bp, {"a": 1.0, "b": 0.3})
    assert float(g["a"]) == 1.0 and float(g["b"]) == -2.0  # max = a, min = 2b
    _, g = gradient_at(bp, {"a": 0.1, "b": 0.3})  # max = b, min = a
    assert float(g["a"]) == -1.0 and float(g["b"]) == 1.0


def test_fan_out_from_a_single_sympy_expression():
    x, y = sp.symbols("x y", real=True)
    prog = program_from_expr(x * y + sp.exp(x * y))
    shared = [a for a in prog.assignments if a.expr == x * y]
    assert len(shared) == 1
    assert prog.fan_out(shared[0].name) == 2
    d = backprop(prog)
    assert d.step(shared[0].name).fan_out == 2
    _, g = gradient_at(d, {"x": 0.5, "y": -1.2})
    assert rel_err(g["x"], -1.2 + -1.2 * np.exp(-0.6)) < 1e-14


def test_python_builder_equals_text():
    b = ProgramBuilder("lls")
    w, bias = b.param("w", "b")
    x, t = b.input("x", "t")
    z = b.assign("z", w * x + bias)
    y = b.assign("y", sigma(z))
    b.assign("L", (y - t) ** 2 / 2)
    built = b.build("L")
    parsed = load_program(example_path("logistic_least_squares"))
    assert [a.expr for a in built.assignments] == [a.expr for a in parsed.assignments]
    assert chainrule.derivation(built).gradient("w") == chainrule.derivation(parsed).gradient("w")


def test_ssa_reassignment_micrograd_style():
    prog = parse_program("param a\nc = a + 1\nc = c * c\nc += a\nloss c")
    assert [x.name for x in prog.assignments] == ["c", "c_2", "c_3"]
    assert prog.loss == "c_3"
    _, g = chainrule.gradient_at(prog, {"a": 2.0})
    assert float(g["a"]) == 2 * 3 + 1  # d/da[(a+1)^2 + a]


def test_unused_parameter_has_zero_gradient():
    prog = parse_program("param w, unused\ninput x\nL = w*x\nloss L")
    _, g = chainrule.gradient_at(prog, {"w": 1.0, "x": 3.0, "unused": 5.0})
    assert float(g["unused"]) == 0.0 and float(g["w"]) == 3.0


def test_op_count_cost_model():
    x, y, z = sp.symbols("x y z")
    assert count_ops(x + y + z).as_dict()["adds"] == 2
    assert count_ops(x - y).as_dict() == {"adds": 1, "muls": 0, "divs": 0, "calls": 0, "total": 1}
    assert count_ops(x / y).as_dict()["divs"] == 1
    assert count_ops(x / y).total == 1
    assert count_ops(x**2).as_dict()["muls"] == 1
    assert count_ops(x**3).as_dict()["muls"] == 2
    assert count_ops(sigma(x) * sigma_prime(x)).as_dict() == {
        "adds": 0,
        "muls": 1,
        "divs": 0,
        "calls": 2,
        "total": 3,
    }
    assert count_ops(sp.sqrt(x)).calls == 1


def test_cheap_gradient_principle_on_mlps():
    for sizes in [(2, 2, 1), (4, 8, 3), (3, 5, 4, 2)]:
        d = chainrule.derivation(scalar_mlp(sizes), method="backprop")
        rows = {r.route: r for r in d.costs}
        assert rows["backprop"].ratio <= 3.0


def test_naive_swells_and_the_budget_stops_it():
    prog = scalar_mlp((4, 8, 3))
    d = chainrule.derivation(prog, steps=False)
    rows = {r.route: r for r in d.costs}
    assert rows["naive"].ops.total > 20 * rows["backprop"].ops.total
    assert rows["naive + CSE"].ops.total < rows["naive"].ops.total
    stopped = naive(scalar_mlp((8, 16, 16, 4)), steps=False, budget=0.2)
    assert not stopped.complete
    assert "time budget" in stopped.note


def test_generated_mlp_gradient_matches_finite_differences(rng):
    prog = scalar_mlp((3, 4, 2))
    bp = backprop(prog)
    point = {v.name: float(rng.normal()) for v in prog.variables}
    _, g = gradient_at(bp, point)
    f = loss_at(prog)
    for name in ("w1_2_3", "b1_4", "w2_1_4", "b2_2"):
        assert rel_err(g[name], central_difference(f, point, name)) < 1e-6


def test_deep_chains_backprop_and_naive_reports_it():
    text = "param w\nx = w\n" + "x = sigma(x)\n" * 1500 + "loss x"
    d = chainrule.derivation(text, naive_budget=2)
    assert d.backprop is not None and len(d.backprop.steps) == 1502
    assert d.naive is not None
    assert not d.naive.complete
    assert "nested 1501 levels deep" in d.naive.note  # left to backprop


def test_symbol_names_that_could_reach_generated_code_are_refused():
    from chainrule.symbolic import ModelError

    with pytest.raises(ModelError):
        program_from_expr(sp.Symbol('__import__("os").getpid()') * 2)
    with pytest.raises(ModelError):
        ProgramBuilder().param("a b")
