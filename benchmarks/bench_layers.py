"""Benchmark: a conv layer and a 2×2 max-pool — generated code vs NumPy im2col vs PyTorch.

Run: ``python benchmarks/bench_layers.py [--repeat N] [--dtype float64 float32]``; prints,
side by side in one run, the median time of one ``loss_and_grad`` (forward + backward):

* chainrule's generated code for a small model (``chainrule codegen``), examples first;
* the same loss and gradient written by hand with im2col and one matrix product (the way
  an expert writes it: windows copied in memory order, the forward columns reused for K̄,
  col2im for X̄, the argmax of each pooling group kept for the backward pass);
* ``torch.nn.functional.conv2d`` / ``max_pool2d`` with autograd on the CPU, when
  ``import torch`` works (skipped otherwise; torch is not a dependency).

Layers (issue 11): conv2d with batch 64, X[8, 16, 16], K[16, 8, 3, 3] — as a first layer
(X is data: forward + K̄) and as a hidden one (forward + K̄ + X̄) — and maxpool2d 2 on
(64, 16, 16, 16) (forward + routing backward). Targets: generated ≤ 1.1× im2col and
≤ 1.5× PyTorch. A second table splits the layer into its helper calls, and shows what
recomputing the windows for K̄ costs (the generated code does not keep the forward im2col).

Runs are interleaved (one of each in turn) and the medians compared. BLAS and PyTorch use
one thread unless ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` say otherwise, and the clock
is this process's CPU time (``--clock wall`` for elapsed time): the ratios compare the
algorithms, and on a shared machine more threads and wall time only add noise. glibc is
asked to keep freed memory (``--malloc default`` to leave it be): otherwise whichever
implementation happens to cross its adaptive trim threshold pays page faults for its big
temporaries on every call (seen: 1,400 faults per call, +1.5 ms). Not a test.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads its BLAS

import argparse  # noqa: E402
import ctypes  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from chainrule.numeric.codegen import compiled  # noqa: E402
from chainrule.symbolic import parse_program  # noqa: E402

BATCH = 64
FIRST = """# conv2d as a first layer: forward + K̄
param K[16, 8, 3, 3]
input X[8, 16, 16], T[16, 14, 14]
Y = conv2d(X, K)
L = sum(Y * T)
loss L
"""
HIDDEN = """# conv2d as a hidden layer: forward + K̄ + X̄ (Z̄ reaches P)
param K[16, 8, 3, 3], P[8, 16, 16]
input X[8, 16, 16], T[16, 14, 14]
Z = X + P
Y = conv2d(Z, K)
L = sum(Y * T)
loss L
"""
POOL = """# 2×2 max-pool: forward + routing backward (Z̄ reaches P)
param P[16, 16, 16]
input X[16, 16, 16], T[16, 8, 8]
Z = X + P
Y = maxpool2d(Z, 2)
L = sum(Y * T)
loss L
"""
Grads = dict[str, Any]
Run = Callable[[], tuple[float, Grads]]


# ------------------------------------------------------------- hand-written im2col
def im2col(x: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """(C·kh·kw, B·Ho·Wo): every patch as a column, copied in memory order."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    cols = windows.transpose(1, 4, 5, 0, 2, 3)  # (C, kh, kw, B, Ho, Wo)
    return cols.reshape(x.shape[1] * kh * kw, -1)


