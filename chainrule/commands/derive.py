"""``chainrule derive MODEL``: forward pass, backward pass, naive result, op counts."""

from __future__ import annotations

import argparse
import sys

from ..symbolic.expand import expand_modes
from .common import add_format_argument, add_model_argument, load_model

HELP = """\
Derive a model's gradients twice: naively (substitute every assignment into the loss,
then differentiate per parameter, as in calculus class) and by error-signal backprop
on the expression DAG (v̄ = Σ_children c̄ ∂c/∂v in reverse topological order).
Prints the forward pass, the backward pass in bar notation, the naive result per
parameter and a table of operation counts.

examples:
  chainrule derive examples/logistic_least_squares_l2.chain
  chainrule derive xor --method backprop --steps
  chainrule derive model.chain --format json > derivation.json
  chainrule derive big_mlp.chain --budget 5      # stop the naive route after 5 s
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "derive",
        help="derive gradients naively and by backprop",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_argument(p)
    p.add_argument(
        "--method",
        choices=("naive", "backprop", "both"),
        default="both",
        help="which derivation(s) to run (default: both)",
    )
    p.add_argument(
        "--steps",
        action="store_true",
        help="show every step: each child's contribution and local derivative, "
        "each differentiation rule of the naive route",
    )
    add_format_argument(p)
    p.add_argument(
        "--expand",
        choices=("none", *expand_modes(), "full"),
        default="none",
        help="print named derivatives as they are (none), "
        + "".join(f"as {doc.split('= ', 1)[-1]} ({mode}), " for mode, doc in expand_modes().items())
        + "or every activation as exponentials (full)",
    )
    p.add_argument(
        "--budget",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="time budget of the naive route; it stops with a note when spent (default: 30)",
    )
    p.add_argument(
        "--no-cse",
        action="store_true",
        help="skip the common-subexpression count of the naive gradients",
    )
    p.add_argument(
        "--shapes",
        action="store_true",
        help="annotate each error signal with its shape (vector programs)",
    )
    p.add_argument(
        "--show-jacobians",
        action="store_true",
        help="vector programs: also show the local Jacobians (diagonal form for "
        "elementwise operations); they are never built to compute anything",
    )
    p.set_defaults(run=run)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("the budget is a number of seconds, 0 or more")
    return value


def run(args: argparse.Namespace) -> int:
    from ..api import derivation as derive_model
    from ..reports import render_derivation

    program = load_model(args.model)
    derivation = derive_model(
        program, method=args.method, steps=args.steps, naive_budget=args.budget, cse=not args.no_cse
    )
    options = {"steps": args.steps, "expand": args.expand, "shapes": args.shapes}
    if args.show_jacobians:
        options["show_jacobians"] = True
    sys.stdout.write(render_derivation(derivation, args.format, **options))
    if args.format == "text":
        sys.stdout.write("\n")
    return 0
