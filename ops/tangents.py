"""Forward-mode (tangent) rules of the tensor operations, one per operation, referenced
from each entry's ``jvp`` field: ``jvp(e, tangent)`` is the tangent of node ``e`` given
``tangent(a)``, the tangent of an argument (None for zero). The product rule for ``@`` and
``∘``, σ'(z) ∘ ż for an elementwise σ, y ∘ u̇ − (yᵀu̇) y for softmax (its Jacobian is
symmetric, so its JVP is its VJP), u̇ − 1 (yᵀu̇) for log-softmax, reductions summing the
tangent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sympy as sp

from .algebra import hadamard, is_matrix, mat_add, mat_mul, scale

Tangent = Callable[[sp.Basic], sp.Basic | None]
JVP = Callable[[Any, Tangent], sp.Basic | None]


class TangentError(ValueError):
    """An operation has no forward-mode rule (no second order for it)."""


def tangent_sum(terms: list[sp.Basic]) -> sp.Basic | None:
    """Σ of tangent terms (None when there is none)."""
    if not terms:
        return None
    if any(is_matrix(t) for t in terms):
        return mat_add(*terms)
    return sp.Add(*terms)


def product_rule(make: Callable[..., sp.Basic]) -> JVP:
    """d(a·b·…) = ȧ·b·… + a·ḃ·… + … (order kept: matrices do not commute)."""

    def rule(e: Any, tangent: Tangent) -> sp.Basic | None:
        terms = []
        for i, a in enumerate(e.args):
            d = tangent(a)
            if d is not None:
                terms.append(make(*e.args[:i], d, *e.args[i + 1 :]))
        return tangent_sum(terms)

    return rule


def linear(make: Callable[[sp.Basic], sp.Basic]) -> JVP:
    """A linear operation's tangent is the operation of the tangent."""

    def rule(e: Any, tangent: Tangent) -> sp.Basic | None:
        d = tangent(e.args[0])
        return None if d is None else make(d)

    return rule


def add(e: Any, tangent: Tangent) -> sp.Basic | None:
    return tangent_sum([d for d in (tangent(a) for a in e.args) if d is not None])


matmul = product_rule(mat_mul)
hadamard_product = product_rule(hadamard)
transpose = linear(sp.Transpose)


def hadamard_power(e: Any, tangent: Tangent) -> sp.Basic | None:
    base, n = e.args
    d = tangent(base)
    if d is None:
        return None
    inner = base if n == 2 else sp.HadamardPower(base, n - 1)
    return scale(n, hadamard(inner, d))


def elementwise(e: Any, tangent: Tangent) -> sp.Basic | None:
    d = tangent(e.arg)
    return None if d is None else hadamard(type(e)(e.derivative_fn(), e.arg), d)


def broadcast(e: Any, tangent: Tangent) -> sp.Basic | None:
    d = tangent(e.arg)
    return None if d is None else type(e)(d, *e.shape)


def dot(e: Any, tangent: Tangent) -> sp.Basic | None:
    a, b = e.args
    da, db = tangent(a), tangent(b)
    node = type(e)
    return tangent_sum([t for t in (da and node(da, b), db and node(a, db)) if t is not None])


def norm2(inner: type) -> JVP:
    """d‖v‖² = 2 ⟨v, v̇⟩ (``inner`` is the inner-product node)."""

    def rule(e: Any, tangent: Tangent) -> sp.Basic | None:
        d = tangent(e.args[0])
        return None if d is None else 2 * inner(e.args[0], d)

    return rule


def softmax(vjp: Callable[..., sp.Basic]) -> JVP:
    """Softmax's Jacobian is symmetric: its JVP is its VJP."""

    def rule(e: Any, tangent: Tangent) -> sp.Basic | None:
        d = tangent(e.arg)
        return None if d is None else vjp(d, e, 0)

    return rule


def log_softmax(softmax_node: type, inner: type, spread: type) -> JVP:
    """d log_softmax(u) = u̇ − 𝟙 ⟨softmax(u), u̇⟩ (for a column)."""

    def rule(e: Any, tangent: Tangent) -> sp.Basic | None:
        d = tangent(e.arg)
        if d is None:
            return None
        if e.shape[1] != 1:
            raise TangentError("log_softmax of a matrix: no forward-mode rule")
        return mat_add(d, spread(-inner(softmax_node(e.arg), d), *e.shape))

    return rule


def multilinear(values: int | None = None, linear_in: tuple[int, ...] | None = None) -> JVP:
    """d f(a, b, …) = f(ȧ, b, …) + f(a, ḃ, …) + … for a node linear in each of its first
    ``values`` arguments (its settings follow them: a convolution, a pooling, flatten);
    ``linear_in``: only these arguments vary the value (a route is constant in z almost
    everywhere)."""

    def rule(e: Any, tangent: Tangent) -> sp.Basic | None:
        count = values if values is not None else getattr(e, "n_values", len(e.args))
        terms = []
        for i in linear_in if linear_in is not None else range(count):
            d = tangent(e.args[i])
            if d is not None:
                args = list(e.args)
                args[i] = d
                terms.append(e.func(*args))
        return tangent_sum(terms)

    return rule
