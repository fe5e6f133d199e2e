"""Unit-form agreement: the vectorized backprop equals scalar backprop of the unit form.

For a vector program, expand it entry by entry on small concrete sizes
(:func:`chainrule.derive.unit_form.unit_form`), run the scalar backprop, and compare the
numbers with the vectorized derivation at a random float64 point.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..derive.records import BackpropDerivation
from ..derive.unit_form import flatten_point, unit_form
from ..derive.vector import concrete_sizes
from ..symbolic.program import Program


class Agreement(NamedTuple):
    """Result of :func:`unit_form_agreement`: ``ok, max_rel_err = …``."""

    ok: bool
    max_rel_err: float

    def line(self) -> str:
        verdict = "unit form agrees" if self.ok else "unit form DISAGREES"
        return f"{verdict} (max relative error {self.max_rel_err:.1e})"


def rel_err(a: Any, b: Any) -> float:
    """max |a − b| / (|a| + |b|) entrywise (0 where both are 0)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    den = np.abs(a) + np.abs(b)
    err = np.where(den > 0, np.abs(a - b) / np.where(den > 0, den, 1.0), 0.0)
    return float(np.max(err)) if err.size else 0.0


def unit_form_agreement(
    program: Program,
    derivation: BackpropDerivation | None = None,
    point: dict[str, Any] | None = None,
    sizes: dict[str, int] | None = None,
    seed: int = 0,
    tol: float = 1e-10,
) -> Agreement:
    """Vectorized backprop vs scalar backprop of the unit form, at one random point.

    The point is random (float64; softmax–CE targets on the simplex) unless given;
    unbound sizes take small defaults. ``ok`` when every gradient entry and the loss
    agree to ``tol`` relative error.
    """
    from ..derive.backprop import backprop
    from ..derive.vector import vector_backprop
    from .evaluate import gradient_at as scalar_gradient_at
    from .vector_eval import leaf_values, random_point, vector_gradient_at

    if point is None:
        point = random_point(program, concrete_sizes(program, sizes), seed)
    _, size_values = leaf_values(program, point)
    dims = {str(k): v for k, v in size_values.items()}
    derivation = derivation or vector_backprop(program)
    loss, grads = vector_gradient_at(derivation, point)
    uf = unit_form(program, dims)
    uloss, ugrads = scalar_gradient_at(backprop(uf.program), flatten_point(uf, point))
    worst = rel_err(loss, float(uloss))
    for p in program.params:
        if p.name in uf.entries:
            mine = np.vectorize(lambda n: float(ugrads[str(n)]))(uf.entries[p.name])
        else:
            mine = float(ugrads[p.name])
        worst = max(worst, rel_err(grads[p.name], mine))
    return Agreement(bool(worst <= tol), worst)


class SkippedAgreement(NamedTuple):
    """The unit-form check was not run (the unit form would be too large)."""

    entries: int
    limit: int
    ok: None = None
    max_rel_err: float = float("nan")

    def line(self) -> str:
        return (
            f"unit-form check skipped: {self.entries:,} scalar entries (more than "
            f"{self.limit:,}); run numeric.agreement.unit_form_agreement to force it"
        )


#: Above this many scalar leaf entries the unit-form check is skipped by default
#: (it runs scalar backprop on the expanded program: seconds per thousand entries).
MAX_AGREEMENT_ENTRIES = 1_000


def checked_agreement(
    program: Program, derivation: BackpropDerivation, limit: int = MAX_AGREEMENT_ENTRIES
) -> Agreement | SkippedAgreement:
    """:func:`unit_form_agreement` for programs up to ``limit`` scalar entries."""
    from ..derive.vector import scalar_entries

    entries = scalar_entries(program)
    if entries > limit:
        return SkippedAgreement(entries, limit)
    return unit_form_agreement(program, derivation)
