"""Tensor operations: ``@``, ``+``, ``.T``, ``∘``, elementwise powers, componentwise
functions, broadcasting, ``sum``, ``mean``, ``dot``, ``norm2``, ``softmax``,
``log_softmax`` (and the helpers of their gradients: row and column sums, ``diag``).

Each entry holds the operation's vector–Jacobian product (Jacobians are never built:
``z̄ = h̄ ∘ σ'(z)``, not ``diag(σ'(z)) h̄``), its entrywise expansion (the unit form), its
cost, its NumPy evaluation and the NumPy code generated for it, and its printing.
Vectors are columns ``(n, 1)``; reductions return scalars.

>>> import sympy as sp
>>> from chainrule.ops import REGISTRY
>>> W, x = sp.MatrixSymbol("W", 2, 3), sp.MatrixSymbol("x", 3, 1)
>>> g = sp.MatrixSymbol("z_bar", 2, 1)
>>> matmul_op = REGISTRY.for_node(W * x)
>>> matmul_op.vjp(g, W * x, 0), matmul_op.vjp(g, W * x, 1)
(z_bar*x.T, W.T*z_bar)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from typing import Any

import numpy as np
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixExpr

from . import batched as bt
from . import index_rules as ix
from . import tangents as tg
from .algebra import (
    U,
    Verbatim,
    arg_size,
    hadamard,
    is_matrix,
    mat_add,
    mat_mul,
    matmul,
    scale,
    spread,
)
from .registry import Fusion, Op, OpError, Registry

Matrix = sp.ImmutableMatrix


# ================================================================ node classes
class TensorNode:
    """Mixin: printing through the node's registry entry (``op``)."""

    op: Op | None = None
    name = ""

    @property
    def operands(self) -> tuple[sp.Basic, ...]:
        """The arguments that are values (not a function body or a size)."""
        return self.args  # type: ignore[attr-defined,no-any-return]

    def _args_text(self, printer: Any) -> str:
        return ", ".join(printer._print(a) for a in self.args)  # type: ignore[attr-defined]

    def _sympystr(self, printer: Any) -> str:
        return f"{self.name}({self._args_text(printer)})"

    def _latex(self, printer: Any) -> str:
        name = self.name.replace("_", r"\_")
        return rf"\operatorname{{{name}}}\left({self._args_text(printer)}\right)"

    def _lecture_unicode(self, printer: Any) -> str:
        render = self.op.extra.get("unicode_form") if self.op else None
        return render(self, printer) if render else self._sympystr(printer)

    def _lecture_latex(self, printer: Any) -> str:
        render = self.op.extra.get("latex_form") if self.op else None
        return render(self, printer) if render else self._latex(printer)

    def _numpycode(self, printer: Any) -> str:
        assert self.op is not None and self.op.numpy_print is not None
        return self.op.numpy_print(printer, self)


class Reduction(TensorNode, sp.Expr):
    """A scalar computed from matrices (``sum``, ``mean``, ``dot``, ``norm2``)."""

    is_commutative = True
    is_real = True

    def __new__(cls, *args: sp.Basic) -> Reduction:
        return sp.Expr.__new__(cls, *args)


class ColumnwiseOp(TensorNode, MatrixExpr):
    """An operation applied to each column (each example) of its argument."""

    def __new__(cls, arg: sp.Basic) -> ColumnwiseOp:
        return MatrixExpr.__new__(cls, arg)

    @property
    def arg(self) -> sp.Basic:
        return self.args[0]

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return self.arg.shape

    def _sympystr(self, printer: Any) -> str:
        return f"{self.name}({printer._print(self.arg)})"


class MatSum(Reduction):
    """Σᵢⱼ Xᵢⱼ, the sum of all entries (``sum(v)``)."""

    name = "sum"


class Mean(Reduction):
    """The mean of all entries (``mean(v)``)."""

    name = "mean"


class Dot(Reduction):
    """⟨u, v⟩ = Σ uᵢ vᵢ (Frobenius inner product for matrices; ``dot(u, v)``)."""

    name = "dot"


class Norm2(Reduction):
    """‖v‖², the squared Euclidean (Frobenius) norm (``norm2(v)``)."""

    name = "norm2"


class Softmax(ColumnwiseOp):
    """softmax(z)ᵢ = exp(zᵢ) / Σⱼ exp(zⱼ), per column."""

    name = "softmax"


class LogSoftmax(ColumnwiseOp):
    """log_softmax(z)ᵢ = zᵢ − log Σⱼ exp(zⱼ), per column."""

    name = "log_softmax"


class SumCols(ColumnwiseOp):
    """Row sums ``(m, B) → (m, 1)``: the gradient of a bias broadcast over columns."""

    name = "sum_cols"

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return (self.arg.shape[0], sp.S.One)


class SumRows(ColumnwiseOp):
    """Column sums ``(m, n) → (1, n)``: the gradient of a row broadcast over rows."""

    name = "sum_rows"

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return (sp.S.One, self.arg.shape[1])


class Diag(ColumnwiseOp):
    """diag(v): the diagonal matrix of a vector (Jacobians of elementwise ops)."""

    name = "diag"
    is_diagonal = True

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return (self.arg.shape[0], self.arg.shape[0])


