"""Rewriting named derivatives and activations: the forms ``--expand`` prints.

>>> from chainrule.ops import REGISTRY
>>> from sympy import Symbol
>>> z = Symbol("z")
>>> expand_derivatives(REGISTRY.by_name("sigma").partial((z,), 0))
(1 - sigma(z))*sigma(z)
"""

from __future__ import annotations

import sympy as sp

from ..ops import REGISTRY, Registry


def expand_derivatives(expr: sp.Expr, registry: Registry = REGISTRY) -> sp.Expr:
    """Rewrite named derivatives by their entries (σ'(z) → σ(z)(1 − σ(z)))."""
    for op in registry:
        if op.expand_derivative is not None:
            expr = expr.replace(op.node, op.expand_derivative)
    return expr


def expand_fully(expr: sp.Expr, registry: Registry = REGISTRY) -> sp.Expr:
    """Rewrite every function that has a calculus-class form (exp, log, Max), named
    derivatives and a model's own functions included, until none is left."""
    for _ in range(20):  # a user function's body may use another one
        before = expr
        expr = expand_derivatives(expr, registry)
        for op in registry:
            if op.expand is not None and op.kind == "scalar":
                expr = expr.replace(op.node, op.expand)
        for f in expr.atoms(sp.Function):  # a model's own functions (child registries)
            own = getattr(type(f), "op", None)
            if own is not None and own.expand is not None and own.extra.get("body") is not None:
                expr = expr.replace(type(f), own.expand)
        if expr == before:
            break
    return expr


def expand_modes(registry: Registry = REGISTRY) -> dict[str, str]:
    """``--expand`` modes besides none and full: a function whose named derivative has
    a closed form (``sigma``: σ'(z) → σ(z)(1 − σ(z)))."""
    return {
        str(op.extra["expand_mode"]): op.doc
        for op in registry
        if op.expand_derivative is not None and "expand_mode" in op.extra
    }
