"""Evaluate SymPy expressions at many points at once by walking the tree (no codegen).

Homework checking evaluates hundreds of small, one-off expressions; compiling each with
``lambdify`` would cost more than evaluating it. This walker maps SymPy node types to
NumPy functions (one table, dispatched by type), works on arrays of points, and never
builds or runs source code.

Matrix expressions (vector programs) evaluate on *stacks*: a value of shape
``(k, rows, cols)`` holds one matrix per point, scalars are ``(k, 1, 1)``, vectors are
columns; size symbols (``m``) take their numbers from ``env``
(:data:`MATRIX_TABLE`, one line per node type).

>>> import numpy as np, sympy as sp
>>> x = sp.Symbol("x")
>>> evaluate(x**2 + sp.sin(x), {x: np.array([0.0, 1.0])}).round(3).tolist()
[0.0, 1.841]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import numpy as np
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from ..numeric.functions import NUMPY_FUNCTIONS
from ..symbolic import functions as F
from ..symbolic import matrix_ops as M
from ..symbolic.errors import ChainruleError


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


def _np(name: str) -> Callable[..., Any]:
    return cast(Callable[..., Any], NUMPY_FUNCTIONS[name])


#: SymPy function class → NumPy implementation.
FUNCTION_TABLE: dict[Any, Callable[..., Any]] = {
    F.sigma: _np("sigma"),
    F.sigma_prime: _np("sigma_prime"),
    F.relu: _np("relu"),
    F.step: _np("step"),
    F.softplus: _np("softplus"),
    F.leaky_relu: _np("leaky_relu"),
    F.elu: _np("elu"),
    F.leaky_relu_prime: _np("leaky_relu_prime"),
    F.elu_prime: _np("elu_prime"),
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
    out: Any
    rule = _matrix_rule(e)
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


def _matmul(e: sp.MatMul, env: Mapping[sp.Basic, Any], rec: Rec) -> Any:
    coeff: Any = 1.0
    out: Any = None
    for a in e.args:
        v = rec(a)
        if getattr(a, "is_Matrix", False):
            out = v if out is None else np.matmul(out, v)
        else:
            coeff = coeff * v
    return coeff * out


def _broadcast(e: M.Broadcast, env: Mapping[sp.Basic, Any], rec: Rec) -> Any:
    x = np.asarray(rec(e.arg), dtype=float)
    lead = x.shape[:-2] if x.ndim >= 2 else ()
    return np.broadcast_to(x, lead + _shape(e, env))


def _elementwise(e: M.Elementwise, env: Mapping[sp.Basic, Any], rec: Rec) -> Any:
    x = np.asarray(rec(e.arg), dtype=float)
    inner = {**env, M.U: x}
    return np.broadcast_to(_eval(e.fn.expr, inner, {}), x.shape)


def _reduce(f: Callable[..., Any], x: Any) -> Any:
    """A reduction over each point's matrix (the last two axes), kept ``(k, 1, 1)``."""
    x = np.asarray(x, dtype=float)
    return f(x) if x.ndim < 2 else f(x, axis=(-2, -1), keepdims=True)


def _softmax(z: Any) -> Any:
    z = np.asarray(z, dtype=float)
    e = np.exp(z - np.max(z, axis=-2, keepdims=True))
    return e / np.sum(e, axis=-2, keepdims=True)


def _log_softmax(z: Any) -> Any:
    z = np.asarray(z, dtype=float)
    m = np.max(z, axis=-2, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=-2, keepdims=True))


def _entry(e: MatrixElement, env: Mapping[sp.Basic, Any], rec: Rec) -> Any:
    x = np.asarray(rec(e.parent), dtype=float)
    return x[..., int(e.i), int(e.j)][..., None, None]


def _no_value(e: sp.Basic, env: Mapping[sp.Basic, Any], rec: Rec) -> Any:
    raise EvalError(f"no value for {e}")


#: Matrix node type → its NumPy evaluation on stacks (``rec`` evaluates a child).
MATRIX_TABLE: dict[type, Callable[[Any, Mapping[sp.Basic, Any], Rec], Any]] = {
    sp.MatMul: _matmul,
    sp.MatAdd: lambda e, env, rec: _fold_values([rec(a) for a in e.args], np.add),
    sp.Transpose: lambda e, env, rec: np.swapaxes(np.asarray(rec(e.arg), dtype=float), -1, -2),
    sp.HadamardProduct: lambda e, env, rec: _fold_values([rec(a) for a in e.args], np.multiply),
    sp.HadamardPower: lambda e, env, rec: np.power(
        np.asarray(rec(e.args[0]), dtype=float), rec(e.args[1])
    ),
    M.Elementwise: _elementwise,
    M.Broadcast: _broadcast,
    M.MatSum: lambda e, env, rec: _reduce(np.sum, rec(e.args[0])),
    M.Mean: lambda e, env, rec: _reduce(np.mean, rec(e.args[0])),
    M.Dot: lambda e, env, rec: _reduce(np.sum, np.multiply(rec(e.args[0]), rec(e.args[1]))),
    M.Norm2: lambda e, env, rec: _reduce(np.sum, np.square(rec(e.args[0]))),
    M.Softmax: lambda e, env, rec: _softmax(rec(e.arg)),
    M.LogSoftmax: lambda e, env, rec: _log_softmax(rec(e.arg)),
    M.SumCols: lambda e, env, rec: np.sum(rec(e.arg), axis=-1, keepdims=True),
    M.SumRows: lambda e, env, rec: np.sum(rec(e.arg), axis=-2, keepdims=True),
    sp.OneMatrix: lambda e, env, rec: np.ones(_shape(e, env)),
    sp.ZeroMatrix: lambda e, env, rec: np.zeros(_shape(e, env)),
    sp.Identity: lambda e, env, rec: np.eye(_dim(e.shape[0], env)),
    MatrixElement: _entry,
    sp.MatrixSymbol: _no_value,
}


def _matrix_rule(e: sp.Basic) -> Callable[[Any, Mapping[sp.Basic, Any], Rec], Any] | None:
    if not (getattr(e, "is_Matrix", False) or isinstance(e, (M._Reduction, MatrixElement))):
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
