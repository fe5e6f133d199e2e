"""The op-count table: forward, naive, naive + CSE, backprop (forward + backward)."""

from __future__ import annotations

import sympy as sp

from ..symbolic.program import Program
from .opcount import CostRow, OpCount, count_after_cse, count_many
from .records import BackpropDerivation, NaiveDerivation

#: Above this many tree ops, ``sympy.cse`` takes minutes; it is skipped with a note.
CSE_LIMIT = 200_000


def forward_ops(program: Program) -> OpCount:
    """Ops of the forward pass: the assignments the loss needs (unused ones are free)."""
    needed = program.needed_by_loss()
    return count_many(a.expr for a in program.assignments if a.name in needed)


def backward_ops(derivation: BackpropDerivation) -> OpCount:
    return count_many(s.expression for s in derivation.steps if s.role != "loss")


def cost_table(
    program: Program,
    backprop: BackpropDerivation | None,
    naive: NaiveDerivation | None,
    cse: bool = True,
) -> list[CostRow]:
    """Rows of the op-count table with each route's ratio to the forward pass."""
    if program.is_vector:  # counted from shapes, with multiply–adds (derive/vector_costs.py)
        from .vector_costs import vector_cost_table

        return vector_cost_table(program, backprop, naive, cse=cse)
    fwd = forward_ops(program)

    def row(route: str, ops: OpCount | None, note: str = "") -> CostRow:
        ratio = ops.total / fwd.total if ops is not None and fwd.total else None
        return CostRow(route, ops, ratio, note)

    rows = [row("forward", fwd)]
    if naive is not None:
        grads = [g.gradient for g in naive.gradients.values()]
        if not naive.complete:
            rows.append(row("naive", None, naive.note))
        else:
            naive_ops = count_many(grads)
            rows.append(row("naive", naive_ops, "gradients as derived, one per parameter"))
            if cse and naive_ops.total <= CSE_LIMIT:
                rows.append(
                    row(
                        "naive + CSE",
                        count_after_cse(grads),
                        "sympy.cse over all gradients (no loss value)",
                    )
                )
            elif cse:
                rows.append(
                    row(
                        "naive + CSE",
                        None,
                        f"skipped: {naive_ops.total:,} ops exceed the CSE limit {CSE_LIMIT:,}",
                    )
                )
    if backprop is not None:
        rows.append(
            row(
                "backprop",
                fwd + backward_ops(backprop),
                "forward + backward, sharing forward values",
            )
        )
    return rows


def unused_params(program: Program) -> list[str]:
    needed = program.needed_by_loss()
    return [p.name for p in program.params if p.name not in needed]


__all__ = ["CostRow", "OpCount", "backward_ops", "cost_table", "forward_ops", "sp"]
