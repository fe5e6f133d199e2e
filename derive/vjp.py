"""Vector–Jacobian products: one declarative line per operation (as HIPS autograd's
``numpy_vjps.py``).

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

from collections.abc import Callable

import sympy as sp

from ..symbolic.matrix_ops import (
    Broadcast,
    Dot,
    Elementwise,
    LogSoftmax,
    MatSum,
    Mean,
    Norm2,
    Softmax,
    SumCols,
    SumRows,
    is_matrix,
    mat_add,
    mat_mul,
    scale,
    scale_of_ones,
    split_scalar,
)
from .rules import partial

VJP = Callable[[sp.Basic, sp.Basic, int], sp.Basic]


# ----------------------------------------------------------------------- helpers
def ones_like(x: sp.Basic) -> sp.Basic:
    return sp.OneMatrix(*x.shape)


def hadamard(*factors: sp.Basic) -> sp.Basic:
    """A ∘ B ∘ …, with scalar factors (and 𝟙) pulled out as one coefficient."""
    coeff: sp.Basic = sp.S.One
    rest = []
    for f in factors:
        c, body = split_scalar(f)
        coeff *= c
        if isinstance(body, sp.HadamardProduct):
            rest.extend(body.args)
        elif body is not None:
            rest.append(body)
    if not rest:
        return scale(coeff, factors[0])
    return scale(coeff, rest[0] if len(rest) == 1 else sp.HadamardProduct(*rest))


def matmul(*factors: sp.Basic) -> sp.Basic:
    """A product of matrices (argument order kept), empty products dropped."""
    return mat_mul(*factors) if factors else sp.S.One


def unbroadcast(g: sp.Basic, arg: sp.Basic) -> sp.Basic:
    """Sum ``g`` over the axes along which ``arg`` was broadcast."""
    if not is_matrix(arg):
        c = scale_of_ones(g)
        return c * arg_size(g) if c is not None else MatSum(g)
    rows, cols = arg.shape
    if rows == 1 and cols == 1:
        return SumRows(SumCols(g))
    if cols == 1 and g.shape[1] != 1:
        return SumCols(g)
    if rows == 1 and g.shape[0] != 1:
        return SumRows(g)
    return g


def arg_size(x: sp.Basic) -> sp.Expr:
    return x.shape[0] * x.shape[1]


def spread(g: sp.Basic, x: sp.Basic) -> sp.Basic:
    """The cotangent of a scalar reduction spread back to ``x``'s shape: g·𝟙."""
    return scale(g, ones_like(x))


def column_scale(s: sp.Basic, like: sp.Basic) -> sp.Basic:
    """A per-column scalar row ``s`` (1, B) stretched to ``like``'s shape."""
    return Broadcast(s, *like.shape)


# --------------------------------------------------------------- n-ary operations
def matmul_vjp(g: sp.Basic, ans: sp.Basic, i: int) -> sp.Basic:
    """Ā = Ḡ Bᵀ, B̄ = Aᵀ Ḡ (extended to chains); a scalar factor s gets ⟨Ḡ, ans/s⟩."""
    args = ans.args
    scalars = [a for a in args if not is_matrix(a)]
    mats = [a for a in args if is_matrix(a)]
    if not is_matrix(args[i]):
        others = [a for k, a in enumerate(args) if k != i and not is_matrix(a)]
        return Dot(g, matmul(*others, *mats)) if others else Dot(g, matmul(*mats))
    k = mats.index(args[i]) if mats.count(args[i]) == 1 else _position(args, i)
    left = [m.T for m in reversed(mats[:k])]
    right = [m.T for m in reversed(mats[k + 1 :])]
    return scale(sp.Mul(*scalars), matmul(*left, g, *right))


def _position(args: tuple[sp.Basic, ...], i: int) -> int:
    return sum(1 for a in args[:i] if is_matrix(a))


def hadamard_vjp(g: sp.Basic, ans: sp.Basic, i: int) -> sp.Basic:
    return hadamard(g, *[a for k, a in enumerate(ans.args) if k != i])


