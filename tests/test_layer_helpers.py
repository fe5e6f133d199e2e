"""The layers' NumPy helpers (copied into generated code) against direct loops.

The helpers are written for speed (im2col, col2im, strided views of the pooling groups);
these loops are the definitions they must keep: stride and padding, leading axes
broadcast, and at a tie the first maximum of a group in row-major order.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from chainrule.ops.conv import conv2d, conv2d_input_grad, conv2d_kernel_grad
from chainrule.ops.layers import maxpool, maxpool_route


def route_loop(g: np.ndarray, z: np.ndarray, sr: int, sc: int) -> np.ndarray:
    """Z̄ of one (rows, cols) map: Ȳ[i, j] at the first maximum of group (i, j)."""
    zbar = np.zeros(z.shape)
    for i, j in np.ndindex(*g.shape):
        group = z[i * sr : (i + 1) * sr, j * sc : (j + 1) * sc]
        s, t = divmod(int(np.argmax(group)), sc)  # argmax: the first, row-major
        zbar[i * sr + s, j * sc + t] = g[i, j]
    return zbar


def conv_grads_loop(
    g: np.ndarray, x: np.ndarray, k: np.ndarray, stride: int, padding: int
) -> tuple[np.ndarray, np.ndarray]:
    """K̄ and X̄ of one example by the chain rule, entry by entry."""
    c, h, w = x.shape
    xp = np.pad(x, [(0, 0), (padding, padding), (padding, padding)])
    kbar, xbar = np.zeros(k.shape), np.zeros(xp.shape)
    f_n, _, kh, kw = k.shape
    for f, i, j, s, t in itertools.product(
        range(f_n), range(g.shape[1]), range(g.shape[2]), range(kh), range(kw)
    ):
        row, col = i * stride + s, j * stride + t
        kbar[f, :, s, t] += g[f, i, j] * xp[:, row, col]
        xbar[:, row, col] += g[f, i, j] * k[f, :, s, t]
    return kbar, xbar[:, padding : padding + h, padding : padding + w]


@pytest.mark.parametrize(("rows", "cols", "sr", "sc"), [(4, 6, 2, 2), (7, 5, 3, 2), (5, 7, 1, 3)])
def test_maxpool_route_sends_each_group_to_its_first_maximum(
    rows: int, cols: int, sr: int, sc: int
) -> None:
    rng = np.random.default_rng(0)
    z = np.maximum(np.round(rng.normal(size=(2, 3, rows, cols))), 0)  # ties, zeros as after relu
    z[0, 0] = 1.0  # every group all equal: the first member takes Ȳ
    g = rng.normal(size=(2, 3, rows // sr, cols // sc))
    y, zbar = maxpool(z, sr, sc), maxpool_route(g, z, sr, sc)
    assert zbar.shape == z.shape
    for n, c in np.ndindex(2, 3):
        want = route_loop(g[n, c], z[n, c], sr, sc)
        assert np.array_equal(zbar[n, c], want)
        groups = z[n, c, : y.shape[-2] * sr, : y.shape[-1] * sc]
        assert np.array_equal(y[n, c], groups.reshape(y.shape[-2], sr, -1, sc).max(axis=(1, 3)))
    assert np.count_nonzero(zbar[0, 0]) == g[0, 0].size  # one member per group, the first
    assert np.array_equal(zbar[0, 0, ::sr, ::sc][: g.shape[-2], : g.shape[-1]], g[0, 0])


def test_maxpool_route_broadcasts_a_shared_bar_over_leading_axes() -> None:
    z = np.arange(2 * 4 * 4, dtype=float).reshape(2, 4, 4)
    g = np.array([[1.0, 2.0], [3.0, 4.0]])  # one Ȳ for both maps
    zbar = maxpool_route(g, z, 2, 2)
    assert zbar.shape == (2, 4, 4)
    assert np.array_equal(zbar[1], route_loop(g, z[1], 2, 2))


@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (2, 1), (3, 2)])
def test_conv_gradients_equal_the_chain_rule_entry_by_entry(stride: int, padding: int) -> None:
    rng = np.random.default_rng(1)
    x, k = rng.normal(size=(3, 2, 7, 6)), rng.normal(size=(4, 2, 3, 2))
    g = rng.normal(size=conv2d(x, k, stride, padding).shape)
    kbar = conv2d_kernel_grad(g, x, 3, 2, stride, padding)
    xbar = conv2d_input_grad(g, k, 7, 6, stride, padding)
    loops = [conv_grads_loop(g[n], x[n], k, stride, padding) for n in range(3)]
    assert np.allclose(kbar, sum(kb for kb, _ in loops), rtol=1e-12, atol=1e-12)
    assert np.allclose(xbar, np.stack([xb for _, xb in loops]), rtol=1e-12, atol=1e-12)
    assert np.allclose(conv2d_input_grad(g[0], k, 7, 6, stride, padding), loops[0][1])
