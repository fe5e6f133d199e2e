"""The CNN layer: ``conv1d(X, K[, b], stride=, padding=)`` and ``conv2d(…)``.

PyTorch's definition (cross-correlation over all input channels, no flip)::

    Y[f, i, j] = Σ_c Σ_s Σ_t X[c, i·σ + s, j·σ + t] K[f, c, s, t]  (+ b[f])

with ``X[C, H, W]`` zero-padded by ``padding`` on each side, ``K[F, C, kh, kw]``, stride
σ; ``Y`` has shape ``[F, (H + 2p − kh)//σ + 1, (W + 2p − kw)//σ + 1]``. ``conv1d`` is
the same over one spatial axis (``X[C, n]``, ``K[F, C, k]``): a 2-D one of height 1.

Backprop, the lecture's way: ``K̄[f,c,s,t] = Σ_{i,j} Ȳ[f,i,j] X[c,i+s,j+t]`` (a valid
cross-correlation of X with Ȳ), ``X̄`` the full convolution of Ȳ with K (summed over
f; with a stride, Ȳ dilated first), ``b̄[f] = Σ_{i,j} Ȳ[f,i,j]``.

Values are carried by matrices (:func:`chainrule.symbolic.program.carrier`: X[C, H, W]
by the (C·H, W) matrix of its entries); the nodes keep the geometry so every rule can
see the axes. NumPy helpers work on arrays in their own axes with leading axes
(examples) broadcast; generated code calls them as they are.

>>> import numpy as np
>>> x = np.arange(16.0).reshape(1, 4, 4)
>>> k = np.ones((2, 1, 3, 3))
>>> conv2d(x, k)[:, 0, 0].tolist()  # 0+1+2+4+5+6+8+9+10
[45.0, 45.0]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from .layers import ShapedNode, _sizes, _source, conv_views
from .layers import _carrier as carrier_of
from .registry import Op, OpError
from .tangents import multilinear


# ================================================================ NumPy helpers
# Copied verbatim into generated code (the entries' ``numpy_source``): they use only
# ``np`` and their arguments.
def conv_windows(x, kh, kw, stride=1, padding=0):  # noqa: ANN001, ANN201
    """(..., C, Ho, Wo, kh, kw): every kh×kw patch of X (zero-padded), a view."""
    sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
    ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
    if ph or pw:
        x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)])
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(-2, -1))
    return windows[..., ::sh, ::sw, :, :]


def conv2d(x, k, stride=1, padding=0):  # noqa: ANN001, ANN201
    """Y[..., f, i, j] = Σ_c Σ_s Σ_t X[..., c, i·stride+s, j·stride+t] K[f, c, s, t]."""
    windows = conv_windows(x, k.shape[-2], k.shape[-1], stride, padding)
    # im2col and one matrix product: tensordot copies the windows as (C, kh, kw, ..., Ho,
    # Wo) rows, the order in which the copy runs along memory (fastest).
    y = np.tensordot(k, windows, axes=([1, 2, 3], [-5, -2, -1]))  # (F, ..., Ho, Wo)
    return np.moveaxis(y, 0, -3)


def conv2d_kernel_grad(g, x, kh, kw, stride=1, padding=0, over_examples=True):  # noqa: ANN001, ANN201
    """K̄[f, c, s, t] = Σ_{i,j} Ȳ[f, i, j] X[c, i·stride+s, j·stride+t], summed over
    the examples (leading axes) unless ``over_examples`` is False."""
    windows = conv_windows(x, kh, kw, stride, padding)
    if not over_examples:
        return np.einsum("...fij,...cijst->...fcst", g, windows)
    lead = list(range(g.ndim - 3))
    kbar = np.tensordot(windows, g, axes=([*lead, -4, -3], [*lead, -2, -1]))  # (C, kh, kw, F)
    return np.moveaxis(kbar, -1, 0)


def conv2d_input_grad(g, k, height, width, stride=1, padding=0):  # noqa: ANN001, ANN201
    """X̄: the full convolution of Ȳ (dilated by the stride) with K, summed over f.

    Computed as col2im: one matrix product gives every tap's share
    Σ_f K[f, c, s, t] Ȳ[f, i, j], and each tap (s, t) adds its share where it touched X."""
    sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
    ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
    kh, kw = k.shape[-2:]
    ho, wo = g.shape[-2:]
    shares = np.tensordot(k, g, axes=([0], [-3]))  # (C, kh, kw, ..., Ho, Wo)
    lead = shares.shape[3:-2]
    xbar = np.zeros((k.shape[1], *lead, height + 2 * ph, width + 2 * pw), shares.dtype)
    for s in range(kh):
        for t in range(kw):
            xbar[..., s : s + sh * ho : sh, t : t + sw * wo : sw] += shares[:, s, t]
    return np.moveaxis(xbar, 0, -3)[..., ph : ph + height, pw : pw + width]


def conv_patches(x, kh, kw, stride=1, padding=0):  # noqa: ANN001, ANN201
    """im2col: every kh×kw patch of X copied once as (C, kh, kw, ..., Ho, Wo), in memory
    order; the forward pass and K̄ both read it."""
    windows = conv_windows(x, kh, kw, stride, padding)  # (..., C, Ho, Wo, kh, kw)
    n = windows.ndim
    order = [n - 5, n - 2, n - 1, *range(n - 5), n - 4, n - 3]
    return np.ascontiguousarray(windows.transpose(order))


def conv2d_from_patches(patches, k):  # noqa: ANN001, ANN201
    """conv2d as one matrix product of K with X's patches (see conv_patches)."""
    y = np.tensordot(k, patches, axes=([1, 2, 3], [0, 1, 2]))  # (F, ..., Ho, Wo)
    return np.moveaxis(y, 0, -3)