def conv_forward(x: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Y (B, F, Ho, Wo) and the columns, kept for the backward pass."""
    b, _, h, w = x.shape
    f, _, kh, kw = k.shape
    cols = im2col(x, kh, kw)
    y = (k.reshape(f, -1) @ cols).reshape(f, b, h - kh + 1, w - kw + 1)
    return y.transpose(1, 0, 2, 3), cols


def kernel_grad(g: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """K̄ (F, C·kh·kw) from the kept columns: one product."""
    return g.transpose(1, 0, 2, 3).reshape(g.shape[1], -1) @ cols.T


def input_grad(g: np.ndarray, k: np.ndarray, x_shape: tuple[int, ...]) -> np.ndarray:
    """X̄ by col2im: one product gives every tap's share, each tap (s, t) adds its own."""
    _, c, kh, kw = k.shape
    b, _, ho, wo = g.shape
    shares = np.tensordot(k, g, axes=([0], [1]))  # (C, kh, kw, B, Ho, Wo)
    xbar = np.zeros((c, b, *x_shape[2:]), g.dtype)
    for s in range(kh):
        for t in range(kw):
            xbar[:, :, s : s + ho, t : t + wo] += shares[:, s, t]
    return xbar.transpose(1, 0, 2, 3)


def pool_forward(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2×2 max-pool by im2col: the groups as rows of 4, their max and (first) argmax."""
    b, c, h, w = z.shape
    groups = z.reshape(b, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    groups = groups.reshape(b, c, h // 2, w // 2, 4)
    first = np.argmax(groups, axis=-1)
    return np.take_along_axis(groups, first[..., None], axis=-1)[..., 0], first


def pool_backward(g: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Ȳ scattered to each group's kept argmax, the groups put back in place."""
    b, c, ho, wo = g.shape
    parts = np.zeros((b, c, ho, wo, 4), g.dtype)
    np.put_along_axis(parts, first[..., None], g[..., None], axis=-1)
    parts = parts.reshape(b, c, ho, wo, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    return parts.reshape(b, c, 2 * ho, 2 * wo)


def hand_conv(p: Grads, d: Grads, hidden: bool) -> Run:
    def run() -> tuple[float, Grads]:
        x = d["X"] + p["P"] if hidden else d["X"]
        y, cols = conv_forward(x, p["K"])
        loss = float(np.sum(y * d["T"])) / BATCH
        g = d["T"] / BATCH
        grads = {"K": kernel_grad(g, cols).reshape(p["K"].shape)}
        if hidden:
            grads["P"] = input_grad(g, p["K"], x.shape).sum(axis=0)
        return loss, grads

    return run


def hand_pool(p: Grads, d: Grads) -> Run:
    def run() -> tuple[float, Grads]:
        z = d["X"] + p["P"]
        y, first = pool_forward(z)
        loss = float(np.sum(y * d["T"])) / BATCH
        return loss, {"P": pool_backward(d["T"] / BATCH, first).sum(axis=0)}

    return run


# ---------------------------------------------------------------------- PyTorch
def torch_or_none() -> Any:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    return torch


def torch_run(torch: Any, p: Grads, d: Grads, layer: str) -> Run:
    """The same loss with torch.nn.functional and autograd (CPU)."""
    fn = torch.nn.functional
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    td = {k: torch.from_numpy(v) for k, v in d.items()}

    def run() -> tuple[float, Grads]:
        x = td["X"] + tp["P"] if "P" in tp else td["X"]
        y = fn.max_pool2d(x, 2) if layer == "pool" else fn.conv2d(x, tp["K"])
        loss = (y * td["T"]).sum() / BATCH
        grads = torch.autograd.grad(loss, list(tp.values()))
        return float(loss.detach()), {k: g.numpy() for k, g in zip(tp, grads, strict=True)}

    return run


# --------------------------------------------------------------------- measuring
def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse (no trimming, no mmap below
    32 MiB). Otherwise whether a call pays page faults for its big temporaries depends on
    the order of earlier allocations (glibc's adaptive thresholds), not on the code."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_trim_threshold, 1 << 30) and libc.mallopt(m_mmap_threshold, 1 << 25))


def case(layer: str, dtype: str) -> tuple[str, Grads, Grads]:
    """(model text, params, data) of one row, with seeded random values."""
    rng = np.random.default_rng(0)
    model = {"first": FIRST, "hidden": HIDDEN, "pool": POOL}[layer]
    shapes = {"K": (16, 8, 3, 3), "P": (8, 16, 16), "X": (BATCH, 8, 16, 16)}
    shapes["T"] = (BATCH, 16, 14, 14)
    if layer == "pool":
        shapes.update(P=(16, 16, 16), X=(BATCH, 16, 16, 16), T=(BATCH, 16, 8, 8))
    names = {"first": ("K",), "hidden": ("K", "P"), "pool": ("P",)}[layer]
    arrays = {k: rng.normal(size=s).astype(dtype) for k, s in shapes.items()}
    return model, {k: arrays[k] for k in names}, {k: arrays[k] for k in ("X", "T")}


def medians(runs: dict[str, Run], repeat: int, clock: Callable[[], float]) -> dict[str, float]:
    """Median seconds per call, the runs interleaved so load hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            t0 = clock()
            run()
            times[name].append(clock() - t0)
    return {name: float(np.median(ts)) for name, ts in times.items()}


def agree(runs: dict[str, Run], dtype: str) -> None:
    """Every run gives the generated code's loss and gradient."""
    tol = 1e-4 if dtype == "float32" else 1e-10
    loss, grads = runs["generated"]()
    for name, run in runs.items():
        other_loss, other = run()
        assert np.isclose(other_loss, loss, rtol=tol), name
        for k, g in grads.items():
            assert np.allclose(other[k], g, rtol=tol, atol=tol * np.abs(g).max()), (name, k)


def layer_rows(torch: Any, dtype: str, repeat: int, clock: Callable[[], float]) -> None:
    titles = {
        "first": "conv2d 8→16 3×3, first layer (K̄)",
        "hidden": "conv2d 8→16 3×3, hidden (K̄, X̄)",
        "pool": "maxpool2d 2, 16×16×16",
    }
    for layer, title in titles.items():
        model, p, d = case(layer, dtype)
        fn = compiled(parse_program(model)).function
        runs: dict[str, Run] = {"generated": lambda fn=fn, p=p, d=d: fn(p, d)}
        runs["im2col"] = hand_pool(p, d) if layer == "pool" else hand_conv(p, d, layer == "hidden")
        if torch is not None:
            runs["torch"] = torch_run(torch, p, d, layer)
        agree(runs, dtype)
        t = medians(runs, repeat, clock)
        vs_torch = f"{t['generated'] / t['torch']:8.2f}×" if torch is not None else "       —"
        torch_ms = f"{t['torch'] * 1e3:8.2f}" if torch is not None else "       —"
        print(
            f"{title:<36} {dtype:>7} {t['generated'] * 1e3:9.2f} {t['im2col'] * 1e3:8.2f} "
            f"{torch_ms} {t['generated'] / t['im2col']:8.2f}× {vs_torch}"
        )


def helper_rows(dtype: str, repeat: int, clock: Callable[[], float]) -> None:
    """The generated module's own helper calls vs the hand-written pieces."""
    conv = compiled(parse_program(HIDDEN)).namespace
    pool = compiled(parse_program(POOL)).namespace
    _, p, d = case("hidden", dtype)
    x, k, g = d["X"], p["K"], d["T"]
    _, cols = conv_forward(x, k)
    _, _, pd = case("pool", dtype)
    z, gp = pd["X"], pd["T"]
    _, first = pool_forward(z)
    patches = conv["conv_patches"](x, 3, 3)
    pairs = {
        "im2col (patches)": (lambda: conv["conv_patches"](x, 3, 3), lambda: im2col(x, 3, 3)),
        "conv2d forward from patches": (
            lambda: conv["conv2d_from_patches"](patches, k),
            lambda: conv_forward(x, k),
        ),
        "K̄ from kept patches": (
            lambda: conv["conv2d_kernel_grad_from_patches"](g, patches),
            lambda: kernel_grad(g, cols),
        ),
        "X̄": (lambda: conv["conv2d_input_grad"](g, k, 16, 16), lambda: input_grad(g, k, x.shape)),
        "maxpool forward": (lambda: pool["maxpool"](z, 2, 2), lambda: pool_forward(z)),
        "maxpool route": (
            lambda: pool["maxpool_route"](gp, z, 2, 2),
            lambda: pool_backward(gp, first),
        ),
    }
    for name, (ours, theirs) in pairs.items():
        t = medians({"ours": ours, "theirs": theirs}, repeat, clock)
        print(
            f"  {name:<34} {dtype:>7} {t['ours'] * 1e3:9.2f} {t['theirs'] * 1e3:8.2f} "
            f"{'':>8} {t['ours'] / t['theirs']:8.2f}×"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30, help="timed runs of each (default 30)")
    ap.add_argument(
        "--dtype", nargs="+", default=["float64", "float32"], choices=["float64", "float32"]
    )
    ap.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="cpu: this process's CPU time (default; with one thread it is the work done, "
        "whatever else runs on the machine); wall: elapsed time",
    )
    ap.add_argument(
        "--malloc",
        choices=["keep", "default"],
        default="keep",
        help="keep: glibc keeps freed memory (default; no page faults that depend on the "
        "order of allocations); default: the allocator's own heuristics",
    )
    args = ap.parse_args()
    kept = args.malloc == "keep" and keep_freed_memory()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    torch = torch_or_none()
    threads = os.environ["OPENBLAS_NUM_THREADS"]
    print(
        f"batch {BATCH}, {threads} thread(s), {args.clock} time, "
        f"malloc {'keeps freed memory' if kept else 'default'}, "
        f"median of {args.repeat} interleaved runs; "
        + (f"PyTorch {torch.__version__} CPU" if torch is not None else "PyTorch not installed")
    )
    print(
        f"{'forward + backward (ms)':<36} {'dtype':>7} {'generated':>9} {'im2col':>8} "
        f"{'torch':>8} {'gen/im2col':>9} {'gen/torch':>9}"
    )
    for dtype in args.dtype:
        layer_rows(torch, dtype, args.repeat, clock)
    print("helper calls alone (ms): generated helper vs hand-written piece")
    for dtype in args.dtype:
        helper_rows(dtype, args.repeat, clock)


if __name__ == "__main__":
    main()
