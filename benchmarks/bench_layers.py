"""Benchmark: generated code of the layer operations vs hand-written NumPy.

A 1-D convolution layer and a max-pool (batch 64, 256 samples, kernel 9, pool 2),
forward and backward, as chainrule generates it (``sliding_window_view`` + ``einsum``,
examples on a leading axis) and as a person would write it with im2col and one matrix
product; the ratio is printed side by side, measured in one run. Not a test.

    python benchmarks/bench_layers.py [--repeat N]

What is not measured here: the issue's conv2d layer with channels (8×16×16 input,
16 filters 3×3) — programs with 3 or 4 axes do not exist yet.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.numeric.codegen import compiled
from chainrule.symbolic import parse_program

MODEL = """# 1-D conv layer and max-pool
const n = 256, k = 9
param w[k], b
input x[n], t[124]
z = conv(x, w, "valid") + b
p = maxpool1d(z, 2)
L = sum((p - t)^2) / 2
loss L
"""


def im2col(params: dict[str, Any], data: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """The same loss and gradient by hand: im2col, one product, an argmax route."""
    w, b = params["w"], params["b"]
    x, t = data["x"], data["t"]  # (B, n), (B, m)
    batch, k = x.shape[0], w.shape[0]
    cols = np.lib.stride_tricks.sliding_window_view(x, k, axis=1)  # (B, n-k+1, k)
    z = cols @ w[::-1] + b
    groups = z[:, : (z.shape[1] // 2) * 2].reshape(batch, -1, 2)
    first = np.argmax(groups, axis=2)
    p = np.take_along_axis(groups, first[..., None], axis=2)[..., 0]
    loss = float(np.sum((p - t) ** 2) / 2 / batch)
    p_bar = (p - t) / batch
    z_bar = np.zeros_like(z)
    rows = np.arange(batch)[:, None]
    z_bar[rows, 2 * np.arange(p.shape[1]) + first] = p_bar
    w_bar = np.einsum("bik,bi->k", cols, z_bar)[::-1]
    return loss, {"w": w_bar, "b": float(np.sum(z_bar))}


def best(f: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=9), "b": 0.1}
    data = {"x": rng.normal(size=(64, 256)), "t": rng.normal(size=(64, 124))}
    fn = compiled(parse_program(MODEL)).function
    loss, grads = fn(params, data)
    want_loss, want = im2col(params, data)
    assert abs(loss - want_loss) < 1e-9 * abs(want_loss)
    assert np.allclose(grads["w"], want["w"]) and np.isclose(grads["b"], want["b"])
    ours = best(lambda: fn(params, data), args.repeat)
    theirs = best(lambda: im2col(params, data), args.repeat)
    print("conv1d (k=9) + maxpool1d 2, batch 64, n=256, forward + backward")
    print(f"{'chainrule generated':>22}  {ours * 1e3:8.3f} ms")
    print(f"{'hand-written im2col':>22}  {theirs * 1e3:8.3f} ms")
    print(f"{'ratio':>22}  {ours / theirs:8.2f}×")


if __name__ == "__main__":
    main()
