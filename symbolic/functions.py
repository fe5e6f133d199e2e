"""Transitional re-exports (being removed): the functions live in :mod:`chainrule.ops`."""

from __future__ import annotations

import sympy as sp

from ..ops import REGISTRY
from ..ops.scalar import (  # noqa: F401
    elu,
    elu_prime,
    leaky_relu,
    leaky_relu_prime,
    relu,
    sigma,
    sigma_prime,
    softplus,
    step,
)

FUNCTIONS: dict[str, tuple[object, tuple[int, ...]]] = {
    name: (op.build or op.node, op.arity) for name, op in REGISTRY.spellings("scalar").items()
}
DEFAULT_SECOND_ARG = {
    name: op.defaults[0] for name, op in REGISTRY.spellings("scalar").items() if op.defaults
}
NON_SMOOTH = (*REGISTRY.non_smooth(), sp.Heaviside, sp.Piecewise)


def expand_derivatives(expr: sp.Expr) -> sp.Expr:
    """Rewrite named derivatives (σ'(z) → σ(z)(1 − σ(z)))."""
    for op in REGISTRY:
        if op.expand_derivative is not None:
            expr = expr.replace(op.node, op.expand_derivative)
    return expr


def expand_fully(expr: sp.Expr) -> sp.Expr:
    """Rewrite every activation in terms of exp/log/Max (the calculus-class form)."""
    expr = expand_derivatives(expr)
    for op in REGISTRY:
        if op.expand is not None and op.expand_derivative is None and op.kind == "scalar":
            expr = expr.replace(op.node, op.expand)
    return expr