def _print_body(fn: sp.Lambda, arg: sp.Basic, printer: Any, wrap: bool = True) -> str:
    """φ(arg) printed with ``printer``: ``sigma(z)``, or ``(1 - tanh(z)**2)``."""
    body = fn.expr
    text = printer._print(arg)
    out = printer._print(body.xreplace({U: Verbatim(text)}))
    simple = isinstance(body, sp.Function) and body.args and body.args[0] == U
    return out if simple or not wrap else f"({out})"


class Elementwise(TensorNode, MatrixExpr):
    """φ applied to every entry: ``Elementwise(Lambda(u, sigma(u)), z)`` is σ(z).

    The function is a :class:`sympy.Lambda` of the fixed variable :data:`U`; its body
    may hold scalar constants (``leaky_relu(u, a)``).
    """

    def __new__(cls, fn: sp.Lambda, arg: sp.Basic) -> Elementwise:
        return MatrixExpr.__new__(cls, fn, arg)

    @property
    def fn(self) -> sp.Lambda:
        return self.args[0]

    @property
    def arg(self) -> sp.Basic:
        return self.args[1]

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return self.arg.shape

    @property
    def operands(self) -> tuple[sp.Basic, ...]:
        return (self.arg,)

    def derivative_fn(self, registry: Registry | None = None) -> sp.Lambda:
        """φ' as a Lambda, by the entry of φ (σ → σ', relu → step, …)."""
        body = self.fn.expr
        if (
            isinstance(body, sp.Function)
            and body.args
            and body.args[0] == U
            and not any(a.has(U) for a in body.args[1:])
        ):
            return sp.Lambda(U, local_partial(body, 0, registry))
        return sp.Lambda(U, sp.diff(body, U))

    def _entry(self, i, j, **kwargs):  # noqa: ANN001, ANN003, ANN202
        return self.fn(self.arg._entry(i, j, **kwargs))

    def _sympystr(self, printer: Any) -> str:
        return _print_body(self.fn, self.arg, printer)

    _latex = _lecture_unicode = _lecture_latex = _sympystr  # type: ignore[assignment]

    def _numpycode(self, printer: Any) -> str:
        return printer._print(self.fn.expr.xreplace({U: Verbatim(printer._print(self.arg))}))


def elementwise(func: Callable[..., sp.Basic], arg: sp.Basic, *extra: sp.Basic) -> Elementwise:
    """``func`` applied entrywise, e.g. ``elementwise(sigma, z)``, ``elementwise(leaky_relu,
    z, a)`` (extra scalar arguments stay fixed)."""
    return Elementwise(sp.Lambda(U, func(U, *extra)), arg)


class Broadcast(TensorNode, MatrixExpr):
    """A scalar, column ``(m, 1)`` or row ``(1, n)`` repeated to ``(rows, cols)``.

    It prints as its argument (NumPy broadcasting); its VJP sums the cotangent back
    over the broadcast axes.
    """

    def __new__(cls, arg: sp.Basic, rows: sp.Expr, cols: sp.Expr) -> Broadcast:
        return MatrixExpr.__new__(cls, sp.sympify(arg), sp.sympify(rows), sp.sympify(cols))

    @property
    def arg(self) -> sp.Basic:
        return self.args[0]

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return (self.args[1], self.args[2])

    @property
    def operands(self) -> tuple[sp.Basic, ...]:
        return (self.arg,)

    def spread_scalar(self) -> sp.Basic | None:
        return None if is_matrix(self.arg) else self.arg

    def _entry(self, i, j, **kwargs):  # noqa: ANN001, ANN003, ANN202
        a = self.arg
        if not getattr(a, "is_Matrix", False):
            return a
        return a._entry(0 if a.shape[0] == 1 else i, 0 if a.shape[1] == 1 else j, **kwargs)

    def _sympystr(self, printer: Any) -> str:
        return printer._print(self.arg)

    _latex = _lecture_unicode = _lecture_latex = _sympystr  # type: ignore[assignment]


def operands(e: sp.Basic) -> tuple[sp.Basic, ...]:
    """The value arguments of any node (an elementwise node's body is not one)."""
    return tuple(getattr(e, "operands", e.args))


def local_partial(f: sp.Basic, i: int, registry: Registry | None = None) -> sp.Basic:
    """∂f/∂(argument i) of a scalar function application, by its registry entry."""
    from . import REGISTRY

    op = (registry or REGISTRY).for_node(f)
    if op is not None and op.kind == "scalar" and i < len(op.partials):
        return op.partials[i](*f.args)
    return f.fdiff(i + 1)  # SymPy's own rule for anything else


# ================================================================ VJP rules
def unbroadcast(g: sp.Basic, arg: sp.Basic) -> sp.Basic:
    """Sum ``g`` over the axes along which ``arg`` was broadcast."""
    if not is_matrix(arg):
        from .algebra import scale_of_ones

        c = scale_of_ones(g)
        return c * arg_size(g) if c is not None else MatSum(g)
    rows, cols = arg.shape
    if rows == 1 and cols == 1:
        return SumRows(SumCols(g))
    if cols == 1 and g.shape[1] != 1:
        return SumCols(g)
    if rows == 1 and g.shape[0] != 1:
        return SumRows(g)
    return g


def column_scale(s: sp.Basic, like: sp.Basic) -> sp.Basic:
    """A per-column scalar row ``s`` (1, B) stretched to ``like``'s shape."""
    return Broadcast(s, *like.shape)


