"""Operation counts of index-form lines as formulas in the sizes.

The scalar cost model of :mod:`.opcount`, read off the index form without expanding
it: an n-term sum costs n − 1 additions (subtractions count as additions), an
f-factor product f − 1 multiplications (a number other than ±1 one more, a reciprocal
one division, counted with the multiplications), ``x^p`` for an integer p ≥ 2 p − 1
multiplications, every function one call, and ``Σ_j body`` over j = 1…n costs
n × body + (n − 1) additions. A line costs its right-hand side once per value of its
free indices. The naive route shares nothing, so each ∂L/∂θ_ij is counted with every
forward value substituted, once per entry of θ.

>>> from chainrule.symbolic import parse_program
>>> from chainrule.derive.index_form import index_derivation
>>> p = parse_program("param W[m, n]\\ninput x[n]\\nL = sum(W @ x)\\nloss L")
>>> c = index_costs(index_derivation(p))
>>> c.forward.multiplications, c.forward.additions
(m*n, m*n - 1)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from .index_form import EntryDerivative, Index, IndexDerivation, IndexLine


@dataclass(frozen=True)
class Ops:
    """Multiplications (and divisions), additions, function calls: polynomials in sizes."""

    multiplications: sp.Expr = sp.S.Zero
    additions: sp.Expr = sp.S.Zero
    calls: sp.Expr = sp.S.Zero

    def __add__(self, other: Ops) -> Ops:
        return Ops(
            sp.expand(self.multiplications + other.multiplications),
            sp.expand(self.additions + other.additions),
            sp.expand(self.calls + other.calls),
        )

    def times(self, n: sp.Expr) -> Ops:
        return Ops(
            sp.expand(n * self.multiplications),
            sp.expand(n * self.additions),
            sp.expand(n * self.calls),
        )

    @property
    def total(self) -> sp.Expr:
        return sp.expand(self.multiplications + self.additions + self.calls)

    def at(self, sizes: dict[str, int]) -> int:
        subs = {s: sizes[s.name] for s in self.total.free_symbols if s.name in sizes}
        value = self.total.xreplace(subs)
        return int(value) if value.is_Integer else -1


def count(e: sp.Basic) -> Ops:
    """Ops of one indexed expression (see the module doc)."""
    if e.is_Number or isinstance(e, (sp.Symbol, sp.Indexed, sp.KroneckerDelta, Index)):
        return Ops()
    if isinstance(e, EntryDerivative):
        return Ops()
    counted_as = getattr(e, "counted_as", None)  # a max over a range counts as a sum
    if counted_as is not None:
        return count(counted_as())
    if isinstance(e, sp.Add):
        return _children(e) + Ops(additions=sp.Integer(len(e.args) - 1))
    if isinstance(e, sp.Mul):
        coeff, factors = e.as_coeff_mul()
        extra = 0 if abs(coeff) == 1 else 1
        return _children(e) + Ops(multiplications=sp.Integer(len(factors) - 1 + extra))
    if isinstance(e, sp.Pow):
        p = e.exp
        inner = count(e.base)
        if p.is_Integer and int(p) >= 2:
            return inner + Ops(multiplications=sp.Integer(int(p) - 1))
        if p.is_Integer and int(p) < 0:
            return inner + Ops(multiplications=sp.Integer(-int(p)))
        return inner + count(p) + Ops(calls=sp.S.One)
    if isinstance(e, sp.Sum):
        (_, lo, hi), *more = e.limits
        body = sp.Sum(e.function, *more) if more else e.function
        n = hi - lo + 1
        return count(body).times(n) + Ops(additions=n - 1)
    if isinstance(e, sp.Function):
        return _children(e) + Ops(calls=sp.S.One)
    return _children(e)


def _children(e: sp.Basic) -> Ops:
    out = Ops()
    for a in e.args:
        out = out + count(a)
    return out


def _entries(line_shape: tuple) -> sp.Expr:
    n: sp.Expr = sp.S.One
    for d in line_shape:
        n *= d
    return n


def line_cost(line: IndexLine) -> Ops:
    shape = line.matrix_lhs.shape if getattr(line.matrix_lhs, "is_Matrix", False) else ()
    return count(line.rhs).times(_entries(shape))


@dataclass
class IndexCosts:
    """Forward, backward and naive op counts as formulas, evaluated where sizes are known."""

    forward: Ops
    backward: Ops
    naive: Ops
    sizes: dict[str, int] = field(default_factory=dict)
    naive_complete: bool = True

    def rows(self) -> list[tuple[str, Ops]]:
        rows = [("forward", self.forward)]
        if self.backward.total != 0:
            rows.append(("backprop (forward + backward)", self.forward + self.backward))
        if self.naive.total != 0:
            rows.append(("naive (no sharing, every entry)", self.naive))
        return rows

    def naive_growth(self) -> tuple[sp.Expr, int] | None:
        """The naive count's leading monomial and its degree (k·m²·n², 5)."""
        if not self.naive.total.free_symbols:
            return None
        poly = sp.Poly(self.naive.total, *sorted(self.naive.total.free_symbols, key=str))
        top = max(poly.monoms(), key=sum)
        return sp.Mul(*[s**k for s, k in zip(poly.gens, top, strict=True)]), sum(top)

    def backprop_leading(self) -> sp.Expr:
        return _leading(self.forward + self.backward)

    def as_json(self) -> dict[str, Any]:
        return {
            name.split(" ")[0]: {
                "multiplications": str(ops.multiplications),
                "additions": str(ops.additions),
                "calls": str(ops.calls),
                "total": str(ops.total),
                **({"at_sizes": ops.at(self.sizes)} if self.sizes else {}),
            }
            for name, ops in self.rows()
        } | {"sizes": self.sizes}


