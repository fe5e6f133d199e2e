"""``chainrule autograder MODEL [--points rubric.toml] -o autograder.zip``: a Gradescope bundle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..homework.autograder import build_bundle
from ..homework.rubric import load_rubric
from ..symbolic.errors import ChainruleError
from .common import add_model_argument, load_model

HELP = """\
Build a Gradescope autograder bundle for MODEL: a zip with setup.sh (installs chainrule
from the package index), run_autograder (checks the answer file in
/autograder/submission and writes /autograder/results/results.json), the model and the
rubric. Upload the zip as the assignment's autograder.

The root /autograder can be moved for a dry run with the environment variable
CHAINRULE_AUTOGRADER_ROOT (run_autograder reads it).

examples:
  chainrule autograder vector_mlp -o autograder.zip
  chainrule autograder hw3.chain --points rubric.toml -o autograder.zip
  CHAINRULE_AUTOGRADER_ROOT=/tmp/ag bash /tmp/ag/source/run_autograder
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "autograder",
        help="build a Gradescope autograder bundle (zip)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_argument(p)
    p.add_argument(
        "--points",
        "--rubric",
        dest="points",
        metavar="rubric.toml",
        help="rubric: points per error signal, deductions per diagnosis kind (TOML)",
    )
    p.add_argument(
        "-o", "--output", required=True, metavar="autograder.zip", help="zip file to write"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..examples import example_path

    load_model(args.model)  # a broken model fails here, not on Gradescope
    if args.points:
        load_rubric(args.points)
    if not args.output.endswith(".zip"):
        raise ChainruleError("-o: the bundle is a .zip file")
    path = example_path(args.model) or Path(args.model)
    rubric = Path(args.points).read_text(encoding="utf-8") if args.points else None
    build_bundle(Path(path).read_text(encoding="utf-8"), args.output, rubric)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