def _matmul_vjp(g: sp.Basic, ans: sp.Basic, i: int) -> sp.Basic:
    """Ā = Ḡ Bᵀ, B̄ = Aᵀ Ḡ (extended to chains); a scalar factor s gets ⟨Ḡ, ans/s⟩."""
    args = ans.args
    scalars = [a for a in args if not is_matrix(a)]
    mats = [a for a in args if is_matrix(a)]
    if not is_matrix(args[i]):
        others = [a for k, a in enumerate(args) if k != i and not is_matrix(a)]
        return Dot(g, matmul(*others, *mats)) if others else Dot(g, matmul(*mats))
    k = (
        mats.index(args[i])
        if mats.count(args[i]) == 1
        else sum(1 for a in args[:i] if is_matrix(a))
    )
    left = [m.T for m in reversed(mats[:k])]
    right = [m.T for m in reversed(mats[k + 1 :])]
    return scale(sp.Mul(*scalars), matmul(*left, g, *right))


def _hadamard_power_vjp(g: sp.Basic, ans: sp.Basic, i: int) -> sp.Basic:
    x, p = ans.args
    if i == 1:
        raise NotImplementedError("the exponent of an elementwise power is a number")
    factor = x if p == 2 else sp.HadamardPower(x, p - 1)
    return scale(p, hadamard(g, factor))


def _softmax_vjp(g: sp.Basic, ans: sp.Basic, i: int) -> sp.Basic:
    """z̄ = y ∘ ȳ − (yᵀȳ) y for a column (per column for matrices)."""
    if ans.shape[1] == 1:
        return mat_add(hadamard(ans, g), scale(-Dot(ans, g), ans))
    return mat_add(
        hadamard(ans, g), scale(-1, hadamard(ans, column_scale(SumRows(hadamard(ans, g)), ans)))
    )


def _log_softmax_vjp(g: sp.Basic, ans: sp.Basic, i: int) -> sp.Basic:
    """z̄ = ḡ − softmax(z) Σᵢ ḡᵢ (per column)."""
    y = Softmax(ans.arg)
    if ans.shape[1] == 1:
        return mat_add(g, scale(-MatSum(g), y))
    return mat_add(g, scale(-1, hadamard(y, column_scale(SumRows(g), y))))


def _elementwise_vjp(g: sp.Basic, ans: sp.Basic, i: int) -> sp.Basic:
    """z̄ = h̄ ∘ φ'(z): the diagonal Jacobian is never built."""
    return hadamard(g, Elementwise(ans.derivative_fn(), ans.arg))


# ================================================================ unit form
def _columns(m: sp.ImmutableMatrix) -> list[list[sp.Basic]]:
    return [list(m[:, j]) for j in range(m.cols)]


def _softmax_units(m: sp.ImmutableMatrix, log: bool) -> sp.ImmutableMatrix:
    out = sp.zeros(m.rows, m.cols)
    for j, col in enumerate(_columns(m)):
        total = sp.Add(*[sp.exp(v) for v in col])
        for i, v in enumerate(col):
            out[i, j] = v - sp.log(total) if log else sp.exp(v) / total
    return Matrix(out)


def _broadcast_units(x: Any, e: Broadcast) -> sp.ImmutableMatrix:
    rows, cols = x.shape(e)
    a = x(e.arg)
    if not is_matrix(e.arg):
        return Matrix(rows, cols, lambda i, j: a)
    return Matrix(rows, cols, lambda i, j: a[0 if a.rows == 1 else i, 0 if a.cols == 1 else j])


# ================================================================ costs
def _matmul_cost(c: Any, e: sp.MatMul) -> Any:
    mats = [a for a in e.args if is_matrix(a)]
    scalars = [a for a in e.args if not is_matrix(a) and a != -1]
    adds = muls = 0
    macs = sp.S.Zero
    rows, inner = mats[0].shape
    for m in mats[1:]:
        a, b, d = c.n(rows), c.n(inner), c.n(m.shape[1])
        adds, muls = adds + a * (b - 1) * d, muls + a * b * d
        macs += rows * inner * m.shape[1]
        inner = m.shape[1]
    if scalars:
        r, k = c.rc(e)
        muls += r * k + len(scalars) - 1
    return c.cost(adds=adds, muls=muls, macs=macs)


def _entries(c: Any, e: sp.Basic) -> int:
    r, k = c.rc(e)
    return int(r * k)


def _power_cost(c: Any, e: sp.HadamardPower) -> Any:
    p, n = e.args[1], _entries(c, e)
    if p.is_Integer and p >= 2:
        return c.cost(muls=(int(p) - 1) * n)
    if p.is_Integer and p < 0:
        return c.cost(muls=(abs(int(p)) - 1) * n, divs=n)
    return c.cost(calls=n)


def _inner_cost(c: Any, e: sp.Basic) -> Any:
    x = e.args[0]
    n = _entries(c, x)
    return c.cost(adds=n - 1, muls=n, macs=x.shape[0] * x.shape[1])


def _softmax_cost(c: Any, e: sp.Basic, log: bool) -> Any:
    r, k = c.rc(e)
    if log:
        return c.cost(adds=(r - 1) * k + r * k, calls=r * k + k)
    return c.cost(adds=(r - 1) * k, divs=r * k, calls=r * k)