def _leading(ops: Ops) -> sp.Expr:
    t = ops.total
    if not t.free_symbols:
        return t
    poly = sp.Poly(t, *sorted(t.free_symbols, key=str))
    deg = max(sum(m) for m in poly.monoms())
    return sp.Add(
        *[
            c * sp.Mul(*[s**k for s, k in zip(poly.gens, m, strict=True)])
            for m, c in zip(poly.monoms(), poly.coeffs(), strict=True)
            if sum(m) == deg
        ]
    )


def _substitute_forward(e: sp.Basic, d: IndexDerivation) -> sp.Basic:
    """Every node entry replaced by its forward index expression (for counting only)."""
    lines = {line.name: line for line in d.forward}

    def sub(x: sp.Basic) -> sp.Basic:
        if isinstance(x, sp.Indexed) and str(x.base) in lines:
            line = lines[str(x.base)]
            return sub(line.rhs.xreplace(dict(zip(line.free, x.indices, strict=True))))
        if isinstance(x, sp.Symbol) and not isinstance(x, Index) and x.name in lines:
            return sub(lines[x.name].rhs)
        if x.args and not isinstance(x, (sp.Indexed, sp.Symbol)):
            return x.func(*[sub(a) for a in x.args])
        return x

    return sub(e)


def index_costs(d: IndexDerivation, sizes: dict[str, int] | None = None) -> IndexCosts:
    """Op-count formulas of the three routes (``sizes`` evaluates them; bound sizes count)."""
    forward = Ops()
    for line in d.forward:
        forward = forward + line_cost(line)
    backward = Ops()
    for line in d.backprop:
        backward = backward + line_cost(line)
    naive = Ops()
    for g in d.naive:
        shape = d.program.symbol(g.param)
        entries = _entries(shape.shape) if getattr(shape, "is_Matrix", False) else sp.S.One
        naive = naive + count(_substitute_forward(g.result, d)).times(entries)
    known = dict(d.program.sizes) | dict(sizes or {})
    names = {str(s) for ops in (forward, backward, naive) for s in ops.total.free_symbols}
    shown = {k: v for k, v in known.items() if k in names} if names <= set(known) else {}
    complete = not d.naive_requested or len(d.naive) == len(d.program.params)
    return IndexCosts(forward, backward, naive, shown, complete)
