"""The calculus-class route for scalar programs: substitute every assignment, then
differentiate.

Each parameter's derivative is taken separately from the one big expression, as the
lectures' "how you would have done it in calculus class" slide does. On large nets
this swells; a time budget stops it and the derivation says so.
"""

from __future__ import annotations

import time

import sympy as sp

from ..symbolic.errors import BudgetExceeded
from ..symbolic.program import Program
from .differentiate import Deadline, Differentiator, with_deep_stack
from .records import NaiveDerivation, NaiveGradient, RuleStep

#: Deeper substituted losses are left to backprop (SymPy slows down quadratically there).
MAX_DEPTH = 600


def tree_depth(expr: sp.Basic) -> int:
    """Nesting depth of an expression, computed without recursion.

    >>> x = sp.Symbol("x")
    >>> tree_depth(sp.exp(sp.exp(x)) + 1)
    4
    """
    depth: dict[sp.Basic, int] = {}
    stack: list[tuple[sp.Basic, bool]] = [(expr, False)]
    while stack:
        e, done = stack.pop()
        if e in depth:
            continue
        if not e.args:
            depth[e] = 1
        elif done:
            depth[e] = 1 + max(depth[a] for a in e.args)
        else:
            stack.append((e, True))
            stack.extend((a, False) for a in e.args if a not in depth)
    return depth[expr]


def scalar_naive(
    program: Program, steps: bool = True, budget: float | None = 60.0, max_steps: int = 2_000
) -> NaiveDerivation:
    """Differentiate the substituted loss with respect to each parameter.

    ``budget`` (seconds, ``None`` for none) bounds the whole route; when it runs out,
    the derivation is returned with ``complete=False`` and a note instead of hanging.
    """
    start = time.perf_counter()
    deadline = Deadline(budget, start)
    gradients: dict[str, NaiveGradient] = {}
    loss = None

    def substitute_and_differentiate() -> None:
        nonlocal loss
        loss = program.substituted()
        depth = tree_depth(loss)
        if depth > MAX_DEPTH:
            raise BudgetExceeded(
                f"the substituted loss is nested {depth} levels deep (more than {MAX_DEPTH}); "
                "the naive route stops here, backprop handles it"
            )
        for p in program.params:
            deadline.check("naive derivation")
            trace: list[RuleStep] | None = [] if steps else None
            d = Differentiator(p.symbol, trace, max_steps=max_steps, deadline=deadline)
            grad = d(loss)
            gradients[p.name] = NaiveGradient(p.name, grad, trace or [], d.truncated)

    try:
        with_deep_stack(substitute_and_differentiate)
    except (BudgetExceeded, RecursionError) as exc:
        if isinstance(exc, RecursionError):
            exc = BudgetExceeded("the substituted loss is nested too deeply for the naive route")
        if loss is None:
            loss = program.loss_assignment.symbol
        names = list(gradients)
        done = ", ".join(names[:6]) + (", …" if len(names) > 6 else "")
        done = f"{len(names)} of {len(program.params)} gradients finished" + (
            f" ({done})" if names else ""
        )
        return NaiveDerivation(
            program,
            loss,
            gradients,
            complete=False,
            note=f"{exc}; {done}",
            seconds=time.perf_counter() - start,
        )
    return NaiveDerivation(program, loss, gradients, seconds=time.perf_counter() - start)