# ================================================================ NumPy
# Evaluators pass ``ev`` with: ``shape(e)``, ``dim(d)``, ``reduce(f, x)`` (a reduction of
# all entries of each example's matrix), ``columns`` (the axis along a column), and
# ``scalar_fn(e, rec)`` (a scalar function application).
def _softmax_np(z: Any, axis: int) -> Any:
    """softmax along ``axis``, stable (the max is subtracted)."""
    z = np.asarray(z, dtype=float)
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax_np(z: Any, axis: int) -> Any:
    z = np.asarray(z, dtype=float)
    m = np.max(z, axis=axis, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))


def _matmul_eval(ev: Any, e: sp.MatMul, rec: Callable[[sp.Basic], Any]) -> Any:
    coeff: Any = 1.0
    out: Any = None
    for a in e.args:
        v = rec(a)
        if is_matrix(a):
            out = v if out is None else np.matmul(out, v)
        else:
            coeff = coeff * v
    return coeff * out


def _fold(vals: list[Any], f: Callable[[Any, Any], Any]) -> Any:
    return reduce(f, vals[1:], vals[0])


def _code_max_min(printer: Any, e: sp.Basic, name: str) -> str:
    args = [printer._print(a) for a in e.args]
    return reduce(lambda a, b: f"{name}({a}, {b})", args[1:], args[0])


def _matmul_code(p: Any, e: sp.MatMul) -> str:
    """``W1.T @ h_bar``; a scalar factor in front (``2 * W @ x``, ``-W @ x``)."""
    mats = " @ ".join(p.wrap(a) for a in e.args if is_matrix(a))
    coeff = sp.Mul(*[a for a in e.args if not is_matrix(a)])
    if coeff == 1:
        return mats
    if coeff == -1:
        return f"-{mats}"
    return f"{p.wrap(coeff)} * {mats}"


def _add_code(p: Any, e: sp.MatAdd) -> str:
    """``a + b - c``: negative terms last, as subtractions."""
    codes = [p._print(a) for a in e.args]
    codes = [c for c in codes if not c.startswith("-")] + [c for c in codes if c.startswith("-")]
    out = codes[0]
    for code in codes[1:]:
        out += f" - {code[1:]}" if code.startswith("-") else f" + {code}"
    return out


SOFTMAX_SOURCE = '''def softmax(z):
    """Softmax of each column, stable (the column max is subtracted first)."""
    xp = array_namespace(z)
    e = xp.exp(z - xp.max(z, axis=0, keepdims=True))
    return e / xp.sum(e, axis=0, keepdims=True)
'''

SOFTMAX_SOURCE_ANALYTIC = """def softmax(z):
    xp = array_namespace(z)
    e = xp.exp(z)
    return e / xp.sum(e, axis=0, keepdims=True)
"""

LOG_SOFTMAX_SOURCE = '''def log_softmax(z):
    """log softmax of each column by log-sum-exp (no overflow, no log 0)."""
    xp = array_namespace(z)
    m = z - xp.max(z, axis=0, keepdims=True)
    return m - xp.log(xp.sum(xp.exp(m), axis=0, keepdims=True))
'''

LOG_SOFTMAX_SOURCE_ANALYTIC = """def log_softmax(z):
    xp = array_namespace(z)
    return z - xp.log(xp.sum(xp.exp(z), axis=0, keepdims=True))
"""


# ================================================================ building
def _one_shaped(builder: Any, name: str, vals: list[Any]) -> Any:
    (a,) = vals
    if not a.shape:
        raise OpError(f"{name}() needs a vector or matrix")
    return a


def _build_matmul(builder: Any, name: str, vals: list[Any]) -> Any:
    """``A @ B`` with NumPy's shape rules (vectors are columns; ``u @ v`` is ⟨u, v⟩)."""
    left, right = vals
    a, b = left.shape, right.shape
    if not a or not b:
        raise OpError(
            f"{builder.text(0)} @ {builder.text(1)}: '@' needs vectors "
            f"or matrices, got {builder.shape_text(a)} @ {builder.shape_text(b)}",
            "use '*' to multiply by a scalar",
        )
    if not builder.dim_eq(a[-1], b[0]):
        raise OpError(
            f"{builder.text(0)} @ {builder.text(1)}: {builder.shape_text(a)} @ "
            f"{builder.shape_text(b)} — inner sizes {a[-1]} and {b[0]} differ"
        )
    if len(a) == 1 and len(b) == 1:
        return builder.val(Dot(left.expr, right.expr), ())
    if len(a) == 1:
        return builder.val(mat_mul(right.expr.T, left.expr), (b[1],))
    if len(b) == 1:
        return builder.val(mat_mul(left.expr, right.expr), (a[0],))
    return builder.val(mat_mul(left.expr, right.expr), (a[0], b[1]))


def _build_dot(builder: Any, name: str, vals: list[Any]) -> Any:
    u, v = vals
    if not u.shape or not builder.same(u.shape, v.shape):
        raise OpError(
            f"dot({builder.text(0)}, {builder.text(1)}): shapes "
            f"{builder.shape_text(u.shape)} and {builder.shape_text(v.shape)} differ"
        )
    return builder.val(Dot(u.expr, v.expr), ())


def _reduction_builder(node: type, scalar: Callable[[sp.Basic], sp.Basic]) -> Callable:
    def build(builder: Any, name: str, vals: list[Any]) -> Any:
        if len(vals) == 2:
            return _axis_reduction(builder, name, vals)
        (a,) = vals
        if not a.shape:
            return builder.val(scalar(a.expr), ())
        return builder.val(node(a.expr), ())

    return build


