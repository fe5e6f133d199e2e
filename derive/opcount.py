"""Operation counts under one documented cost model.

Cost model (scalar programs):

* ``a + b + c`` costs 2 additions (a subtraction counts as an addition; a term's
  coefficient of −1 is folded into its subtraction and costs nothing);
* ``a * b * c`` costs 2 multiplications; a factor ``b**-1`` makes it a division instead;
* ``x**n`` for an integer n ≥ 2 costs n − 1 multiplications (``x**2`` is ``x*x``);
  ``x**-n`` adds one division; any other exponent (``sqrt``, ``x**0.5``) is a call;
* each function application (``σ``, ``σ'``, ``exp``, ``log``, ``tanh``…) is one call;
* symbols and numbers are free; an expression tree counts every occurrence (the cost of
  evaluating it as written), which is what expression swell is about.

>>> from sympy import symbols, exp
>>> x, y = symbols("x y")
>>> count_ops(x*y + exp(x) - 2*y).as_dict()
{'adds': 2, 'muls': 2, 'divs': 0, 'calls': 1, 'total': 5}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import sympy as sp


@dataclass(frozen=True)
class OpCount:
    adds: int = 0
    muls: int = 0
    divs: int = 0
    calls: int = 0

    @property
    def total(self) -> int:
        return self.adds + self.muls + self.divs + self.calls

    def __add__(self, other: OpCount) -> OpCount:
        return OpCount(
            self.adds + other.adds,
            self.muls + other.muls,
            self.divs + other.divs,
            self.calls + other.calls,
        )

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "total": self.total}


ZERO = OpCount()


def _own_cost(e: sp.Basic) -> OpCount:
    if e.is_Add:
        return OpCount(adds=len(e.args) - 1)
    if e.is_Mul:
        factors = [a for a in e.args if a is not sp.S.NegativeOne]
        denominators = sum(1 for a in factors if a.is_Pow and a.exp.is_negative)
        numerators = len(factors) - denominators
        if denominators == 0:
            return OpCount(muls=max(numerators - 1, 0))
        # a*b/(c*d): (numerators - 1) muls, one division, (denominators - 1) muls
        # (the reciprocal powers then cost only their own |n| - 1 multiplications)
        return OpCount(muls=max(numerators - 1, 0) + denominators - 1, divs=1)
    if e.is_Pow:
        n = e.exp
        if n.is_Integer:
            k = abs(int(n))
            return OpCount(muls=max(k - 1, 0), divs=1 if n < 0 else 0)
        return OpCount(calls=1)
    if isinstance(e, (sp.Function, sp.Max, sp.Min)):
        return OpCount(calls=1, adds=0 if not isinstance(e, (sp.Max, sp.Min)) else len(e.args) - 2)
    return ZERO


def count_ops(expr: sp.Basic, _memo: dict | None = None) -> OpCount:
    """Ops to evaluate ``expr`` as a tree (shared subtrees counted each time they occur).

    Memoized per distinct subexpression, so counting a swollen naive gradient with
    millions of tree nodes stays fast.
    """
    memo: dict[tuple[sp.Basic, bool], OpCount] = {} if _memo is None else _memo
    # iterative post-order walk: deep trees (long chains) need no recursion
    stack: list[tuple[sp.Basic, bool, bool]] = [(expr, False, False)]
    while stack:
        e, in_mul, children_done = stack.pop()
        key = (e, in_mul)
        if key in memo:
            continue
        if e.is_Atom:
            memo[key] = ZERO
            continue
        child_in_mul = bool(e.is_Mul)
        if not children_done:
            stack.append((e, in_mul, True))
            stack.extend((a, child_in_mul, False) for a in e.args if (a, child_in_mul) not in memo)
            continue
        memo[key] = _node_cost(e, in_mul) + _sum(memo[(a, child_in_mul)] for a in e.args)
    return memo[(expr, False)]


def _node_cost(e: sp.Basic, in_mul: bool) -> OpCount:
    own = _own_cost(e)
    if in_mul and e.is_Pow and e.exp.is_negative and e.exp.is_Integer:
        # b**-n inside a product: the division is counted by the product
        own = OpCount(muls=max(abs(int(e.exp)) - 1, 0))
    return own


def _sum(counts: Iterable[OpCount]) -> OpCount:
    total = ZERO
    for c in counts:
        total = total + c
    return total


def count_many(exprs: Iterable[sp.Basic]) -> OpCount:
    memo: dict = {}
    total = ZERO
    for e in exprs:
        total = total + count_ops(e, memo)
    return total


def count_after_cse(exprs: list[sp.Basic]) -> OpCount:
    """Ops after common-subexpression elimination (``sympy.cse``) of ``exprs`` together."""
    replacements, reduced = sp.cse(exprs, order="none")
    return count_many([rhs for _, rhs in replacements]) + count_many(reduced)


@dataclass(frozen=True)
class CostRow:
    """One row of the op-count table."""

    route: str  # forward, naive, naive + CSE, backprop (forward + backward)
    ops: OpCount | None  # None when the route did not finish within its budget
    ratio: float | None  # ops / forward ops
    note: str = ""
