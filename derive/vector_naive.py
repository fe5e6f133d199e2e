"""The calculus-class route for vector programs: the fully expanded elementwise
derivative, through the unit form on small concrete sizes."""

from __future__ import annotations

import time

import numpy as np
import sympy as sp

from ..symbolic.program import Program
from .records import NaiveDerivation, NaiveGradient, RuleStep
from .scalar_naive import scalar_naive
from .sizes import scalar_entries
from .unit_form import unit_form

#: The fully expanded naive route is attempted up to this many scalar leaf entries.
MAX_NAIVE_ENTRIES = 400


def vector_naive(
    program: Program,
    steps: bool = True,
    budget: float | None = 60.0,
    sizes: dict[str, int] | None = None,
    max_steps: int = 2_000,
) -> NaiveDerivation:
    """The calculus-class route for matrices: the fully expanded elementwise derivative.

    The program is expanded to unit form on concrete sizes (bound, given or small
    defaults), the substituted scalar loss is differentiated with respect to every
    entry, and each parameter's gradient is the matrix of those derivatives, written
    with the original names (``W1[0, 1]``). ``budget`` bounds the time.
    """
    start = time.perf_counter()
    entries = scalar_entries(program, sizes)
    if entries > MAX_NAIVE_ENTRIES:
        note = (
            f"not expanded: {entries:,} scalar entries in the unit form (the naive route "
            f"expands at most {MAX_NAIVE_ENTRIES:,}; it would swell far beyond backprop)"
        )
        return NaiveDerivation(
            program,
            program.loss_assignment.symbol,
            {},
            complete=False,
            note=note,
            seconds=time.perf_counter() - start,
        )
    uf = unit_form(program, sizes)
    back = _entry_map(program, uf.entries)
    nd = scalar_naive(uf.program, steps=steps, budget=budget, max_steps=max_steps)
    gradients: dict[str, NaiveGradient] = {}
    for p in program.params:
        if p.name not in uf.entries:
            if p.name in nd.gradients:
                g = nd.gradients[p.name]
                gradients[p.name] = NaiveGradient(
                    p.name, _renamed(g.gradient, back), _map_steps(g.steps, back), g.steps_truncated
                )
            continue
        names = uf.entries[p.name]
        if not all(str(n) in nd.gradients for n in names.flat):
            continue
        grid = names.reshape(-1, 1) if names.ndim == 1 else names.reshape(-1, names.shape[-1])
        rows = [[_renamed(nd.gradients[str(n)].gradient, back) for n in row] for row in grid]
        matrix = sp.ImmutableMatrix(rows)
        trace = [s for n in names.flat for s in nd.gradients[str(n)].steps][:max_steps]
        truncated = any(nd.gradients[str(n)].steps_truncated for n in names.flat)
        gradients[p.name] = NaiveGradient(p.name, matrix, _map_steps(trace, back), truncated)
    shown = ", ".join(f"{k}={v}" for k, v in uf.sizes.items())
    note = (
        "fully expanded elementwise derivative (unit form"
        + (f" on sizes {shown}" if shown else "")
        + ")"
    )
    if not nd.complete:
        note += "; " + nd.note
    return NaiveDerivation(
        program,
        _renamed(nd.substituted_loss, back),
        gradients,
        complete=nd.complete,
        note=note,
        seconds=time.perf_counter() - start,
    )


def _entry_map(program: Program, entries: dict) -> dict[sp.Basic, sp.Basic]:
    """Unit symbol → the matrix element it stands for (``W1_1_2`` → ``W1[0, 1]``)."""
    from ..symbolic.program import make_symbol

    out: dict[sp.Basic, sp.Basic] = {}
    for name, names in entries.items():
        sym = program.symbol(name)
        if names.ndim > 2:
            continue  # a tensor's units keep their names (K_1_1_2_1 is K[0, 0, 1, 0])
        for idx in np.ndindex(*names.shape):
            i, j = (idx[0], 0) if len(idx) == 1 else idx
            out[make_symbol(str(names[idx]))] = sym[i, j]
    return out


def _renamed(e: sp.Basic, back: dict[sp.Basic, sp.Basic]) -> sp.Basic:
    """``e`` with unit names mapped back, nothing re-evaluated (Max/Min would compare
    every pair of their arguments again)."""
    with sp.evaluate(False):
        return e.xreplace(back)


def _map_steps(trace: list[RuleStep], back: dict[sp.Basic, sp.Basic]) -> list[RuleStep]:
    with sp.evaluate(False):  # a renaming: Max/Min re-evaluated would compare every pair
        return _renamed_steps(trace, back)


def _renamed_steps(trace: list[RuleStep], back: dict[sp.Basic, sp.Basic]) -> list[RuleStep]:
    return [
        RuleStep(
            s.rule,
            s.expr.xreplace(back),
            back.get(s.wrt, s.wrt),
            s.result.xreplace(back),
            s.depth,
            s.function,
        )
        for s in trace
    ]
