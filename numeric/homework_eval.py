"""Evaluate SymPy expressions at many points at once by walking the tree (no codegen).

Homework checking evaluates hundreds of small, one-off expressions; compiling each with
``lambdify`` would cost more than evaluating it. This walker maps SymPy node types to
NumPy functions (one table, dispatched by type), works on arrays of points, and never
builds or runs source code.

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

from ..symbolic import functions as F
from ..symbolic.errors import ChainruleError
from .functions import NUMPY_FUNCTIONS


def _max(*a: Any) -> Any:
    out = a[0]
    for v in a[1:]:
        out = np.maximum(out, v)
    return out


def _min(*a: Any) -> Any:
    out = a[0]
    for v in a[1:]:
        out = np.minimum(out, v)
    return out


#: SymPy function class → NumPy implementation.
FUNCTION_TABLE: dict[Any, Callable[..., Any]] = {
    F.sigma: NUMPY_FUNCTIONS["sigma"],
    F.sigma_prime: NUMPY_FUNCTIONS["sigma_prime"],
    F.relu: NUMPY_FUNCTIONS["relu"],
    F.step: NUMPY_FUNCTIONS["step"],
    F.softplus: NUMPY_FUNCTIONS["softplus"],
    F.leaky_relu: NUMPY_FUNCTIONS["leaky_relu"],
    F.elu: NUMPY_FUNCTIONS["elu"],
    sp.exp: np.exp,
    sp.log: np.log,
    sp.tanh: np.tanh,
    sp.sin: np.sin,
    sp.cos: np.cos,
    sp.Abs: np.abs,
    sp.sign: np.sign,
    sp.Max: _max,
    sp.Min: _min,
}


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
    if e.is_Number or e in (sp.E, sp.pi):
        out: Any = _number(e)
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
        f = FUNCTION_TABLE.get(type(e)) or FUNCTION_TABLE.get(e.func)  # type: ignore[call-overload]
        if f is None:
            raise EvalError(f"cannot evaluate {type(e).__name__}")
        out = f(*[_eval(a, env, memo) for a in e.args])
    memo[e] = out
    return out


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
