"""The Hessian of the loss in the parameters at a point, by generated ``hvp`` code.

Column q of H is H e_q: one Hessian-vector product (forward mode over the backprop
program, :mod:`chainrule.derive.second_order`) per scalar parameter entry. Vector
programs are expanded to unit form on the point's sizes first, so every entry of
``W1`` is a parameter of its own, named ``W1[0,1]`` (0-based, row-major, NumPy style).

>>> import chainrule
>>> h = hessian_at(chainrule.load("logistic_least_squares"),
...                {"w": 0.5, "b": -0.3, "x": 1.5, "t": 1.0})
>>> h.parameters
['w', 'b']
>>> bool(abs(h.hessian[0, 1] - h.hessian[1, 0]) < 1e-15)
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from ..symbolic.errors import ChainruleError
from ..symbolic.program import Program

#: At most this many parameter entries (a 5000 × 5000 Hessian is 200 MB of float64).
MAX_PARAMETERS = 5000


@dataclass
class HessianResult:
    """H at one point: rows and columns follow ``parameters``."""

    loss: float
    parameters: list[str]
    hessian: np.ndarray
    almost_everywhere: list[str] = field(default_factory=list)  # non-smooth functions met

    def to_dict(self) -> dict[str, Any]:
        """``{"loss", "parameters", "hessian"}`` (non-finite numbers as None)."""
        return {
            "loss": _finite_or_none(self.loss),
            "parameters": list(self.parameters),
            "hessian": [[_finite_or_none(x) for x in row] for row in self.hessian],
        }

    @property
    def note(self) -> str:
        """Where the Hessian is the almost-everywhere one ("" for smooth models)."""
        if not self.almost_everywhere:
            return ""
        names = "; ".join(self.almost_everywhere)
        return (
            f"non-smooth: {names}. This is the almost-everywhere Hessian (the second "
            "derivative of a kink taken as 0); at a kink itself the Hessian does not exist"
        )


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def hessian_at(model: Any, point: Mapping[str, Any], unit: bool = False) -> HessianResult:
    """The Hessian of the loss in every scalar parameter entry at ``point``.

    ``point`` gives parameters, inputs (one example) and optionally constants, in
    declared shapes. Vector programs use their generated matrix ``hvp``; ``unit=True``
    (or a vector program without one) expands them to unit form first instead, an
    independent route (slow for big nets: every weight is a node).
    """
    from ..api import load

    program = load(model)
    unknown = [k for k in point if k not in program]
    if unknown:
        raise ChainruleError("unknown name(s) in the point: " + ", ".join(sorted(unknown)))
    n = sum(int(np.size(point[v.name])) for v in program.params if v.name in point)
    if n > MAX_PARAMETERS:
        raise ChainruleError(
            f"the Hessian of {n:,} parameter entries has {n * n:,} entries, more than "
            f"chainrule computes at once (at most {MAX_PARAMETERS:,} parameters); use "
            "H v products instead: hvp(params, data, v) in 'chainrule codegen MODEL'"
        )
    if program.is_vector and not unit:
        result = _vector_hessian(program, point)
        if result is not None:
            return result
    return _unit_hessian(program, point)


def _unit_hessian(program: Program, point: Mapping[str, Any]) -> HessianResult:
    from .codegen import compiled

    unit, labels, flat = _unit_program(program, point)
    unit = _with_constants(unit, flat)
    code = compiled(unit)
    params = {v.name: flat[v.name] for v in unit.params}
    data = {v.name: np.asarray([flat[v.name]]) for v in unit.inputs if v.name in flat}
    missing = [v.name for v in unit.params if v.name not in flat]
    missing += [v.name for v in unit.inputs if v.name not in flat]
    if missing:
        raise ChainruleError(
            "no value for " + ", ".join(missing) + " (give it with --at name=value)"
        )
    with np.errstate(all="ignore"):
        loss, _ = code.function(params, data)
        columns = []
        for name in params:
            v = {k: float(k == name) for k in params}
            hv = code.hvp(params, data, v)
            columns.append([float(hv[k]) for k in params])
    return HessianResult(float(loss), labels, np.array(columns).T, kinks(program))


def _vector_hessian(program: Program, point: Mapping[str, Any]) -> HessianResult | None:
    """H e_q for every entry q by the generated matrix ``hvp`` (one example)."""
    from .codegen import compiled
    from .vector_eval import leaf_values

    leaf_values(program, point)  # shapes and missing values: located errors
    consts = {v.name: float(point[v.name]) for v in program.consts if v.name in point}
    program = _with_constants(program, consts) if consts else program
    code = compiled(program)
    if "hvp" not in code.namespace:
        return None
    params = {v.name: np.asarray(point[v.name], dtype=float) for v in program.params}
    data = {
        v.name: np.asarray(point[v.name], dtype=float)[None, ...]
        for v in program.inputs
        if v.name in point
    }
    labels = [
        f"{name}[{','.join(map(str, idx))}]" if a.ndim else name
        for name, a in params.items()
        for idx in np.ndindex(*a.shape)
    ]
    with np.errstate(all="ignore"):
        loss, _ = code.function(params, data)
        columns = []
        for name, a in params.items():
            for idx in np.ndindex(*a.shape):
                v = {k: np.zeros_like(x) for k, x in params.items()}
                v[name][idx] = 1.0
                hv = code.hvp(params, data, v)
                columns.append(np.concatenate([np.ravel(hv[k]) for k in params]))
    return HessianResult(float(loss), labels, np.array(columns).T, kinks(program))


def _unit_program(
    program: Program, point: Mapping[str, Any]
) -> tuple[Program, list[str], dict[str, float]]:
    """The scalar program, the labels of its parameters (``W1[0,1]``) and the point
    with one number per unit."""
    if not program.is_vector:
        flat = {k: float(np.asarray(v, dtype=float)) for k, v in point.items()}
        return program, [v.name for v in program.params], flat
    from ..derive.unit_form import flatten_point, unit_form
    from .vector_eval import leaf_values

    _, size_syms = leaf_values(program, point)
    uf = unit_form(program, {str(k): n for k, n in size_syms.items()})
    labels = []
    for v in program.params:
        if v.name not in uf.entries:
            labels.append(v.name)
            continue
        names = uf.entries[v.name]
        labels += [f"{v.name}[{','.join(map(str, idx))}]" for idx in np.ndindex(*names.shape)]
    return uf.program, labels, flatten_point(uf, dict(point))


def _with_constants(program: Program, flat: Mapping[str, float]) -> Program:
    """The program with constants given in the point bound to those values."""
    given = [v for v in program.consts if v.name in flat]
    if not given:
        return program
    variables = [
        dataclasses.replace(v, value=flat[v.name]) if v in given else v for v in program.variables
    ]
    return dataclasses.replace(program, variables=variables)


# ------------------------------------------------------------------ checking
def gradient_differences(model: Any, point: Mapping[str, Any]) -> tuple[list[str], np.ndarray]:
    """H by differentiating the generated first-order gradient numerically, float64, one
    column per parameter entry: complex step Im ∇L(p + i h e_q) / h (h = 1e-20) when the
    model is analytic, else central differences at h = ε^(1/3)·max(1, |p_q|)."""
    from ..api import load
    from .codegen import compiled
    from .gradcheck import is_analytic, step_for

    program = load(model)
    if program.is_vector:
        from .vector_eval import leaf_values

        leaf_values(program, point)  # shapes and missing values: located errors
    consts = {v.name: float(point[v.name]) for v in program.consts if v.name in point}
    program = _with_constants(program, consts) if consts else program
    analytic = is_analytic(program)
    code = compiled(program, dtype="complex128", analytic=True) if analytic else compiled(program)
    base = {v.name: np.asarray(point[v.name], dtype=complex) for v in program.params}
    data = {v.name: np.asarray(point[v.name])[None, ...] for v in program.inputs if v.name in point}
    entries = [(k, idx) for k, a in base.items() for idx in np.ndindex(*a.shape)]
    labels = [f"{k}[{','.join(map(str, idx))}]" if idx else k for k, idx in entries]

    def grad(name: str, idx: tuple[int, ...], step: complex) -> np.ndarray:
        p = {k: a.copy() for k, a in base.items()}
        p[name][idx] += step
        g = code.function(p if analytic else {k: a.real for k, a in p.items()}, data)[1]
        return np.concatenate([np.ravel(np.asarray(g[k])) for k in base])

    columns = []
    with np.errstate(all="ignore"):
        for name, idx in entries:
            if analytic:
                columns.append(grad(name, idx, 1e-20j).imag / 1e-20)
                continue
            x = float(base[name][idx].real)
            h = step_for(x)
            diff = (grad(name, idx, h) - grad(name, idx, -h)).real
            columns.append(diff / ((x + h) - (x - h)))
    return labels, np.array(columns).T


@dataclass
class HessianCheck:
    """The Hessian (forward-over-reverse) against differences of the gradient."""

    model: str
    points: int
    max_rel_error: float
    max_asymmetry: float
    worst: list[tuple[str, str, float, float, float]]  # (row, col, hvp, differences, error)
    threshold: float
    almost_everywhere: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.max_rel_error <= self.threshold and self.max_asymmetry <= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "order": 2,
            "points": self.points,
            "max_rel_error": self.max_rel_error,
            "max_asymmetry": self.max_asymmetry,
            "threshold": self.threshold,
            "passed": self.passed,
            "almost_everywhere": self.almost_everywhere,
            "worst": [
                {"row": r, "column": c, "hessian": a, "differences": b, "rel_error": e}
                for r, c, a, b, e in self.worst
            ],
        }


def check_hessian(
    model: Any, points: int = 3, seed: int = 0, threshold: float = 1e-6, worst: int = 5
) -> HessianCheck:
    """Compare H with central differences of the gradient at seeded random points."""
    from ..api import load
    from .gradcheck import random_point, relative_error

    program = load(model)
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, str, float, float, float]] = []
    asym = 0.0
    nonsmooth: list[str] = []
    for _ in range(points):
        params, data = random_point(program, rng, batch=1)
        point = {**params, **{k: v[0] for k, v in data.items()}}
        h = hessian_at(program, point)
        labels, fd = gradient_differences(program, point)
        nonsmooth = h.almost_everywhere
        n = len(labels)
        for i in range(n):
            for j in range(n):
                a, b = float(h.hessian[i, j]), float(fd[i, j])
                rows.append((labels[i], labels[j], a, b, relative_error(a, b)))
                asym = max(asym, relative_error(a, float(h.hessian[j, i])))
    rows.sort(key=lambda r: -r[4])
    return HessianCheck(
        program.title or program.filename,
        points,
        rows[0][4] if rows else 0.0,
        asym,
        rows[:worst],
        threshold,
        nonsmooth,
    )


def kinks(program: Program) -> list[str]:
    """Each non-smooth atom the loss depends on and where its kink is, as code reads:
    ``relu(W1 @ x) (kink at W1 @ x = 0)``."""
    from ..ops import REGISTRY, Elementwise, U
    from .code_base import kink_arguments

    def non_smooth(e: sp.Basic) -> bool:
        if isinstance(e, sp.Heaviside | sp.Piecewise):
            return True
        op = REGISTRY.for_node(e) if isinstance(e, sp.Basic) and e.args else None
        return op is not None and op.kind == "scalar" and not op.smooth

    from .numpy_printer import numpy_code

    def show(e: sp.Basic) -> str:
        return numpy_code(e) if program.is_vector else str(e)

    needed = program.needed_by_loss()
    found: list[str] = []
    for a in program.assignments:
        if a.name not in needed:
            continue
        for e in sp.preorder_traversal(a.expr):
            if isinstance(e, Elementwise) and any(
                non_smooth(f) for f in sp.preorder_traversal(e.fn.expr)
            ):
                e = e.fn.expr.xreplace({U: e.arg})  # componentwise: a kink per unit
            elif not non_smooth(e) or e.has(U):
                continue
            where = " or ".join(f"{show(k)} = 0" for k in kink_arguments(e))
            text = f"{show(e)} (kink at {where})" if where else show(e)
            if text not in found:
                found.append(text)
    return found
