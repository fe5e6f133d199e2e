"""The lectures' other layers: convolution, pooling, flatten, maxout's ``max``.

One :class:`~chainrule.ops.Op` record per operation, everything about it in it (shape
rule, vector–Jacobian product in the lecture's form, entrywise expansion, cost, NumPy
evaluation and generated code, renderings). Operands are the vector programs' 2-D
matrices: a vector is an ``(n, 1)`` column, so one 2-D rule serves 1-D and 2-D
convolution (``scipy.signal.convolve2d`` on columns is ``np.convolve``).

* ``conv(x, w)`` — the lecture's convolution (kernel flipped, zero padding, full output
  ``n + k − 1``); ``conv(x, w, "valid")`` keeps the positions where the kernel fits.
  Backprop is flip-and-filter: for the full convolution ``x̄ = ȳ ⋆ w`` and ``w̄ = ȳ ⋆ x``
  (valid cross-correlations of ȳ); for the valid one ``x̄ = ȳ ⋆_full w`` and
  ``w̄ = flip(x ⋆ ȳ)``.
* ``maxpool1d(v, s)`` / ``avgpool1d(v, s)`` on vectors, ``maxpool2d(Z, s)`` /
  ``avgpool2d(Z, s)`` on matrices: windows of s (s×s), stride s, leftover rows and
  columns dropped; max-pooling routes Ȳ to the first maximum (row-major) of each group.
* ``flatten(Z)``: the entries of Z as one vector, row-major.
* ``max(a, b, …)`` / ``min(…)`` of tensors of one shape (maxout), and ``max(v)`` /
  ``min(v)`` of one tensor (a reduction); ties go to the first argument / entry.

NumPy helpers work on the last two axes and broadcast leading ones, so the vector
evaluator (one column), the homework evaluator (stacks of columns) and generated code
(examples moved to a leading axis) share them.

>>> from chainrule.ops import REGISTRY
>>> import numpy as np
>>> x, w = np.array([[2.0], [-1.0], [1.0]]), np.array([[1.0], [1.0], [2.0]])
>>> convolve(x, w).ravel().tolist()
[2.0, 1.0, 4.0, -1.0, 2.0]
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixExpr

from . import layer_index as lx
from .algebra import hadamard, scale
from .registry import Op, OpError
from .tangents import multilinear
from .tensor import Broadcast, Reduction, TensorNode

Matrix = sp.ImmutableMatrix
FULL, VALID = sp.Integer(0), sp.Integer(1)


# ================================================================ NumPy helpers
# Copied verbatim into generated code (their source is the ``numpy_source`` of the
# entries), so they use only ``np`` and their own arguments.
def correlate(a, k, mode="valid"):  # noqa: ANN001, ANN201
    """Cross-correlation over the last two axes, out[i, j] = Σ_s Σ_t a[i+s, j+t] k[s, t]
    ("full" pads zeros first); leading axes (examples) broadcast."""
    a, k = np.asarray(a, dtype=np.result_type(a, 1.0)), np.asarray(k, dtype=np.result_type(k, 1.0))
    kh, kw = k.shape[-2:]
    if mode == "full":
        a = np.pad(a, [(0, 0)] * (a.ndim - 2) + [(kh - 1, kh - 1), (kw - 1, kw - 1)])
    windows = np.lib.stride_tricks.sliding_window_view(a, (kh, kw), axis=(-2, -1))
    return np.einsum("...ijst,...st->...ij", windows, k)


def convolve(a, k, mode="full"):  # noqa: ANN001, ANN201
    """Convolution (the kernel flipped) over the last two axes: np.convolve on columns,
    scipy.signal.convolve2d on matrices."""
    return correlate(a, np.asarray(k, dtype=np.result_type(k, 1.0))[..., ::-1, ::-1], mode)


def flip(a):  # noqa: ANN001, ANN201
    """The entries of each matrix in reverse order along both axes."""
    return np.asarray(a, dtype=np.result_type(a, 1.0))[..., ::-1, ::-1]


def _windows(z, sr, sc):  # noqa: ANN001, ANN202
    """(…, rows/sr, cols/sc, sr*sc): the pooling groups, leftover rows/cols dropped."""
    z = np.asarray(z, dtype=np.result_type(z, 1.0))
    ho, wo = z.shape[-2] // sr, z.shape[-1] // sc
    groups = z[..., : ho * sr, : wo * sc].reshape(*z.shape[:-2], ho, sr, wo, sc)
    return np.swapaxes(groups, -3, -2).reshape(*z.shape[:-2], ho, wo, sr * sc)


def maxpool(z, sr, sc):  # noqa: ANN001, ANN201
    """The max of each sr×sc group (stride = size; leftover rows/cols dropped)."""
    z = np.asarray(z, dtype=np.result_type(z, 1.0))
    ho, wo = z.shape[-2] // sr, z.shape[-1] // sc
    # member (s, t) of every group at once is the strided view z[..., s::sr, t::sc]
    members = [z[..., s : ho * sr : sr, t : wo * sc : sc] for s in range(sr) for t in range(sc)]
    return np.max(np.stack(members), axis=0)


def avgpool(z, sr, sc):  # noqa: ANN001, ANN201
    """The mean of each sr×sc group (stride = size; leftover rows/cols dropped)."""
    return np.mean(_windows(z, sr, sc), axis=-1)


def _ungroup(parts, rows, cols):  # noqa: ANN001, ANN202
    """(…, ho, wo, sr, sc) back to (…, rows, cols), zeros where rows/cols were dropped."""
    ho, wo, sr, sc = parts.shape[-4:]
    out = np.swapaxes(parts, -3, -2).reshape(*parts.shape[:-4], ho * sr, wo * sc)
    pad = [(0, 0)] * (out.ndim - 2) + [(0, rows - ho * sr), (0, cols - wo * sc)]
    return np.pad(out, pad)


def maxpool_route(g, z, sr, sc):  # noqa: ANN001, ANN201
    """Z̄: each group's Ȳ entry at the group's first maximum (row-major), 0 elsewhere."""
    z = np.asarray(z, dtype=np.result_type(z, 1.0))
    g = np.asarray(g, dtype=np.result_type(g, 1.0))
    ho, wo = z.shape[-2] // sr, z.shape[-1] // sc
    top = maxpool(z, sr, sc)
    zbar = np.zeros(np.broadcast_shapes(g.shape, top.shape)[:-2] + z.shape[-2:], g.dtype)
    unrouted = np.ones(top.shape, dtype=bool)  # groups whose maximum is still to come
    for s in range(sr):  # the members in row-major order, so a tie goes to the first
        for t in range(sc):
            member = z[..., s : ho * sr : sr, t : wo * sc : sc]
            first = unrouted & (member == top)
            zbar[..., s : ho * sr : sr, t : wo * sc : sc] = first * g
            unrouted &= ~first
    return zbar


def avgpool_route(g, sr, sc, rows, cols):  # noqa: ANN001, ANN201
    """Z̄: each group's Ȳ entry shared equally (1/(sr·sc)) by the group, 0 elsewhere."""
    g = np.asarray(g, dtype=np.result_type(g, 1.0)) / (sr * sc)
    parts = np.broadcast_to(g[..., None, None], (*g.shape, sr, sc))
    return _ungroup(parts, rows, cols)


def maxpool_winners(z, sr, sc):  # noqa: ANN001, ANN201
    """+1 at each group's first maximum, −1 at the other members: a gradient check
    probes it, since a change of sign means the maximum moved (a kink of max-pooling)."""
    z = np.real(np.asarray(z))
    ho, wo = z.shape[-2] // sr, z.shape[-1] // sc
    groups = z[..., : ho * sr, : wo * sc].reshape(*z.shape[:-2], ho, sr, wo, sc)
    groups = np.swapaxes(groups, -3, -2).reshape(*z.shape[:-2], ho, wo, sr * sc)
    first = np.argmax(groups, axis=-1)[..., None] == np.arange(sr * sc)
    return np.where(first, 1.0, -1.0)


def first_extreme(i, is_max, *args):  # noqa: ANN001, ANN201
    """1 where argument i is the first maximum (minimum) of the arguments, else 0."""
    vals = np.broadcast_arrays(*[np.asarray(a, dtype=float) for a in args])
    pick = np.argmax(vals, axis=0) if is_max else np.argmin(vals, axis=0)
    return (pick == i).astype(float)


def first_extreme_entry(v, is_max):  # noqa: ANN001, ANN201
    """A one-hot matrix at the first maximum (minimum) entry, row-major (per example)."""
    v = np.asarray(v, dtype=float)
    flat = v.reshape(*v.shape[:-2], -1)
    pick = np.argmax(flat, axis=-1) if is_max else np.argmin(flat, axis=-1)
    return (pick[..., None] == np.arange(flat.shape[-1])).astype(float).reshape(v.shape)