def _axis_reduction(builder: Any, name: str, vals: list[Any]) -> Any:
    """``sum(Z, 0)`` / ``mean(Z, 0)``: over the rows of a matrix (each column's sum, a
    vector of the columns' count); axis 1: over each row."""
    a, axis = vals
    call = f"{name}({builder.text(0)}, {builder.text(1)})"
    if len(a.shape) != 2:
        raise OpError(f"{call}: an axis needs a matrix, got {builder.shape_text(a.shape)}")
    if axis.shape or axis.expr not in (0, 1):
        raise OpError(f"{call}: the axis is 0 (over rows) or 1 (over columns)")
    rows, cols = a.expr.shape
    if axis.expr == 0:
        total, count, shape = SumRows(a.expr).T, rows, (a.shape[1],)
    else:
        total, count, shape = SumCols(a.expr), cols, (a.shape[0],)
    return builder.val(total if name == "sum" else scale(1 / count, total), shape)


def _columnwise_builder(node: type) -> Callable:
    def build(builder: Any, name: str, vals: list[Any]) -> Any:
        a = _one_shaped(builder, name, vals)
        if len(a.shape) > 2:
            raise OpError(
                f"{name}({builder.text(0)}): works on each column of a vector or matrix, got "
                f"a tensor {builder.shape_text(a.shape)}",
                f"flatten it first: {name}(flatten({builder.text(0)}))",
            )
        return builder.val(node(a.expr), a.shape)

    return build


# ================================================================ fusions
def _ce_term(expr: sp.Basic, y: sp.Basic, log_form: bool) -> tuple[sp.Basic, sp.Basic] | None:
    """(t, k) when the only terms of ``expr`` holding ``y`` are ``k·sum(t ∘ log y)``."""
    terms = [a for a in sp.Add.make_args(expr) if a.has(y)]
    if len(terms) != 1:
        return None
    coeff, rest = terms[0].as_coeff_mul()
    reductions = [r for r in rest if isinstance(r, MatSum)]
    if len(reductions) != 1:
        return None
    k = coeff * sp.Mul(*[r for r in rest if r is not reductions[0]])
    if k.has(y):
        return None
    inner = reductions[0].args[0]
    if not isinstance(inner, sp.HadamardProduct) or len(inner.args) != 2:
        return None
    for t, other in (inner.args, inner.args[::-1]):
        ok = (
            other == y
            if log_form
            else (
                isinstance(other, Elementwise)
                and other.arg == y
                and other.fn.expr == sp.log(other.fn.variables[0])
            )
        )
        if ok and isinstance(t, sp.MatrixSymbol) and not t.has(y):
            return t, k
    return None


def _cross_entropy_fusion(log_form: bool) -> Callable[..., Fusion | None]:
    """``y = softmax(z)`` (or log_softmax) read only by ``c = k·sum(t ∘ log y) + …``:
    ``z̄ = −k c̄ (y − t)``, valid when each column of t sums to 1."""

    def fuse(program: Any, a: Any, signal: Callable[[str], sp.Basic]) -> Fusion | None:
        if not isinstance(a.expr.arg, sp.MatrixSymbol):
            return None
        z = program.item_of(a.expr.arg)
        children = program.children(a.name)
        if z is None or not hasattr(z, "expr") or len(children) != 1:
            return None
        if program.children(z.name) != [a.name]:
            return None
        c = program[children[0]]
        hit = _ce_term(c.expr, a.symbol, log_form)
        if hit is None:
            return None
        t, k = hit
        out = Softmax(z.symbol) if log_form else a.symbol
        expression = scale(-k * signal(c.name), mat_add(out, scale(-1, t)))
        note = (  # the step's own line shows the formula in the lecture's notation
            "softmax followed by cross-entropy: one step, the prediction minus the target"
            f"{' scaled by ' + str(-k) if k != -1 else ''}; valid when "
            f"each column of {t} sums to 1 (one-hot or probability targets)"
        )
        return Fusion(z.name, a.name, c.name, expression, note, (str(t),))

    return fuse


def _softmax_jacobian(child: sp.Basic, v: sp.Basic) -> sp.Basic | None:
    """∂softmax(z)/∂z = diag(y) − y yᵀ."""
    if child.arg != v:
        return None
    return mat_add(Diag(child), scale(-1, mat_mul(child, child.T)))


def _elementwise_jacobian(child: sp.Basic, v: sp.Basic) -> sp.Basic | None:
    """∂σ(z)/∂z = diag(σ'(z)) (never built by the VJP; shown for teaching)."""
    return Diag(Elementwise(child.derivative_fn(), v)) if child.arg == v else None


def _hadamard_jacobian(child: sp.Basic, v: sp.Basic) -> sp.Basic | None:
    if v in child.args and len(child.args) == 2:
        return Diag(child.args[1 - child.args.index(v)])
    return None


def _matmul_jacobian(child: sp.Basic, v: sp.Basic) -> sp.Basic | None:
    if child.args[-1] == v and not child.args[-1].has(*child.args[:-1]):
        return sp.MatMul(*child.args[:-1])
    return None


# ================================================================ lecture renderings
# ``extra["unicode_form"]``/``["latex_form"]``: ``(node, printer) → text`` for the lecture
# printers (reports/notation.py), which ask the entry of every node they print.
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _prec(name: str) -> int:
    return int(sp.printing.precedence.PRECEDENCE[name])