def conv2d_kernel_grad_from_patches(g, patches):  # noqa: ANN001, ANN201
    """K̄ = Σ over examples and positions of Ȳ times X's patches: one matrix product."""
    lead = list(range(g.ndim - 3))
    axes = ([3 + a for a in lead] + [-2, -1], [*lead, -2, -1])
    kbar = np.tensordot(patches, g, axes=axes)  # (C, kh, kw, F)
    return np.moveaxis(kbar, -1, 0)


def conv1d(x, k, stride=1, padding=0):  # noqa: ANN001, ANN201
    """Y[..., f, i] = Σ_c Σ_s X[..., c, i·stride+s] K[f, c, s]: conv2d of height 1."""
    return conv2d(x[..., None, :], k[..., None, :], (1, stride), (0, padding))[..., 0, :]


def conv1d_kernel_grad(g, x, k, stride=1, padding=0, over_examples=True):  # noqa: ANN001, ANN201
    """K̄[f, c, s] = Σ_i Ȳ[f, i] X[c, i·stride+s] (summed over the examples)."""
    kbar = conv2d_kernel_grad(
        g[..., None, :], x[..., None, :], 1, k, (1, stride), (0, padding), over_examples
    )
    return kbar[..., 0, :]


def conv1d_input_grad(g, k, n, stride=1, padding=0):  # noqa: ANN001, ANN201
    """X̄: the full convolution of Ȳ with K, summed over f."""
    xbar = conv2d_input_grad(g[..., None, :], k[..., None, :], 1, n, (1, stride), (0, padding))
    return xbar[..., 0, :]


# ================================================================ geometry
@dataclass(frozen=True)
class ConvGeometry:
    """The sizes of one convolution: ``dims`` 1 or 2, stride, padding, X[C, H, W],
    K[F, C, kh, kw] (1-D: H = kh = 1)."""

    dims: int
    stride: int
    padding: int
    C: int
    H: int
    W: int
    F: int
    kh: int
    kw: int

    @property
    def sh(self) -> int:
        return self.stride if self.dims == 2 else 1

    @property
    def ph(self) -> int:
        return self.padding if self.dims == 2 else 0

    @property
    def out_h(self) -> int:
        return (self.H + 2 * self.ph - self.kh) // self.sh + 1

    @property
    def out_w(self) -> int:
        return (self.W + 2 * self.padding - self.kw) // self.stride + 1

    def x_axes(self) -> tuple[int, ...]:
        return (self.C, self.H, self.W) if self.dims == 2 else (self.C, self.W)

    def k_axes(self) -> tuple[int, ...]:
        return (self.F, self.C, self.kh, self.kw) if self.dims == 2 else (self.F, self.C, self.kw)

    def y_axes(self) -> tuple[int, ...]:
        return (self.F, self.out_h, self.out_w) if self.dims == 2 else (self.F, self.out_w)

    def settings(self) -> tuple[int, ...]:
        return (
            self.dims,
            self.stride,
            self.padding,
            self.C,
            self.H,
            self.W,
            self.F,
            self.kh,
            self.kw,
        )

    def keywords(self) -> str:
        """``, stride=2, padding=1`` (only what differs from the defaults)."""
        out = f", stride={self.stride}" if self.stride != 1 else ""
        return out + (f", padding={self.padding}" if self.padding else "")


def own_axes(arr: Any, axes: tuple[int, ...]) -> Any:
    """A carried value (…, rows, cols) in its own axes (…, *axes)."""
    arr = np.asarray(arr)
    return arr.reshape(arr.shape[:-2] + tuple(axes))


def carried(arr: Any, axes: tuple[int, ...]) -> Any:
    """A value (…, *axes) as its carrier (…, rows, cols)."""
    arr = np.asarray(arr)
    lead = arr.shape[: arr.ndim - len(axes)]
    return arr.reshape(lead + carrier_of(axes))


# ================================================================ node classes


class ConvNode(ShapedNode):
    """A convolution node: values, then the geometry's nine settings, then (rows, cols)."""

    n_values = 2

    @property
    def geometry(self) -> ConvGeometry:
        return ConvGeometry(*self.settings[:9])


class ConvLayer(ConvNode):
    """``ConvLayer(X, K, *geometry, rows, cols)``: conv1d / conv2d without bias."""

    name = "conv2d"


class ConvKernelGrad(ConvNode):
    """``ConvKernelGrad(Ȳ, X, *geometry, rows, cols)``: K̄."""

    name = "conv_kernel_grad"


