"""Tangent rules for vector programs: forward mode over the vector backprop program.

The same idea as for scalar programs (:mod:`chainrule.derive.second_order`): every
line ``u = f(a, …)`` of the forward and backward passes gets a tangent line
``u_dot = J_f(a, …)·(a_dot, …)``, now with matrix rules — the product rule for ``@`` and
``∘``, σ'(z) ∘ ż for an elementwise σ, y ∘ u̇ − (yᵀu̇) y for softmax (its Jacobian is
symmetric, so its JVP is its VJP), u̇ − 1 (yᵀu̇) for log-softmax, the reductions
summing the tangent. The tangent of a gradient is (H v)_p.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp

from ..ops import Elementwise
from ..ops.algebra import hadamard, is_matrix, mat_add, mat_mul, scale
from ..ops.tensor import (
    Broadcast,
    Dot,
    LogSoftmax,
    MatSum,
    Mean,
    Norm2,
    Softmax,
    SumRows,
    _softmax_vjp,
)
from ..symbolic.errors import ChainruleError


class TangentError(ChainruleError):
    """An operation has no forward-mode rule (no second order for this model)."""


Tangents = dict[sp.Basic, sp.Basic]


def jvp(e: sp.Basic, dots: Tangents) -> sp.Basic | None:
    """The tangent of ``e`` given the tangents of its symbols (None: zero)."""
    if e in dots:
        return dots[e]
    if e.is_Atom or isinstance(e, sp.MatrixSymbol):
        return None
    for cls in type(e).__mro__:
        rule = RULES.get(cls)
        if rule is not None:
            return rule(e, dots)
    if isinstance(e, sp.Function) and not is_matrix(e):
        return _scalar_function(e, dots)
    raise TangentError(f"no forward-mode rule for {type(e).__name__}")


def _sum(terms: list[sp.Basic]) -> sp.Basic | None:
    if not terms:
        return None
    if any(is_matrix(t) for t in terms):
        return mat_add(*terms)
    return sp.Add(*terms)


def _product_rule(make: Callable[..., sp.Basic]) -> Callable[[sp.Basic, Tangents], sp.Basic | None]:
    def rule(e: sp.Basic, dots: Tangents) -> sp.Basic | None:
        terms = []
        for i, a in enumerate(e.args):
            d = jvp(a, dots)
            if d is not None:
                terms.append(make(*e.args[:i], d, *e.args[i + 1 :]))
        return _sum(terms)

    return rule


def _add(e: sp.Basic, dots: Tangents) -> sp.Basic | None:
    return _sum([d for d in (jvp(a, dots) for a in e.args) if d is not None])


def _pow(e: sp.Basic, dots: Tangents) -> sp.Basic | None:
    base, exp = e.args
    if exp.free_symbols & set(dots):
        raise TangentError("no forward-mode rule for a varying exponent")
    d = jvp(base, dots)
    return None if d is None else exp * base ** (exp - 1) * d


def _hadamard_power(e: sp.Basic, dots: Tangents) -> sp.Basic | None:
    base, n = e.args
    d = jvp(base, dots)
    if d is None:
        return None
    inner = base if n == 2 else sp.HadamardPower(base, n - 1)
    return scale(n, hadamard(inner, d))


def _scalar_function(e: sp.Basic, dots: Tangents) -> sp.Basic | None:
    terms = []
    for i, a in enumerate(e.args):
        d = jvp(a, dots)
        if d is not None:
            x = sp.Dummy("x")
            local = sp.diff(e.func(*e.args[:i], x, *e.args[i + 1 :]), x).subs(x, a)
            terms.append(local * d)
    return _sum(terms)


def _elementwise(e: Elementwise, dots: Tangents) -> sp.Basic | None:
    d = jvp(e.arg, dots)
    return None if d is None else hadamard(Elementwise(e.derivative_fn(), e.arg), d)


def _unary(make: Callable[[sp.Basic], sp.Basic]) -> Callable[[sp.Basic, Tangents], sp.Basic | None]:
    def rule(e: sp.Basic, dots: Tangents) -> sp.Basic | None:
        d = jvp(e.args[0], dots)
        return None if d is None else make(d)

    return rule


def _dot(e: sp.Basic, dots: Tangents) -> sp.Basic | None:
    a, b = e.args
    da, db = jvp(a, dots), jvp(b, dots)
    return _sum([t for t in (da and Dot(da, b), db and Dot(a, db)) if t is not None])


def _norm2(e: sp.Basic, dots: Tangents) -> sp.Basic | None:
    d = jvp(e.args[0], dots)
    return None if d is None else 2 * Dot(e.args[0], d)


def _softmax(e: Softmax, dots: Tangents) -> sp.Basic | None:
    d = jvp(e.arg, dots)
    return None if d is None else _softmax_vjp(d, e, 0)  # symmetric Jacobian


def _log_softmax(e: LogSoftmax, dots: Tangents) -> sp.Basic | None:
    d = jvp(e.arg, dots)
    if d is None:
        return None
    if e.shape[1] != 1:
        raise TangentError("log_softmax of a matrix: no forward-mode rule")
    return mat_add(d, Broadcast(-Dot(Softmax(e.arg), d), *e.shape))


RULES: dict[type, Callable[[sp.Basic, Tangents], sp.Basic | None]] = {
    sp.MatAdd: _add,
    sp.Add: _add,
    sp.MatMul: _product_rule(mat_mul),
    sp.Mul: _product_rule(sp.Mul),
    sp.HadamardProduct: _product_rule(hadamard),
    sp.HadamardPower: _hadamard_power,
    sp.Pow: _pow,
    sp.Transpose: _unary(sp.Transpose),
    Elementwise: _elementwise,
    MatSum: _unary(MatSum),
    Mean: _unary(Mean),
    SumRows: _unary(SumRows),
    Norm2: lambda e, dots: _norm2(e, dots),
    Dot: _dot,
    Softmax: _softmax,
    LogSoftmax: _log_softmax,
    Broadcast: lambda e, dots: None if (d := jvp(e.arg, dots)) is None else Broadcast(d, *e.shape),
}
