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

import sympy as sp

from ..ops import REGISTRY, operands
from ..symbolic.program import Program
from .opcount import ZERO, CostRow, OpCount, _own_cost, count_after_cse, count_many, count_ops
from .records import BackpropDerivation, NaiveDerivation
from .sizes import concrete_sizes, size_symbols, unbound_sizes

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

    def cost(
        self, adds: int = 0, muls: int = 0, divs: int = 0, calls: int = 0, macs: sp.Expr = sp.S.Zero
    ) -> Cost:
        """A :class:`Cost` (what the registry's cost rules build)."""
        return Cost(OpCount(adds=adds, muls=muls, divs=divs, calls=calls), sp.sympify(macs))

    def per_entry(self, body: sp.Basic, n: int) -> Cost:
        """A scalar expression applied to each of ``n`` entries (at least one call)."""
        per = count_ops(body)
        per = per if per.total else OpCount(calls=1)
        return Cost(OpCount(per.adds * n, per.muls * n, per.divs * n, per.calls * n))

    def __call__(self, e: sp.Basic) -> Cost:
        if e.is_Atom or isinstance(e, sp.MatrixSymbol):
            return Cost()
        own = Cost()
        op = REGISTRY.for_node(e)
        if op is not None and op.cost is not None:
            own = op.cost(self, e)
        elif isinstance(e, (sp.Add, sp.Mul, sp.Pow, sp.Function)) or op is not None:
            own = Cost(_own_cost(e))
        children = operands(e)
        total = own
        for a in children:
            total = total + self(a)
        return total


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
