"""Backward ≈ 2× forward for MLPs: multiply–adds from shapes, and measured seconds.

Usage: python benchmarks/bench_vector_costs.py [--batch 256] [--repeat 5]

For sigmoid MLPs of several widths and depths (batch of B examples as columns) this
prints the forward and backward multiply–adds that chainrule counts from the shapes of
the derived matrix expressions, their ratio, and the measured time of the forward pass
and of the backward pass (NumPy, float64, the interpreter of numeric/vector_eval.py).
The lectures' rule of thumb: forward 1 multiply–add per weight (and example), backward
2 (W̄ = Z̄ Xᵀ and X̄ = Wᵀ Z̄), minus the first layer's input gradient, which is not needed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from chainrule.derive.vector import vector_backprop
from chainrule.derive.vector_costs import vector_costs
from chainrule.numeric.vector_eval import Evaluator, leaf_values
from chainrule.symbolic import parse_program

NETS = [
    (64, 64, 10),
    (256, 256, 10),
    (512, 512, 512, 10),
    (256, 256, 256, 256, 10),
    (784, 512, 512, 512, 10),
]


def mlp_text(widths: tuple[int, ...], batch: int) -> str:
    lines = [f"input X[{widths[0]}, {batch}], T[{widths[-1]}, {batch}]"]
    h = "X"
    for i, (n, m) in enumerate(zip(widths[:-1], widths[1:], strict=True), start=1):
        lines.append(f"param W{i}[{m}, {n}], b{i}[{m}]")
        lines.append(f"Z{i} = W{i} @ {h} + b{i}")
        if i < len(widths) - 1:
            lines.append(f"H{i} = sigma(Z{i})")
            h = f"H{i}"
    lines += [f"L = sum((Z{len(widths) - 1} - T)^2) / 2", "loss L"]
    return "\n".join(lines)


def timed(fn, repeat: int) -> float:  # noqa: ANN001
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def measure(widths: tuple[int, ...], batch: int, repeat: int) -> dict[str, float]:
    program = parse_program(mlp_text(widths, batch))
    d = vector_backprop(program)
    costs = vector_costs(program, d)
    rng = np.random.default_rng(0)
    point = {v.name: rng.normal(0, 0.1, tuple(int(s) for s in v.shape)) for v in program.variables}
    values, sizes = leaf_values(program, point)
    cache: dict = {}  # compiled elementwise functions, shared between runs

    def forward() -> Evaluator:
        ev = Evaluator(dict(values), sizes, cache)
        for a in program.assignments:
            ev.values[a.symbol] = ev(a.expr)
        return ev

    done = forward()

    def backward() -> None:
        ev = Evaluator(dict(done.values), sizes, cache)
        for s in d.steps:
            ev.values[s.signal] = ev(s.expression)

    with_x = vector_costs(program, vector_backprop(program, wrt_inputs=True)).backward_macs_at
    weights = sum(w * n for n, w in zip(widths[:-1], widths[1:], strict=True))
    t_fwd, t_bwd = timed(forward, repeat), timed(backward, repeat)
    return {
        "weights": weights,
        "fwd": costs.forward_macs_at,
        "bwd": costs.backward_macs_at,
        "ratio": costs.mac_ratio,
        "bwd_x": with_x,
        "ratio_x": with_x / costs.forward_macs_at,
        "t_fwd": t_fwd,
        "t_bwd": t_bwd,
        "t_ratio": t_bwd / t_fwd,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"sigmoid MLPs, batch {args.batch}, float64; multiply–adds counted from shapes")
    print("(bwd: parameters only; with X̄: the input gradient too, as in the lecture's count)\n")
    head = (
        f"{'widths':<24}{'weights':>10}{'fwd MACs':>14}{'bwd MACs':>14}{'bwd/fwd':>9}"
        f"{'with X̄':>14}{'ratio':>7}{'fwd ms':>9}{'bwd ms':>9}{'time ratio':>11}"
    )
    print(head)
    print("-" * len(head))
    for widths in NETS:
        r = measure(widths, args.batch, args.repeat)
        print(
            f"{'-'.join(map(str, widths)):<24}{r['weights']:>10,}{r['fwd']:>14,}"
            f"{r['bwd']:>14,}{r['ratio']:>9.2f}{r['bwd_x']:>14,}{r['ratio_x']:>7.2f}"
            f"{r['t_fwd'] * 1e3:>9.2f}"
            f"{r['t_bwd'] * 1e3:>9.2f}{r['t_ratio']:>11.2f}"
        )


if __name__ == "__main__":
    main()