def _source(*fns: Callable[..., Any]) -> str:
    return "\n\n".join(
        inspect.getsource(f)
        .replace("  # noqa: ANN001, ANN201", "")
        .replace("  # noqa: ANN001, ANN202", "")
        for f in fns
    )


# ================================================================ node classes
def _ints(*ds: Any) -> tuple[sp.Integer, ...]:
    return tuple(sp.Integer(int(d)) for d in ds)


class ShapedNode(TensorNode, MatrixExpr):
    """A layer node whose last two arguments are its (rows, cols) and whose first
    ``n_values`` arguments are values; the ones between are integer settings."""

    n_values = 1

    def __new__(cls, *args: Any) -> ShapedNode:
        return MatrixExpr.__new__(cls, *[sp.sympify(a) for a in args])

    @property
    def operands(self) -> tuple[sp.Basic, ...]:
        return self.args[: self.n_values]

    @property
    def settings(self) -> tuple[int, ...]:
        return tuple(int(a) for a in self.args[self.n_values : -2])

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return (self.args[-2], self.args[-1])

    def _args_text(self, printer: Any) -> str:
        return ", ".join(printer._print(a) for a in self.operands)


class Conv(ShapedNode):
    """(x ∗ w)[t] = Σ_τ x[t − τ] w[τ]: ``Conv(x, w, mode, rows, cols)``, mode 0 full, 1 valid."""

    name = "conv"
    n_values = 2


class Correlate(ShapedNode):
    """(a ⋆ k)[i] = Σ_s a[i + s] k[s] (valid; full pads zeros): the backward pass of conv."""

    name = "correlate"
    n_values = 2


class Flip(ShapedNode):
    """The entries in reverse order along both axes."""

    name = "flip"


class MaxPool(ShapedNode):
    """``MaxPool(z, sr, sc, C, rows, cols)``: the max of each sr×sc group of each of the
    C channels (a tensor [C, H, W] is carried by its (C·H, W) matrix; C = 1 otherwise)."""

    name = "maxpool"


class AvgPool(ShapedNode):
    """``AvgPool(z, sr, sc, C, rows, cols)``: the mean of each sr×sc group (per channel)."""

    name = "avgpool"


class MaxPoolRoute(ShapedNode):
    """``MaxPoolRoute(ȳ, z, sr, sc, C, rows, cols)``: ȳ routed to each group's maximum."""

    name = "maxpool_route"
    n_values = 2


class AvgPoolRoute(ShapedNode):
    """``AvgPoolRoute(ȳ, sr, sc, C, rows, cols)``: ȳ shared equally by each group."""

    name = "avgpool_route"


class Flatten(ShapedNode):
    """``Flatten(z, *axes, n, 1)``: the entries of z (with these axes) as one column,
    row-major."""

    name = "flatten"


class Unflatten(ShapedNode):
    """``Unflatten(v, *axes, rows, cols)``: a column back into a value with these axes
    (carried by a (rows, cols) matrix), row-major."""

    name = "unflatten"


class Extremum(TensorNode, MatrixExpr):
    """max (or min) entry by entry of tensors of one shape (maxout)."""

    is_max = True
    name = "max"

    def __new__(cls, *args: sp.Basic) -> Extremum:
        return MatrixExpr.__new__(cls, *args)

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return self.args[0].shape


class ElementwiseMax(Extremum):
    name = "max"


class ElementwiseMin(Extremum):
    is_max = False
    name = "min"


class FirstExtreme(TensorNode, MatrixExpr):
    """``FirstExtreme(i, is_max, a, b, …)``: 1 where argument i is the first maximum."""

    name = "first_extreme"

    def __new__(cls, *args: Any) -> FirstExtreme:
        return MatrixExpr.__new__(cls, *[sp.sympify(a) for a in args])

    @property
    def operands(self) -> tuple[sp.Basic, ...]:
        return self.args[2:]

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return self.args[2].shape


class ExtremeOf(Reduction):
    """``max(v)`` / ``min(v)``: the largest (smallest) entry of one tensor."""

    is_max = True
    name = "max"

    @property
    def operands(self) -> tuple[sp.Basic, ...]:
        return (self.args[0],)


class MaxOf(ExtremeOf):
    name = "max"


class MinOf(ExtremeOf):
    is_max = False
    name = "min"


class FirstExtremeEntry(ShapedNode):
    """``FirstExtremeEntry(v, is_max, rows, cols)``: one-hot at v's first max (row-major)."""

    name = "first_extreme_entry"


# ================================================================ building
def _concrete(builder: Any, shape: tuple[Any, ...], what: str) -> tuple[int, int]:
    """(rows, cols) as numbers; a size name must be bound by a const."""
    dims = _sizes(builder, (shape[0], 1) if len(shape) == 1 else shape, what)
    return dims[0], dims[1]


def _build_conv(builder: Any, name: str, vals: list[Any]) -> Any:
    x, w = vals[0], vals[1]
    mode = builder.word(2) or "full"
    call = f"conv({builder.text(0)}, {builder.text(1)})"
    if len(x.shape) > 2 or len(w.shape) > 2:
        raise OpError(
            f"{call}: the lecture's convolution takes vectors or matrices, got "
            f"{builder.shape_text(x.shape)} and {builder.shape_text(w.shape)}",
            "for a tensor X[C, H, W] use the CNN layer conv2d(X, K) with K[F, C, kh, kw]",
        )
    if not x.shape or not w.shape or len(x.shape) != len(w.shape):
        raise OpError(
            f"{call}: needs two vectors or two matrices, got {builder.shape_text(x.shape)} "
            f"and {builder.shape_text(w.shape)}"
        )
    if len(vals) > 2:
        raise OpError(f'{call}: the third argument is the mode, "valid" or "full"')
    (n1, n2), (k1, k2) = _concrete(builder, x.shape, call), _concrete(builder, w.shape, call)
    if mode == "valid":
        if k1 > n1 or k2 > n2:
            raise OpError(
                f"{call}: the kernel {builder.shape_text(w.shape)} is larger than the input "
                f"{builder.shape_text(x.shape)}; a valid convolution has no output",
                'drop "valid" for the full convolution',
            )
        rows, cols = n1 - k1 + 1, n2 - k2 + 1
    else:
        rows, cols = n1 + k1 - 1, n2 + k2 - 1
    node = Conv(x.expr, w.expr, VALID if mode == "valid" else FULL, rows, cols)
    return builder.val(node, (rows,) if len(x.shape) == 1 else (rows, cols))


def _pool_builder(node: type) -> Callable[..., Any]:
    def build(builder: Any, name: str, vals: list[Any]) -> Any:
        z, s = vals
        dims = 1 if name.endswith("1d") else 2
        call = f"{name}({builder.text(0)}, {builder.text(1)})"
        if len(z.shape) < dims:
            want = "a vector or a tensor" if dims == 1 else "a matrix or a tensor"
            raise OpError(f"{call}: needs {want}, got {builder.shape_text(z.shape)}")
        size = s.expr
        if s.shape or not size.is_Integer or int(size) < 1:
            raise OpError(f"{call}: the pooling size must be a positive whole number")
        axes = _sizes(builder, z.shape, call)
        pooled: tuple[int, ...]
        if dims == 1 and len(axes) == 1:
            sr, sc, pooled = int(size), 1, (0,)  # a vector is a column
        else:
            sr, sc = (int(size), int(size)) if dims == 2 else (1, int(size))
            pooled = (len(axes) - 2, len(axes) - 1) if dims == 2 else (len(axes) - 1,)
        out = list(axes)
        for a in pooled:
            out[a] = axes[a] // int(size)
        if 0 in out:
            raise OpError(
                f"{call}: a window of {size} does not fit in {builder.shape_text(z.shape)}; "
                "the output would be empty"
            )
        channels = int(np.prod(axes[:-2])) if len(axes) > 2 else 1
        rows, cols = _carrier(tuple(out))
        return builder.val(node(z.expr, sr, sc, channels, rows, cols), tuple(out))

    return build


def _sizes(builder: Any, shape: tuple[Any, ...], what: str) -> tuple[int, ...]:
    """Every size of a shape as a number (a size name must be bound by a const)."""
    out = []
    for d in shape:
        n = builder.number(d)
        if n is None:
            raise OpError(
                f"{what}: the size '{d}' must be a number here",
                f"bind it with a const, e.g. 'const {d} = 8'",
            )
        out.append(n)
    return tuple(out)


def _carrier(axes: tuple[int, ...]) -> tuple[int, int]:
    """(rows, cols) of the matrix carrying a value with these axes."""
    return (axes[0], 1) if len(axes) == 1 else (int(np.prod(axes[:-1])), axes[-1])


