"""Unit-form agreement: the vectorized backprop equals scalar backprop of the unit form.

For a vector program, expand it entry by entry on small concrete sizes
(:func:`chainrule.derive.unit_form.unit_form`), run the scalar backprop, and compare the
numbers with the vectorized derivation at a random float64 point.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..derive.records import BackpropDerivation
from ..derive.unit_form import UnitForm, flatten_point, unit_form
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
    unit: UnitForm | None = None,
) -> Agreement:
    """Vectorized backprop vs scalar backprop of the unit form, at one random point.

    The point is random (float64; softmax–CE targets on the simplex) unless given;
    unbound sizes take small defaults. ``unit``: the unit form, when already built on
    those sizes. ``ok`` when every gradient entry and the loss
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
    uf = unit if unit is not None else unit_form(program, dims)
    uloss, ugrads = scalar_gradient_at(backprop(uf.program), flatten_point(uf, point))
    pairs = [(loss, float(uloss))]
    for p in program.params:
        if p.name in uf.entries:
            mine = np.vectorize(lambda n: float(ugrads[str(n)]))(uf.entries[p.name])
        else:
            mine = float(ugrads[p.name])
        pairs.append((grads[p.name], mine))
    # float64 round-off of the two routes, about ε times the largest value: entries that
    # are 0 in exact arithmetic (a gradient through a normalization) differ only by it
    scale = max(float(np.max(np.abs(np.asarray(v, dtype=float)), initial=0)) for v, _ in pairs)
    noise = 64 * np.finfo(np.float64).eps * max(scale, 1.0)
    worst = max(_err(a, b, noise / tol) for a, b in pairs)
    return Agreement(bool(worst <= tol), worst)


def _err(a: Any, b: Any, floor: float) -> float:
    """max |a − b| / max(|a| + |b|, floor) over entries."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    err = np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), max(floor, 1e-300))
    return float(np.max(err)) if err.size else 0.0


class SkippedAgreement(NamedTuple):
    """The unit-form check was not run (the unit form would be too large)."""

    entries: int
    limit: int
    ok: None = None
    max_rel_err: float = float("nan")
    what: str = "scalar entries"

    def line(self) -> str:
        return (
            f"unit-form check skipped: {self.entries:,} {self.what} (more than "
            f"{self.limit:,}); run numeric.agreement.unit_form_agreement to force it"
        )


#: Above this many scalar leaf entries the unit-form check is skipped by default
#: (it runs scalar backprop on the expanded program: seconds per thousand entries).
MAX_AGREEMENT_ENTRIES = 1_000

#: ... or above this many operations in the expanded program: a normalization over
#: many entries makes every unit depend on all of them (its derivatives grow as n²).
MAX_AGREEMENT_OPS = 30_000


def checked_agreement(
    program: Program,
    derivation: BackpropDerivation,
    limit: int = MAX_AGREEMENT_ENTRIES,
    max_ops: int = MAX_AGREEMENT_OPS,
) -> Agreement | SkippedAgreement:
    """:func:`unit_form_agreement` for programs up to ``limit`` scalar entries and
    ``max_ops`` operations in unit form."""
    from ..derive.vector import scalar_entries

    entries = scalar_entries(program)
    if entries > limit:
        return SkippedAgreement(entries, limit)
    unit = unit_form(program)  # on the sizes the check's random point takes
    ops = sum(int(a.expr.count_ops()) for a in unit.program.assignments)
    if ops > max_ops:
        return SkippedAgreement(ops, max_ops, what="operations in unit form")
    return unit_form_agreement(program, derivation, unit=unit)
