"""``chainrule check-grad MODEL``: the generated gradient against numerical derivatives."""

from __future__ import annotations

import argparse
import warnings
from typing import Any

from .common import add_format_argument, add_model_argument, load_model, print_json

HELP = """\
Check the derived gradient (the generated NumPy code) against numerical derivatives
in float64 at several seeded random points: complex-step differentiation when the
model is analytic, two-sided finite differences with h = eps^(1/3) max(1, |x|)
otherwise, and Richardson extrapolation as a second estimate. The relative error
|a - b| / (|a| + |b|) of every entry is compared with the threshold (lectures: 1e-6);
<= 1e-7 is good, > 1e-2 is wrong. Points at a kink of relu/abs/max are re-sampled.
Every error signal is checked too, so a failure names the first node that disagrees.
Exit status: 0 pass, 1 fail, 2 bad input.

examples:
  chainrule check-grad xor
  chainrule check-grad model.chain --points 5 --method central --format json
  chainrule check-grad xor --order 2          # the Hessian instead of the gradient
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check-grad",
        help="check the gradient against finite differences",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_argument(p)
    p.add_argument("--points", type=int, default=3, help="random points (default: 3)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--batch", type=int, default=3, help="examples per point (default: 3)")
    p.add_argument(
        "--threshold",
        type=float,
        default=1e-6,
        help="pass if every relative error is at most this (default: 1e-6)",
    )
    p.add_argument(
        "--method",
        default="auto",
        choices=("auto", "central", "complex-step", "richardson"),
        help="numerical derivative (default: auto = complex step when safe)",
    )
    p.add_argument(
        "--entries",
        type=int,
        default=20,
        help="entries sampled per parameter (0: all; default: 20)",
    )
    p.add_argument("--worst", type=int, default=5, help="rows of the worst-entries table")
    p.add_argument(
        "--no-signals", action="store_true", help="skip the per-node error-signal checks"
    )
    p.add_argument(
        "--order",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: check the Hessian (forward-over-reverse) against numerical derivatives "
        "of the gradient instead, one example per point",
    )
    add_format_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..numeric.gradcheck import gradcheck
    from ..symbolic.errors import ChainruleError

    if args.points < 1 or args.batch < 1:
        raise ChainruleError("--points and --batch must be at least 1")
    program = load_model(args.model)
    if args.order == 2:
        return _run_order_2(program, args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = gradcheck(
            program,
            points=args.points,
            seed=args.seed,
            batch=args.batch,
            threshold=args.threshold,
            method=args.method,
            signals=not args.no_signals,
            max_entries=args.entries or None,
        )
    if args.format == "json":
        print_json(report.to_dict())
    else:
        print(f"gradient check: {report.model} ({report.method})")
        print(report.table(args.worst))
        if report.signals:
            print()
            print(f"{'error signal':<16} {'rel. error':>10}  ok")
            for s in report.signals:
                mark = "kink" if s.kink and s.passed else ("yes" if s.passed else "NO")
                print(f"{s.node + '_bar':<16} {s.rel_error:>10.2e}  {mark}")
        print()
        print(report.summary())
        for w in report.warnings:
            print(f"warning: {w}")
    return 0 if report.passed else 1


def _run_order_2(program: Any, args: argparse.Namespace) -> int:
    """Every Hessian entry against the gradient differentiated numerically."""
    from ..numeric.hessian import check_hessian

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = check_hessian(
            program, points=args.points, seed=args.seed, threshold=args.threshold, worst=args.worst
        )
    if args.format == "json":
        print_json(report.to_dict())
        return 0 if report.passed else 1
    print(f"Hessian check: {report.model}")
    print(
        "(forward-over-reverse against the gradient differentiated numerically: "
        "complex step when analytic, else central differences)"
    )
    print(f"{'row':<12} {'column':<12} {'hessian':>12} {'numerical':>12} {'rel. error':>10}")
    for r, c, a, b, e in report.worst:
        print(f"{r:<12} {c:<12} {a:>12.6g} {b:>12.6g} {e:>10.2e}")
    print()
    verdict = "PASS" if report.passed else "FAIL"
    print(
        f"{verdict}: max relative error {report.max_rel_error:.2e}, max asymmetry "
        f"{report.max_asymmetry:.2e} (threshold {report.threshold:g}) over {report.points} points"
    )
    for k in report.almost_everywhere:
        print(f"note: non-smooth {k}: the almost-everywhere Hessian is checked")
    return 0 if report.passed else 1