class ConvInputGrad(ConvNode):
    """``ConvInputGrad(Ȳ, K, *geometry, rows, cols)``: X̄."""

    name = "conv_input_grad"


class ChannelBias(ShapedNode):
    """``ChannelBias(b, dims, F, Ho, Wo, rows, cols)``: b[f] at every position of map f."""

    name = "channel_bias"

    @property
    def axes(self) -> tuple[int, ...]:
        dims, f, ho, wo = self.settings
        return (f, ho, wo) if dims == 2 else (f, wo)


class ChannelSum(ShapedNode):
    """``ChannelSum(Ȳ, dims, F, Ho, Wo, F, 1)``: b̄[f] = Σ_{i,j} Ȳ[f, i, j]."""

    name = "channel_sum"

    @property
    def axes(self) -> tuple[int, ...]:
        dims, f, ho, wo = self.settings
        return (f, ho, wo) if dims == 2 else (f, wo)


# ================================================================ building
def _whole(builder: Any, name: str, call: str, default: int, least: int) -> int:
    val = builder.keyword(name)
    if val is None:
        return default
    n = val.expr
    if val.shape or not getattr(n, "is_Integer", False) or int(n) < least:
        want = "a positive" if least else "a non-negative"
        raise OpError(f"{call}: {name}= must be {want} whole number, got {n}")
    return int(n)


def build_conv_layer(builder: Any, name: str, vals: list[Any]) -> Any:
    """conv1d(X, K[, b], stride=, padding=) and conv2d(…): shapes checked, located."""
    dims = 1 if name == "conv1d" else 2
    x, k = vals[0], vals[1]
    call = f"{name}({builder.text(0)}, {builder.text(1)}{', …' if len(vals) > 2 else ''})"
    axes_x, axes_k = ("C, n", "F, C, k") if dims == 1 else ("C, H, W", "F, C, kh, kw")
    if len(x.shape) != dims + 1:
        raise OpError(
            f"{call}: X must have {dims + 1} axes [{axes_x}], got {builder.shape_text(x.shape)}"
        )
    if len(k.shape) != dims + 2:
        raise OpError(
            f"{call}: K must have {dims + 2} axes [{axes_k}], got {builder.shape_text(k.shape)}"
        )
    xs, ks = _sizes(builder, x.shape, call), _sizes(builder, k.shape, call)
    if ks[1] != xs[0]:
        raise OpError(
            f"{name}: {builder.text(1)} has {ks[1]} input channel{'s' * (ks[1] != 1)}, "
            f"{builder.text(0)} has {xs[0]}",
            f"K's second axis counts X's channels: K[F, {xs[0]}, …] for this X",
        )
    stride = _whole(builder, "stride", call, 1, 1)
    padding = _whole(builder, "padding", call, 0, 0)
    if dims == 1:
        geo = ConvGeometry(1, stride, padding, xs[0], 1, xs[1], ks[0], 1, ks[2])
    else:
        geo = ConvGeometry(2, stride, padding, xs[0], xs[1], xs[2], ks[0], ks[2], ks[3])
    if padding >= max(geo.kh, geo.kw):
        raise OpError(
            f"{call}: padding={padding} is at least the kernel's size; the border outputs "
            "would see only zeros",
            f"use padding ≤ {max(geo.kh, geo.kw) - 1} (padding={(geo.kw - 1) // 2} keeps the size)",
        )
    if geo.out_h < 1 or geo.out_w < 1:
        raise OpError(
            f"{call}: the kernel {builder.shape_text(k.shape)} is larger than the input "
            f"{builder.shape_text(x.shape)}{' padded by ' + str(padding) if padding else ''}",
            "use a smaller kernel or padding=",
        )
    entries = int(np.prod(geo.y_axes()))
    if entries > getattr(builder, "max_entries", entries):
        raise OpError(f"{call}: the output would have {entries:,} entries (too many)")
    node: sp.Basic = ConvLayer(x.expr, k.expr, *geo.settings(), *carrier_of(geo.y_axes()))
    if len(vals) > 2:
        b = vals[2]
        if len(b.shape) != 1 or builder.number(b.shape[0]) != geo.F:
            raise OpError(
                f"{call}: the bias must be a vector of the {geo.F} output channels, got "
                f"{builder.shape_text(b.shape)}"
            )
        from .algebra import mat_add

        node = mat_add(
            node, ChannelBias(b.expr, dims, geo.F, geo.out_h, geo.out_w, *carrier_of(geo.y_axes()))
        )
    return builder.val(node, geo.y_axes())


# ================================================================ VJPs
def _conv_vjp(g: sp.Basic, ans: ConvLayer, i: int) -> sp.Basic:
    """K̄ = Ȳ ⋆ X (valid cross-correlation), X̄ = Ȳ ∗_full K."""
    x, k = ans.operands
    s = ans.settings
    if i == 0:
        return ConvInputGrad(g, k, *s, *x.shape)
    return ConvKernelGrad(g, x, *s, *k.shape)


def _bias_vjp(g: sp.Basic, ans: ChannelBias, i: int) -> sp.Basic:
    dims, f, ho, wo = ans.settings
    return ChannelSum(g, dims, f, ho, wo, f, 1)


