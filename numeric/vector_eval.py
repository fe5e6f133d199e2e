"""Evaluate vector programs and their backprop at concrete arrays (NumPy, float64).

An interpreter over the matrix-expression tree (no generated source): each operation
is evaluated by its registry entry (``op.evaluate(ev, e, rec)``, the same rule the
homework evaluator uses on stacks), generic algebra by :data:`EVALUATORS`. Internally
vectors are ``(n, 1)`` columns; values come in and gradients go out in each name's
DECLARED shape (``b1[3]`` → ``(3,)``, ``W[2, 3]`` → ``(2, 3)``, a scalar → ``float``).

Sizes named in shapes are taken from the program's bindings (``const n = 3``) or
inferred from the arrays given; a mismatch is a :class:`ChainruleError`.

>>> from chainrule.symbolic import parse_program
>>> from chainrule.derive import backprop
>>> p = parse_program("param w[2]\\ninput x[2]\\nL = dot(w, x)^2\\nloss L")
>>> loss, grads = vector_gradient_at(backprop(p), {"w": [1.0, 2.0], "x": [3.0, 4.0]})
>>> float(loss), grads["w"].tolist()
(121.0, [66.0, 88.0])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from ..derive.records import BackpropDerivation
from ..ops import REGISTRY, U
from ..symbolic.errors import ChainruleError
from ..symbolic.program import Program, Shape
from .functions import NUMPY_FUNCTIONS, namespace_for, numpy_functions

#: Names generated NumPy code may call (see :mod:`chainrule.numeric.numpy_printer`).
NUMPY_NAMESPACE: dict[str, Any] = {
    "np": np,
    **NUMPY_FUNCTIONS,
    **numpy_functions(kind="tensor"),
}


class Evaluator:
    """Evaluates expressions given leaf values (symbol → array) and size values."""

    def __init__(
        self,
        values: dict[sp.Basic, Any],
        sizes: Mapping[sp.Basic, int],
        cache: dict[sp.Basic, Callable[..., Any]] | None = None,
    ) -> None:
        self.values = values
        self.sizes = dict(sizes)
        for size, n in self.sizes.items():  # sizes appear in expressions (mean: 1/n)
            self.values.setdefault(size, float(n))
        self._compiled = {} if cache is None else cache  # lambdified elementwise bodies

    def dim(self, d: sp.Expr) -> int:
        value = sp.sympify(sp.sympify(d).xreplace(self.sizes))
        if not value.is_Integer:
            raise ChainruleError(f"size {d} is not known; give arrays that fix it")
        return int(value)

    def shape(self, e: sp.Basic) -> tuple[int, int]:
        return self.dim(e.shape[0]), self.dim(e.shape[1])

    def __call__(self, e: sp.Basic, memo: dict[sp.Basic, Any] | None = None) -> Any:
        memo = {} if memo is None else memo
        hit = memo.get(e)
        if hit is not None:
            return hit
        if e in self.values:
            return self.values[e]
        rule = _rule_for(e)
        if rule is None:
            raise ChainruleError(f"cannot evaluate {type(e).__name__}: {e}")
        out = rule(self, e, lambda a: self(a, memo))
        memo[e] = out
        return out

    def compiled(self, body: sp.Basic, args: tuple[sp.Basic, ...]) -> Callable[..., Any]:
        key = sp.Tuple(body, *args)
        f = self._compiled.get(key)
        if f is None:
            modules = [namespace_for(body), "numpy"]
            f = sp.lambdify(list(args), body, modules=modules, dummify=True)
            self._compiled[key] = f
        return f

    # -- the evaluation protocol of the registry's entries (see chainrule.ops.tensor)
    #: The axis along a column (one example's vector).
    columns = 0

    def reduce(self, f: Callable[..., Any], x: Any) -> float:
        """A reduction of all entries to a number."""
        return float(f(x))

    def elementwise(self, e: Any, rec: Callable[[sp.Basic], Any]) -> Any:
        """φ applied to every entry of ``e.arg`` (the body compiled once)."""
        body = e.fn.expr
        extra = tuple(sorted(body.free_symbols - {U}, key=str))
        f = self.compiled(body, (U, *extra))
        x = rec(e.arg)
        return np.broadcast_to(f(x, *[rec(s) for s in extra]), x.shape).astype(float)

    def broadcast(self, x: Any, e: sp.Basic) -> Any:
        return np.broadcast_to(x, self.shape(e)).copy()

    def diag(self, x: Any) -> Any:
        return np.diagflat(x)


_ARGS = tuple(sp.Symbol(f"_a{k}", real=True) for k in range(8))  # fixed, for the cache


def _function(ev: Evaluator, e: sp.Basic, rec: Callable[[sp.Basic], Any]) -> Any:
    args = _ARGS[: len(e.args)]
    f = ev.compiled(e.func(*args), args)
    return f(*[rec(a) for a in e.args])


def _product(vals: list[Any]) -> Any:
    out = vals[0]
    for v in vals[1:]:
        out = out * v
    return out


#: Generic algebra → its NumPy evaluation (``rec`` evaluates a child); operations are
#: evaluated by their registry entry (:func:`_rule_for`).
EVALUATORS: dict[type, Callable[[Evaluator, Any, Callable[[sp.Basic], Any]], Any]] = {
    sp.OneMatrix: lambda ev, e, rec: np.ones(ev.shape(e)),
    sp.ZeroMatrix: lambda ev, e, rec: np.zeros(ev.shape(e)),
    sp.Identity: lambda ev, e, rec: np.eye(ev.dim(e.shape[0])),
    MatrixElement: lambda ev, e, rec: float(rec(e.parent)[int(e.i), int(e.j)]),
    sp.ImmutableDenseMatrix: lambda ev, e, rec: np.array(
        [[rec(x) for x in row] for row in e.tolist()], dtype=float
    ),
    sp.Number: lambda ev, e, rec: float(e),
    sp.NumberSymbol: lambda ev, e, rec: float(e),
    sp.Add: lambda ev, e, rec: sum(rec(a) for a in e.args),
    sp.Mul: lambda ev, e, rec: _product([rec(a) for a in e.args]),
    sp.Pow: lambda ev, e, rec: rec(e.base) ** rec(e.exp),
    sp.Function: _function,
}


def _rule_for(e: sp.Basic) -> Callable[..., Any] | None:
    op = REGISTRY.for_node(e)
    if op is not None and op.evaluate is not None:
        return op.evaluate
    if op is not None and op.kind == "scalar":
        return _function
    for cls in type(e).__mro__:
        rule = EVALUATORS.get(cls)
        if rule is not None:
            return rule
    return None


# ------------------------------------------------------------------ leaves, sizes
def _declared(v_shape: Shape) -> int:
    return len(v_shape)


def leaf_values(
    program: Program, point: Mapping[str, Any]
) -> tuple[dict[sp.Basic, Any], dict[sp.Basic, int]]:
    """(symbol → internal array, size symbol → int) from a point in declared shapes."""
    unknown = [k for k in point if k not in program]
    if unknown:
        raise ChainruleError("unknown name(s) in the point: " + ", ".join(sorted(unknown)))
    sizes: dict[str, int] = dict(program.sizes)
    values: dict[sp.Basic, Any] = {}
    needed = program.needed_by_loss()
    missing = []
    for v in program.variables:
        if v.name in point:
            arr = np.asarray(point[v.name], dtype=float)
            _bind(v.name, v.shape, arr, sizes)
            values[v.symbol] = float(arr) if not v.shape else as_carrier(arr, v.shape)
        elif v.role == "const" and v.value is not None:
            values[v.symbol] = float(v.value)  # type: ignore[arg-type]
        elif v.name in needed:
            missing.append(v.name)
    if missing:
        raise ChainruleError(
            "no value for " + ", ".join(missing) + " (give it with --at name=value)"
        )
    size_syms = {sp.Symbol(k, integer=True, positive=True): n for k, n in sizes.items()}
    return values, size_syms


def _bind(name: str, shape: Shape, arr: np.ndarray, sizes: dict[str, int]) -> None:
    if arr.ndim != len(shape):
        want = "a scalar" if not shape else f"{len(shape)}-d array of shape {list(shape)}"
        raise ChainruleError(f"{name} must be {want}, got an array of shape {arr.shape}")
    for d, n in zip(shape, arr.shape, strict=False):
        if isinstance(d, int):
            if d != n:
                raise ChainruleError(
                    f"{name} is declared with size {d}, got {n} (shape {arr.shape})"
                )
        elif sizes.setdefault(d, n) != n:
            raise ChainruleError(
                f"size {d} is {sizes[d]} elsewhere but {name} has {n} (shape {arr.shape})"
            )


def as_carrier(arr: np.ndarray, shape: Shape) -> np.ndarray:
    """A value in its declared shape as the matrix that carries it internally: a vector
    as an (n, 1) column, a tensor [C, H, W] as its (C·H, W) matrix."""
    if len(shape) == 1:
        return arr.reshape(-1, 1)
    return arr if len(shape) == 2 else arr.reshape(-1, arr.shape[-1])


def to_declared(value: Any, shape: Shape, sizes: Mapping[Any, int] | None = None) -> Any:
    """An internal value ((n, 1) columns, (C·H, W) tensors) in a name's declared shape
    (``sizes`` binds the size names of a tensor's shape)."""
    arr = np.asarray(value, dtype=float)
    if not shape:
        return float(arr.reshape(-1)[0]) if arr.size == 1 else arr
    if len(shape) == 1:
        return arr.reshape(-1)
    if len(shape) > 2:
        known = {str(k): n for k, n in (sizes or {}).items()}
        axes = [d if isinstance(d, int) else known.get(d, -1) for d in shape]
        return arr.reshape(arr.shape[:-2] + tuple(axes))
    return arr


# ------------------------------------------------------------------ public API
def evaluator(program: Program, point: Mapping[str, Any]) -> Evaluator:
    values, sizes = leaf_values(program, point)
    return Evaluator(values, sizes)


def forward_values(
    program: Program, point: Mapping[str, Any], ev: Evaluator | None = None
) -> dict[str, Any]:
    """Every node's value at ``point`` (declared shapes)."""
    ev = ev or evaluator(program, point)
    out = {}
    for a in program.assignments:
        ev.values[a.symbol] = ev(a.expr)
        out[a.name] = to_declared(ev.values[a.symbol], a.shape, ev.sizes)
    return out


def backward_values(
    derivation: BackpropDerivation, point: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], Evaluator]:
    """(node values, error-signal values) at ``point``, both in declared shapes."""
    program = derivation.program
    ev = evaluator(program, point)
    fwd = forward_values(program, point, ev)
    signals = {}
    for s in derivation.steps:
        ev.values[s.signal] = ev(s.expression)
        signals[s.node] = to_declared(ev.values[s.signal], program[s.node].shape, ev.sizes)
    return fwd, signals, ev


