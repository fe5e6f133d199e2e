"""Evaluate SymPy expressions at many points at once by walking the tree (no codegen).

Homework checking evaluates hundreds of small, one-off expressions; compiling each with
``lambdify`` would cost more than evaluating it. This walker evaluates the generic
algebra itself and every operation by its registry entry (a scalar function by its
``numpy`` form, a tensor operation by its ``evaluate`` rule, the one the vector
evaluator uses too), works on arrays of points, and never builds or runs source code.

Matrix expressions (vector programs) evaluate on *stacks*: a value of shape
``(k, rows, cols)`` holds one matrix per point, scalars are ``(k, 1, 1)``, vectors are
columns; size symbols (``m``) take their numbers from ``env`` (:class:`Stacks`).

>>> import numpy as np, sympy as sp
>>> x = sp.Symbol("x")
>>> evaluate(x**2 + sp.sin(x), {x: np.array([0.0, 1.0])}).round(3).tolist()
[0.0, 1.841]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from ..ops import REGISTRY, Op, U
from ..symbolic.errors import ChainruleError


class EvalError(ChainruleError):
    """An expression holds something the evaluator cannot compute."""


def _number(e: sp.Basic) -> float:
    try:
        return float(e)
    except (OverflowError, TypeError, ValueError):
        return float("inf") if e.is_positive else float("nan")


def evaluate(
    expr: sp.Basic, env: Mapping[sp.Basic, Any], memo: dict[sp.Basic, Any] | None = None
) -> Any:
    """The value of ``expr`` with symbols taken from ``env`` (floats or arrays)."""
    memo = {} if memo is None else memo
    with np.errstate(all="ignore"):
        return _eval(expr, env, memo)


def _eval(e: sp.Basic, env: Mapping[sp.Basic, Any], memo: dict[sp.Basic, Any]) -> Any:
    hit = memo.get(e)
    if hit is not None:
        return hit
    if e in env:
        return env[e]
    out: Any
    rule = _matrix_rule(e, REGISTRY.for_node(e))
    if rule is not None:
        out = rule(e, env, lambda a: _eval(a, env, memo))
    elif e.is_Number or e in (sp.E, sp.pi):
        out = _number(e)
    elif e.is_Symbol:
        raise EvalError(f"no value for {e}")
    elif e.is_Add:
        out = _fold(e.args, env, memo, np.add)
    elif e.is_Mul:
        out = _fold(e.args, env, memo, np.multiply)
    elif e.is_Pow:
        base, exp = e.args
        out = np.power(_as_float(_eval(base, env, memo)), _eval(exp, env, memo))
    else:
        out = _function(e, env, memo)
    memo[e] = out
    return out


def _function(e: sp.Basic, env: Mapping[sp.Basic, Any], memo: dict[sp.Basic, Any]) -> Any:
    """A scalar function by its registry entry: its NumPy form (a binary one such as
    ``np.maximum`` folded over more arguments), or, for a function defined by a body,
    the body."""
    op = REGISTRY.for_node(e)
    if op is None or op.kind != "scalar":
        raise EvalError(f"cannot evaluate {type(e).__name__}")
    if op.numpy is None:
        if op.expand is None:
            raise EvalError(f"cannot evaluate {type(e).__name__}")
        return _eval(op.expand(*e.args), env, memo)
    args = [_eval(a, env, memo) for a in e.args]
    if len(args) > 2 and getattr(op.numpy, "nin", None) == 2:
        return _fold_values(args, op.numpy)
    return op.numpy(*args)


def _fold(
    args: tuple[sp.Basic, ...],
    env: Mapping[sp.Basic, Any],
    memo: dict[sp.Basic, Any],
    op: Callable[[Any, Any], Any],
) -> Any:
    out = _eval(args[0], env, memo)
    for a in args[1:]:
        out = op(out, _eval(a, env, memo))
    return out


def _as_float(v: Any) -> Any:
    return np.asarray(v, dtype=float)


# ------------------------------------------------------------------ matrices (stacked)
Rec = Callable[[sp.Basic], Any]


def _dim(d: sp.Basic, env: Mapping[sp.Basic, Any]) -> int:
    """A matrix dimension as a number (sizes like ``m`` come from ``env``)."""
    d = sp.sympify(d)
    if d.is_Integer:
        return int(d)
    subs = {s: sp.Integer(int(np.asarray(env[s]).flat[0])) for s in d.free_symbols if s in env}
    value = d.xreplace(subs)
    if not value.is_Integer:
        raise EvalError(f"size {d} is not known")
    return int(value)


def _shape(e: sp.Basic, env: Mapping[sp.Basic, Any]) -> tuple[int, int]:
    return _dim(e.shape[0], env), _dim(e.shape[1], env)


class Stacks:
    """The registry's evaluation protocol (see :mod:`chainrule.ops.tensor`) on stacks of
    matrices: a column is axis −2, a reduction keeps ``(k, 1, 1)``."""

    columns = -2

    def __init__(self, env: Mapping[sp.Basic, Any]) -> None:
        self.env = env

    def dim(self, d: sp.Basic) -> int:
        return _dim(d, self.env)

    def shape(self, e: sp.Basic) -> tuple[int, int]:
        return _shape(e, self.env)

    def reduce(self, f: Callable[..., Any], x: Any) -> Any:
        """A reduction over each point's matrix (the last two axes), kept ``(k, 1, 1)``."""
        x = np.asarray(x, dtype=float)
        return f(x) if x.ndim < 2 else f(x, axis=(-2, -1), keepdims=True)

    def elementwise(self, e: Any, rec: Rec) -> Any:
        x = np.asarray(rec(e.arg), dtype=float)
        inner = {**self.env, U: x}
        return np.broadcast_to(_eval(e.fn.expr, inner, {}), x.shape)

    def broadcast(self, x: Any, e: sp.Basic) -> Any:
        x = np.asarray(x, dtype=float)
        lead = x.shape[:-2] if x.ndim >= 2 else ()
        return np.broadcast_to(x, lead + self.shape(e))

    def diag(self, x: Any) -> Any:
        x = np.asarray(x, dtype=float)
        return x * np.eye(x.shape[-2])


