"""The report's checks: derived gradient vs finite differences at one point.

When :mod:`chainrule.numeric.gradcheck` is available its checker is used (complex step,
Richardson, kink detection); otherwise a float64 central difference with step
h = ε^(1/3)·max(1, |x|) runs here through :func:`chainrule.numeric.evaluate.forward`.
The relative error is ``|a − b| / (|a| + |b|)`` as the lectures define it (0 when both
are below 1e-300).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..derive.records import Derivation
from ..symbolic.program import Program
from .data import CheckRow, ChecksSection

THRESHOLD = 1e-6
_AT = re.compile(r"^#\s*at:\s*(.+)$", re.MULTILINE)


def relative_error(a: float, b: float) -> float:
    """|a − b| / (|a| + |b|), 0 when both are (almost) zero.

    >>> relative_error(1.0, 1.0), relative_error(0.0, 0.0), relative_error(1.0, -1.0)
    (0.0, 0.0, 1.0)
    """
    den = abs(a) + abs(b)
    return 0.0 if den < 1e-300 else abs(a - b) / den


def band(worst: float) -> str:
    if worst <= 1e-7:
        return "good (≤ 1e-7)"
    if worst <= 1e-4:
        return "acceptable (≤ 1e-4), check the step size"
    if worst <= 1e-2:
        return "suspicious (≤ 1e-2)"
    return "wrong (> 1e-2)"


def source_point(program: Program) -> dict[str, float]:
    """The model's own ``# at: w=0.5, b=0.1`` line, when it has one."""
    m = _AT.search(program.source or "")
    if not m:
        return {}
    out: dict[str, float] = {}
    for pair in m.group(1).split(","):
        if "=" in pair:
            k, v = pair.split("=", 1)
            try:
                out[k.strip()] = float(v)
            except ValueError:
                continue
    return {k: v for k, v in out.items() if k in program}


def random_point(program: Program, seed: int = 0) -> dict[str, float]:
    """Small seeded values for every param and input (inputs in (0.1, 0.9))."""
    rng = np.random.default_rng(seed)
    point: dict[str, float] = {}
    for v in program.variables:
        if v.role == "param":
            point[v.name] = float(rng.normal(0.0, 0.5))
        elif v.role == "input":
            point[v.name] = float(rng.uniform(0.1, 0.9))
    return point


def choose_point(program: Program, given: Mapping[str, Any] | None, seed: int) -> dict[str, Any]:
    point = random_point(program, seed)
    point.update(source_point(program))
    if given:
        point.update(given)
    return point


def _loss_at(program: Program, point: Mapping[str, Any]) -> float:
    from ..numeric.evaluate import forward

    return float(forward(program, point)[program.loss_assignment.symbol])


def central_difference_rows(derivation: Derivation, point: dict[str, Any]) -> list[CheckRow]:
    from ..numeric.evaluate import gradient_at

    assert derivation.backprop is not None
    program = derivation.program
    _, grads = gradient_at(derivation.backprop, point)
    eps = float(np.finfo(float).eps)
    rows = []
    for p in program.params:
        x = float(point[p.name])
        h = eps ** (1 / 3) * max(1.0, abs(x))
        h = (x + h) - x  # exactly representable
        up = _loss_at(program, {**point, p.name: x + h})
        down = _loss_at(program, {**point, p.name: x - h})
        numeric = (up - down) / (2 * h)
        analytic = float(np.asarray(grads[p.name]))
        err = relative_error(analytic, numeric)
        rows.append(CheckRow(p.name, "", analytic, numeric, err, err <= THRESHOLD))
    return rows


def _row_from_entry(e: Any, threshold: float) -> CheckRow:
    idx = ",".join(str(i) for i in e.index)
    method = e.method + (" (kink: left out)" if e.kink else "")
    return CheckRow(
        e.param,
        idx,
        float(e.analytical),
        float(e.numerical),
        float(e.rel_error),
        e.kink or e.rel_error <= threshold,
        method,
    )


def gradcheck_section(derivation: Derivation, seed: int = 0, max_rows: int = 12) -> ChecksSection:
    """The numeric helper's checker (complex step / Richardson / kinks / signals)."""
    from ..numeric.gradcheck import gradcheck

    report = gradcheck(derivation, seed=seed)
    rows = [_row_from_entry(e, report.threshold) for e in report.worst(max_rows)]
    signals = [
        CheckRow(
            s.node,
            "",
            float(s.analytical),
            float(s.numerical),
            float(s.rel_error),
            bool(s.passed),
            "node perturbation",
        )
        for s in report.signals
    ]
    note = "; ".join(report.warnings)
    return ChecksSection(
        method=f"{report.method} at {report.points} seeded random point(s), float64",
        threshold=report.threshold,
        rows=rows,
        worst=report.max_rel_error,
        passed=report.passed,
        point={"seed": str(seed)},
        band=band(report.max_rel_error),
        signals=signals,
        entries=len(report.checked),
        note=note,
    )


def checks_section(
    derivation: Derivation, point: Mapping[str, Any] | None = None, seed: int = 0
) -> tuple[ChecksSection | None, str]:
    """The checks section, or (None, why it is left out)."""
    program = derivation.program
    if derivation.backprop is None:
        return None, "checks: left out because the backprop route was not derived"
    fallback_why = ""
    if point is None:
        try:
            return gradcheck_section(derivation, seed), ""
        except ImportError:
            fallback_why = ""
        except Exception as exc:  # noqa: BLE001 - fall back to the simple check
            fallback_why = f"the full gradient checker failed ({exc}); "
    if program.is_vector:
        return None, (
            "checks: " + fallback_why + "finite differences for vector programs "
            "need the numeric gradient checker"
        )
    chosen = choose_point(program, point, seed)
    try:
        rows = central_difference_rows(derivation, chosen)
    except Exception as exc:  # noqa: BLE001 - a report shows why, it does not crash
        return None, f"checks: the numeric evaluation failed ({exc})"
    worst = max((r.rel_error for r in rows), default=0.0)
    shown = {k: f"{float(v):g}" for k, v in chosen.items()}
    return ChecksSection(
        method="central difference, float64, h = ε^(1/3)·max(1, |x|)",
        threshold=THRESHOLD,
        rows=rows,
        worst=worst,
        passed=worst <= THRESHOLD,
        point=shown,
        band=band(worst),
        entries=len(rows),
        note=fallback_why.rstrip("; "),
    ), ""
