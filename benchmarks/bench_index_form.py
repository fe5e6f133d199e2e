"""Index notation at symbolic sizes vs the fully expanded naive route at small sizes.

Usage: python benchmarks/bench_index_form.py

For MLPs of 1–3 hidden layers written with symbolic sizes, prints side by side: the
seconds to derive the whole index-form derivation (forward, backprop, naive route, any
size), the seconds and scalar operations of the old expanded naive route at the
smallest sizes it accepts (m = 3, n = 2, k = 2 …), and the index form's naive op-count
formula evaluated at those sizes. Measured, not asserted.
"""

from __future__ import annotations

import time

from chainrule.derive.index_costs import index_costs
from chainrule.derive.index_form import index_derivation
from chainrule.derive.opcount import count_many
from chainrule.derive.vector_naive import vector_naive
from chainrule.symbolic import parse_program


def mlp(layers: int) -> str:
    sizes = ["n"] + [f"m{i}" for i in range(1, layers + 1)] + ["k"]
    lines = [
        ", ".join(
            f"W{i + 1}[{sizes[i + 1]}, {sizes[i]}], b{i + 1}[{sizes[i + 1]}]"
            for i in range(len(sizes) - 1)
        )
    ]
    out = [f"param {lines[0]}", "input x[n], t[k]"]
    prev = "x"
    for i in range(len(sizes) - 1):
        act = f"z{i + 1} = W{i + 1} @ {prev} + b{i + 1}"
        out.append(act)
        if i < len(sizes) - 2:
            out.append(f"h{i + 1} = sigma(z{i + 1})")
            prev = f"h{i + 1}"
    out += [f"L = sum((z{len(sizes) - 1} - t)^2) / 2", "loss L"]
    return "\n".join(out)


def main() -> None:
    print(
        f"{'hidden layers':>13} | {'index form (s)':>14} | {'expanded naive (s)':>18} | "
        f"{'expanded ops':>12} | {'index naive formula at the same sizes':>38}"
    )
    for layers in (1, 2, 3):
        program = parse_program(mlp(layers))
        t0 = time.perf_counter()
        d = index_derivation(program)
        t_index = time.perf_counter() - t0
        small = {s: 2 for s in ("n", "k")} | {f"m{i}": 3 for i in range(1, layers + 1)}
        t0 = time.perf_counter()
        nv = vector_naive(program, sizes=small, budget=60)
        t_naive = time.perf_counter() - t0
        grads = [g.gradient for g in nv.gradients.values()]
        ops = count_many(grads).total if grads and nv.complete else "—"
        formula = index_costs(d, small).naive.at(small)
        print(f"{layers:>13} | {t_index:>14.2f} | {t_naive:>18.2f} | {ops!s:>12} | {formula:>38,}")


if __name__ == "__main__":
    main()