def _entry(e: MatrixElement, env: Mapping[sp.Basic, Any], rec: Rec) -> Any:
    x = np.asarray(rec(e.parent), dtype=float)
    return x[..., int(e.i), int(e.j)][..., None, None]


def _no_value(e: sp.Basic, env: Mapping[sp.Basic, Any], rec: Rec) -> Any:
    raise EvalError(f"no value for {e}")


#: Generic matrix algebra → its NumPy evaluation on stacks (``rec`` evaluates a child);
#: operations are evaluated by their registry entry.
MATRIX_TABLE: dict[type, Callable[[Any, Mapping[sp.Basic, Any], Rec], Any]] = {
    sp.OneMatrix: lambda e, env, rec: np.ones(_shape(e, env)),
    sp.ZeroMatrix: lambda e, env, rec: np.zeros(_shape(e, env)),
    sp.Identity: lambda e, env, rec: np.eye(_dim(e.shape[0], env)),
    MatrixElement: _entry,
    sp.MatrixSymbol: _no_value,
}


def _matrix_rule(
    e: sp.Basic, op: Op | None
) -> Callable[[Any, Mapping[sp.Basic, Any], Rec], Any] | None:
    if op is not None and op.evaluate is not None:
        evaluate = op.evaluate
        return lambda e, env, rec: evaluate(Stacks(env), e, rec)
    if not (getattr(e, "is_Matrix", False) or isinstance(e, MatrixElement)):
        return None
    for cls in type(e).__mro__:
        rule = MATRIX_TABLE.get(cls)
        if rule is not None:
            return rule
    raise EvalError(f"cannot evaluate {type(e).__name__}")


def _fold_values(vals: list[Any], op: Callable[[Any, Any], Any]) -> Any:
    out = vals[0]
    for v in vals[1:]:
        out = op(out, v)
    return out
