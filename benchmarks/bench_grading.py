"""Grading throughput: a 500-submission class on the 2-layer MLP backward pass.

The batch mixes correct answers (plain text and LaTeX, σ' written three ways), typical
mistakes (missing σ'(z), a fan-out term left out, sign, factor of 2, weights indexed
the wrong way round) and hostile answers (code injection, ``9^9^9^9``, ``10**100000``,
deep nesting, a 10 MB line, NUL bytes, non-UTF-8, a ``simplify`` bomb). Each answer is
graded in its own limited worker process, exactly as ``chainrule grade`` does.

    python benchmarks/bench_grading.py                 # 500 answers, 2 jobs
    python benchmarks/bench_grading.py --model vector_mlp   # matrix answers (W2bar = ybar @ h.T)
    python benchmarks/bench_grading.py --n 2000 --jobs 4
    python benchmarks/bench_grading.py --scheduler tcp://127.0.0.1:8786   # on Dask

Target: the whole batch in under a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import chainrule
from chainrule.homework.check import Truth
from chainrule.homework.grading import find_submissions, grade
from chainrule.homework.sandbox import SandboxLimits

ANSWERS = Path(__file__).resolve().parents[1] / "examples" / "answers"
BOMB = "((x1+1)*(w11+1)*(b1+1)*(t1+1) - (x1*w11+x1+w11+1)*(b1*t1+b1+t1+1))^60"

MISTAKES = {
    "missing_sigma_prime": ("z1bar = h1bar * sigma'(z1)", "z1bar = h1bar"),
    "fan_out": ("h1bar = y1bar * v11 + y2bar * v21", "h1bar = y1bar * v11"),
    "sign": ("y1bar = y1 - t1", "y1bar = t1 - y1"),
    "factor_two": ("y2bar = y2 - t2", "y2bar = 2*(y2 - t2)"),
    "index_order": ("h2bar = y1bar * v12 + y2bar * v22", "h2bar = y1bar * v21 + y2bar * v22"),
    "expanded_sigma": (
        "z1bar = h1bar * sigma'(z1)",
        "z1bar = h1bar * exp(-z1)/(1 + exp(-z1))^2",
    ),  # correct, rewritten
}

HOSTILE: dict[str, bytes] = {
    "injection": b"z1bar = __import__('os').system('echo pwned')\n",
    "dunder": b"z1bar = ().__class__.__mro__[1].__subclasses__()\n",
    "tower": b"z1bar = 9^9^9^9\n",
    "bigpow": b"z1bar = 10**100000\n",
    "nesting": b"z1bar = " + b"(" * 10_000 + b"h1bar" + b")" * 10_000 + b"\n",
    "long_line": b"z1bar = " + b"x" * 10_000_000 + b"\n",
    "nul": b"z1bar = h1bar\x00\n",
    "latin1": "z1bar = h1bar·σ'(z1)".encode("latin-1", "replace") + b"\xe9\n",
    "bomb": f"z1bar = h1bar*sigma'(z1) + {BOMB}\n".encode(),
}


# The same class for the vector (matrix-form) 2-layer MLP, examples/vector_mlp.chain.
VEC_BOMB = "((sum(x)+1)*(sum(t)+1) - (sum(x)*sum(t)+sum(x)+sum(t)+1))^60"
VEC_MISTAKES = {
    "missing_sigma_prime": ("zbar = hbar * sigma'(z)", "zbar = hbar"),
    "transpose": ("W2bar = ybar @ h.T", "W2bar = h @ ybar.T"),
    "ill_shaped": ("W1bar = zbar @ x.T", "W1bar = zbar @ x"),
    "sign": ("ybar = y - t", "ybar = t - y"),
    "factor_two": ("ybar = y - t", "ybar = 2*(y - t)"),
    "expanded_sigma": (
        "zbar = hbar * sigma'(z)",
        "zbar = hbar * sigma(z) * (1 - sigma(z))",
    ),  # correct, rewritten
}
VEC_HOSTILE: dict[str, bytes] = {
    "injection": b"zbar = __import__('os').system('echo pwned')\n",
    "dunder": b"zbar = ().__class__.__mro__[1].__subclasses__()\n",
    "tower": b"zbar = hbar * 9^9^9^9\n",
    "bigpow": b"zbar = hbar * 10**100000\n",
    "nesting": b"zbar = " + b"(" * 10_000 + b"hbar" + b")" * 10_000 + b"\n",
    "long_line": b"zbar = " + b"x" * 10_000_000 + b"\n",
    "nul": b"zbar = hbar\x00\n",
    "latin1": "zbar = hbar∘σ'(z)".encode("latin-1", "replace") + b"\xe9\n",
    "bomb": f"zbar = hbar * sigma'(z) + {VEC_BOMB} * hbar\n".encode(),
}
CLASSES = {"mlp_2_2_2": (MISTAKES, HOSTILE), "vector_mlp": (VEC_MISTAKES, VEC_HOSTILE)}


def make_class(folder: Path, n: int, seed: int = 0, model: str = "mlp_2_2_2") -> Counter:
    """Write ``n`` submissions; returns how many of each kind."""
    rng = random.Random(seed)
    mistakes, hostile = CLASSES[model]
    plain = (ANSWERS / model / "correct_backprop.txt").read_text()
    latex = (ANSWERS / model / "correct_backprop.tex").read_text()
    kinds: Counter = Counter()
    for i in range(n):
        r = rng.random()
        if r < 0.04:
            kind = rng.choice(sorted(hostile))
            data = hostile[kind] if kind != "long_line" or kinds[kind] < 2 else hostile["tower"]
            kind = "hostile"
        elif r < 0.50:
            kind, data = "correct", (latex if rng.random() < 0.3 else plain).encode()
        else:
            name = rng.choice(sorted(mistakes))
            old, new = mistakes[name]
            kind, data = f"mistake:{name}", plain.replace(old, new).encode()
        (folder / f"s{i:04d}.txt").write_bytes(data)
        kinds[kind] += 1
    return kinds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--scheduler", help="a Dask scheduler address (optional)")
    ap.add_argument("--model", choices=sorted(CLASSES), default="mlp_2_2_2")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        kinds = make_class(folder, args.n, model=args.model)
        start = time.perf_counter()
        truth = Truth(chainrule.load(args.model)).prepare()
        subs = find_submissions(folder)
        limits = SandboxLimits(wall_seconds=args.timeout)
        if args.scheduler:
            from chainrule.homework.grading_dask import grade_on_dask

            results = grade_on_dask(
                args.scheduler, args.model, subs, limits, truth.n_points, truth.seed, 2.0
            )
        else:
            results = grade(truth, subs, args.jobs, limits)
        seconds = time.perf_counter() - start
    lines = sum(len(r.lines) for r in results)
    verdicts = Counter(r.verdict for r in results)
    statuses = Counter(x.status for r in results for x in r.lines)
    where = args.scheduler or f"{args.jobs} local worker slot(s)"
    print(f"model {args.model}")
    print(f"graded {len(results)} submissions ({lines} lines) in {seconds:.1f} s on {where}")
    print(f"  {len(results) / seconds:.1f} answers/s, {lines / seconds:.0f} lines/s")
    print(f"  submissions: {dict(sorted(kinds.items()))}")
    print(f"  verdicts: {dict(verdicts)}; line statuses: {dict(statuses)}")
    ok = seconds < 60
    print(f"  target (< 60 s for 500): {'met' if ok or args.n != 500 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
