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

from ..ops import REGISTRY
from ..ops.tangents import TangentError as _OpTangentError
from ..ops.tangents import add as _add_rule
from ..ops.tangents import product_rule, tangent_sum
from ..symbolic.errors import ChainruleError


class TangentError(ChainruleError):
    """An operation has no forward-mode rule (no second order for this model)."""


Tangents = dict[sp.Basic, sp.Basic]


def jvp(e: sp.Basic, dots: Tangents) -> sp.Basic | None:
    """The tangent of ``e`` given the tangents of its symbols (None: zero)."""
    if e in dots:
        return dots[e]
    if e.is_Atom or isinstance(e, sp.MatrixSymbol | sp.OneMatrix | sp.ZeroMatrix | sp.Identity):
        return None  # a leaf without a tangent, or a constant matrix
    op = REGISTRY.for_node(e)
    tangent = lambda a: jvp(a, dots)  # noqa: E731
    try:
        if op is not None and op.jvp is not None:
            return op.jvp(e, tangent)
        for cls in type(e).__mro__:
            rule = RULES.get(cls)
            if rule is not None:
                return rule(e, tangent)
    except _OpTangentError as exc:
        raise TangentError(str(exc)) from None
    if isinstance(e, sp.Function) or (op is not None and op.kind == "scalar"):
        return _scalar_function(e, tangent)
    raise TangentError(f"no forward-mode rule for {type(e).__name__}")


def _pow(e: sp.Basic, tangent: Callable[[sp.Basic], sp.Basic | None]) -> sp.Basic | None:
    base, exp = e.args
    if tangent(exp) is not None:
        raise TangentError("no forward-mode rule for a varying exponent")
    d = tangent(base)
    return None if d is None else exp * base ** (exp - 1) * d


def _scalar_function(
    e: sp.Basic, tangent: Callable[[sp.Basic], sp.Basic | None]
) -> sp.Basic | None:
    terms = []
    for i, a in enumerate(e.args):
        d = tangent(a)
        if d is not None:
            x = sp.Dummy("x")
            local = sp.diff(e.func(*e.args[:i], x, *e.args[i + 1 :]), x).subs(x, a)
            terms.append(local * d)
    return tangent_sum(terms)


#: Scalar algebra; every operation's own rule is in its registry entry (``Op.jvp``).
RULES: dict[type, Callable[[sp.Basic, Callable[[sp.Basic], sp.Basic | None]], sp.Basic | None]] = {
    sp.Add: _add_rule,
    sp.Mul: product_rule(sp.Mul),
    sp.Pow: _pow,
}
