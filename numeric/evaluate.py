"""Evaluate a program and its backprop derivation at a point, in float64.

Each assignment and each error signal is compiled once with ``lambdify`` over
positional symbols (names are checked identifiers; ``dummify`` keeps even those out
of the generated source).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy as sp

from ..derive.records import BackpropDerivation
from ..symbolic.errors import ChainruleError
from ..symbolic.program import Program
from .functions import NUMPY_FUNCTIONS, namespace_for

MODULES: list[Any] = [NUMPY_FUNCTIONS, "numpy"]


def compile_expr(expr: sp.Basic, symbols: list[sp.Basic]):  # noqa: ANN201
    """A NumPy function of ``symbols`` computing ``expr`` (compiled once, then cached)."""
    return _compile(expr, tuple(symbols))


#: Number symbols passed in as values: lambdify would print E as ``e``, which can be the
#: name of a user's own symbol.
CONSTANT_VALUES = {sp.E: np.e, sp.pi: np.pi}


@functools.lru_cache(maxsize=4096)
def _compile(expr: sp.Basic, symbols: tuple[sp.Basic, ...]):  # noqa: ANN202
    with sp.evaluate(False):  # lambdify renames symbols; Max/Min must not compare again
        return _lambdify(expr, symbols)


def _lambdify(expr: sp.Basic, symbols: tuple[sp.Basic, ...]):  # noqa: ANN202
    """lambdify with every argument renamed ``_a0, _a1, …`` in one pass (lambdify's own
    ``dummify`` scans the whole expression once per argument: minutes on unit forms),
    so no user name can shadow a NumPy function."""
    consts = [c for c in CONSTANT_VALUES if expr.has(c)]
    args = [sp.Symbol(f"_a{i}") for i in range(len(symbols) + len(consts))]
    body = expr.xreplace(dict(zip([*symbols, *consts], args, strict=True)))
    f = sp.lambdify(args, body, modules=[namespace_for(body), "numpy"], dummify=False, cse=True)
    if not consts:
        return f
    values = [CONSTANT_VALUES[c] for c in consts]
    return lambda *a: f(*a, *values)


def evaluate_expr(expr: sp.Basic, values: Mapping[sp.Basic, Any]) -> Any:
    syms = sorted(expr.free_symbols, key=lambda s: s.name)
    missing = [s for s in syms if s not in values]
    if missing:
        raise ChainruleError("no value for " + ", ".join(str(s) for s in missing))
    f = compile_expr(expr, syms)
    return np.asarray(f(*[values[s] for s in syms]), dtype=float)


def leaf_values(program: Program, point: Mapping[str, Any]) -> dict[sp.Basic, Any]:
    """Symbol → value for every leaf; consts take their declared value unless given."""
    values: dict[sp.Basic, Any] = {}
    missing = []
    for v in program.variables:
        if v.name in point:
            values[v.symbol] = np.asarray(point[v.name], dtype=float)
        elif v.role == "const":
            values[v.symbol] = np.asarray(float(v.value), dtype=float)  # type: ignore[arg-type]
        elif v.name in program.needed_by_loss():
            missing.append(v.name)
    unknown = [k for k in point if k not in program]
    if unknown:
        raise ChainruleError("unknown name(s) in the point: " + ", ".join(sorted(unknown)))
    if missing:
        raise ChainruleError(
            "no value for " + ", ".join(missing) + " (give it with --at name=value)"
        )
    return values


def forward(program: Program, point: Mapping[str, Any]) -> dict[sp.Basic, Any]:
    """Values of every leaf and node at ``point`` (names → numbers)."""
    values = leaf_values(program, point)
    for a in program.assignments:
        values[a.symbol] = evaluate_expr(a.expr, values)
    return values


def backward(derivation: BackpropDerivation, values: dict[sp.Basic, Any]) -> dict[str, Any]:
    """Every error signal's value, given forward ``values`` (updated in place)."""
    out: dict[str, Any] = {}
    for s in derivation.steps:
        values[s.signal] = evaluate_expr(s.expression, values)
        out[s.node] = values[s.signal]
    return out


def gradient_at(
    derivation: BackpropDerivation, point: Mapping[str, Any]
) -> tuple[float, dict[str, Any]]:
    """(loss, {param: ∂L/∂param}) at ``point`` by the backprop program."""
    program = derivation.program
    if program.is_vector:  # matrix programs: gradients in each parameter's declared shape
        from .vector_eval import vector_gradient_at

        return vector_gradient_at(derivation, point)
    values = forward(program, point)
    signals = backward(derivation, values)
    grads = {
        p.name: signals.get(p.name, np.zeros_like(values.get(p.symbol, 0.0)))
        for p in program.params
    }
    return values[program.loss_assignment.symbol], grads
