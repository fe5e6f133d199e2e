"""Benchmark: deriving unit-form MLPs naively vs by error-signal backprop.

Prints, for growing nets, the derivation times and op counts of the naive route (as
derived and after ``sympy.cse``) and of backprop (forward + backward), with their
ratios to the forward pass, measured side by side in one run. Not a test.

    python benchmarks/bench_derive.py [--budget SECONDS] [--sizes 2-2-1,4-8-3,...]

Targets (issue 2): backprop ≤ 3× forward in ops at every size; backprop derivation of
16-32-32-10 (1,930 weights) in ≤ 3 s on 2 cores; the naive route capped by a budget.
"""

from __future__ import annotations

import argparse
import time

import sympy as sp

from chainrule.derive import backprop, cost_table, naive
from chainrule.derive.opcount import count_many
from chainrule.symbolic.generators import scalar_mlp

DEFAULT_SIZES = "2-2-1,4-8-3,8-16-16-4,16-32-32-10"


def sympy_naive_seconds(sizes: tuple[int, ...], limit_params: int = 80) -> str:
    """SymPy's own ``diff`` of the substituted loss, for the small nets only."""
    program = scalar_mlp(sizes)
    if len(program.params) > limit_params:
        return "(skipped)"
    loss = program.substituted()
    t = time.perf_counter()
    grads = [sp.diff(loss, p.symbol) for p in program.params]
    return f"{time.perf_counter() - t:.2f} s / {count_many(grads).total:,} ops"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=60.0, help="naive time budget (s)")
    ap.add_argument("--sizes", default=DEFAULT_SIZES)
    args = ap.parse_args()
    header = (
        f"{'net':<14}{'weights':>8}{'fwd ops':>9}{'naive ops':>13}{'/fwd':>9}"
        f"{'+CSE ops':>10}{'/fwd':>7}{'bp ops':>9}{'/fwd':>6}"
        f"{'naive s':>9}{'bp s':>7}   SymPy diff"
    )
    print(header)
    print("-" * len(header))
    for spec in args.sizes.split(","):
        sizes = tuple(int(s) for s in spec.split("-"))
        program = scalar_mlp(sizes)
        t = time.perf_counter()
        bp = backprop(program)
        bp_s = time.perf_counter() - t
        t = time.perf_counter()
        nv = naive(program, steps=False, budget=args.budget)
        nv_s = time.perf_counter() - t
        rows = {r.route: r for r in cost_table(program, bp, nv)}

        def cell(route: str, rows: dict = rows) -> tuple[str, str]:
            r = rows.get(route)
            if r is None or r.ops is None:
                return "—", "—"
            return f"{r.ops.total:,}", f"{r.ratio:.1f}×"

        n_ops, n_ratio = cell("naive")
        c_ops, c_ratio = cell("naive + CSE")
        b_ops, b_ratio = cell("backprop")
        naive_time = f"{nv_s:.2f}" if nv.complete else f">{args.budget:g}"
        print(
            f"{spec:<14}{len(program.params):>8}{rows['forward'].ops.total:>9,}"
            f"{n_ops:>13}{n_ratio:>9}{c_ops:>10}{c_ratio:>7}{b_ops:>9}{b_ratio:>6}"
            f"{naive_time:>9}{bp_s:>7.2f}   {sympy_naive_seconds(sizes)}"
        )
        for r in rows.values():
            if r.ops is None:
                print(f"    {r.route}: {r.note}")


if __name__ == "__main__":
    main()