def channels_apart(a: Any, channels: int) -> Any:
    """(…, C·H, W) → (…, C, H, W): a carried tensor's channels on their own axis."""
    a = np.asarray(a)
    return a.reshape(a.shape[:-2] + (channels, a.shape[-2] // channels, a.shape[-1]))


def channels_together(a: Any) -> Any:
    """(…, C, H, W) → (…, C·H, W)."""
    return a.reshape(a.shape[:-3] + (a.shape[-3] * a.shape[-2], a.shape[-1]))


def _per_channel(fn: Callable[..., Any], channels: int, *arrays: Any) -> Any:
    """``fn`` applied to each channel's matrix of carried tensors."""
    return channels_together(fn(*[channels_apart(a, channels) for a in arrays]))


def _build_flatten(builder: Any, name: str, vals: list[Any]) -> Any:
    (z,) = vals
    if not z.shape:
        raise OpError(f"flatten({builder.text(0)}): needs a vector, matrix or tensor")
    if len(z.shape) == 1:
        return z
    axes = _sizes(builder, z.shape, f"flatten({builder.text(0)})")
    n = int(np.prod(axes))
    return builder.val(Flatten(z.expr, *axes, n, 1), (n,))


def build_extremum(builder: Any, name: str, vals: list[Any]) -> Any:
    """``max(a, b, …)`` of tensors of one shape (scalars broadcast), ``max(v)`` of one."""
    is_max = name == "max"
    if len(vals) == 1:
        node = MaxOf if is_max else MinOf
        return builder.val(node(vals[0].expr), ())
    shaped = [v for v in vals if v.shape]
    first = shaped[0]
    for i, v in enumerate(vals):
        if v.shape and not builder.same(v.shape, first.shape):
            raise OpError(
                f"{name}(): argument {i + 1} ({builder.text(i)}) has shape "
                f"{builder.shape_text(v.shape)}, argument "
                f"{vals.index(first) + 1} has {builder.shape_text(first.shape)}",
                "elementwise max/min takes tensors of one shape (and scalars)",
            )
    from .tensor import Broadcast

    exprs = [v.expr if v.shape else Broadcast(v.expr, *first.expr.shape) for v in vals]
    node = ElementwiseMax if is_max else ElementwiseMin
    return builder.val(node(*exprs), first.shape)


# ================================================================ VJPs
def _dims(e: sp.Basic) -> tuple[sp.Basic, sp.Basic]:
    return e.shape[0], e.shape[1]


def _conv_vjp(g: sp.Basic, ans: Conv, i: int) -> sp.Basic:
    """Flip-and-filter: full conv x̄ = ȳ ⋆ w, w̄ = ȳ ⋆ x (valid correlations);
    valid conv x̄ = ȳ ⋆_full w, w̄ = flip(x ⋆ ȳ)."""
    x, w = ans.operands
    (mode,) = ans.settings
    if mode == 0:
        other = w if i == 0 else x
        return Correlate(g, other, VALID, *_dims(ans.operands[i]))
    if i == 0:
        return Correlate(g, w, FULL, *_dims(x))
    return Flip(Correlate(x, g, VALID, *_dims(w)), *_dims(w))


def _maxpool_vjp(g: sp.Basic, ans: MaxPool, i: int) -> sp.Basic:
    (z,) = ans.operands
    return MaxPoolRoute(g, z, *ans.settings, *_dims(z))


def _maxpool_jvp(e: MaxPool, tangent: Callable[[sp.Basic], Any]) -> Any:
    """Ṗ = ż at each group's first maximum: s²·avgpool(ż ∘ M), M the 0/1 mask that routing
    ones to the maxima gives."""
    (z,) = e.operands
    dz = tangent(z)
    if dz is None:
        return None
    sr, sc, channels = e.settings
    ones = Broadcast(sp.S.One, *e.shape)  # 1 at every pooled entry (prints as 1)
    mask = MaxPoolRoute(ones, z, sr, sc, channels, *_dims(z))
    return scale(sr * sc, AvgPool(hadamard(dz, mask), sr, sc, channels, *e.shape))


def _avgpool_vjp(g: sp.Basic, ans: AvgPool, i: int) -> sp.Basic:
    (z,) = ans.operands
    return AvgPoolRoute(g, *ans.settings, *_dims(z))


def _extremum_vjp(g: sp.Basic, ans: Extremum, i: int) -> sp.Basic:
    """āᵢ = ȳ ∘ 𝟙[aᵢ is the first maximum]."""
    return hadamard(g, FirstExtreme(i, int(ans.is_max), *ans.args))


def _extreme_of_vjp(g: sp.Basic, ans: ExtremeOf, i: int) -> sp.Basic:
    """v̄ = ȳ · onehot(first argmax v)."""
    v = ans.args[0]
    return scale(g, FirstExtremeEntry(v, int(ans.is_max), *_dims(v)))


# ================================================================ unit form
def _explicit(x: Any, e: sp.Basic) -> sp.ImmutableMatrix:
    m = x(e)
    return m if isinstance(m, sp.MatrixBase) else Matrix([[m]])


def _correlate_units(
    a: sp.ImmutableMatrix, k: sp.ImmutableMatrix, full: bool
) -> sp.ImmutableMatrix:
    kh, kw = k.shape
    if full:
        padded = sp.zeros(a.rows + 2 * (kh - 1), a.cols + 2 * (kw - 1))
        padded[kh - 1 : kh - 1 + a.rows, kw - 1 : kw - 1 + a.cols] = a
        a = padded
    return Matrix(
        a.rows - kh + 1,
        a.cols - kw + 1,
        lambda i, j: sp.Add(*[a[i + s, j + t] * k[s, t] for s in range(kh) for t in range(kw)]),
    )


def _flip_units(m: sp.ImmutableMatrix) -> sp.ImmutableMatrix:
    return Matrix(m.rows, m.cols, lambda i, j: m[m.rows - 1 - i, m.cols - 1 - j])


def _conv_units(x: Any, e: Conv) -> sp.ImmutableMatrix:
    a, k = (_explicit(x, o) for o in e.operands)
    return _correlate_units(a, _flip_units(k), full=e.settings[0] == 0)


def _pool_units(
    x: Any, e: sp.Basic, combine: Callable[[list[sp.Basic]], sp.Basic]
) -> sp.ImmutableMatrix:
    sr, sc, channels = e.settings

    def pool(z: sp.ImmutableMatrix) -> sp.ImmutableMatrix:
        return Matrix(
            z.rows // sr,
            z.cols // sc,
            lambda i, j: combine([z[i * sr + s, j * sc + t] for s in range(sr) for t in range(sc)]),
        )

    return _channel_blocks(pool, channels, _explicit(x, e.operands[0]))


def _flatten_units(x: Any, e: Flatten) -> sp.ImmutableMatrix:
    z = _explicit(x, e.operands[0])
    return Matrix(z.rows * z.cols, 1, lambda i, j: z[i // z.cols, i % z.cols])


def _extremum_units(x: Any, e: Extremum) -> sp.ImmutableMatrix:
    ms = [_explicit(x, a) for a in e.args]
    f = sp.Max if e.is_max else sp.Min
    return Matrix(ms[0].rows, ms[0].cols, lambda i, j: f(*[m[i, j] for m in ms], evaluate=False))


def _extreme_of_units(x: Any, e: ExtremeOf) -> sp.Basic:
    return (sp.Max if e.is_max else sp.Min)(*list(_explicit(x, e.args[0])), evaluate=False)


# ================================================================ costs
def _entries(c: Any, e: sp.Basic) -> int:
    r, k = c.rc(e)
    return int(r * k)


def _mac_cost(c: Any, e: sp.Basic) -> Any:
    """Every output entry is a dot product with the kernel (padding zeros counted)."""
    n, k = _entries(c, e), _entries(c, e.operands[1])
    return c.cost(adds=n * (k - 1), muls=n * k, macs=n * k)


def _pool_cost(c: Any, e: sp.Basic, divide: bool) -> Any:
    sr, sc = e.settings[:2]
    n = _entries(c, e)
    return c.cost(adds=n * (sr * sc - 1), divs=n if divide else 0)


# ================================================================ NumPy
def _mode(e: sp.Basic) -> str:
    return "valid" if e.settings[0] == 1 else "full"


def _conv_eval(ev: Any, e: Conv, rec: Callable[[sp.Basic], Any]) -> Any:
    return convolve(rec(e.operands[0]), rec(e.operands[1]), _mode(e))


def _correlate_eval(ev: Any, e: Correlate, rec: Callable[[sp.Basic], Any]) -> Any:
    return correlate(rec(e.operands[0]), rec(e.operands[1]), _mode(e))


def _print_call(helper: str, literals: Callable[[sp.Basic], list[str]]) -> Callable[..., str]:
    """``helper(operand code…, literal…)`` for the unbatched NumPy printer."""

    def code(p: Any, e: sp.Basic) -> str:
        args = [p._print(a) for a in e.operands] + literals(e)
        return f"{helper}({', '.join(args)})"

    return code


def _batched(helper: str, literals: Callable[[sp.Basic], list[str]]) -> Callable[..., Any]:
    """Batched code (examples in columns): a batched column ``v`` (n, B) enters as the
    stack ``v.T[:, :, None]`` (B, n, 1) the helper broadcasts over; the result goes
    back to columns. Constant operands enter as they are."""

    def code(p: Any, e: sp.Basic) -> tuple[str, str]:
        parts = [p(a) for a in e.operands]
        if isinstance(e, MaxPoolRoute) and parts[1][1] == "stack":
            parts[0] = p.operand(e, 0, _route_signal_axes(p, e))
        p.use_helper(helper)
        lits = literals(e)
        states = {s for _, s in parts} - {"const"}
        if not states:
            return f"{helper}({', '.join([c for c, _ in parts] + lits)})", "const"
        if states == {"stack"}:  # examples first, in their own axes: as they are
            return f"{helper}({', '.join([c for c, _ in parts] + lits)})", "stack"
        if states - {"batch", "batchT"}:
            raise NotImplementedError(f"{helper} of a value summed over the batch")
        args = [c if s == "const" else _stacked(c, s) for c, s in parts]
        return f"{helper}({', '.join(args + lits)}){_UNSTACK}", "batch"

    return code


def _route_signal_axes(p: Any, e: MaxPoolRoute) -> tuple[int, ...] | None:
    """One example's axes of the Ȳ a max-pool route takes (its pooled z's)."""
    sr, sc, channels = e.settings
    rows, cols = int(e.shape[0]), int(e.shape[1])
    pooled = ((rows // channels) // sr, cols // sc)
    ndim = p.stack_ndim(e.operands[1])
    return pooled if ndim == 2 else (channels, *pooled) if ndim == 3 else None


_UNSTACK = "[:, :, 0].T"  # (B, n, 1) stack → (n, B) columns


def _stacked(code: str, state: str) -> str:
    """A batched column's code as a stack (B, n, 1) of examples' columns."""
    if state == "batch" and code.endswith(_UNSTACK) and code.count(_UNSTACK) == 1:
        return code[: -len(_UNSTACK)]  # undo our own unstacking
    simple = code.replace("_", "").isalnum()
    base = code if simple else f"({code})"
    return f"{base}[:, :, None]" if state == "batchT" else f"{base}.T[:, :, None]"


def _flatten_batched(p: Any, e: Flatten) -> tuple[str, str]:
    """Examples first (``stack``, B × axes) → one column each (n, B)."""
    code, st = p(e.operands[0])
    if st == "stack":
        return f"xp.reshape({code}, (B, -1)).T", "batch"
    if st == "const":
        return f"xp.reshape({code}, (-1, 1))", "const"
    raise OpError(f"flatten of a {st} value has no batched form")


def _unflatten_batched(p: Any, e: Unflatten) -> tuple[str, str]:
    """One column per example (n, B) → examples first in the value's own axes."""
    code, st = p(e.operands[0])
    axes = ", ".join(str(a) for a in e.settings)
    if st == "batch":
        return f"xp.reshape({p.wrap(code)}.T, (-1, {axes}))", "stack"
    if st == "const":
        return f"xp.reshape({code}, ({axes}))", "const"
    raise OpError(f"unflatten of a {st} value has no batched form")


def _batched_reduce(fn: str) -> Callable[..., Any]:
    def code(p: Any, e: sp.Basic) -> tuple[str, str]:
        return p.reduce(fn, *p(e.args[0]))  # type: ignore[no-any-return]

    return code


def _settings(e: sp.Basic) -> list[str]:
    """A pooling node's window (sr, sc) as code."""
    return [str(s) for s in e.settings[:2]]


def _mode_literal(e: sp.Basic) -> list[str]:
    return [f'"{_mode(e)}"']


def _shape_literal(e: sp.Basic, numbers: bool = False) -> list[Any]:
    """avgpool_route's window and each channel's (rows, cols)."""
    sr, sc, channels = e.settings
    out = [sr, sc, int(e.shape[0]) // channels, int(e.shape[1])]
    return out if numbers else [str(v) for v in out]


# ================================================================ renderings
def _infix(symbol: str, suffix: Callable[[sp.Basic], str]) -> Callable[[Any, Any], str]:
    def render(e: Any, p: Any) -> str:
        a, b = (p.parenthesize(o, 50) for o in e.operands)
        return f"{a} {symbol}{suffix(e)} {b}"

    return render


def _conv_mark(e: sp.Basic) -> str:
    return "_valid" if e.settings[0] == 1 else ""


def _corr_mark(e: sp.Basic) -> str:
    return "_full" if e.settings[0] == 0 else ""


def _latex_mark(mark: Callable[[sp.Basic], str]) -> Callable[[sp.Basic], str]:
    return lambda e: rf"_{{\text{{{mark(e)[1:]}}}}}" if mark(e) else ""


def _call_form(word: str) -> Callable[[Any, Any], str]:
    """``maxpool1d(h, 2)`` / ``maxpool2d(Z, 2)``: the model language's spelling."""

    def render(e: Any, p: Any) -> str:
        args = [p._print(a) for a in e.operands]
        dims, size = _pool_window(e)
        return f"{word}{dims}({', '.join(args)}, {size})"

    return render


def _pool_window(e: Any) -> tuple[str, int]:
    """("1d", s) for a window along one axis (s×1 of a column, 1×s of a last axis), else
    ("2d", s)."""
    sr, sc = e.settings[:2]
    return ("1d", max(sr, sc)) if sr != sc else ("2d", sr)


def _call_latex(word: str) -> Callable[[Any, Any], str]:
    r"""``\operatorname{maxpool2d}(Y, 2)``: the model's spelling, typeset."""

    def render(e: Any, p: Any) -> str:
        args = [p._print(a) for a in e.operands]
        dims, size = _pool_window(e)
        name = word.replace("_", r"\_") + dims
        return rf"\operatorname{{{name}}}\left({', '.join(args)}, {size}\right)"

    return render


def _first_extreme_unicode(e: FirstExtreme, p: Any) -> str:
    i, is_max = int(e.args[0]), int(e.args[1])
    args = ", ".join(p._print(a) for a in e.operands)
    return f"𝟙[arg{'max' if is_max else 'min'}({args}) = {i + 1}]"


def _first_extreme_latex(e: FirstExtreme, p: Any) -> str:
    i, is_max = int(e.args[0]), int(e.args[1])
    args = ", ".join(p._print(a) for a in e.operands)
    which = "argmax" if is_max else "argmin"
    return rf"\mathbb{{1}}\left[\operatorname{{{which}}}({args}) = {i + 1}\right]"


def _entry_unicode(e: FirstExtremeEntry, p: Any) -> str:
    return f"onehot(arg{'max' if e.settings[0] else 'min'} {p._print(e.operands[0])})"


# ================================================================ the entries
def _extreme_eval(ev: Any, e: Extremum, rec: Callable[[sp.Basic], Any]) -> Any:
    f = np.maximum if e.is_max else np.minimum
    vals = [rec(a) for a in e.args]
    out = vals[0]
    for v in vals[1:]:
        out = f(out, v)
    return out


def _extreme_code(p: Any, e: Extremum) -> str:
    f = "np.maximum" if e.is_max else "np.minimum"
    out = p._print(e.args[0])
    for a in e.args[1:]:
        out = f"{f}({out}, {p._print(a)})"
    return out


def _extreme_batched(p: Any, e: Extremum) -> tuple[str, str]:
    parts = [p(a) for a in e.args]
    f = "xp.maximum" if e.is_max else "xp.minimum"
    out = parts[0][0]
    for c, _ in parts[1:]:
        out = f"{f}({out}, {c})"
    states = {s for _, s in parts} - {"const"}
    return out, states.pop() if states else "const"


def _first_extreme_eval(ev: Any, e: FirstExtreme, rec: Callable[[sp.Basic], Any]) -> Any:
    return first_extreme(int(e.args[0]), bool(e.args[1]), *[rec(a) for a in e.operands])


def layer_entries() -> list[Op]:
    """The layers' operations, one record each (see the module docstring)."""
    from dataclasses import replace

    return [
        replace(op, batched=op.extra["batched_code"]) if "batched_code" in op.extra else op
        for op in _layer_entries()
    ]


def _layer_entries() -> list[Op]:
    return [
        *_pool_and_conv_entries(),
        *layernorm_entries(),
        *batchnorm_entries(),
        *dropout_entries(),
    ]


def _pool_and_conv_entries() -> list[Op]:
    conv_src = _source(correlate, convolve)
    pool_src = _source(_windows, maxpool, avgpool, _ungroup, maxpool_route, avgpool_route)
    route_src = pool_src
    return [
        Op(
            "conv",
            Conv,
            "tensor",
            'convolution x ∗ w (full; "valid" keeps the kernel inside)',
            arity=(2, 3),
            build_tensor=_build_conv,
            extra={
                "report_notes": lambda e: conv_views(),
                "fan_in": lambda e, p: "all" if e.operands[1] == p else None,
                "options": ("valid", "full"),
                "unicode_form": _infix("∗", _conv_mark),
                "latex_form": _infix("*", _latex_mark(_conv_mark)),
                "batched_code": _batched("convolve", _mode_literal),
            },
            vjp=_conv_vjp,
            index_form=lx.conv,
            jvp=multilinear(),
            unit_form=_conv_units,
            cost=_mac_cost,
            evaluate=_conv_eval,
            numpy=convolve,
            numpy_call="convolve",
            numpy_source=conv_src,
            numpy_print=_print_call("convolve", _mode_literal),
            unicode="∗",
            latex="*",
        ),
        Op(
            "correlate",
            Correlate,
            "tensor",
            "cross-correlation a ⋆ k (conv's backward pass)",
            index_form=lx.correlate,
            jvp=multilinear(),
            unit_form=lambda x, e: _correlate_units(
                _explicit(x, e.operands[0]), _explicit(x, e.operands[1]), e.settings[0] == 0
            ),
            cost=_mac_cost,
            evaluate=_correlate_eval,
            numpy=correlate,
            numpy_call="correlate",
            numpy_source=conv_src,
            numpy_print=_print_call("correlate", _mode_literal),
            unicode="⋆",
            latex=r"\star",
            extra={
                "unicode_form": _infix("⋆", _corr_mark),
                "latex_form": _infix(r"\star", _latex_mark(_corr_mark)),
                "batched_code": _batched("correlate", _mode_literal),
            },
        ),
        Op(
            "flip",
            Flip,
            "tensor",
            "entries reversed along both axes",
            vjp=lambda g, ans, i: Flip(g, *_dims(g)),
            index_form=lx.flip,
            jvp=multilinear(),
            unit_form=lambda x, e: _flip_units(_explicit(x, e.operands[0])),
            cost=lambda c, e: c.cost(),
            evaluate=lambda ev, e, rec: flip(rec(e.operands[0])),
            numpy=flip,
            numpy_call="flip",
            numpy_source=_source(flip),
            numpy_print=_print_call("flip", lambda e: []),
            extra={"batched_code": _batched("flip", lambda e: [])},
        ),
        Op(
            "maxpool2d",
            MaxPool,
            "tensor",
            "max of each s×s group (maxpool1d: of s entries)",
            spellings=("maxpool1d",),
            arity=(2,),
            build_tensor=_pool_builder(MaxPool),
            vjp=_maxpool_vjp,
            smooth=False,
            analytic=False,
            index_form=lx.maxpool,
            jvp=_maxpool_jvp,
            unit_form=lambda x, e: _pool_units(x, e, lambda v: sp.Max(*v, evaluate=False)),
            cost=lambda c, e: _pool_cost(c, e, divide=False),
            evaluate=lambda ev, e, rec: _per_channel(
                lambda z: maxpool(z, *e.settings[:2]), e.settings[2], rec(e.operands[0])
            ),
            numpy=maxpool,
            numpy_call="maxpool",
            numpy_source=pool_src,
            numpy_print=_print_call("maxpool", _settings),
            unicode="maxpool",
            latex=r"\operatorname{maxpool}",
            extra={
                "unicode_form": _call_form("maxpool"),
                "latex_form": _call_latex("maxpool"),
                "batched_code": _batched("maxpool", _settings),
                "tie_probe": _batched("maxpool_winners", _settings),
                "helper_sources": {"maxpool_winners": _source(maxpool_winners)},
            },
        ),
        Op(
            "avgpool2d",
            AvgPool,
            "tensor",
            "mean of each s×s group (avgpool1d: of s entries)",
            spellings=("avgpool1d",),
            arity=(2,),
            build_tensor=_pool_builder(AvgPool),
            vjp=_avgpool_vjp,
            index_form=lx.avgpool,
            jvp=multilinear(),
            unit_form=lambda x, e: _pool_units(x, e, lambda v: sp.Add(*v) / len(v)),
            cost=lambda c, e: _pool_cost(c, e, divide=True),
            evaluate=lambda ev, e, rec: _per_channel(
                lambda z: avgpool(z, *e.settings[:2]), e.settings[2], rec(e.operands[0])
            ),
            numpy=avgpool,
            numpy_call="avgpool",
            numpy_source=pool_src,
            numpy_print=_print_call("avgpool", _settings),
            unicode="avgpool",
            latex=r"\operatorname{avgpool}",
            extra={
                "unicode_form": _call_form("avgpool"),
                "latex_form": _call_latex("avgpool"),
                "batched_code": _batched("avgpool", _settings),
            },
        ),
        Op(
            "maxpool_route",
            MaxPoolRoute,
            "tensor",
            "Ȳ routed to each group's maximum",
            index_form=lx.maxpool_route,
            jvp=multilinear(linear_in=(0,)),  # the route is constant in z a.e.
            unit_form=_maxpool_route_units,
            cost=lambda c, e: c.cost(),
            evaluate=lambda ev, e, rec: _per_channel(
                lambda g, z: maxpool_route(g, z, *e.settings[:2]),
                e.settings[2],
                rec(e.operands[0]),
                rec(e.operands[1]),
            ),
            numpy=maxpool_route,
            numpy_call="maxpool_route",
            numpy_source=route_src,
            numpy_print=_print_call("maxpool_route", _settings),
            extra={
                "unicode_form": _call_form("maxpool_route"),
                "latex_form": _call_latex("maxpool_route"),
                "batched_code": _batched("maxpool_route", _settings),
            },
        ),
        Op(
            "avgpool_route",
            AvgPoolRoute,
            "tensor",
            "Ȳ shared equally by each group",
            index_form=lx.avgpool_route,
            jvp=multilinear(),
            unit_form=_avgpool_route_units,
            cost=lambda c, e: c.cost(divs=_entries(c, e)),
            evaluate=lambda ev, e, rec: _per_channel(
                lambda g: avgpool_route(g, *_shape_literal(e, numbers=True)),
                e.settings[2],
                rec(e.operands[0]),
            ),
            numpy=avgpool_route,
            numpy_call="avgpool_route",
            numpy_source=route_src,
            numpy_print=_print_call("avgpool_route", _shape_literal),
            extra={
                "unicode_form": _call_form("avgpool_route"),
                "latex_form": _call_latex("avgpool_route"),
                "batched_code": _batched("avgpool_route", _shape_literal),
            },
        ),
        Op(
            "flatten",
            Flatten,
            "tensor",
            "all entries as one vector, row-major",
            arity=(1,),
            build_tensor=_build_flatten,
            vjp=lambda g, ans, i: Unflatten(g, *ans.settings, *_dims(ans.operands[0])),
            index_form=lx.flatten,
            jvp=multilinear(),
            unit_form=_flatten_units,
            cost=lambda c, e: c.cost(),
            evaluate=lambda ev, e, rec: np.reshape(
                rec(e.operands[0]), np.shape(rec(e.operands[0]))[:-2] + (-1, 1)
            ),
            numpy_print=lambda p, e: f"{p.wrap(e.operands[0])}.reshape(-1, 1)",
            unicode="flatten",
            latex=r"\operatorname{flatten}",
            extra={"batched_code": _flatten_batched, "ndim": lambda e, rec: 1},
        ),
        Op(
            "unflatten",
            Unflatten,
            "tensor",
            "a vector back into a matrix, row-major",
            index_form=lx.unflatten,
            jvp=multilinear(),
            unit_form=_unflatten_units,
            cost=lambda c, e: c.cost(),
            evaluate=lambda ev, e, rec: np.reshape(
                rec(e.operands[0]),
                np.shape(rec(e.operands[0]))[:-2] + tuple(int(d) for d in e.shape),
            ),
            numpy_print=lambda p, e: f"{p.wrap(e.operands[0])}.reshape({e.shape[0]}, {e.shape[1]})",
            extra={
                "batched_code": _unflatten_batched,
                "ndim": lambda e, rec: len(e.settings),  # one example's axes
                "unicode_form": lambda e, p: (
                    f"unflatten({p._print(e.operands[0])}, {'×'.join(map(str, e.settings))})"
                ),
            },
        ),
        Op(
            "max_entrywise",
            ElementwiseMax,
            "tensor",
            "entrywise max of tensors (maxout)",
            in_language=False,
            vjp=_extremum_vjp,
            smooth=False,
            analytic=False,
            index_form=lx.extremum,
            unit_form=_extremum_units,
            cost=lambda c, e: c.cost(adds=(len(e.args) - 1) * _entries(c, e)),
            evaluate=_extreme_eval,
            numpy_print=_extreme_code,
            extra={"batched_code": _extreme_batched},
        ),
        Op(
            "min_entrywise",
            ElementwiseMin,
            "tensor",
            "entrywise min of tensors",
            in_language=False,
            vjp=_extremum_vjp,
            smooth=False,
            analytic=False,
            index_form=lx.extremum,
            unit_form=_extremum_units,
            cost=lambda c, e: c.cost(adds=(len(e.args) - 1) * _entries(c, e)),
            evaluate=_extreme_eval,
            numpy_print=_extreme_code,
            extra={"batched_code": _extreme_batched},
        ),
        Op(
            "first_extreme",
            FirstExtreme,
            "tensor",
            "1 where an argument is the first max",
            in_language=False,
            index_form=lx.first_extreme,
            unit_form=_first_extreme_units,
            cost=lambda c, e: c.cost(adds=len(e.operands) * _entries(c, e)),
            evaluate=_first_extreme_eval,
            numpy=first_extreme,
            numpy_call="first_extreme",
            numpy_source=_source(first_extreme),
            numpy_print=lambda p, e: (
                "first_extreme("
                + ", ".join(
                    [str(int(e.args[0])), str(bool(e.args[1]))] + [p._print(a) for a in e.operands]
                )
                + ")"
            ),
            extra={
                "unicode_form": _first_extreme_unicode,
                "latex_form": _first_extreme_latex,
                "batched_code": lambda p, e: _first_extreme_batched(p, e),
            },
        ),
        Op(
            "max_of",
            MaxOf,
            "tensor",
            "the largest entry",
            in_language=False,
            vjp=_extreme_of_vjp,
            smooth=False,
            analytic=False,
            index_form=lx.extreme_of,
            unit_form=_extreme_of_units,
            cost=lambda c, e: c.cost(adds=_entries(c, e.args[0]) - 1),
            evaluate=lambda ev, e, rec: ev.reduce(np.max, rec(e.args[0])),
            numpy_print=lambda p, e: f"np.max({p._print(e.args[0])})",
            extra={"batched_code": _batched_reduce("max")},
        ),
        Op(
            "min_of",
            MinOf,
            "tensor",
            "the smallest entry",
            in_language=False,
            vjp=_extreme_of_vjp,
            smooth=False,
            analytic=False,
            index_form=lx.extreme_of,
            unit_form=_extreme_of_units,
            cost=lambda c, e: c.cost(adds=_entries(c, e.args[0]) - 1),
            evaluate=lambda ev, e, rec: ev.reduce(np.min, rec(e.args[0])),
            numpy_print=lambda p, e: f"np.min({p._print(e.args[0])})",
            extra={"batched_code": _batched_reduce("min")},
        ),
        Op(
            "first_extreme_entry",
            FirstExtremeEntry,
            "tensor",
            "one-hot at the first max",
            index_form=lx.first_extreme_entry,
            unit_form=_first_extreme_entry_units,
            cost=lambda c, e: c.cost(adds=_entries(c, e)),
            evaluate=lambda ev, e, rec: first_extreme_entry(
                rec(e.operands[0]), bool(e.settings[0])
            ),
            numpy=first_extreme_entry,
            numpy_call="first_extreme_entry",
            numpy_source=_source(first_extreme_entry),
            numpy_print=_print_call("first_extreme_entry", lambda e: [str(bool(e.settings[0]))]),
            extra={
                "unicode_form": _entry_unicode,
                "batched_code": _batched(
                    "first_extreme_entry", lambda e: [str(bool(e.settings[0]))]
                ),
            },
        ),
    ]


def _first_extreme_batched(p: Any, e: FirstExtreme) -> tuple[str, str]:
    parts = [p(a) for a in e.operands]
    p.use_helper("first_extreme")
    states = {s for _, s in parts} - {"const"}
    lits = [str(int(e.args[0])), str(bool(e.args[1]))]
    return (
        f"first_extreme({', '.join(lits + [c for c, _ in parts])})",
        states.pop() if states else "const",
    )


# ================================================================ layer normalization
def layernorm(z, eps):  # noqa: ANN001, ANN201
    """(z − mean(z)) / sqrt(var(z) + eps) over each matrix's entries (population var)."""
    z = np.asarray(z, dtype=float)
    mu = np.mean(z, axis=(-2, -1), keepdims=True)
    return (z - mu) / np.sqrt(np.var(z, axis=(-2, -1), keepdims=True) + eps)


class LayerNorm(TensorNode, MatrixExpr):
    """``LayerNorm(z, eps)``: x̂ = (z − mean(z)) / sqrt(var(z) + eps)."""

    name = "layernorm"

    def __new__(cls, z: sp.Basic, eps: sp.Basic) -> LayerNorm:
        return MatrixExpr.__new__(cls, z, sp.sympify(eps))

    @property
    def operands(self) -> tuple[sp.Basic, ...]:
        return (self.args[0],)

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return self.args[0].shape


class LayerStd(Reduction):
    """``LayerStd(z, eps)``: σ̂ = sqrt(var(z) + eps), the scale layernorm divides by."""

    name = "std"

    @property
    def operands(self) -> tuple[sp.Basic, ...]:
        return (self.args[0],)


def _build_layernorm(builder: Any, name: str, vals: list[Any]) -> Any:
    z, eps = vals
    call = f"layernorm({builder.text(0)}, {builder.text(1)})"
    if not z.shape:
        raise OpError(f"{call}: needs a vector or matrix")
    if eps.shape or not eps.expr.is_number or not eps.expr > 0:
        raise OpError(f"{call}: eps must be a positive number", "e.g. layernorm(z, 0.00001)")
    return builder.val(LayerNorm(z.expr, eps.expr), z.shape)


def _layernorm_vjp(g: sp.Basic, ans: LayerNorm, i: int) -> sp.Basic:
    """z̄ = (ȳ − mean(ȳ) 𝟙 − x̂ mean(ȳ ∘ x̂)) / σ̂: the three paths (through x̂, the mean
    and the variance) summed in closed form."""
    from .algebra import mat_add
    from .tensor import Broadcast, Mean

    z, eps = ans.args
    minus_mean_g = Broadcast(-Mean(g), *g.shape)
    inner = mat_add(g, minus_mean_g, scale(-Mean(hadamard(g, ans)), ans))
    # ∘ a broadcast 1/σ̂ (not a scalar factor): batched code keeps it per example
    return sp.HadamardProduct(inner, Broadcast(1 / LayerStd(z, eps), *g.shape))


def _layernorm_units(x: Any, e: LayerNorm) -> sp.ImmutableMatrix:
    z = _explicit(x, e.args[0])
    n = len(z)
    mu = sp.Add(*z) / n
    var = sp.Add(*[(v - mu) ** 2 for v in z]) / n
    return z.applyfunc(lambda v: (v - mu) / sp.sqrt(var + e.args[1]))


def _layer_std_units(x: Any, e: LayerStd) -> sp.Basic:
    z = _explicit(x, e.args[0])
    mu = sp.Add(*z) / len(z)
    return sp.sqrt(sp.Add(*[(v - mu) ** 2 for v in z]) / len(z) + e.args[1])


def _std(x: Any, eps: float, **kwargs: Any) -> Any:
    return np.sqrt(np.var(x, **kwargs) + eps)


def _layer_std_batched(p: Any, e: LayerStd) -> tuple[str, str]:
    code, st = p(e.args[0])
    if st == "batch":
        return f"xp.sqrt(xp.var({code}, axis=0, keepdims=True) + {e.args[1]})", "batch"
    return f"xp.sqrt(xp.var({code}) + {e.args[1]})", st


def _normalization_entry(
    name: str,
    node: type,
    doc: str,
    fn: Callable[..., Any],
    *,
    build: Callable[..., Any],
    vjp: Callable[..., Any],
    index_form: Callable[..., Any],
    units: Callable[..., Any],
    divs: Callable[[Any, Any], Any],
    calls: Callable[[Any, Any], Any],
    expansion: Callable[..., Any],
) -> Op:
    """``layernorm(z, eps)`` / ``batchnorm(Z, eps)``: one record shape, two statistics."""
    return Op(
        name,
        node,
        "tensor",
        doc,
        arity=(2,),
        build_tensor=build,
        vjp=vjp,
        index_form=index_form,
        unit_form=units,
        cost=lambda c, e: c.cost(
            adds=3 * _entries(c, e), muls=_entries(c, e), divs=divs(c, e), calls=calls(c, e)
        ),
        evaluate=lambda ev, e, rec: fn(rec(e.args[0]), float(e.args[1])),
        numpy=fn,
        numpy_call=name,
        numpy_source=_source(fn),
        numpy_print=lambda p, e: f"{name}({p._print(e.args[0])}, {e.args[1]})",
        unicode=name,
        latex=rf"\operatorname{{{name}}}",
        extra={
            "expansion": expansion,
            "unicode_form": lambda e, p: f"{name}({p._print(e.args[0])})",
            "latex_form": lambda e, p: (
                rf"\operatorname{{{name}}}\left({p._print(e.args[0])}\right)"
            ),
            "batched_code": _batched(name, lambda e: [str(float(e.args[1]))]),
        },
    )


def layernorm_entries() -> list[Op]:
    """Layer normalization and the σ̂ its backward pass divides by."""
    return [
        _normalization_entry(
            "layernorm",
            LayerNorm,
            "(z − mean z)/sqrt(var z + eps), population var",
            layernorm,
            build=_build_layernorm,
            vjp=_layernorm_vjp,
            index_form=lx.layernorm,
            units=_layernorm_units,
            divs=lambda c, e: _entries(c, e) + 2,
            calls=lambda c, e: 1,
            expansion=_layernorm_expansion,
        ),
        Op(
            "layer_std",
            LayerStd,
            "tensor",
            "σ̂ = sqrt(var z + eps)",
            in_language=False,
            index_form=lx.layer_std,
            unit_form=_layer_std_units,
            cost=lambda c, e: c.cost(adds=2 * _entries(c, e.args[0]), calls=1),
            evaluate=lambda ev, e, rec: ev.reduce(
                functools.partial(_std, eps=float(e.args[1])), rec(e.args[0])
            ),
            numpy_print=lambda p, e: f"np.sqrt(np.var({p._print(e.args[0])}) + {e.args[1]})",
            extra={
                "unicode_form": lambda e, p: f"σ̂({p._print(e.args[0])})",
                "latex_form": lambda e, p: rf"\hat\sigma({p._print(e.args[0])})",
                "batched_code": _layer_std_batched,
            },
        ),
    ]


# ================================================================ dropout
class Dropout(TensorNode, MatrixExpr):
    """``Dropout(h, m, p)``: inverted dropout h ∘ m / (1 − p) with the mask m given."""

    name = "dropout"

    def __new__(cls, h: sp.Basic, m: sp.Basic, p: sp.Basic) -> Dropout:
        return MatrixExpr.__new__(cls, h, m, sp.sympify(p))

    @property
    def operands(self) -> tuple[sp.Basic, ...]:
        return self.args[:2]

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return self.args[0].shape


def _build_dropout(builder: Any, name: str, vals: list[Any]) -> Any:
    h, m, p = vals
    call = f"dropout({builder.text(0)}, {builder.text(1)}, {builder.text(2)})"
    if not h.shape:
        raise OpError(f"{call}: needs a vector or matrix")
    if not builder.same(h.shape, m.shape):
        raise OpError(
            f"{call}: the mask {builder.text(1)} has shape {builder.shape_text(m.shape)}, "
            f"{builder.text(0)} has {builder.shape_text(h.shape)}",
            "the mask is shaped like the layer it drops units of",
        )
    if not isinstance(m.expr, sp.MatrixSymbol):
        raise OpError(f"{call}: the mask must be an input name (training draws it)")
    if p.shape or not p.expr.is_number or not 0 <= p.expr < 1:
        raise OpError(f"{call}: the drop probability must be a number in [0, 1)")
    return builder.val(Dropout(h.expr, m.expr, p.expr), h.shape)


def _dropout_vjp(g: sp.Basic, ans: Dropout, i: int) -> sp.Basic:
    """h̄ = ȳ ∘ m / (1 − p): the units dropped in the forward pass get no error signal."""
    h, m, p = ans.args
    return scale(1 / (1 - p), hadamard(g, m if i == 0 else h))


def _dropout_code(p: Any, e: Dropout) -> str:
    h, m, q = e.args
    return f"{p.wrap(h)} * {p.wrap(m)} / {float(1 - q)!r}"


def _dropout_batched(p: Any, e: Dropout) -> tuple[str, str]:
    (hc, hs), (mc, ms) = p(e.args[0]), p(e.args[1])
    states = {hs, ms} - {"const"}
    return f"({hc}) * {mc} / {float(1 - e.args[2])!r}", states.pop() if states else "const"


def dropout_entries() -> list[Op]:
    """Inverted dropout (PyTorch's convention); ``drawn_inputs`` tells ``train`` to draw
    the mask (1 with probability 1 − p) for every example and step, and to feed the
    constant 1 − p in evaluation, where the value is then h itself."""
    return [
        Op(
            "dropout",
            Dropout,
            "tensor",
            "inverted dropout h ∘ m / (1 − p) (mask m, drop p)",
            arity=(3,),
            build_tensor=_build_dropout,
            vjp=_dropout_vjp,
            index_form=lx.dropout,
            unit_form=lambda x, e: (
                _explicit(x, e.args[0]).multiply_elementwise(_explicit(x, e.args[1]))
                / (1 - e.args[2])
            ),
            cost=lambda c, e: c.cost(muls=_entries(c, e), divs=_entries(c, e)),
            evaluate=lambda ev, e, rec: (
                np.multiply(rec(e.args[0]), rec(e.args[1])) / float(1 - e.args[2])
            ),
            numpy_print=_dropout_code,
            unicode="dropout",
            latex=r"\operatorname{dropout}",
            extra={
                "report_notes": lambda e: [DROPOUT_NOTE],
                "drawn_inputs": lambda e: {str(e.args[1].name): float(1 - e.args[2])},
                "unicode_form": lambda e, p: (
                    f"dropout({p._print(e.args[0])}, {p._print(e.args[1])}, {p._print(e.args[2])})"
                ),
                "batched_code": _dropout_batched,
            },
        ),
    ]


# ================================================================ batch normalization
def batchnorm(z, eps):  # noqa: ANN001, ANN201
    """Each column normalized over the rows (the minibatch's examples): (z − μ)/sqrt(v + eps)
    with μ, v each column's mean and population variance."""
    z = np.asarray(z, dtype=float)
    mu = np.mean(z, axis=-2, keepdims=True)
    return (z - mu) / np.sqrt(np.var(z, axis=-2, keepdims=True) + eps)


def batch_inv_std(z, eps):  # noqa: ANN001, ANN201
    """1/sqrt(v + eps) of each column (a row (1, m)): what batchnorm divides by."""
    return 1 / np.sqrt(np.var(np.asarray(z, dtype=float), axis=-2, keepdims=True) + eps)


class BatchNorm(TensorNode, MatrixExpr):
    """``BatchNorm(Z, eps)``: each column of Z normalized over the examples (axis 0)."""

    name = "batchnorm"

    def __new__(cls, z: sp.Basic, eps: sp.Basic) -> BatchNorm:
        return MatrixExpr.__new__(cls, z, sp.sympify(eps))

    @property
    def operands(self) -> tuple[sp.Basic, ...]:
        return (self.args[0],)

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return self.args[0].shape


class BatchInvStd(TensorNode, MatrixExpr):
    """``BatchInvStd(Z, eps)``: the row of 1/σ̂ⱼ = 1/sqrt(vⱼ + eps), one per column."""

    name = "inv_std"

    def __new__(cls, z: sp.Basic, eps: sp.Basic) -> BatchInvStd:
        return MatrixExpr.__new__(cls, z, sp.sympify(eps))

    @property
    def operands(self) -> tuple[sp.Basic, ...]:
        return (self.args[0],)

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return (sp.S.One, self.args[0].shape[1])


def _build_batchnorm(builder: Any, name: str, vals: list[Any]) -> Any:
    z, eps = vals
    call = f"batchnorm({builder.text(0)}, {builder.text(1)})"
    if builder.batch is None:
        raise OpError(
            f"{call}: batch normalization needs the whole minibatch, and this program "
            "describes one example",
            "declare the example axis with 'batch B' and write X[B, n] (rows are examples)",
        )
    if len(z.shape) != 2 or z.shape[0] != builder.batch:
        raise OpError(
            f"{call}: needs a ({builder.batch}, m) matrix (rows are the examples), got "
            f"{builder.shape_text(z.shape)}"
        )
    if eps.shape or not eps.expr.is_number or not eps.expr > 0:
        raise OpError(f"{call}: eps must be a positive number", "e.g. batchnorm(Z, 0.00001)")
    return builder.val(BatchNorm(z.expr, eps.expr), z.shape)


def _column_mean(g: sp.Basic) -> sp.Basic:
    """mean₀(G) repeated down the rows: each column's mean over the examples."""
    from .tensor import Broadcast, SumRows

    return Broadcast(scale(1 / g.shape[0], SumRows(g)), *g.shape)


def _batchnorm_vjp(g: sp.Basic, ans: BatchNorm, i: int) -> sp.Basic:
    """Z̄ = (Ȳ − mean₀(Ȳ) − X̂ ∘ mean₀(Ȳ ∘ X̂)) ∘ 1/σ̂: per column, the three paths
    (through X̂, the mean μ and the variance v) summed in closed form."""
    from .algebra import mat_add
    from .tensor import Broadcast

    z, eps = ans.args
    inner = mat_add(
        g,
        scale(-1, _column_mean(g)),
        scale(-1, sp.HadamardProduct(ans, _column_mean(sp.HadamardProduct(g, ans)))),
    )
    return sp.HadamardProduct(inner, Broadcast(BatchInvStd(z, eps), *g.shape))


def _column_stats(z: sp.ImmutableMatrix, eps: sp.Basic) -> tuple[list[sp.Basic], list[sp.Basic]]:
    mus = [sp.Add(*z[:, j]) / z.rows for j in range(z.cols)]
    vs = [sp.Add(*[(v - mus[j]) ** 2 for v in z[:, j]]) / z.rows for j in range(z.cols)]
    return mus, [sp.sqrt(v + eps) for v in vs]


def _batchnorm_units(x: Any, e: BatchNorm) -> sp.ImmutableMatrix:
    z = _explicit(x, e.args[0])
    mus, sds = _column_stats(z, e.args[1])
    return Matrix(z.rows, z.cols, lambda i, j: (z[i, j] - mus[j]) / sds[j])


def _inv_std_units(x: Any, e: BatchInvStd) -> sp.ImmutableMatrix:
    z = _explicit(x, e.args[0])
    _, sds = _column_stats(z, e.args[1])
    return Matrix(1, z.cols, lambda i, j: 1 / sds[j])


def batchnorm_entries() -> list[Op]:
    """Batch normalization (whole-minibatch programs) and the 1/σ̂ its VJP multiplies by."""
    return [
        _normalization_entry(
            "batchnorm",
            BatchNorm,
            "each column normalized over the minibatch",
            batchnorm,
            build=_build_batchnorm,
            vjp=_batchnorm_vjp,
            index_form=lx.batchnorm,
            units=_batchnorm_units,
            divs=lambda c, e: _entries(c, e),
            calls=lambda c, e: c.rc(e)[1],
            expansion=_batchnorm_expansion,
        ),
        Op(
            "batch_inv_std",
            BatchInvStd,
            "tensor",
            "1/σ̂ of each column",
            in_language=False,
            index_form=lx.batch_inv_std,
            unit_form=_inv_std_units,
            cost=lambda c, e: c.cost(adds=2 * _entries(c, e.args[0]), calls=c.rc(e)[1]),
            evaluate=lambda ev, e, rec: batch_inv_std(rec(e.args[0]), float(e.args[1])),
            numpy=batch_inv_std,
            numpy_call="batch_inv_std",
            numpy_source=_source(batch_inv_std),
            numpy_print=lambda p, e: f"batch_inv_std({p._print(e.args[0])}, {e.args[1]})",
            extra={
                "unicode_form": lambda e, p: f"1/σ̂({p._print(e.args[0])})",
                "latex_form": lambda e, p: rf"1/\hat\sigma({p._print(e.args[0])})",
                "batched_code": _batched("batch_inv_std", lambda e: [str(float(e.args[1]))]),
            },
        ),
    ]


# ================================================================ paths (teaching)
# ``extra["expansion"]``: the operation written out in simpler operations, as model text
# over an operand ``Z`` (the declarations first, then the lines; the last line's node is
# the operation's value). Backprop of it shows the paths as fan-out in the DAG;
# chainrule.derive.closed_forms proves the entry's closed-form VJP equal to it.
def _batchnorm_expansion(e: BatchNorm) -> tuple[list[str], list[str]]:
    eps = float(e.args[1])
    return (
        ["batch B", "const B = 3, m = 2", "param Z[B, m]"],
        [
            "mu = mean(Z, 0)",
            "D = Z - mu",
            "v = mean(D^2, 0)",
            f"s = (v + {eps!r})^(-0.5)",
            "Xh = D * s",
        ],
    )


def _layernorm_expansion(e: LayerNorm) -> tuple[list[str], list[str]]:
    eps = float(e.args[1])
    return (
        ["const n = 3", "param Z[n]"],
        ["mu = mean(Z)", "D = Z - mu", "v = mean(D^2)", f"s = sqrt(v + {eps!r})", "Xh = D / s"],
    )


# ================================================================ report notes
SEED_X, SEED_W = (2, -1, 1), (1, 1, 2)  # the lecture's example (csc311 lecture 6)


def _vec(v: Any) -> str:
    return "[" + ", ".join(f"{float(a):g}" for a in v) + "]"


def conv_views(x: tuple[float, ...] = SEED_X, w: tuple[float, ...] = SEED_W) -> list[str]:
    """The two views of one 1-D convolution, with numbers (the seed's example)."""
    n, k = len(x), len(w)
    y = np.convolve(x, w)
    shifted = []
    for i, xi in enumerate(x):
        row = [0.0] * (n + k - 1)
        row[i : i + k] = [float(v) for v in w]
        shifted.append(f"({float(xi):g})*{_vec(row)}")
    flipped = list(reversed(w))
    padded = [0.0] * (k - 1) + [float(v) for v in x] + [0.0] * (k - 1)
    first = " + ".join(f"{padded[s]:g}*{float(flipped[s]):g}" for s in range(k))
    return [
        f"Convolution, translate-and-scale view (x = {_vec(x)}, w = {_vec(w)}): each input "
        f"x[i] scales a copy of w shifted by i, and the copies add up: y = "
        + " + ".join(shifted)
        + f" = {_vec(y)}.",
        f"Convolution, flip-and-filter view: flip w to {_vec(flipped)} and slide it along x "
        f"padded with zeros {_vec(padded)}; each output is a dot product, e.g. y[0] = {first} "
        f"= {float(y[0]):g}, giving {_vec(y)} (np.convolve). Backprop is flip-and-filter "
        "too: x_bar and w_bar are cross-correlations of y_bar.",
    ]


DROPOUT_NOTE = (
    "Dropout here is inverted dropout (PyTorch's convention): in training a unit is kept "
    "with probability 1 - p and scaled by 1/(1 - p), so evaluation uses h unchanged. The "
    "seed's other convention drops without scaling in training and multiplies by 1 - p at "
    "test time; both give every unit the same expected value in training and test."
)


# ================================================================ unit forms of the routes
# (the backward pass's helpers, written entry by entry through ∂max/∂entry; they agree
# with the NumPy helpers away from ties)
def _winner(values: list[sp.Basic], k: int, is_max: bool = True) -> sp.Basic:
    f = sp.Max if is_max else sp.Min
    return sp.diff(f(*values), values[k]) if len(values) > 1 else sp.S.One


def _channel_blocks(
    fn: Callable[..., sp.ImmutableMatrix], channels: int, *ms: sp.ImmutableMatrix
) -> sp.ImmutableMatrix:
    """``fn`` applied to each channel's block of rows of carried tensors, stacked."""
    if channels == 1:
        return fn(*ms)
    parts = []
    for c in range(channels):
        blocks = [m[c * (m.rows // channels) : (c + 1) * (m.rows // channels), :] for m in ms]
        parts.append(fn(*blocks))
    return Matrix(sp.Matrix.vstack(*parts))


def _maxpool_route_units(x: Any, e: MaxPoolRoute) -> sp.ImmutableMatrix:
    return _channel_blocks(
        lambda g, z: _route_max(g, z, *e.settings[:2]),
        e.settings[2],
        *(_explicit(x, o) for o in e.operands),
    )


def _route_max(
    g: sp.ImmutableMatrix, z: sp.ImmutableMatrix, sr: int, sc: int
) -> sp.ImmutableMatrix:
    out = sp.zeros(z.rows, z.cols)
    for i in range(g.rows):
        for j in range(g.cols):
            cells = [(i * sr + s, j * sc + t) for s in range(sr) for t in range(sc)]
            values = [z[a, b] for a, b in cells]
            for k, (a, b) in enumerate(cells):
                out[a, b] = g[i, j] * _winner(values, k)
    return Matrix(out)


def _avgpool_route_units(x: Any, e: AvgPoolRoute) -> sp.ImmutableMatrix:
    sr, sc, channels = e.settings
    rows, cols = int(e.shape[0]) // channels, int(e.shape[1])
    return _channel_blocks(
        lambda g: _route_avg(g, sr, sc, rows, cols), channels, _explicit(x, e.operands[0])
    )


def _route_avg(g: sp.ImmutableMatrix, sr: int, sc: int, rows: int, cols: int) -> sp.ImmutableMatrix:
    out = sp.zeros(rows, cols)
    for i in range(g.rows):
        for j in range(g.cols):
            for s in range(sr):
                for t in range(sc):
                    out[i * sr + s, j * sc + t] = g[i, j] / (sr * sc)
    return Matrix(out)


def _unflatten_units(x: Any, e: Unflatten) -> sp.ImmutableMatrix:
    v = _explicit(x, e.operands[0])
    rows, cols = (int(d) for d in e.shape)
    return Matrix(rows, cols, lambda i, j: v[i * cols + j, 0])


def _first_extreme_units(x: Any, e: FirstExtreme) -> sp.ImmutableMatrix:
    ms = [_explicit(x, a) for a in e.operands]
    i, is_max = int(e.args[0]), bool(e.args[1])
    return Matrix(ms[0].rows, ms[0].cols, lambda r, c: _winner([m[r, c] for m in ms], i, is_max))


def _first_extreme_entry_units(x: Any, e: FirstExtremeEntry) -> sp.ImmutableMatrix:
    v = _explicit(x, e.operands[0])
    values = list(v)
    return Matrix(v.rows, v.cols, lambda r, c: _winner(values, r * v.cols + c, bool(e.settings[0])))
