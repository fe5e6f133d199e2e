"""``chainrule hessian MODEL --at …``: the Hessian of the loss in the parameters at a point."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from .common import (
    add_format_argument,
    add_model_argument,
    add_point_arguments,
    load_model,
    print_json,
)
from .grad import point_of

HELP = """\
The Hessian of the loss in every scalar parameter entry at a point, derived
symbolically by forward-over-reverse (the backprop program differentiated once more,
see 'chainrule derive MODEL --order 2') and evaluated in float64, one example.

Rows and columns follow 'parameters': declaration order, matrix entries row-major as
W1[0,1], vector entries as b1[2], scalars by name (0-based, NumPy style). JSON:
{"loss": ..., "parameters": [...], "hessian": [[...]]}. For models with relu, step,
abs or max this is the almost-everywhere Hessian (said on stderr).

examples:
  chainrule hessian logistic_least_squares
  chainrule hessian model.chain --at w=0.5,b=0.1,x=2,t=1 --format json
  chainrule hessian vector_mlp --at-file point.json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "hessian",
        help="the Hessian of the loss at a point (forward-over-reverse)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_argument(p)
    add_point_arguments(p)
    add_format_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..numeric.hessian import hessian_at

    program = load_model(args.model)
    point = point_of(program, args)
    result = hessian_at(program, point)
    finite = bool(np.isfinite(result.loss) and np.all(np.isfinite(result.hessian)))
    if not finite:
        print(
            "error: the loss or a Hessian entry is not finite at this point; "
            "non-finite values are shown as null",
            file=sys.stderr,
        )
    if result.note and args.format == "json":
        print(f"note: {result.note}", file=sys.stderr)
    if args.format == "json":
        print_json(result.to_dict())
        return 0 if finite else 1
    from ..reports.notation import pretty_name

    vec = program.is_vector
    print(f"{pretty_name(program.loss, vec)} = {result.loss:.10g}")
    print(f"Hessian ∂²{pretty_name(program.loss, vec)}/∂p∂q, rows and columns:")
    print(_table(result.parameters, result.hessian))
    if result.note:
        print(f"note: {result.note}")
    sys.stdout.flush()
    return 0 if finite else 1


def _table(labels: list[str], h: np.ndarray) -> str:
    width = max([11, *(len(s) + 1 for s in labels)])
    head = " " * width + "".join(f"{s:>{width}}" for s in labels)
    rows = [
        f"{lab:<{width}}" + "".join(f"{x:>{width}.4g}" for x in row)
        for lab, row in zip(labels, h, strict=True)
    ]
    return "\n".join([head, *rows])
