"""Vector programs: multiply–add counts from shapes, cost table, naive elementwise route."""

from __future__ import annotations

import numpy as np
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

import chainrule
from chainrule.derive import backprop, cost_table, naive
from chainrule.derive.unit_form import unit_form
from chainrule.derive.vector import vector_backprop
from chainrule.derive.vector_costs import vector_costs
from chainrule.numeric.agreement import rel_err
from chainrule.numeric.vector_eval import evaluate_expression, random_point, vector_gradient_at

m, n, k = sp.symbols("m n k", integer=True, positive=True)


def test_mlp_multiply_adds_one_per_weight_forward_two_backward() -> None:
    p = chainrule.load("vector_mlp")
    c = vector_costs(p, backprop(p), {"m": 30, "n": 20, "k": 10})
    assert c.forward_macs == m * n + k * m
    assert c.backward_macs == m * n + 2 * k * m  # x̄ of the first layer is not needed
    with_x = vector_costs(p, vector_backprop(p, wrt_inputs=True), {"m": 30, "n": 20, "k": 10})
    assert with_x.backward_macs == 2 * (m * n + k * m)
    assert with_x.mac_ratio == 2.0
    assert c.forward_macs_at == 30 * 20 + 10 * 30


def test_cost_table_rows_for_vector_programs() -> None:
    p = chainrule.load("vector_mlp")
    bp, nv = backprop(p), naive(p, budget=30)
    rows = {r.route: r for r in cost_table(p, bp, nv)}
    assert set(rows) == {"forward", "naive", "naive + CSE", "backprop"}
    assert "multiply–adds" in rows["forward"].note and "assumed" in rows["forward"].note
    assert rows["naive"].ops.total > 10 * rows["backprop"].ops.total  # expression swell
    assert rows["backprop"].ratio < 4


def test_naive_elementwise_gradients_equal_backprop_numbers() -> None:
    p = chainrule.load("residual")
    nv = naive(p, budget=30)
    assert nv.complete and "unit form" in nv.note
    sizes = unit_form(p).sizes
    point = random_point(p, sizes, seed=11)
    _, grads = vector_gradient_at(backprop(p), point)
    for name, g in nv.gradients.items():
        assert isinstance(g.gradient, sp.MatrixBase)
        value = evaluate_expression(g.gradient, p, point)
        assert rel_err(np.reshape(value, np.shape(grads[name])), grads[name]) < 1e-10
    w1 = nv.gradients["W1"].gradient
    assert w1.atoms(MatrixElement)  # written with the original names, W1[0, 1]


def test_naive_respects_its_budget() -> None:
    nv = naive(chainrule.load("tanh_mlp3"), budget=0.01)
    assert not nv.complete and "budget" in nv.note