# ================================================================ evaluation (carriers)
# The evaluators (grad, check-grad, homework checking) may stack points on leading axes
# of every operand, kernels included; they work in 2-D geometry (a 1-D layer is one of
# height 1) with einsum, which broadcasts those axes.
def _axes2d(geo: ConvGeometry) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """X, K, Y axes in 2-D form (a 1-D layer's have height 1; the carriers are the same)."""
    return (
        (geo.C, geo.H, geo.W),
        (geo.F, geo.C, geo.kh, geo.kw),
        (geo.F, geo.out_h, geo.out_w),
    )


def _patch_view(x: Any, geo: ConvGeometry) -> Any:
    return conv_windows(x, geo.kh, geo.kw, (geo.sh, geo.stride), (geo.ph, geo.padding))


def _eval_layer(ev: Any, e: ConvLayer, rec: Callable[[sp.Basic], Any]) -> Any:
    geo = e.geometry
    xa, ka, ya = _axes2d(geo)
    x, k = own_axes(rec(e.operands[0]), xa), own_axes(rec(e.operands[1]), ka)
    return carried(np.einsum("...cijst,...fcst->...fij", _patch_view(x, geo), k), ya)


def _eval_kernel_grad(ev: Any, e: ConvKernelGrad, rec: Callable[[sp.Basic], Any]) -> Any:
    geo = e.geometry
    xa, ka, ya = _axes2d(geo)
    g, x = own_axes(rec(e.operands[0]), ya), own_axes(rec(e.operands[1]), xa)
    return carried(np.einsum("...fij,...cijst->...fcst", g, _patch_view(x, geo)), ka)


def _eval_input_grad(ev: Any, e: ConvInputGrad, rec: Callable[[sp.Basic], Any]) -> Any:
    """X̄: each tap (s, t) adds Σ_f K[f,c,s,t] Ȳ[f,i,j] where it touched (padded) X."""
    geo = e.geometry
    xa, ka, ya = _axes2d(geo)
    g, k = own_axes(rec(e.operands[0]), ya), own_axes(rec(e.operands[1]), ka)
    shares = np.einsum("...fcst,...fij->...cstij", k, g)
    hp, wp = geo.H + 2 * geo.ph, geo.W + 2 * geo.padding
    xbar = np.zeros((*shares.shape[:-5], geo.C, hp, wp), shares.dtype)
    ho, wo, sh, sw = geo.out_h, geo.out_w, geo.sh, geo.stride
    for s, t in np.ndindex(geo.kh, geo.kw):
        xbar[..., s : s + sh * ho : sh, t : t + sw * wo : sw] += shares[..., s, t, :, :]
    crop = xbar[..., geo.ph : geo.ph + geo.H, geo.padding : geo.padding + geo.W]
    return carried(crop, xa)


def _eval_bias(ev: Any, e: ChannelBias, rec: Callable[[sp.Basic], Any]) -> Any:
    b = np.asarray(rec(e.operands[0]))[..., :, 0]  # (…, F)
    axes = e.axes
    spread = b.reshape(b.shape + (1,) * (len(axes) - 1))
    return carried(np.broadcast_to(spread, b.shape[:-1] + axes), axes)


def _eval_channel_sum(ev: Any, e: ChannelSum, rec: Callable[[sp.Basic], Any]) -> Any:
    g = own_axes(rec(e.operands[0]), e.axes)
    summed = np.sum(g, axis=tuple(range(-len(e.axes) + 1, 0)))
    return summed[..., None]


# ================================================================ unit form (loops)
def _entries_of(x: Any, e: sp.Basic, axes: tuple[int, ...]) -> np.ndarray:
    m = x(e)
    return np.array(list(m), dtype=object).reshape(axes)


