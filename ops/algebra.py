"""Matrix algebra that keeps the lectures' order: builders every part uses.

``A*B`` and ``A + B`` on SymPy matrix expressions run a deep ``doit`` that reorders the
factors of Hadamard products (h̄ ∘ σ'(z) would print as σ'(z) ∘ h̄); these builders keep
the order as written and never distribute a number over a sum. Vectors are columns
``(n, 1)``; reductions return scalars.

>>> import sympy as sp
>>> W, x = sp.MatrixSymbol("W", 2, 3), sp.MatrixSymbol("x", 3, 1)
>>> mat_mul(2, W, x)
2*W*x
"""

from __future__ import annotations

from typing import Any

import sympy as sp

#: The bound variable of every elementwise function (one fixed symbol, so two
#: elementwise nodes built separately compare equal).
U = sp.Dummy("u", real=True)


class Verbatim(sp.Symbol):
    """A symbol that prints as its name in every printer (used to print φ(arg))."""

    def _sympystr(self, printer: Any) -> str:
        return self.name

    def _latex(self, printer: Any) -> str:
        return self.name

    def _lecture_unicode(self, printer: Any) -> str:
        return self.name

    def _lecture_latex(self, printer: Any) -> str:
        return self.name

    def _numpycode(self, printer: Any) -> str:
        return self.name


def is_matrix(e: sp.Basic) -> bool:
    return bool(getattr(e, "is_Matrix", False))


def mat_mul(*factors: sp.Basic) -> sp.Basic:
    """A·B·… flattened, scalar factors collected in front, matrix order kept."""
    coeff: sp.Basic = sp.S.One
    mats: list[sp.Basic] = []
    for f in factors:
        for a in f.args if isinstance(f, sp.MatMul) else (f,):
            if is_matrix(a):
                mats.append(a)
            else:
                coeff = coeff * a
    if not mats:
        return coeff
    if coeff == 1:
        return mats[0] if len(mats) == 1 else sp.MatMul(*mats)
    return sp.MatMul(coeff, *mats)


def mat_add(*terms: sp.Basic) -> sp.Basic:
    """A + B + … flattened, like terms collected (``c₁M + c₂M = (c₁ + c₂)M``), in
    SymPy's canonical order; nothing inside the terms is rewritten."""
    flat: list[sp.Basic] = []
    for t in terms:
        flat.extend(t.args if isinstance(t, sp.MatAdd) else (t,))
    coeffs: dict[sp.Basic, sp.Basic] = {}
    kept: list[sp.Basic] = []  # broadcast scalars and c·𝟙 stay as written
    for t in flat:
        if isinstance(t, sp.ZeroMatrix):
            continue
        c, body = split_scalar(t)
        if body is None:
            kept.append(t)
        else:
            coeffs[body] = coeffs.get(body, sp.S.Zero) + c
    out = [scale(c, body) for body, c in coeffs.items() if c != 0] + kept
    if not out:
        return sp.ZeroMatrix(*terms[0].shape)
    if len(out) == 1:
        return out[0]
    return sp.MatAdd(*sorted(out, key=sp.default_sort_key))


def scale_of_ones(g: sp.Basic) -> sp.Basic | None:
    """``c`` when ``g`` is ``c·𝟙`` (the cotangent of a sum), else None."""
    if isinstance(g, sp.OneMatrix):
        return sp.S.One
    if isinstance(g, sp.MatMul):
        mats = [a for a in g.args if is_matrix(a)]
        if len(mats) == 1 and isinstance(mats[0], sp.OneMatrix):
            return sp.Mul(*[a for a in g.args if not is_matrix(a)])
    spread = getattr(g, "spread_scalar", None)  # a scalar broadcast to a matrix
    if spread is not None:
        return spread()
    return None


def split_scalar(m: sp.Basic) -> tuple[sp.Basic, sp.Basic | None]:
    """(c, M) with ``m = c·M`` and no scalar factor left in M (M is None for c·𝟙)."""
    ones = scale_of_ones(m)
    if ones is not None:
        return ones, None
    if isinstance(m, sp.MatMul):
        scalars = [a for a in m.args if not is_matrix(a)]
        mats = [a for a in m.args if is_matrix(a)]
        return sp.Mul(*scalars), mats[0] if len(mats) == 1 else sp.MatMul(*mats)
    return sp.S.One, m


def scale(c: sp.Basic, m: sp.Basic) -> sp.Basic:
    """c·M without distributing a number over a sum (``2*(y - t)``, not ``2*y - 2*t``)."""
    c0, body = split_scalar(m)
    c = c * c0
    if c == 0:
        return sp.ZeroMatrix(*m.shape)
    if body is None:
        return sp.MatMul(c, sp.OneMatrix(*m.shape)) if c != 1 else sp.OneMatrix(*m.shape)
    if c == 1:
        return body
    if isinstance(body, sp.MatMul):
        return sp.MatMul(c, *body.args)
    return sp.MatMul(c, body)


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


def ones_like(x: sp.Basic) -> sp.Basic:
    return sp.OneMatrix(*x.shape)


def arg_size(x: sp.Basic) -> sp.Expr:
    return x.shape[0] * x.shape[1]


def spread(g: sp.Basic, x: sp.Basic) -> sp.Basic:
    """The cotangent of a scalar reduction spread back to ``x``'s shape: g·𝟙."""
    return scale(g, ones_like(x))


def canonical(e: sp.Basic) -> sp.Basic:
    """Matrix sums and products rebuilt flat and ordered (``1*(A + (B - C))`` → ``A + B - C``)."""
    if not is_matrix(e) or not e.args:
        return e
    args = [canonical(a) for a in e.args]
    if isinstance(e, sp.MatMul):
        return mat_mul(*args)
    if isinstance(e, sp.MatAdd):
        return mat_add(*args)
    if isinstance(e, sp.MatrixSymbol):
        return e
    return e.func(*args)