def vector_gradient_at(
    derivation: BackpropDerivation, point: Mapping[str, Any]
) -> tuple[float, dict[str, Any]]:
    """(loss, {param: ∂L/∂param in the param's declared shape}) at ``point``."""
    program = derivation.program
    fwd, signals, ev = backward_values(derivation, point)
    grads = {}
    for p in program.params:
        if p.name in signals:
            grads[p.name] = signals[p.name]
        else:  # not used by the loss
            grads[p.name] = to_declared(
                np.zeros(ev.shape(p.symbol)) if p.shape else 0.0, p.shape, ev.sizes
            )
    return float(fwd[program.loss]), grads


def gradient_function(
    derivation: BackpropDerivation,
) -> Callable[[Mapping[str, Any]], tuple[float, dict[str, Any]]]:
    """The gradient as a function of concrete arrays: ``f(point) -> (loss, grads)``."""

    def loss_and_grad(point: Mapping[str, Any]) -> tuple[float, dict[str, Any]]:
        return vector_gradient_at(derivation, point)

    loss_and_grad.__doc__ = f"(loss, gradients) of {derivation.program.title!r} at a point"
    return loss_and_grad


def loss_at(program: Program, point: Mapping[str, Any]) -> float:
    """The loss alone (for finite differences)."""
    return float(forward_values(program, point)[program.loss])


