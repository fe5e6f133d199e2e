"""Differentiation by the textbook rules, recording each rule as it is applied.

The same recursion computes the derivative and writes the trace, so the steps a report
shows cannot disagree with the result. Results are memoized per subexpression, which
keeps shared subtrees (DAGs) cheap; a :class:`Deadline` bounds the work.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import sympy as sp

from ..symbolic.errors import BudgetExceeded
from .records import RuleStep
from .rules import function_name, partial

T = TypeVar("T")


def with_deep_stack(fn: Callable[[], T], limit: int = 20_000, stack_mb: int = 512) -> T:
    """Run ``fn()`` in a thread with a large C stack and a higher recursion limit.

    Substituted losses of long chains are deep trees and SymPy walks them recursively;
    raising the recursion limit alone could overflow the C stack and crash the process,
    so the work runs where the stack is big enough. Exceptions propagate to the caller.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            error.append(exc)

    old_limit = sys.getrecursionlimit()
    old_size = threading.stack_size()
    try:
        threading.stack_size(stack_mb * 1024 * 1024)
        sys.setrecursionlimit(max(old_limit, limit))
        thread = threading.Thread(target=target, name="chainrule-deep")
        thread.start()
        thread.join()
    finally:
        threading.stack_size(old_size)
        sys.setrecursionlimit(old_limit)
    if error:
        raise error[0]
    return result[0]


@dataclass
class Deadline:
    """A wall-clock budget checked cooperatively (``None`` seconds means unlimited)."""

    seconds: float | None = None
    start: float = field(default_factory=time.perf_counter)

    def check(self, what: str = "derivation") -> None:
        if self.seconds is not None and time.perf_counter() - self.start > self.seconds:
            raise BudgetExceeded(f"{what} exceeded its time budget of {self.seconds:g} s")


@dataclass
class Differentiator:
    """d/d``wrt`` of expressions, with an optional trace of :class:`RuleStep` records."""

    wrt: sp.Symbol
    trace: list[RuleStep] | None = None
    max_steps: int = 2_000
    deadline: Deadline = field(default_factory=Deadline)
    truncated: bool = False
    _memo: dict[sp.Basic, sp.Basic] = field(default_factory=dict)
    _calls: int = 0

    def __call__(self, expr: sp.Basic, depth: int = 0) -> sp.Basic:
        cached = self._memo.get(expr)
        if cached is not None:
            return cached
        self._calls += 1
        self.deadline.check()
        rule, function, result = self._apply(expr, depth)
        self.deadline.check()
        self._memo[expr] = result
        if self.trace is not None and rule not in ("constant", "variable"):
            if len(self.trace) < self.max_steps:
                self.trace.append(RuleStep(rule, expr, self.wrt, result, depth, function))
            else:
                self.truncated = True
        return result

    def _apply(self, e: sp.Basic, depth: int) -> tuple[str, str, sp.Basic]:
        x, d = self.wrt, depth + 1
        if e == x:
            return "variable", "", sp.S.One
        if not e.has(x):
            return "constant", "", sp.S.Zero
        if e.is_Add:
            return "sum", "", sp.Add(*[self(a, d) for a in e.args if a.has(x)])
        if e.is_Mul:
            return self._product(e, d)
        if e.is_Pow:
            return self._power(e, d)
        if isinstance(e, sp.Function) or isinstance(e, (sp.Max, sp.Min)):
            terms = [partial(e, i) * self(u, d) for i, u in enumerate(e.args) if u.has(x)]
            return "chain", function_name(e), sp.Add(*terms)
        return "general", "", sp.diff(e, x)

    def _product(self, e: sp.Mul, d: int) -> tuple[str, str, sp.Basic]:
        x = self.wrt
        dependent = [a for a in e.args if a.has(x)]
        constant = sp.Mul(*[a for a in e.args if not a.has(x)])
        if len(dependent) == 1:
            return "constant multiple", "", constant * self(dependent[0], d)
        terms = []
        for i, a in enumerate(dependent):
            rest = sp.Mul(*(dependent[:i] + dependent[i + 1 :]))
            terms.append(rest * self(a, d))
        return "product", "", constant * sp.Add(*terms)

    def _power(self, e: sp.Pow, d: int) -> tuple[str, str, sp.Basic]:
        base, exp = e.args
        x = self.wrt
        if not exp.has(x):
            return "power", "", exp * (base ** (exp - 1) * self(base, d))  # keeps 2(y − t)
        if not base.has(x):
            return "exponential", "", e * sp.log(base) * self(exp, d)
        return "general", "", e * (self(exp, d) * sp.log(base) + exp * self(base, d) / base)


def differentiate(
    expr: sp.Basic,
    wrt: sp.Symbol,
    trace: list[RuleStep] | None = None,
    deadline: Deadline | None = None,
) -> sp.Basic:
    """d expr / d wrt by the rule table (see :mod:`chainrule.derive.rules`).

    >>> from sympy import Symbol
    >>> from chainrule.ops.scalar import sigma
    >>> w, x = Symbol("w"), Symbol("x")
    >>> differentiate(sigma(w*x), w)
    x*sigma_prime(w*x)
    """
    return Differentiator(wrt, trace, deadline=deadline or Deadline())(expr)


def local_derivative(child_expr: sp.Basic, v: sp.Symbol) -> sp.Basic:
    """∂c/∂v taken on the child's own assignment ``c = child_expr``."""
    return Differentiator(v)(child_expr)
