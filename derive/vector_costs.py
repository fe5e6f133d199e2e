"""Operation counts of vector programs, from shapes.

Two measures:

* **multiply–adds** (the lectures' unit): a matrix product ``(a, b) @ (b, d)`` costs
  ``a·b·d``; a dot product or ‖v‖² of ``n`` entries costs ``n``. Kept symbolic in the
  sizes (``m*n + k*m``) and evaluated at concrete sizes. For an MLP the forward pass
  costs one multiply–add per weight and the backward pass two (``W̄ = z̄ xᵀ`` and
  ``h̄ = Wᵀ z̄``), except that the first layer's input gradient is not needed.
* **scalar ops** under the scalar cost model of :mod:`.opcount` (a product of
  ``(a, b) @ (b, d)`` is ``a·b·d`` multiplications and ``a·(b−1)·d`` additions, an
  elementwise op one op per entry, …), comparable with the naive route's counts.

>>> from chainrule.symbolic import parse_program
>>> from chainrule.derive.vector import vector_backprop
>>> p = parse_program("param W[m, n]\\ninput x[n]\\nL = sum(W @ x)\\nloss L")
>>> c = vector_costs(p, vector_backprop(p), {"m": 3, "n": 2})
>>> c.forward_macs, c.backward_macs, c.forward_macs_at, c.backward_macs_at
(m*n, m*n, 6, 6)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
)
from ..symbolic.program import Program
from .opcount import ZERO, CostRow, OpCount, _own_cost, count_after_cse, count_many, count_ops
from .records import BackpropDerivation, NaiveDerivation
from .vector import concrete_sizes, size_symbols, unbound_sizes

#: Above this many tree ops, ``sympy.cse`` is skipped (as for scalar programs).
CSE_LIMIT = 200_000


@dataclass(frozen=True)
class Cost:
    """Ops of one expression: scalar ops at concrete sizes, and symbolic multiply–adds."""

    ops: OpCount = ZERO
    macs: sp.Expr = sp.S.Zero

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.ops + other.ops, self.macs + other.macs)


class Counter:
    """Counts an expression tree by shapes (``sizes`` maps size symbols to numbers)."""

    def __init__(self, sizes: dict[sp.Basic, int]) -> None:
        self.sizes = sizes

    def n(self, d: sp.Expr) -> int:
        return int(sp.sympify(d).xreplace(self.sizes))

    def rc(self, e: sp.Basic) -> tuple[int, int]:
        return self.n(e.shape[0]), self.n(e.shape[1])

    def __call__(self, e: sp.Basic) -> Cost:
        if e.is_Atom or isinstance(e, sp.MatrixSymbol):
            return Cost()
        own = Cost()
        for cls in type(e).__mro__:
            rule = COUNTS.get(cls)
            if rule is not None:
                own = rule(self, e)
                break
        children = [
            a
            for a in e.args
            if not isinstance(e, (Broadcast, Elementwise))
            or a is e.args[0 if isinstance(e, Broadcast) else 1]
        ]
        total = own
        for a in children:
            total = total + self(a)
        return total


def _matmul(c: Counter, e: sp.MatMul) -> Cost:
    mats = [a for a in e.args if is_matrix(a)]
    scalars = [a for a in e.args if not is_matrix(a) and a != -1]
    ops, macs = ZERO, sp.S.Zero
    rows, inner = mats[0].shape
    for m in mats[1:]:
        a, b, d = c.n(rows), c.n(inner), c.n(m.shape[1])
        ops = ops + OpCount(adds=a * (b - 1) * d, muls=a * b * d)
        macs += rows * inner * m.shape[1]
        inner = m.shape[1]
    if scalars:
        r, k = c.rc(e)
        ops = ops + OpCount(muls=r * k + len(scalars) - 1)
    return Cost(ops, macs)


def _entries(c: Counter, e: sp.Basic) -> int:
    r, k = c.rc(e)
    return r * k


def _per_entry(ops: OpCount, n: int) -> OpCount:
    return OpCount(ops.adds * n, ops.muls * n, ops.divs * n, ops.calls * n)


def _elementwise(c: Counter, e: Elementwise) -> Cost:
    per = count_ops(e.fn.expr)
    per = per if per.total else OpCount(calls=1)
    return Cost(_per_entry(per, _entries(c, e)))


def _power(c: Counter, e: sp.HadamardPower) -> Cost:
    p, n = e.args[1], _entries(c, e)
    if p.is_Integer and p >= 2:
        return Cost(OpCount(muls=(int(p) - 1) * n))
    if p.is_Integer and p < 0:
        return Cost(OpCount(muls=(abs(int(p)) - 1) * n, divs=n))
    return Cost(OpCount(calls=n))


def _inner(c: Counter, e: sp.Basic) -> Cost:
    x = e.args[0]
    n = _entries(c, x)
    return Cost(OpCount(adds=n - 1, muls=n), x.shape[0] * x.shape[1])


def _softmax(c: Counter, e: sp.Basic, log: bool) -> Cost:
    r, k = c.rc(e)
    if log:
        return Cost(OpCount(adds=(r - 1) * k + r * k, calls=r * k + k))
    return Cost(OpCount(adds=(r - 1) * k, divs=r * k, calls=r * k))


#: node type → its own cost (children are added by the counter).
# fmt: off
COUNTS: dict[type, Callable[[Counter, Any], Cost]] = {
    sp.MatMul:          _matmul,
    sp.MatAdd:          lambda c, e: Cost(OpCount(adds=(len(e.args) - 1) * _entries(c, e))),
    sp.HadamardProduct: lambda c, e: Cost(OpCount(muls=(len(e.args) - 1) * _entries(c, e))),
    sp.HadamardPower:   _power,
    Elementwise:        _elementwise,
    MatSum:             lambda c, e: Cost(OpCount(adds=_entries(c, e.args[0]) - 1)),
    Mean:               lambda c, e: Cost(OpCount(adds=_entries(c, e.args[0]) - 1, divs=1)),
    Dot:                _inner,
    Norm2:              _inner,
    Softmax:            lambda c, e: _softmax(c, e, log=False),
    LogSoftmax:         lambda c, e: _softmax(c, e, log=True),
    SumCols:            lambda c, e: Cost(OpCount(adds=c.rc(e.arg)[0] * (c.rc(e.arg)[1] - 1))),
    SumRows:            lambda c, e: Cost(OpCount(adds=(c.rc(e.arg)[0] - 1) * c.rc(e.arg)[1])),
    sp.Transpose:       lambda c, e: Cost(),
    Broadcast:          lambda c, e: Cost(),
    sp.Add:             lambda c, e: Cost(_own_cost(e)),
    sp.Mul:             lambda c, e: Cost(_own_cost(e)),
    sp.Pow:             lambda c, e: Cost(_own_cost(e)),
    sp.Function:        lambda c, e: Cost(_own_cost(e)),
}
# fmt: on


@dataclass(frozen=True)
class VectorCosts:
    """Forward and backward costs of a vector program (see the module docstring)."""

    sizes: dict[str, int]  # concrete sizes used for the numbers
    assumed: list[str]  # size names that were unbound and took a default
    forward: OpCount
    backward: OpCount
    forward_macs: sp.Expr
    backward_macs: sp.Expr

    def _at(self, e: sp.Expr) -> int:
        return int(sp.sympify(e).xreplace(size_symbols(self.sizes)))

    @property
    def forward_macs_at(self) -> int:
        return self._at(self.forward_macs)

    @property
    def backward_macs_at(self) -> int:
        return self._at(self.backward_macs)

    @property
    def mac_ratio(self) -> float:
        return self.backward_macs_at / self.forward_macs_at if self.forward_macs_at else 0.0


def vector_costs(
    program: Program, derivation: BackpropDerivation, sizes: dict[str, int] | None = None
) -> VectorCosts:
    """Multiply–adds and scalar ops of the forward and backward passes."""
    dims = concrete_sizes(program, sizes)
    counter = Counter(size_symbols(dims))
    fwd = sum((counter(a.expr) for a in program.assignments), Cost())
    bwd = sum((counter(s.expression) for s in derivation.steps if s.role != "loss"), Cost())
    assumed = [n for n in unbound_sizes(program) if not sizes or n not in sizes]
    return VectorCosts(dims, assumed, fwd.ops, bwd.ops, sp.expand(fwd.macs), sp.expand(bwd.macs))


def vector_cost_table(
    program: Program,
    backprop: BackpropDerivation | None,
    naive: NaiveDerivation | None,
    cse: bool = True,
) -> list[CostRow]:
    """The op-count table of a vector program (same rows as for scalar programs).

    Counts are scalar ops at concrete sizes (bound, or small defaults named in the
    notes); the forward and backprop notes give the multiply–adds, symbolically.
    """
    from .vector import vector_backprop

    bp = backprop if backprop is not None else vector_backprop(program)
    costs = vector_costs(program, bp)
    where = ", ".join(f"{k}={v}" for k, v in costs.sizes.items())
    assumed = f" (assumed: {', '.join(costs.assumed)})" if costs.assumed else ""
    at = f" at {where}{assumed}" if where else ""
    fwd = costs.forward

    def row(route: str, ops: OpCount | None, note: str = "") -> CostRow:
        ratio = ops.total / fwd.total if ops is not None and fwd.total else None
        return CostRow(route, ops, ratio, note)

    rows = [row("forward", fwd, f"multiply–adds {costs.forward_macs}{at}")]
    if naive is not None:
        rows += _naive_rows(naive, row, cse)
    if backprop is not None:
        rows.append(
            row(
                "backprop",
                fwd + costs.backward,
                f"forward + backward; backward multiply–adds {costs.backward_macs} "
                f"({costs.mac_ratio:.2f}× forward){at}",
            )
        )
    return rows


def _naive_rows(naive: NaiveDerivation, row: Callable[..., CostRow], cse: bool) -> list[CostRow]:
    if not naive.complete:
        return [row("naive", None, naive.note)]
    grads = [x for g in naive.gradients.values() for x in _flat(g.gradient)]
    ops = count_many(grads)
    rows = [row("naive", ops, naive.note)]
    if cse and ops.total <= CSE_LIMIT:
        rows.append(row("naive + CSE", count_after_cse(grads), "sympy.cse over all entries"))
    elif cse:
        rows.append(
            row(
                "naive + CSE",
                None,
                f"skipped: {ops.total:,} ops exceed the CSE limit {CSE_LIMIT:,}",
            )
        )
    return rows


def _flat(g: sp.Basic) -> list[sp.Basic]:
    return list(g) if isinstance(g, sp.MatrixBase) else [g]
