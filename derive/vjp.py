"""Vector–Jacobian products: each operation's rule lives in its registry entry
(:mod:`chainrule.ops.tensor`); this module walks an expression and applies them.

A rule receives ``g`` (the cotangent of the operation's output, Ḡ), ``ans`` (the
operation node itself) and ``i`` (which argument), and returns that argument's
cotangent. Jacobians are never built: ``z̄ = h̄ ∘ σ'(z)``, not ``diag(σ'(z)) h̄``.

>>> import sympy as sp
>>> W, x = sp.MatrixSymbol("W", 2, 3), sp.MatrixSymbol("x", 3, 1)
>>> g = sp.MatrixSymbol("z_bar", 2, 1)
>>> vjp(W * x, g, 0), vjp(W * x, g, 1)
(z_bar*x.T, W.T*z_bar)
"""

from __future__ import annotations

import sympy as sp

from ..ops import REGISTRY, operands
from ..ops.registry import VJP
from .rules import partial


def scalar_vjp(g: sp.Basic, ans: sp.Basic, i: int) -> sp.Basic:
    """Scalar algebra (Add, Mul, Pow, functions): ā = g ∂ans/∂a by the local rules."""
    args = ans.args
    if ans.is_Add:
        return g
    if ans.is_Mul:
        return sp.Mul(g, *[a for k, a in enumerate(args) if k != i])
    if ans.is_Pow:
        base, e = args
        return sp.Mul(g, e, base ** (e - 1)) if i == 0 else sp.Mul(g, ans, sp.log(base))
    return sp.Mul(g, partial(ans, i))


def rule_for(e: sp.Basic) -> VJP:
    """The VJP of ``e``'s operation: its entry's, or the scalar chain rule."""
    op = REGISTRY.for_node(e)
    if op is not None and op.vjp is not None:
        return op.vjp
    if isinstance(e, (sp.Add, sp.Mul, sp.Pow, sp.Function)) or (op and op.kind == "scalar"):
        return scalar_vjp
    raise NotImplementedError(f"no vector-Jacobian product for {type(e).__name__}")


def vjp(expr: sp.Basic, g: sp.Basic, i: int) -> sp.Basic:
    """The cotangent of ``expr``'s argument ``i`` given the output cotangent ``g``."""
    return rule_for(expr)(g, expr, i)


def pullback(
    expr: sp.Basic, g: sp.Basic, targets: set[sp.Basic]
) -> list[tuple[sp.Basic, sp.Basic]]:
    """Push ``g`` from the root of ``expr`` down to every occurrence of ``targets``.

    Returns ``(target, cotangent)`` for each occurrence (a name read twice in one line
    gets two entries, which the caller sums: fan-out inside an expression).
    """
    out: list[tuple[sp.Basic, sp.Basic]] = []

    def walk(e: sp.Basic, ge: sp.Basic) -> None:
        if e in targets:
            out.append((e, ge))
            return
        if e.is_Atom or not _contains(e, targets):
            return
        values = operands(e)
        for k, a in enumerate(e.args):
            if a in values and _contains(a, targets):
                walk(a, vjp(e, ge, k))

    walk(expr, g)
    return out


def _contains(e: sp.Basic, targets: set[sp.Basic]) -> bool:
    return e in targets or bool(getattr(e, "free_symbols", set()) & targets)
