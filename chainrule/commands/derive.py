"""``chainrule derive MODEL``: forward pass, backward pass, naive result, op counts."""

from __future__ import annotations

import argparse
import sys

from ..symbolic.expand import expand_modes
from ..symbolic.program import Program
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
  chainrule derive vector_mlp --notation index   # unit by unit: h̄_i = Σ_k ȳ_k w⁽²⁾_ki
  chainrule derive vector_mlp --notation index --sizes m=3,n=2,k=2
  chainrule derive logistic_regression --method backprop --order 2   # the Hessian too
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
        "--order",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: also the second order, the backprop program differentiated once more "
        "(forward-over-reverse, dotted tangents ż, z̄̇) and the Hessian entries",
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
    add_notation_arguments(p)
    p.set_defaults(run=run)


def add_notation_arguments(p: argparse.ArgumentParser) -> None:
    """``--notation matrix|index`` and ``--sizes`` (shared with ``report``)."""
    p.add_argument(
        "--notation",
        choices=("matrix", "index"),
        default="matrix",
        help="vector programs: the matrix form (default) or index notation at symbolic "
        "sizes (z_i = Σ_j w⁽¹⁾_ij x_j + b⁽¹⁾_i), each line beside its matrix form",
    )
    p.add_argument(
        "--sizes",
        type=_sizes,
        metavar="NAME=N,...",
        help="with --notation index: evaluate the op-count formulas at these sizes",
    )


def _sizes(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in text.split(","):
        name, eq, value = part.partition("=")
        name = name.strip()
        if not eq or not name.isidentifier() or not value.strip().isdigit():
            raise argparse.ArgumentTypeError(f"sizes are NAME=N,... (got {part!r})")
        if len(value.strip()) > 9:
            raise argparse.ArgumentTypeError(f"size too large: {part!r}")
        out[name] = int(value)
    return out


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
    if args.notation == "index":
        return _run_index(program, args)
    derivation = derive_model(
        program, method=args.method, steps=args.steps, naive_budget=args.budget, cse=not args.no_cse
    )
    options = {"steps": args.steps, "expand": args.expand, "shapes": args.shapes}
    if args.show_jacobians:
        options["show_jacobians"] = True
    text = render_derivation(derivation, args.format, **options)
    if args.order == 2:
        text = _with_second_order(program, text, args.format)
    sys.stdout.write(text)
    if args.format == "text":
        sys.stdout.write("\n")
    return 0


def _run_index(program: object, args: argparse.Namespace) -> int:
    from ..reports.index_notation import index_view
    from ..symbolic.errors import ChainruleError
    from .common import print_json

    if not program.is_vector:  # type: ignore[attr-defined]
        raise ChainruleError(
            f"{program.filename}: --notation index needs a vector program "  # type: ignore[attr-defined]
            "(declare shapes, e.g. param W1[m, n])"
        )
    view = index_view(program, args.method, args.sizes, args.budget, steps=args.steps)
    if args.format == "json":
        print_json(view.as_json())
    else:
        sys.stdout.write(str(view) + "\n")
    return 0


def _with_second_order(program: Program, text: str, fmt: str) -> str:
    """The rendered derivation with the forward-over-reverse section added."""
    import json

    from ..derive.second_order import second_order
    from ..derive.vector_tangents import TangentError
    from ..reports.second_order import second_order_dict, second_order_text

    try:
        d = second_order(program)
    except TangentError:
        d = None
    if fmt == "json":
        doc = json.loads(text)
        doc["second_order"] = second_order_dict(d) if d is not None else None
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    return text.rstrip("\n") + "\n" + second_order_text(d)