def _matmul_unicode(e: sp.MatMul, p: Any) -> str:
    """``W⁽²⁾ᵀ ȳ`` (juxtaposition), ``−W x``."""
    return " ".join(p.parenthesize(a, _prec("Mul")) for a in e.args).replace("-1 ", "−")


def _transpose_unicode(e: sp.Transpose, p: Any) -> str:
    return p.parenthesize(e.arg, _prec("Pow")) + "ᵀ"


def _transpose_latex(e: sp.Transpose, p: Any) -> str:
    base = p.parenthesize(e.arg, _prec("Pow"))
    if "^" in base and not base.startswith(r"\left("):
        base = "{" + base + "}"  # W^{(2)} then ^\top: no double superscript
    return base + r"^\top"


def _hadamard_form(sign: str) -> Callable[[sp.HadamardProduct, Any], str]:
    return lambda e, p: sign.join(p.parenthesize(a, _prec("Mul")) for a in e.args)


def _power_unicode(e: sp.HadamardPower, p: Any) -> str:
    """``h∘²`` (an elementwise square)."""
    base = p.parenthesize(e.base, _prec("Pow"), strict=True)
    if e.exp.is_Integer and 0 < int(e.exp) < 10:
        return base + "∘" + str(int(e.exp)).translate(_SUPERSCRIPT)
    return f"{base}^∘({p._print(e.exp)})"


def _power_latex(e: sp.HadamardPower, p: Any) -> str:
    base = p.parenthesize(e.base, _prec("Pow"), strict=True)
    return rf"{base}^{{\circ {p._print(e.exp)}}}"


# ================================================================ the entries
def _dot_unicode(e: Dot, p: Any) -> str:
    u, v = (p._print(a) for a in e.args)
    return f"{u}ᵀ{v}" if e.args[0].shape[1] == 1 else f"⟨{u}, {v}⟩"


def _dot_latex(e: Dot, p: Any) -> str:
    u, v = (p._print(a) for a in e.args)
    return rf"{u}^\top {v}" if e.args[0].shape[1] == 1 else rf"\langle {u}, {v}\rangle"


