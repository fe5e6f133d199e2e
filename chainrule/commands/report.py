"""``chainrule report MODEL -o out.html``: the derivation as a document."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..symbolic.errors import ChainruleError
from .common import add_model_argument, load_model
from .derive import add_notation_arguments

HELP = """\
Write a report of a model's derivation: the model in the lectures' notation, its
computation graph, the naive derivation rule by rule, the backprop derivation signal
by signal, operation counts with a bar chart, gradient checks, the generated NumPy
code and (with --train) a training run with learning curves. A CNN's report draws its
kernels and feature maps as heatmaps (trained ones with --train/--data).

The format comes from the output's suffix (.html, .md, .tex) or --format. HTML is one
self-contained file (MathML math, inline SVG; it fetches nothing); Markdown renders on
GitHub and in Jupyter (pictures are written next to it); LaTeX compiles with pdflatex.

examples:
  chainrule report examples/logistic_least_squares.chain -o report.html
  chainrule report xor -o xor.md --steps
  chainrule report xor -o xor.tex --no-naive
  chainrule report xor -o xor.html --train xor --epochs 500 --lr 2 --batch 4 --seed 3
  chainrule report model.chain -o model.html --history H.json
  chainrule report cnn_digits -o cnn.html --data digits --epochs 5 --lr 0.05
  chainrule report vector_mlp -o mlp_index.md --notation index
"""

SUFFIXES = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".tex": "tex"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write an HTML, Markdown or LaTeX report of a derivation",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_argument(p)
    p.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout)")
    p.add_argument(
        "--format",
        choices=("html", "md", "tex"),
        help="output format (default: from the output's suffix, else html)",
    )
    p.add_argument("--no-naive", action="store_true", help="leave out the naive derivation")
    p.add_argument(
        "--steps",
        action="store_true",
        help="show every rule application of the naive route (default: the first 24 per parameter)",
    )
    p.add_argument("--no-graph", action="store_true", help="leave out the computation graph")
    p.add_argument("--no-checks", action="store_true", help="leave out the gradient checks")
    p.add_argument("--no-code", action="store_true", help="leave out the generated code")
    p.add_argument(
        "--budget",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="time budget of the naive route (default: 30)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the check points and training")
    add_notation_arguments(p)
    p.add_argument(
        "--order",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: add the second order (forward-over-reverse, Hessian entries) to section 4",
    )
    t = p.add_argument_group("training (section 8)")
    t.add_argument(
        "--train",
        "--data",
        dest="train",
        metavar="xor|digits|iris|FILE",
        help="train on this data set and include the learning curves (and, for a CNN, "
        "the trained kernels and feature maps)",
    )
    t.add_argument("--history", metavar="H.json", help="include a finished training history")
    t.add_argument("--epochs", type=int, default=50, help="epochs (default: 50)")
    t.add_argument("--lr", type=float, default=0.1, help="learning rate (default: 0.1)")
    t.add_argument("--batch", type=int, default=32, help="minibatch size (default: 32)")
    t.add_argument("--momentum", type=float, default=0.0, help="momentum (default: 0)")
    t.add_argument("--val-split", type=float, default=0.0, help="validation fraction")
    t.add_argument("--map", metavar="NAME=COLUMN,...", help="model input = data column(s)")
    p.set_defaults(run=run)


def output_format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    if args.output:
        suffix = Path(args.output).suffix.lower()
        if suffix in SUFFIXES:
            return SUFFIXES[suffix]
        raise ChainruleError(
            f"cannot tell the format from '{args.output}': use a .html, .md or .tex "
            "suffix or --format"
        )
    return "html"


def _history(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ChainruleError(f"{path}: cannot read the training history ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("epochs"), list):
        raise ChainruleError(f'{path}: a history is a JSON object {{"epochs": [...]}}')
    return data


def report_options(args: argparse.Namespace) -> Any:
    from ..reports.data import ReportOptions

    train = None
    if args.train:
        train = {
            "data": args.train,
            "epochs": args.epochs,
            "lr": args.lr,
            "batch": args.batch,
            "seed": args.seed,
            "momentum": args.momentum,
            "val_split": args.val_split,
            "map": args.map,
        }
    return ReportOptions(
        naive=not args.no_naive,
        steps=args.steps,
        graph=not args.no_graph,
        checks=not args.no_checks,
        code=not args.no_code,
        naive_budget=args.budget,
        seed=args.seed,
        train=train,
        history=_history(args.history) if args.history else None,
        order=args.order,
    )


def write_report(data: Any, fmt: str, output: str | None) -> list[str]:
    """Write the report (and, for Markdown, its pictures beside it); the paths written."""
    from ..reports.document import render_report, report_assets

    if output is None:
        sys.stdout.write(render_report(data, fmt))
        return []
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    links: dict[str, str] = {}
    if fmt == "md":
        for key, (name, svg) in report_assets(data, out.stem).items():
            (out.parent / name).write_text(svg, encoding="utf-8")
            links[key] = name
            written.append(str(out.parent / name))
    out.write_text(render_report(data, fmt, assets=links), encoding="utf-8")
    return [str(out), *written]


def run(args: argparse.Namespace) -> int:
    from ..reports.document import build_report

    fmt = output_format(args)
    options = report_options(args)
    program = load_model(args.model)
    if args.notation == "index":
        return _index_report(program, fmt, args)
    if args.output:
        print(f"deriving {program.title} …", file=sys.stderr)
    data = build_report(program, options)
    for note in data.notes:
        print(f"note: {note}", file=sys.stderr)
    for path in write_report(data, fmt, args.output):
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _index_report(program: Any, fmt: str, args: argparse.Namespace) -> int:
    """The derivation in index notation, each line beside its matrix form."""
    from ..reports.index_notation import index_view, render_index_document

    if not program.is_vector:
        raise ChainruleError(f"{program.filename}: --notation index needs a vector program")
    method = "backprop" if args.no_naive else "both"
    view = index_view(program, method, args.sizes, args.budget, check=not args.no_checks)
    text = render_index_document(view, fmt)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)
    return 0