def evaluate_expression(
    expr: sp.Basic,
    program: Program,
    point: Mapping[str, Any],
    extra: Mapping[sp.Basic, Any] | None = None,
) -> Any:
    """Any expression over the program's names (nodes included) at ``point``."""
    ev = evaluator(program, point)
    forward_values(program, point, ev)
    ev.values.update(extra or {})
    return ev(expr)


def random_point(
    program: Program, sizes: Mapping[str, int] | None = None, seed: int = 0, scale: float = 0.5
) -> dict[str, Any]:
    """Random values for every leaf, in declared shapes (float64).

    Unbound sizes take ``sizes`` (default 2, 3, 4, … in order of appearance); targets
    that the softmax–cross-entropy simplification needs on the simplex (each column
    sums to 1) are drawn as probability vectors.
    """
    from ..derive.vector import concrete_sizes, simplex_inputs

    rng = np.random.default_rng(seed)
    dims = concrete_sizes(program, sizes)
    simplex = simplex_inputs(program)
    point: dict[str, Any] = {}
    for v in program.variables:
        if v.role == "const":
            continue
        shape = tuple(d if isinstance(d, int) else dims[d] for d in v.shape)
        if v.name in simplex:
            raw = rng.random(shape) + 0.1
            point[v.name] = raw / raw.sum(axis=0, keepdims=True)
        else:
            point[v.name] = (
                rng.normal(0.0, scale, shape) if shape else float(rng.normal(0.0, scale))
            )
    return point