# fmt: off
def tensor_entries() -> list[Op]:
    """The shipped tensor operations, one record each."""
    return [
        Op("matmul", sp.MatMul, "tensor", "matrix product A @ B",
           jvp=tg.matmul,
           index_form=ix.matmul,
           operator="@", arity=(2,), build_tensor=_build_matmul,
           vjp=_matmul_vjp,                                    # Ā = Ḡ Bᵀ, B̄ = Aᵀ Ḡ
           unit_form=lambda x, e: reduce(lambda a, b: a * b, [x(a) for a in e.args]),
           cost=_matmul_cost, evaluate=_matmul_eval, jacobian=_matmul_jacobian,
           numpy_print=_matmul_code,
           unicode="@", latex=" ", mathml="⁢", extra={"unicode_form": _matmul_unicode}),
        Op("add", sp.MatAdd, "tensor", "elementwise sum A + B",
           jvp=tg.add,
           index_form=ix.matadd,
           vjp=lambda g, ans, i: g,                             # each addend gets Ḡ
           unit_form=lambda x, e: reduce(lambda a, b: a + b, [x(a) for a in e.args]),
           cost=lambda c, e: c.cost(adds=(len(e.args) - 1) * _entries(c, e)),
           evaluate=lambda ev, e, rec: _fold([rec(a) for a in e.args], np.add),
           numpy_print=_add_code,
           unicode="+", latex="+", mathml="+",
           extra={"unicode_form": lambda e, p: p._print_Add(e)}),  # y − t: positive terms first
        Op("transpose", sp.Transpose, "tensor", "transpose Aᵀ (A.T)",
           jvp=tg.transpose,
           index_form=ix.transpose,
           vjp=lambda g, ans, i: g.T,                           # Ā = Ḡᵀ
           unit_form=lambda x, e: x(e.arg).T,
           cost=lambda c, e: c.cost(),
           evaluate=lambda ev, e, rec: np.swapaxes(np.asarray(rec(e.arg)), -1, -2),
           numpy_print=lambda p, e: f"{p.wrap(e.arg)}.T",
           unicode="ᵀ", latex=r"^\top", mathml="⊤",
           extra={"unicode_form": _transpose_unicode, "latex_form": _transpose_latex}),
        Op("hadamard", sp.HadamardProduct, "tensor", "elementwise product A ∘ B (A * B)",
           jvp=tg.hadamard_product,
           index_form=ix.hadamard,
           vjp=lambda g, ans, i: hadamard(g, *[a for k, a in enumerate(ans.args) if k != i]),
           jacobian=_hadamard_jacobian,
           unit_form=lambda x, e: reduce(
               lambda a, b: a.multiply_elementwise(b), [x(a) for a in e.args]),
           cost=lambda c, e: c.cost(muls=(len(e.args) - 1) * _entries(c, e)),
           evaluate=lambda ev, e, rec: _fold([rec(a) for a in e.args], np.multiply),
           numpy_print=lambda p, e: " * ".join(p.wrap(a) for a in e.args),
           unicode="∘", latex=r"\circ", mathml="∘",
           extra={"unicode_form": _hadamard_form(" ∘ "), "latex_form": _hadamard_form(r" \circ ")}),
        Op("hadamard_power", sp.HadamardPower, "tensor", "elementwise power A^p",
           jvp=tg.hadamard_power,
           index_form=ix.hadamard_power,
           vjp=_hadamard_power_vjp,                             # Ā = Ḡ ∘ p A^(p−1)
           unit_form=lambda x, e: x(e.args[0]).applyfunc(lambda v: v ** e.args[1]),
           cost=_power_cost,
           evaluate=lambda ev, e, rec: np.power(
               np.asarray(rec(e.args[0]), dtype=float), rec(e.args[1])),
           numpy_print=lambda p, e: f"{p.wrap(e.args[0])}**{p.wrap(e.args[1])}",
           unicode="∘", latex=r"^{\circ}",
           extra={"unicode_form": _power_unicode, "latex_form": _power_latex}),
        Op("elementwise", Elementwise, "tensor", "a scalar function on every entry",
           jvp=tg.elementwise,
           index_form=ix.elementwise,
           vjp=_elementwise_vjp,                                # z̄ = h̄ ∘ φ'(z)
           jacobian=_elementwise_jacobian,
           unit_form=lambda x, e: x(e.arg).applyfunc(e.fn),
           cost=lambda c, e: c.per_entry(e.fn.expr, _entries(c, e)),
           evaluate=lambda ev, e, rec: ev.elementwise(e, rec)),
        Op("broadcast", Broadcast, "tensor", "a scalar, row or column repeated (NumPy rules)",
           jvp=tg.broadcast, batched=bt.broadcast,
           index_form=ix.broadcast,
           vjp=lambda g, ans, i: unbroadcast(g, ans.arg),       # bias: Σ over the batch
           unit_form=_broadcast_units,
           cost=lambda c, e: c.cost(),
           evaluate=lambda ev, e, rec: ev.broadcast(rec(e.arg), e),
           numpy_print=lambda p, e: f"np.broadcast_to({p._print(e.arg)}, {p.shape(e)})"),
        Op("sum", MatSum, "tensor", "sum of all entries (sum(Z, 0): of each column)",
           extra={"sums_entries": True},
           jvp=tg.linear(MatSum), batched=bt.reduction("sum"),
           index_form=ix.matsum,
           arity=(1, 2), build_tensor=_reduction_builder(MatSum, lambda a: a),
           vjp=lambda g, ans, i: spread(g, ans.args[0]),        # x̄ = ḡ 𝟙
           unit_form=lambda x, e: sp.Add(*list(x(e.args[0]))),
           cost=lambda c, e: c.cost(adds=_entries(c, e.args[0]) - 1),
           evaluate=lambda ev, e, rec: ev.reduce(np.sum, rec(e.args[0])),
           numpy_print=lambda p, e: f"np.sum({p._print(e.args[0])})",
           unicode="sum", latex=r"\operatorname{sum}", mathml="sum"),
        Op("mean", Mean, "tensor", "mean of all entries (mean(Z, 0): of each column)",
           extra={"sums_entries": True},
           jvp=tg.linear(Mean), batched=bt.reduction("mean"),
           index_form=ix.mean,
           arity=(1, 2), build_tensor=_reduction_builder(Mean, lambda a: a),
           vjp=lambda g, ans, i: spread(g / arg_size(ans.args[0]), ans.args[0]),
           unit_form=lambda x, e: sp.Add(*list(x(e.args[0]))) / len(x(e.args[0])),
           cost=lambda c, e: c.cost(adds=_entries(c, e.args[0]) - 1, divs=1),
           evaluate=lambda ev, e, rec: ev.reduce(np.mean, rec(e.args[0])),
           numpy_print=lambda p, e: f"np.mean({p._print(e.args[0])})",
           unicode="mean", latex=r"\operatorname{mean}", mathml="mean"),
        Op("dot", Dot, "tensor", "inner product Σ uᵢ vᵢ",
           jvp=tg.dot, batched=bt.dot,
           index_form=ix.dot,
           arity=(2,), build_tensor=_build_dot,
           vjp=lambda g, ans, i: scale(g, ans.args[1 - i]),     # ū = ḡ v, v̄ = ḡ u
           unit_form=lambda x, e: sp.Add(
               *[a * b for a, b in zip(x(e.args[0]), x(e.args[1]), strict=False)]),
           cost=_inner_cost,
           evaluate=lambda ev, e, rec: ev.reduce(np.sum, np.multiply(rec(e.args[0]),
                                                                     rec(e.args[1]))),
           numpy_print=lambda p, e: f"np.sum({p.wrap(e.args[0])} * {p.wrap(e.args[1])})",
           unicode="·", latex=r"\cdot", mathml="⋅",
           extra={"unicode_form": _dot_unicode, "latex_form": _dot_latex}),
        Op("norm2", Norm2, "tensor", "squared Euclidean norm ‖v‖²",
           jvp=tg.norm2(Dot), batched=bt.norm2,
           index_form=ix.norm2,
           arity=(1,), build_tensor=_reduction_builder(Norm2, lambda a: a**2),
           vjp=lambda g, ans, i: scale(2 * g, ans.args[0]),     # v̄ = 2 ḡ v
           unit_form=lambda x, e: sp.Add(*[a**2 for a in x(e.args[0])]),
           cost=_inner_cost,
           evaluate=lambda ev, e, rec: ev.reduce(np.sum, np.square(rec(e.args[0]))),
           numpy_print=lambda p, e: f"np.sum({p.wrap(e.args[0])}**2)",
           unicode="‖·‖²", latex=r"\lVert\cdot\rVert^2",
           extra={"unicode_form": lambda e, p: f"‖{e._args_text(p)}‖²",
                  "latex_form": lambda e, p:
                      rf"\left\lVert {e._args_text(p)} \right\rVert^2"}),
        Op("softmax", Softmax, "tensor", "softmax of each column",
           jvp=tg.softmax(_softmax_vjp), batched=bt.helper("softmax"),
           log_form=lambda u: LogSoftmax(u),  # log softmax(u) = log_softmax(u)
           extra={"output": True},  # its value is a prediction (ŷ)
           index_form=ix.softmax,
           arity=(1,), build_tensor=_columnwise_builder(Softmax),
           latex_commands=("softmax",),
           vjp=_softmax_vjp,                                    # z̄ = y∘ȳ − (yᵀȳ) y
           jacobian=_softmax_jacobian, fuse=_cross_entropy_fusion(log_form=False),
           unit_form=lambda x, e: _softmax_units(x(e.arg), log=False),
           cost=lambda c, e: _softmax_cost(c, e, log=False),
           evaluate=lambda ev, e, rec: _softmax_np(rec(e.arg), ev.columns),
           numpy=lambda z: _softmax_np(z, 0), numpy_call="softmax",
           numpy_source=SOFTMAX_SOURCE, numpy_source_analytic=SOFTMAX_SOURCE_ANALYTIC,
           numpy_print=lambda p, e: f"softmax({p._print(e.arg)})",
           unicode="softmax", latex=r"\operatorname{softmax}", mathml="softmax"),
        Op("log_softmax", LogSoftmax, "tensor", "log softmax of each column",
           jvp=tg.log_softmax(Softmax, Dot, Broadcast), batched=bt.helper("log_softmax"),
           answer_spellings=("logsoftmax",),
           extra={"prediction": "softmax"},  # ŷ = softmax(z) for a node log_softmax(z)
           index_form=ix.log_softmax,
           arity=(1,), build_tensor=_columnwise_builder(LogSoftmax),
           vjp=_log_softmax_vjp,                                # z̄ = ḡ − softmax(z) Σḡ
           fuse=_cross_entropy_fusion(log_form=True),
           unit_form=lambda x, e: _softmax_units(x(e.arg), log=True),
           cost=lambda c, e: _softmax_cost(c, e, log=True),
           evaluate=lambda ev, e, rec: _log_softmax_np(rec(e.arg), ev.columns),
           numpy=lambda z: _log_softmax_np(z, 0), numpy_call="log_softmax",
           numpy_source=LOG_SOFTMAX_SOURCE,
           numpy_source_analytic=LOG_SOFTMAX_SOURCE_ANALYTIC,
           numpy_print=lambda p, e: f"log_softmax({p._print(e.arg)})",
           unicode="log_softmax", latex=r"\operatorname{log\_softmax}", mathml="log_softmax"),
        Op("sum_cols", SumCols, "tensor", "row sums (m, B) → (m, 1)",
           batched=bt.row_sums,
           index_form=ix.sum_cols,
           vjp=lambda g, ans, i: Broadcast(g, *ans.arg.shape),  # undo a reduction
           unit_form=lambda x, e: Matrix([sp.Add(*r) for r in x(e.arg).tolist()]),
           cost=lambda c, e: c.cost(adds=c.rc(e.arg)[0] * (c.rc(e.arg)[1] - 1)),
           evaluate=lambda ev, e, rec: np.sum(rec(e.arg), axis=-1, keepdims=True),
           numpy_print=lambda p, e: f"np.sum({p._print(e.arg)}, axis=1, keepdims=True)",
           extra={"sums_entries": True, "unicode_form": lambda e, p: f"{p._print(e.arg)} 𝟙",
                  "latex_form": lambda e, p: rf"{p._print(e.arg)} \mathbf{{1}}"}),
        Op("sum_rows", SumRows, "tensor", "column sums (m, n) → (1, n)",
           jvp=tg.linear(SumRows), batched=bt.column_sums,
           index_form=ix.sum_rows,
           vjp=lambda g, ans, i: Broadcast(g, *ans.arg.shape),
           unit_form=lambda x, e: Matrix([[sp.Add(*c) for c in _columns(x(e.arg))]]),
           cost=lambda c, e: c.cost(adds=(c.rc(e.arg)[0] - 1) * c.rc(e.arg)[1]),
           evaluate=lambda ev, e, rec: np.sum(rec(e.arg), axis=-2, keepdims=True),
           numpy_print=lambda p, e: f"np.sum({p._print(e.arg)}, axis=0, keepdims=True)",
           extra={"sums_entries": True, "unicode_form": lambda e, p: f"𝟙ᵀ{p._print(e.arg)}",
                  "latex_form": lambda e, p: rf"\mathbf{{1}}^\top {p._print(e.arg)}"}),
        Op("diag", Diag, "tensor", "the diagonal matrix of a vector",
           index_form=ix.diag,
           latex_commands=("diag",),
           unit_form=lambda x, e: Matrix(sp.diag(*list(x(e.arg)))),
           evaluate=lambda ev, e, rec: ev.diag(rec(e.arg)),
           numpy_print=lambda p, e: f"np.diagflat({p._print(e.arg)})"),
    ]
# fmt: on