def hadamard_power_vjp(g: sp.Basic, ans: sp.Basic, i: int) -> sp.Basic:
    x, p = ans.args
    if i == 1:
        raise NotImplementedError("the exponent of an elementwise power is a number")
    factor = x if p == 2 else sp.HadamardPower(x, p - 1)
    return scale(p, hadamard(g, factor))


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


def softmax_vjp(g: sp.Basic, ans: sp.Basic, i: int) -> sp.Basic:
    """z̄ = y ∘ ȳ − (yᵀȳ) y for a column (per column for matrices)."""
    if ans.shape[1] == 1:
        return mat_add(hadamard(ans, g), scale(-Dot(ans, g), ans))
    return mat_add(
        hadamard(ans, g), scale(-1, hadamard(ans, column_scale(SumRows(hadamard(ans, g)), ans)))
    )


def log_softmax_vjp(g: sp.Basic, ans: sp.Basic, i: int) -> sp.Basic:
    """z̄ = ḡ − softmax(z) Σᵢ ḡᵢ (per column)."""
    y = Softmax(ans.arg)
    if ans.shape[1] == 1:
        return mat_add(g, scale(-MatSum(g), y))
    return mat_add(g, scale(-1, hadamard(y, column_scale(SumRows(g), y))))


# ------------------------------------------------------------------- the registry
def elementwise_vjp(g: sp.Basic, ans: sp.Basic, i: int) -> sp.Basic:
    """z̄ = h̄ ∘ φ'(z): the diagonal Jacobian is never built."""
    return hadamard(g, Elementwise(ans.derivative_fn(), ans.arg))


#: operation → its VJP, one line each (``g``: output cotangent Ḡ, ``ans``: the node).
# fmt: off
VJPS: dict[type, VJP] = {
    sp.MatMul:          matmul_vjp,                                   # Ā += Ḡ Bᵀ, B̄ += Aᵀ Ḡ
    sp.MatAdd:          lambda g, ans, i: g,                          # each addend gets Ḡ
    Broadcast:          lambda g, ans, i: unbroadcast(g, ans.arg),    # bias: Σ over the batch
    sp.Transpose:       lambda g, ans, i: g.T,                        # Ā = Ḡᵀ
    sp.HadamardProduct: hadamard_vjp,                                 # Ā = Ḡ ∘ B
    sp.HadamardPower:   hadamard_power_vjp,                           # Ā = Ḡ ∘ p A^(p−1)
    Elementwise:        elementwise_vjp,                              # z̄ = h̄ ∘ φ'(z)
    MatSum:             lambda g, ans, i: spread(g, ans.args[0]),     # x̄ = ḡ 𝟙
    Mean:               lambda g, ans, i: spread(g / arg_size(ans.args[0]), ans.args[0]),
    Dot:                lambda g, ans, i: scale(g, ans.args[1 - i]),  # ū = ḡ v, v̄ = ḡ u
    Norm2:              lambda g, ans, i: scale(2 * g, ans.args[0]),  # v̄ = 2 ḡ v
    Softmax:            softmax_vjp,                                  # z̄ = y∘ȳ − (yᵀȳ) y
    LogSoftmax:         log_softmax_vjp,                              # z̄ = ḡ − softmax(z) Σḡ
    SumCols:            lambda g, ans, i: Broadcast(g, *ans.arg.shape),  # undo a reduction
    SumRows:            lambda g, ans, i: Broadcast(g, *ans.arg.shape),
    sp.Add:             scalar_vjp,                                   # scalar algebra …
    sp.Mul:             scalar_vjp,
    sp.Pow:             scalar_vjp,
    sp.Function:        scalar_vjp,                                   # σ, tanh, log of scalars
    sp.Max:             scalar_vjp,
    sp.Min:             scalar_vjp,
}
# fmt: on


def rule_for(e: sp.Basic) -> VJP:
    for cls in type(e).__mro__:
        rule = VJPS.get(cls)
        if rule is not None:
            return rule
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
        if isinstance(e, Elementwise):
            walk(e.arg, vjp(e, ge, 1))
            return
        for k, a in enumerate(e.args):
            if _contains(a, targets):
                walk(a, vjp(e, ge, k))

    walk(expr, g)
    return out


def _contains(e: sp.Basic, targets: set[sp.Basic]) -> bool:
    return e in targets or bool(getattr(e, "free_symbols", set()) & targets)
