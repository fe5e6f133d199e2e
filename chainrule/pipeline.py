"""A model derived by every route: what ``chainrule.derivation`` and the reports share.

>>> d = derive_model("sum_times", method="backprop")
>>> d.backprop is not None, d.naive is None
(True, True)
"""

from __future__ import annotations

from typing import Any

from .derive.backprop import backprop
from .derive.costs import cost_table
from .derive.naive import naive
from .derive.records import Derivation
from .numeric.agreement import checked_agreement
from .symbolic.build import load_model


def derive_model(
    model: Any,
    method: str = "both",
    steps: bool = True,
    naive_budget: float | None = 30.0,
    cse: bool = True,
    agreement_check: bool = True,
) -> Derivation:
    """Derive ``model`` naively and/or by backprop, with the op-count table.

    ``method`` is ``"naive"``, ``"backprop"`` or ``"both"``; ``naive_budget`` bounds the
    naive route in seconds (it swells on big nets). For vector programs the vectorized
    backprop is also checked against scalar backprop of the unit form
    (``.agreement``) unless ``agreement_check`` is false.
    """
    if method not in ("naive", "backprop", "both"):
        raise ValueError(f"method must be naive, backprop or both, not {method!r}")
    program = load_model(model)
    bp = backprop(program) if method in ("backprop", "both") else None
    nv = naive(program, steps=steps, budget=naive_budget) if method in ("naive", "both") else None
    agreement = None
    if program.is_vector and bp is not None and agreement_check:
        agreement = checked_agreement(program, bp)
    return Derivation(program, bp, nv, cost_table(program, bp, nv, cse=cse), agreement)
