"""Unit form: a vector program expanded entry by entry into a scalar program.

``z = W1 @ x + b1`` with ``W1[2, 2]`` becomes ``z_1 = W1_1_1*x_1 + W1_1_2*x_2 + b1_1`` and
``z_2 = …`` (``as_explicit`` on concrete small shapes). Running the scalar backprop on
it and comparing numbers with the vectorized derivation is the consistency proof
between the two ways the lectures write backprop.

>>> from chainrule.symbolic import parse_program
>>> p = parse_program("param W[2, 2]\\ninput x[2]\\nz = W @ x\\nL = sum(z)\\nloss L")
>>> [(a.name, str(a.expr)) for a in unit_form(p).program.assignments]
[('z_1', 'W_1_1*x_1 + W_1_2*x_2'), ('z_2', 'W_2_1*x_1 + W_2_2*x_2'), ('L', 'z_1 + z_2')]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from ..ops import REGISTRY
from ..symbolic.program import Assignment, Program, Variable, make_symbol
from .sizes import concrete_sizes, size_symbols

Matrix = sp.ImmutableMatrix


class Expander:
    """Expands matrix expressions to explicit matrices of scalar expressions."""

    def __init__(self, env: dict[sp.Basic, Any], sizes: dict[sp.Basic, int]) -> None:
        self.env = env
        self.sizes = sizes
        self.memo: dict[sp.Basic, Any] = {}

    def dim(self, d: sp.Expr) -> int:
        return int(sp.sympify(d).xreplace(self.sizes))

    def shape(self, e: sp.Basic) -> tuple[int, int]:
        return self.dim(e.shape[0]), self.dim(e.shape[1])

    def __call__(self, e: sp.Basic) -> Any:
        if e in self.env:
            return self.env[e]
        if e in self.sizes:  # a size in an expression (mean over an axis: 1/B)
            return sp.Integer(self.sizes[e])
        if e in self.memo:
            return self.memo[e]
        rule = _rule_for(e)
        if rule is not None:
            out = rule(self, e)
            self.memo[e] = out
            return out
        if e.is_Atom:
            return e
        raise NotImplementedError(f"cannot expand {type(e).__name__}")


def _apply(x: Expander, e: sp.Basic) -> sp.Basic:
    return e.func(*[x(a) for a in e.args])


#: Generic algebra → its explicit expansion; every operation's own expansion is in its
#: registry entry (``Op.unit_form``).
EXPANSIONS: dict[type, Callable[[Expander, Any], Any]] = {
    sp.OneMatrix: lambda x, e: Matrix(sp.ones(*x.shape(e))),
    sp.ZeroMatrix: lambda x, e: Matrix(sp.zeros(*x.shape(e))),
    sp.Identity: lambda x, e: Matrix(sp.eye(x.dim(e.shape[0]))),
    sp.Add: lambda x, e: sp.Add(*[x(a) for a in e.args]),
    sp.Mul: lambda x, e: sp.Mul(*[x(a) for a in e.args]),
    sp.Pow: lambda x, e: sp.Pow(x(e.base), x(e.exp)),
}


def _rule_for(e: sp.Basic) -> Callable[[Expander, Any], Any] | None:
    op = REGISTRY.for_node(e)
    if op is not None and op.unit_form is not None:
        return op.unit_form
    for cls in type(e).__mro__:
        rule = EXPANSIONS.get(cls)
        if rule is not None:
            return rule
    if op is not None and op.kind == "scalar" or isinstance(e, sp.Function):
        return _apply  # a scalar function of expanded arguments
    return None


# ------------------------------------------------------------------ unit program
@dataclass
class UnitForm:
    """The scalar program and, per vector name, the array of its units' names."""

    program: Program
    entries: dict[str, np.ndarray]  # name → object array of unit names (declared shape)
    sizes: dict[str, int]


def _unit_names(name: str, shape: tuple[int, ...], taken: set[str]) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        unit = name + "".join(f"_{k + 1}" for k in idx)
        while unit in taken:
            unit += "_"
        taken.add(unit)
        out[idx] = unit
    return out


def _as_matrix(names: np.ndarray) -> sp.ImmutableMatrix:
    grid = names.reshape(-1, 1) if names.ndim == 1 else names.reshape(-1, names.shape[-1])
    return Matrix(grid.shape[0], grid.shape[1], lambda i, j: make_symbol(str(grid[i, j])))


def unit_form(program: Program, sizes: dict[str, int] | None = None) -> UnitForm:
    """Expand ``program`` to unit form on concrete sizes (bound, given or defaults)."""
    dims = concrete_sizes(program, sizes)
    taken = {n for n in program.topological_order()}
    env: dict[sp.Basic, Any] = {}
    entries: dict[str, np.ndarray] = {}
    variables: list[Variable] = []

    def concrete(shape: tuple) -> tuple[int, ...]:  # noqa: ANN001
        return tuple(d if isinstance(d, int) else dims[d] for d in shape)

    for v in program.variables:
        if not v.shape:
            variables.append(Variable(v.name, v.role, v.symbol, (), v.value, v.span))
            continue
        names = _unit_names(v.name, concrete(v.shape), taken)
        entries[v.name] = names
        env[v.symbol] = _as_matrix(names)
        variables += [Variable(str(n), v.role, make_symbol(str(n))) for n in names.flat]
    expand = Expander(env, size_symbols(dims))
    assignments: list[Assignment] = []
    for a in program.assignments:
        value = expand(a.expr)
        expand.memo.clear()
        if not a.shape:
            assignments.append(Assignment(a.name, a.symbol, value, (), a.span, a.display))
            continue
        names = _unit_names(a.name, concrete(a.shape), taken)
        entries[a.name] = names
        flat = value.reshape(value.rows * value.cols, 1)
        grid = names.reshape(-1)
        for n, expr in zip(grid, list(flat) if names.ndim == 1 else list(value), strict=False):
            assignments.append(Assignment(str(n), make_symbol(str(n)), expr, (), a.span))
        env[a.symbol] = _as_matrix(names)
    unit = Program(
        f"{program.title} (unit form)",
        variables,
        assignments,
        program.loss,
        program.filename,
        program.source,
    )
    return UnitForm(unit, entries, dims)


def flatten_point(uf: UnitForm, point: dict[str, Any]) -> dict[str, float]:
    """A point in declared shapes → the unit program's point (one number per unit)."""
    flat: dict[str, float] = {}
    for name, value in point.items():
        if name in uf.entries:
            arr = np.asarray(value, dtype=float)
            for idx in np.ndindex(*arr.shape):
                flat[str(uf.entries[name][idx])] = float(arr[idx])
        else:
            flat[name] = float(value)
    return flat


# --------------------------------------------------------------- consistency
