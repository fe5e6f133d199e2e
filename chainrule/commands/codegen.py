"""``chainrule codegen MODEL``: print the generated NumPy module."""

from __future__ import annotations

import argparse
import sys

from .common import add_model_argument, load_model

HELP = """\
Print the derived backprop program as a self-contained Python module (it imports
numpy and array_api_compat) defining loss_and_grad(params, data) -> (loss, grads),
hvp(params, data, v) -> H v and forward(params, data). params and data are dicts of
arrays keyed by the model's names; data arrays carry the batch along axis 0 (one row
per example); the loss is the mean (or the sum) of the per-example losses and grads
holds one array per parameter, in its shape. The code computes in the dtype and the
array library (NumPy, CuPy, PyTorch, JAX, array-api-strict) of its inputs.

examples:
  chainrule codegen xor
  chainrule codegen model.chain --dtype float32 -o model_grad.py
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "codegen",
        help="print the generated NumPy loss_and_grad module",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_argument(p)
    p.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default=None,
        help="an explicit cast to this type (default: compute in the inputs' dtype)",
    )
    p.add_argument(
        "--reduction",
        choices=("mean", "sum"),
        default="mean",
        help="default batch reduction of the loss (default: mean)",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write the module to FILE")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..numeric.codegen import generate

    code = generate(load_model(args.model), reduction=args.reduction, dtype=args.dtype)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(code.source)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(code.source)
    return 0
