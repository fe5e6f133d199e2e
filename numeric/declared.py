"""Declared derivatives checked against finite differences of the function's body.

A primitive defined with its derivative (``def phi(u) = log(1 + u^2), phi'(u) = 2*u/(1 +
u^2)``) is trusted by every derivation, so ``check-grad`` checks the declaration on its
own, naming the function when it is wrong.

>>> import chainrule
>>> p = chainrule.parse("def phi(u) = u^3, phi'(u) = 2*u\\nparam w\\nL = phi(w)\\nloss L")
>>> [c.passed for c in check_declared(p)]
[False]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..derive.records import function_definitions
from ..symbolic.program import Program

#: Where a declared derivative is compared: spread over the usual range of activations.
POINTS = np.array([-3.1, -1.7, -0.9, -0.35, 0.15, 0.6, 1.3, 2.2, 2.9])


@dataclass(frozen=True)
class DeclaredCheck:
    """One declared derivative against central differences of its function."""

    function: str  # phi
    derivative: str  # phi'
    passed: bool
    max_rel_error: float
    worst_at: float  # the argument where they disagree most
    declared: float  # the declared derivative there
    numerical: float  # the central difference there

    def line(self) -> str:
        if self.passed:
            return (
                f"{self.derivative}: the declared derivative of {self.function} agrees with "
                f"finite differences (max relative error {self.max_rel_error:.1e})"
            )
        return (
            f"FAIL {self.derivative}: the declared derivative of {self.function} disagrees with "
            f"finite differences of its body: at {self.worst_at:g} it gives "
            f"{self.declared:.6g}, the differences {self.numerical:.6g} "
            f"(relative error {self.max_rel_error:.1e})"
        )


def _central(f: Any, u: np.ndarray, h: np.ndarray) -> np.ndarray:
    return (f(u + h) - f(u - h)) / (2 * h)


def check_declared(program: Program, threshold: float = 1e-6) -> list[DeclaredCheck]:
    """Every declared derivative the program uses, checked (Richardson-extrapolated central
    differences; points where the two step sizes disagree, a kink, are left out)."""
    out: list[DeclaredCheck] = []
    for d in function_definitions(program):
        if d.role != "declared":
            continue
        f_op = getattr(program.functions.get(d.of), "numpy", None)
        d_op = getattr(program.functions.get(d.name), "numpy", None)
        if f_op is None or d_op is None:
            continue
        u = POINTS.astype(float)
        h = np.cbrt(np.finfo(float).eps) * np.maximum(1.0, np.abs(u))
        with np.errstate(all="ignore"):
            coarse, fine = _central(f_op, u, h), _central(f_op, u, h / 2)
            numerical = (4 * fine - coarse) / 3
            declared = np.asarray(d_op(u), dtype=float) * np.ones_like(u)
        smooth = np.abs(coarse - fine) <= 1e-4 * (np.abs(coarse) + np.abs(fine) + 1e-8)
        rel = np.abs(declared - numerical) / np.maximum(np.abs(declared) + np.abs(numerical), 1e-12)
        rel = np.where(smooth & np.isfinite(rel), rel, 0.0)
        k = int(np.argmax(rel))
        out.append(
            DeclaredCheck(
                d.of,
                f"{d.of}'",
                bool(rel[k] <= threshold),
                float(rel[k]),
                float(u[k]),
                float(declared[k]),
                float(numerical[k]),
            )
        )
    return out
