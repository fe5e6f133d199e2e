"""Index notation, one rule per tensor operation: how entry (r, c) of a node is written
with indices (``(AB)_rc = Σ_s A_rs B_sc``). Each rule is its registry entry's
``index_form``; :mod:`chainrule.derive.index_form` calls it with its converter ``conv``,
which turns sub-expressions into entries (``conv(A, r, s)``), makes fresh indices
(``conv.fresh``) and sums over them (``conv.sum``). ``r`` or ``c`` is None where that
size is 1 (a column vector has only a row index).

>>> import sympy as sp
>>> from chainrule.derive.index_form import Converter
>>> W, x = sp.MatrixSymbol("W", 2, sp.Symbol("n")), sp.MatrixSymbol("x", sp.Symbol("n"), 1)
>>> conv = Converter({"n": "j", "2": "i"})
>>> matmul(conv, W * x, conv.fresh(2), None)
Sum(W[i, j]*x[j], (j, 1, n))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sympy as sp

from .algebra import U, is_matrix

Ix = Any  # an index (or None where the size is 1)

#: The lectures' letter inside a softmax sum: y_k = e^{z_k} / Σ_ℓ e^{z_ℓ}.
SOFTMAX_LETTER = "ℓ"


def matmul(conv: Any, e: sp.Basic, r: Ix, c: Ix) -> sp.Basic:
    """(AB)_rc = Σ_s A_rs B_sc (a chain A B C … sums over each inner size)."""
    coeff = conv(sp.Mul(*[a for a in e.args if not is_matrix(a)]))  # scalars in index form too
    mats = [a for a in e.args if is_matrix(a)]

    def chain(k: int, row: Ix) -> sp.Basic:
        a = mats[k]
        if k == len(mats) - 1:
            return conv(a, row, c)
        return conv.sum(lambda s: conv(a, row, s) * chain(k + 1, s), a.shape[1])

    return coeff * chain(0, r)


def transpose(conv: Any, e: sp.Basic, r: Ix, c: Ix) -> sp.Basic:
    """(Aᵀ)_rc = A_cr."""
    return conv(e.arg, c, r)


def matadd(conv: Any, e: sp.Basic, r: Ix, c: Ix) -> sp.Basic:
    """(A + B)_rc = A_rc + B_rc."""
    return sp.Add(*[conv(a, r, c) for a in e.args])


def hadamard(conv: Any, e: sp.Basic, r: Ix, c: Ix) -> sp.Basic:
    """(A ∘ B)_rc = A_rc B_rc."""
    return sp.Mul(*[conv(a, r, c) for a in e.args])


def hadamard_power(conv: Any, e: sp.Basic, r: Ix, c: Ix) -> sp.Basic:
    """(A^∘p)_rc = (A_rc)^p."""
    return conv(e.base, r, c) ** conv(e.exp)


def elementwise(conv: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """φ(A)_rc = φ(A_rc)."""
    return e.fn.expr.xreplace({U: conv(e.arg, r, c)})


def broadcast(conv: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """A column b broadcast over columns is b_r (the column index dropped), a row b_c."""
    a = e.arg
    if not is_matrix(a):
        return conv(a)
    return conv(a, r if a.shape[0] != 1 else None, c if a.shape[1] != 1 else None)


def all_entries(conv: Any, x: sp.Basic, body: Callable[..., sp.Basic]) -> sp.Basic:
    """Σ over every entry of ``x`` of body(r, c)."""
    rows, cols = x.shape
    return conv.sum(lambda r: conv.sum(lambda c: body(r, c), cols), rows)


def matsum(conv: Any, e: sp.Basic, r: Ix, c: Ix) -> sp.Basic:
    """sum(A) = Σ_r Σ_c A_rc."""
    x = e.args[0]
    return all_entries(conv, x, lambda i, j: conv(x, i, j))


def mean(conv: Any, e: sp.Basic, r: Ix, c: Ix) -> sp.Basic:
    """mean(A) = Σ_r Σ_c A_rc / (rows · cols)."""
    x = e.args[0]
    return matsum(conv, e, r, c) / (x.shape[0] * x.shape[1])


def dot(conv: Any, e: sp.Basic, r: Ix, c: Ix) -> sp.Basic:
    """uᵀv = Σ_r u_r v_r (Frobenius for matrices)."""
    u, v = e.args
    return all_entries(conv, u, lambda i, j: conv(u, i, j) * conv(v, i, j))


def norm2(conv: Any, e: sp.Basic, r: Ix, c: Ix) -> sp.Basic:
    """‖v‖² = Σ_r v_r²."""
    x = e.args[0]
    return all_entries(conv, x, lambda i, j: conv(x, i, j) ** 2)


def softmax_sum(conv: Any, z: sp.Basic, c: Ix) -> sp.Basic:
    """Σ_ℓ e^{z_ℓc}, the softmax denominator."""
    return conv.sum(lambda s: sp.exp(conv(z, s, c)), z.shape[0], SOFTMAX_LETTER)


def softmax(conv: Any, e: sp.Basic, r: Ix, c: Ix) -> sp.Basic:
    """softmax(z)_k = e^{z_k} / Σ_ℓ e^{z_ℓ}."""
    return sp.exp(conv(e.arg, r, c)) / softmax_sum(conv, e.arg, c)


def log_softmax(conv: Any, e: sp.Basic, r: Ix, c: Ix) -> sp.Basic:
    """log_softmax(z)_k = z_k − log Σ_ℓ e^{z_ℓ}."""
    return conv(e.arg, r, c) - sp.log(softmax_sum(conv, e.arg, c))


def sum_cols(conv: Any, e: sp.Basic, r: Ix, c: Ix) -> sp.Basic:
    """(A𝟙)_r = Σ_c A_rc."""
    return conv.sum(lambda s: conv(e.arg, r, s), e.arg.shape[1])


def sum_rows(conv: Any, e: sp.Basic, r: Ix, c: Ix) -> sp.Basic:
    """(𝟙ᵀA)_c = Σ_r A_rc."""
    return conv.sum(lambda s: conv(e.arg, s, c), e.arg.shape[0])


def diag(conv: Any, e: sp.Basic, r: Ix, c: Ix) -> sp.Basic:
    """diag(v)_rc = δ_rc v_r."""
    return sp.KroneckerDelta(r, c) * conv(e.arg, r, None)
