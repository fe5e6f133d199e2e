"""Gradient checking: passes right gradients, flags wrong ones, handles kinks."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import chainrule
from chainrule.derive import backprop
from chainrule.numeric.gradcheck import (
    GradCheckWarning,
    band_of,
    check_gradient,
    gradcheck,
    relative_error,
    representable_step,
    step_for,
)
from chainrule.symbolic.errors import ChainruleError

RELU = "param w, b\ninput x, t\nz = w*x + b\nh = relu(z)\nL = (h - t)^2/2\nloss L"


def test_relative_error_and_bands() -> None:
    assert relative_error(0.0, 0.0) == 0.0
    assert relative_error(1.0, -1.0) == 1.0
    assert band_of(1e-9) == "good" and band_of(0.5) == "wrong"


def test_step_is_exactly_representable() -> None:
    for x in (0.1, 3.7, -1234.5678, 1e-3):
        h = step_for(x)
        assert (x + h) - x == h
        assert representable_step(x, h) == h
        assert abs(h - np.finfo(float).eps ** (1 / 3) * max(1, abs(x))) < 1e-3 * h


@pytest.mark.parametrize(
    "name",
    ["xor", "softmax_regression", "logistic_least_squares_l2", "mlp_2_2_2", "multivariate_chain"],
)
def test_right_gradients_pass_with_complex_step(name: str) -> None:
    r = gradcheck(name, points=2)
    assert r.method == "complex-step"
    assert r.passed and r.band == "good", r.summary()
    assert r.max_rel_error < 1e-12
    assert r.signals and all(s.passed for s in r.signals)


def test_deliberately_wrong_gradient_is_flagged_with_first_bad_node() -> None:
    prog = chainrule.load("xor")
    d = backprop(prog)
    step = d.step("h1")
    step.expression = 2 * step.expression  # wrong: h1_bar doubled
    r = gradcheck(d, points=1)
    assert not r.passed
    assert r.band in ("suspicious", "wrong")
    assert r.first_bad_signal == "h1"
    worst = r.worst(1)[0]
    assert worst.param in ("w11", "w12", "b1")


def test_generic_check_flags_wrong_function_gradient() -> None:
    f = lambda p: float(np.sum(np.sin(p["w"])))  # noqa: E731
    good = check_gradient(f, lambda p: {"w": np.cos(p["w"])}, {"w": np.array([0.3, 2.0])})
    bad = check_gradient(f, lambda p: {"w": -np.cos(p["w"])}, {"w": np.array([0.3, 2.0])})
    assert good.passed and good.max_rel_error < 1e-8
    assert not bad.passed and bad.band == "wrong"


def test_inputs_restored_after_every_perturbation() -> None:
    params = {"w": np.array([0.1, 0.2, 0.3])}
    before = params["w"].copy()
    check_gradient(lambda p: float(np.sum(p["w"] ** 2)), lambda p: {"w": 2 * p["w"]}, params)
    assert np.array_equal(params["w"], before)


def test_float32_input_is_upcast_with_warning() -> None:
    params = {"w": np.array([0.5, -0.25], dtype=np.float32)}
    with pytest.warns(GradCheckWarning, match="float32"):
        r = check_gradient(
            lambda p: float(np.sum(p["w"] ** 3)), lambda p: {"w": 3 * p["w"] ** 2}, params
        )
    assert r.passed and r.warnings


def test_non_analytic_model_uses_central_differences() -> None:
    r = gradcheck(chainrule.parse(RELU), points=3)
    assert r.method == "central" and r.passed
    with pytest.raises(ChainruleError, match="complex-step"):
        gradcheck(chainrule.parse(RELU), method="complex-step")


def test_kink_is_flagged_not_failed() -> None:
    prog = chainrule.parse(RELU)
    # z = w*x + b = 1e-9 for the first example: relu's kink lies inside [b − h, b + h]
    params = {"w": np.array(1.0), "b": np.array(1e-9)}
    data = {"x": np.array([0.0, 1.0]), "t": np.array([1.0, 0.5])}
    r = gradcheck(prog, params=params, data=data, points=1, signals=False)
    assert r.kinks >= 1
    assert all(e.kink for e in r.entries if e.param == "b")
    assert r.passed  # the remaining entries are right


def test_random_kinks_are_resampled() -> None:
    # |w| has its kink at 0; make every random point start there by a tiny scale
    prog = chainrule.parse("param w\ninput x\nL = abs(w) * x^2\nloss L")
    r = gradcheck(prog, points=2)
    assert r.passed


def test_richardson_second_estimate_has_error_estimate() -> None:
    r = gradcheck("xor", points=1, method="richardson")
    assert r.passed
    assert all(e.error_estimate is not None and e.error_estimate < 1e-6 for e in r.entries)


def test_report_renders() -> None:
    r = gradcheck("sum_times", points=1)
    assert "numerical" in r.table() and "PASS" in r.summary()
    assert r.to_dict()["passed"] is True


def test_unevaluated_derivative_caught_before_codegen() -> None:
    prog = chainrule.parse("param w\ninput x\nz = w*x\nL = z^2\nloss L")
    d = backprop(prog)
    d.steps[1].expression = sp.DiracDelta(prog.symbol("z"))
    with pytest.raises(ChainruleError, match="DiracDelta"):
        gradcheck(d)


def test_signal_check_is_not_fooled_by_round_off_on_a_wide_net():
    """Tiny error signals of a 64-32-10 net agree to round-off: no false failure."""
    from chainrule.cli import main

    assert main(["check-grad", "mlp_digits"]) == 0
