"""The calculus-class route ("how you would do it in calculus class"): substitute, then
differentiate per parameter — for scalar programs directly, for vector programs entry by
entry through the unit form."""

from __future__ import annotations

from ..symbolic.program import Program
from .records import NaiveDerivation
from .scalar_naive import MAX_DEPTH, scalar_naive, tree_depth
from .vector_naive import vector_naive

__all__ = ["MAX_DEPTH", "naive", "tree_depth"]


def naive(
    program: Program, steps: bool = True, budget: float | None = 60.0, max_steps: int = 2_000
) -> NaiveDerivation:
    """Differentiate the substituted loss with respect to each parameter.

    ``budget`` (seconds, ``None`` for none) bounds the whole route; when it runs out,
    the derivation is returned with ``complete=False`` and a note instead of hanging.
    """
    if program.is_vector:
        return vector_naive(program, steps=steps, budget=budget, max_steps=max_steps)
    return scalar_naive(program, steps=steps, budget=budget, max_steps=max_steps)