def _padded(xs: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    x = xs.reshape(geo.C, geo.H, geo.W)
    out = np.full((geo.C, geo.H + 2 * geo.ph, geo.W + 2 * geo.padding), sp.S.Zero, dtype=object)
    out[:, geo.ph : geo.ph + geo.H, geo.padding : geo.padding + geo.W] = x
    return out


def _as_matrix(arr: np.ndarray, axes: tuple[int, ...]) -> sp.ImmutableMatrix:
    rows, cols = carrier_of(axes)
    return sp.ImmutableMatrix(rows, cols, list(arr.reshape(-1)))


def _layer_units(x: Any, e: ConvLayer) -> sp.ImmutableMatrix:
    geo = e.geometry
    xp = _padded(_entries_of(x, e.operands[0], geo.x_axes()), geo)
    k = _entries_of(x, e.operands[1], geo.k_axes()).reshape(geo.F, geo.C, geo.kh, geo.kw)
    y = np.empty((geo.F, geo.out_h, geo.out_w), dtype=object)
    for f, i, j in np.ndindex(*y.shape):
        y[f, i, j] = sp.Add(
            *[
                xp[c, i * geo.sh + s, j * geo.stride + t] * k[f, c, s, t]
                for c, s, t in np.ndindex(geo.C, geo.kh, geo.kw)
            ]
        )
    return _as_matrix(y, geo.y_axes())


def _kernel_grad_units(x: Any, e: ConvKernelGrad) -> sp.ImmutableMatrix:
    geo = e.geometry
    g = _entries_of(x, e.operands[0], geo.y_axes()).reshape(geo.F, geo.out_h, geo.out_w)
    xp = _padded(_entries_of(x, e.operands[1], geo.x_axes()), geo)
    kbar = np.empty((geo.F, geo.C, geo.kh, geo.kw), dtype=object)
    for f, c, s, t in np.ndindex(*kbar.shape):
        kbar[f, c, s, t] = sp.Add(
            *[
                g[f, i, j] * xp[c, i * geo.sh + s, j * geo.stride + t]
                for i, j in np.ndindex(geo.out_h, geo.out_w)
            ]
        )
    return _as_matrix(kbar, geo.k_axes())


def _input_grad_units(x: Any, e: ConvInputGrad) -> sp.ImmutableMatrix:
    geo = e.geometry
    g = _entries_of(x, e.operands[0], geo.y_axes()).reshape(geo.F, geo.out_h, geo.out_w)
    k = _entries_of(x, e.operands[1], geo.k_axes()).reshape(geo.F, geo.C, geo.kh, geo.kw)
    hp, wp = geo.H + 2 * geo.ph, geo.W + 2 * geo.padding
    terms: dict[tuple[int, int, int], list[sp.Basic]] = {}
    for f, i, j, c, s, t in np.ndindex(geo.F, geo.out_h, geo.out_w, geo.C, geo.kh, geo.kw):
        at = (c, i * geo.sh + s, j * geo.stride + t)
        terms.setdefault(at, []).append(g[f, i, j] * k[f, c, s, t])
    xbar = np.empty((geo.C, hp, wp), dtype=object)
    for at in np.ndindex(*xbar.shape):
        xbar[at] = sp.Add(*terms.get(at, []))
    crop = xbar[:, geo.ph : geo.ph + geo.H, geo.padding : geo.padding + geo.W]
    return _as_matrix(crop, geo.x_axes())


def _bias_units(x: Any, e: ChannelBias) -> sp.ImmutableMatrix:
    b = list(x(e.operands[0]))
    spread = np.empty(e.axes, dtype=object)
    for at in np.ndindex(*e.axes):
        spread[at] = b[at[0]]
    return _as_matrix(spread, e.axes)


def _channel_sum_units(x: Any, e: ChannelSum) -> sp.ImmutableMatrix:
    g = _entries_of(x, e.operands[0], e.axes).reshape(e.axes[0], -1)
    return sp.ImmutableMatrix(e.axes[0], 1, [sp.Add(*row) for row in g])


# ================================================================ costs
def _macs(e: ConvNode) -> int:
    geo = e.geometry
    return geo.F * geo.out_h * geo.out_w * geo.C * geo.kh * geo.kw


def _conv_cost(c: Any, e: ConvNode) -> Any:
    n = _macs(e)
    return c.cost(adds=n, muls=n, macs=n)


# ================================================================ generated code
def _layer_text(geo: ConvGeometry, x: str, k: str) -> str:
    return f"conv{geo.dims}d({x}, {k}{geo.keywords()})"


def _kernel_grad_text(geo: ConvGeometry, g: str, x: str, over_examples: bool) -> str:
    """``conv2d_kernel_grad(Y_bar, X, 3, 3)``: K̄ summed over the examples (generated
    code); per example (``over_examples=False``) for the evaluator's printer."""
    sizes = f"{geo.kh}, {geo.kw}" if geo.dims == 2 else f"{geo.kw}"
    tail = geo.keywords() + ("" if over_examples else ", over_examples=False")
    return f"conv{geo.dims}d_kernel_grad({g}, {x}, {sizes}{tail})"


def _input_grad_text(geo: ConvGeometry, g: str, k: str) -> str:
    sizes = f"{geo.H}, {geo.W}" if geo.dims == 2 else f"{geo.W}"
    return f"conv{geo.dims}d_input_grad({g}, {k}, {sizes}{geo.keywords()})"


def _channel_bias_text(e: ChannelBias, b: str) -> str:
    """b (F, 1) broadcast over each map: as it is for 1-D maps, (F, 1, 1) for 2-D."""
    return b if e.settings[0] == 1 else f"{b}[:, :, None]"


def _channel_sum_text(e: ChannelSum, g: str, over_examples: bool) -> str:
    """b̄ as a column (F, 1): Ȳ summed over each map (and the examples, axis 0)."""
    first = 2 if over_examples else 1
    axes = ", ".join(str(a) for a in range(first, first + len(e.axes) - 1))
    if over_examples:
        return f"xp.reshape(xp.sum({g}, axis=(0, {axes})), (-1, 1))"
    return f"xp.reshape(xp.sum({g}, axis=({axes},)), (-1, 1))"


def _patches(p: Any, e: ConvNode, x_code: str, create: bool) -> str | None:
    """The name of X's patches (im2col) computed once in the forward pass and read again
    by K̄, when the printer shares values (a named, examples-first X of a 2-D layer)."""
    share = getattr(p, "shared_value", None)
    x = e.operands[0] if isinstance(e, ConvLayer) else e.operands[1]
    geo = e.geometry
    if share is None or geo.dims != 2 or not isinstance(x, sp.MatrixSymbol):
        return None
    if p.states.get(x, "const") != "stack":
        return None
    code = f"conv_patches({x_code}, {geo.kh}, {geo.kw}{geo.keywords()})"
    if create:
        p.use_helper("conv_patches")
    return share(("conv_patches", x, geo.settings()), f"{x_code}_patches", code, create)


def _operand_axes(e: Any, i: int) -> tuple[int, ...] | None:
    """One example's axes of operand ``i`` of a conv node (Ȳ's for the backward ones)."""
    if isinstance(e, ChannelSum) and i == 0:
        return e.axes
    if isinstance(e, ConvKernelGrad | ConvInputGrad) and i == 0:
        return e.geometry.y_axes()
    return None


def _batched(kind: str) -> Callable[[Any, Any], tuple[str, str]]:
    """Batched code: operands are ``stack`` (examples first, in their own axes) or
    ``const``; K̄ and b̄ come out summed over the examples."""

    def code(p: Any, e: Any) -> tuple[str, str]:
        parts = [p.operand(e, i, _operand_axes(e, i)) for i in range(len(e.operands))]
        states = {s for _, s in parts} - {"const"}
        if states - {"stack"}:
            raise OpError(f"{e.name} of a value in columns; declare the input with its axes")
        stacked = bool(states)
        codes = [c for c, _ in parts]
        if kind == "bias":
            return _channel_bias_text(e, codes[0]), "const"
        if kind == "sum":
            return _channel_sum_text(e, codes[0], stacked), "sum" if stacked else "const"
        geo = e.geometry
        patches = _patches(p, e, codes[0] if kind == "layer" else codes[1], kind == "layer")
        if kind == "layer":
            if patches is not None:
                p.use_helper("conv2d_from_patches")
                return f"conv2d_from_patches({patches}, {codes[1]})", "stack"
            p.use_helper(f"conv{geo.dims}d")
            return _layer_text(geo, *codes), "stack" if stacked else "const"
        if kind == "kernel":
            if patches is not None and stacked:
                p.use_helper("conv2d_kernel_grad_from_patches")
                return f"conv2d_kernel_grad_from_patches({codes[0]}, {patches})", "sum"
            p.use_helper(f"conv{geo.dims}d_kernel_grad")
            g, x = codes
            if parts[0][1] == "stack" and parts[1][1] == "const":  # linear in Ȳ: sum it first
                g = f"xp.sum({g}, axis=0)"
                return _kernel_grad_text(geo, g, x, over_examples=False), "sum"
            if parts[0][1] == "const" and parts[1][1] == "stack":  # linear in X: sum it first
                x = f"xp.sum({x}, axis=0)"
                return _kernel_grad_text(geo, g, x, over_examples=False), "sum"
            return _kernel_grad_text(geo, g, x, over_examples=stacked), (
                "sum" if stacked else "const"
            )
        p.use_helper(f"conv{geo.dims}d_input_grad")
        return _input_grad_text(geo, *codes), "stack" if stacked else "const"

    return code


# ================================================================ renderings
def _index(p: Any, e: sp.Basic, idx: str) -> str:
    text = p._print(e)
    simple = not any(ch in text for ch in " +−-*/∘()")
    return f"{text}[{idx}]" if simple else f"({text})[{idx}]"


def _spatial(geo: ConvGeometry, i: str, s: str) -> str:
    return f"{i}+{s}" if geo.stride == 1 else f"{geo.stride}{i}+{s}"


def _layer_unicode(e: ConvLayer, p: Any) -> str:
    return _layer_text(e.geometry, *(p._print(a) for a in e.operands))


def _layer_latex(e: ConvLayer, p: Any) -> str:
    x, k = (p._print(a) for a in e.operands)
    keys = e.geometry.keywords().replace("_", r"\_")
    return rf"\operatorname{{conv{e.geometry.dims}d}}\left({x}, {k}{keys}\right)"


def _infix_latex(e: sp.Basic, p: Any, symbol: str, swap: bool = False) -> str:
    r"""``X \star \bar{Y}`` (K̄), ``\bar{Y} *_{full} K`` (X̄)."""
    a, b = (p.parenthesize(o, 50) for o in e.operands)
    return f"{b} {symbol} {a}" if swap else f"{a} {symbol} {b}"


def _channel_sum_latex(e: ChannelSum, p: Any) -> str:
    two = e.settings[0] == 2
    idx = "i,j" if two else "i"
    return rf"\sum_{{{idx}}} \left({p._print(e.operands[0])}\right)_{{:,{idx}}}"


def _channel_sum_unicode(e: ChannelSum, p: Any) -> str:
    """``Σ_{i,j} Ȳ[:,i,j]``: each channel's error signals summed."""
    two = e.settings[0] == 2
    return f"Σ_{'{i,j}' if two else 'i'} {_index(p, e.operands[0], ':,i,j' if two else ':,i')}"


def _kernel_grad_unicode(e: ConvKernelGrad, p: Any) -> str:
    """``Ȳ ⋆ X``: K̄ is the valid cross-correlation of X with Ȳ (per channel pair)."""
    g, x = (
        p.parenthesize(a, 50) if hasattr(p, "parenthesize") else p._print(a) for a in e.operands
    )
    return f"{x} ⋆ {g}" + (f" (stride {e.geometry.stride})" if e.geometry.stride != 1 else "")


def _input_grad_unicode(e: ConvInputGrad, p: Any) -> str:
    g, k = (
        p.parenthesize(a, 50) if hasattr(p, "parenthesize") else p._print(a) for a in e.operands
    )
    return f"{g} ∗_full {k}" + (
        f" (Ȳ dilated by {e.geometry.stride})" if e.geometry.stride != 1 else ""
    )


def _zeros(geo: ConvGeometry) -> str:
    return f"{geo.padding} zero{'s' * (geo.padding > 1)}"


def _padded_note(geo: ConvGeometry, p: Any, x: sp.Basic) -> str:
    """K̄'s indices read X padded: say so."""
    return f"   ({p._print(x)} with {_zeros(geo)} padded on each side)" if geo.padding else ""


def _input_grad_entries(e: ConvInputGrad, p: Any) -> str:
    """X̄ entry by entry: every (output position, tap) pair that touched X[c, u, v]."""
    geo, (g, k) = e.geometry, e.operands
    crop = ""
    if geo.padding:
        crop = f"   (indices of the input padded with {_zeros(geo)} on each side, then dropped)"
    if geo.dims == 1:
        if geo.stride != 1:
            where = f"{geo.stride}i+s=u"
            return (
                f"[c,u] = Σ_f Σ_{{i,s: {where}}} {_index(p, g, 'f,i')} {_index(p, k, 'f,c,s')}"
                + crop
            )
        return f"[c,u] = Σ_f Σ_s {_index(p, g, 'f,u−s')} {_index(p, k, 'f,c,s')}" + crop
    if geo.stride != 1:
        where = f"{geo.stride}i+s=u, {geo.stride}j+t=v"
        gk = f"{_index(p, g, 'f,i,j')} {_index(p, k, 'f,c,s,t')}"
        return f"[c,u,v] = Σ_f Σ_{{i,j,s,t: {where}}} {gk}" + crop
    gk = f"{_index(p, g, 'f,u−s,v−t')} {_index(p, k, 'f,c,s,t')}"
    return f"[c,u,v] = Σ_f Σ_{{s,t}} {gk}" + crop


def entry_forms(e: sp.Basic, p: Any) -> str | None:
    """The lecture's entrywise reading of a backward node, e.g.
    ``K̄[f,c,s,t] = Σ_{i,j} Ȳ[f,i,j] X[c,i+s,j+t]`` (its left side without the name)."""
    if isinstance(e, ConvKernelGrad):
        geo, (g, x) = e.geometry, e.operands
        if geo.dims == 1:
            xi = "c," + _spatial(geo, "i", "s")
            return f"[f,c,s] = Σ_i {_index(p, g, 'f,i')} {_index(p, x, xi)}" + _padded_note(
                geo, p, x
            )
        xi = f"c,{_spatial(geo, 'i', 's')},{_spatial(geo, 'j', 't')}"
        text = f"[f,c,s,t] = Σ_{{i,j}} {_index(p, g, 'f,i,j')} {_index(p, x, xi)}"
        return text + _padded_note(geo, p, x)
    if isinstance(e, ConvInputGrad):
        return _input_grad_entries(e, p)
    if isinstance(e, ChannelSum):
        idx = "f,i,j" if e.settings[0] == 2 else "f,i"
        return f"[f] = Σ_{{{idx[2:]}}} {_index(p, e.operands[0], idx)}"
    return None


# ================================================================ the entries
LAYER_NOTE = (
    "conv2d is the CNN layer as PyTorch defines it: a cross-correlation (the kernel is "
    "not flipped) summed over the input channels, Y[f,i,j] = Σ_c Σ_s Σ_t X[c,i+s,j+t] "
    "K[f,c,s,t]. The lecture's convolution flips the kernel; a layer learns its kernel, "
    "so the two differ only by which way K is stored. Its backward pass is flip-and-filter "
    "again: K̄ is the valid cross-correlation of X with Ȳ, and X̄ the full convolution of Ȳ "
    "with K (the kernel flipped), summed over the output channels."
)

_HELPERS = {
    f.__name__: f
    for f in (
        conv_windows,
        conv2d,
        conv2d_kernel_grad,
        conv2d_input_grad,
        conv1d,
        conv1d_kernel_grad,
        conv1d_input_grad,
        conv_patches,
        conv2d_from_patches,
        conv2d_kernel_grad_from_patches,
    )
}
_NEEDS = {
    "conv2d": ("conv_windows",),
    "conv_patches": ("conv_windows",),
    "conv2d_kernel_grad": ("conv_windows",),
    "conv1d": ("conv2d", "conv_windows"),
    "conv1d_kernel_grad": ("conv2d_kernel_grad", "conv_windows"),
    "conv1d_input_grad": ("conv2d_input_grad",),
}


def _per_example(fn: Callable[..., str]) -> Callable[[Any, Any], str]:
    """The NumPy printer's form (one example, arrays in their own axes)."""

    def code(p: Any, e: Any) -> str:
        return fn(e, *(p._print(a) for a in e.operands))

    return code


def conv_entries() -> list[Op]:
    """conv1d/conv2d and their backward nodes, one record each."""
    sources = {name: _source(f) for name, f in _HELPERS.items()}
    return [
        Op(
            "conv2d",
            ConvLayer,
            "tensor",
            "CNN layer: cross-correlation over all input channels (PyTorch's conv2d)",
            spellings=("conv1d",),
            arity=(2, 3),
            build_tensor=build_conv_layer,
            vjp=_conv_vjp,
            unit_form=_layer_units,
            cost=_conv_cost,
            evaluate=_eval_layer,
            jvp=multilinear(),  # linear in each value: f(ȧ, b) + f(a, ḃ)
            batched=_batched("layer"),
            numpy=conv2d,
            numpy_call="conv2d",
            numpy_source=sources["conv2d"],
            needs=_NEEDS["conv2d"],
            numpy_print=_per_example(lambda e, x, k: _layer_text(e.geometry, x, k)),
            unicode="conv2d",
            latex=r"\operatorname{conv2d}",
            extra={
                "keywords": ("stride", "padding"),
                "report_notes": lambda e: [LAYER_NOTE, *conv_views()],
                # a kernel's fan-in is C·kh·kw: the inputs of one output unit
                "fan_in": lambda e, p: (
                    int(np.prod(e.geometry.k_axes()[1:])) if e.operands[1] == p else None
                ),
                "unicode_form": _layer_unicode,
                "latex_form": _layer_latex,
                "ndim": lambda e, rec: len(e.geometry.y_axes()),  # one example's axes
                # reports draw a CNN's kernels and feature maps: (X, K, geometry)
                "feature_maps": lambda e: (*e.operands, e.geometry),
                "helper_sources": {n: s for n, s in sources.items() if n != "conv2d"},
                "helper_needs": {n: d for n, d in _NEEDS.items() if n != "conv2d"},
            },
        ),
        Op(
            "conv_kernel_grad",
            ConvKernelGrad,
            "tensor",
            "K̄: valid cross-correlation of X with Ȳ",
            unit_form=_kernel_grad_units,
            cost=_conv_cost,
            evaluate=_eval_kernel_grad,
            jvp=multilinear(),  # linear in each value: f(ȧ, b) + f(a, ḃ)
            batched=_batched("kernel"),
            numpy_print=_per_example(
                lambda e, g, x: _kernel_grad_text(e.geometry, g, x, over_examples=False)
            ),
            extra={
                "unicode_form": _kernel_grad_unicode,
                "latex_form": lambda e, p: _infix_latex(e, p, r"\star", swap=True),
                "entry_form": entry_forms,
                "ndim": lambda e, rec: len(e.geometry.k_axes()),
            },
        ),
        Op(
            "conv_input_grad",
            ConvInputGrad,
            "tensor",
            "X̄: full convolution of Ȳ with K",
            unit_form=_input_grad_units,
            cost=_conv_cost,
            evaluate=_eval_input_grad,
            jvp=multilinear(),  # linear in each value: f(ȧ, b) + f(a, ḃ)
            batched=_batched("input"),
            numpy_print=_per_example(lambda e, g, k: _input_grad_text(e.geometry, g, k)),
            extra={
                "unicode_form": _input_grad_unicode,
                "latex_form": lambda e, p: _infix_latex(e, p, r"*_{\text{full}}"),
                "entry_form": entry_forms,
                "ndim": lambda e, rec: len(e.geometry.x_axes()),
            },
        ),
        Op(
            "channel_bias",
            ChannelBias,
            "tensor",
            "a bias per output channel, at every position",
            vjp=_bias_vjp,
            unit_form=_bias_units,
            cost=lambda c, e: c.cost(),
            evaluate=_eval_bias,
            jvp=multilinear(),  # linear in each value: f(ȧ, b) + f(a, ḃ)
            batched=_batched("bias"),
            numpy_print=_per_example(_channel_bias_text),
            extra={
                "unicode_form": lambda e, p: p._print(e.operands[0]),
                "latex_form": lambda e, p: p._print(e.operands[0]),
                "ndim": lambda e, rec: len(e.axes),
            },
        ),
        Op(
            "channel_sum",
            ChannelSum,
            "tensor",
            "b̄: each output channel's error signals summed",
            unit_form=_channel_sum_units,
            cost=lambda c, e: c.cost(adds=int(np.prod(e.axes)) - e.axes[0]),
            evaluate=_eval_channel_sum,
            jvp=multilinear(),  # linear in each value: f(ȧ, b) + f(a, ḃ)
            batched=_batched("sum"),
            numpy_print=_per_example(lambda e, g: _channel_sum_text(e, g, False)),
            extra={
                "unicode_form": _channel_sum_unicode,
                "latex_form": _channel_sum_latex,
                "ndim": lambda e, rec: 1,
                "entry_form": entry_forms,
            },
        ),
    ]
