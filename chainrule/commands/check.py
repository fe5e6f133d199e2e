"""``chainrule check MODEL --answer ANSWER``: check a student's gradient lines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..homework.check import N_POINTS, SEED, SYMBOLIC_SECONDS, Truth
from ..homework.grading import check_file
from ..homework.results import result_json, result_text, safe_json
from ..homework.rubric import gradescope_results, load_rubric
from ..homework.sandbox import DEFAULT_MEMORY_BYTES, DEFAULT_WALL_SECONDS, SandboxLimits
from ..symbolic.errors import ChainruleError
from .common import add_format_argument, add_model_argument, load_model

HELP = f"""\
Check an answer line by line against the model's backprop derivation. Each line is
'target = expression': an error signal (ybar, y_bar, \\bar{{y}}, dL/dy) or a closed-form
gradient (dL/dw = ...), as plain text (the .chain grammar) or LaTeX (.tex files, or any
file with LaTeX commands). Lines are compared numerically at {N_POINTS} seeded random
points (relative error <= 1e-6) and symbolically; wrong lines get a diagnosis and a
counterexample. A line right given your own earlier (wrong) lines earns credit; the
error is reported once, where it starts.

The answer is checked in a worker process limited to {DEFAULT_WALL_SECONDS:g} s wall
clock, as many CPU seconds, and {DEFAULT_MEMORY_BYTES // 2**30} GiB of memory.

Exit status: 0 all lines correct, 1 any line wrong (or the answer unreadable),
2 usage errors or errors in the model itself.

--format gradescope writes Gradescope's autograder results.json (score, max_score,
one test per answer line with its verdict, diagnosis and counterexample); --rubric
gives points per error signal and partial credit per diagnosis kind (TOML).

examples:
  chainrule check logistic_least_squares --answer hw1.txt
  chainrule check model.chain --answer backprop.tex --format json
  chainrule check vector_mlp --answer hw.tex --format gradescope --rubric rubric.toml
"""


def add_limit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_WALL_SECONDS,
        metavar="S",
        help=f"wall-clock seconds per answer (default {DEFAULT_WALL_SECONDS:g})",
    )
    p.add_argument(
        "--memory",
        type=int,
        default=DEFAULT_MEMORY_BYTES // 2**20,
        metavar="MB",
        help=f"memory limit per answer in MiB (default {DEFAULT_MEMORY_BYTES // 2**20})",
    )
    p.add_argument(
        "--answer-format",
        choices=("auto", "text", "latex"),
        default="auto",
        help="how answers are written (default: auto-detect; .tex is LaTeX)",
    )
    p.add_argument(
        "--points",
        type=int,
        default=N_POINTS,
        metavar="N",
        help=f"random points per check (default {N_POINTS})",
    )
    p.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    p.add_argument(
        "--rubric",
        metavar="rubric.toml",
        help="points per error signal and deductions per diagnosis kind (TOML; default: "
        "equal weights)",
    )
    p.add_argument(
        "--symbolic-timeout",
        type=float,
        default=SYMBOLIC_SECONDS,
        metavar="S",
        help="seconds for the symbolic proof of each correct line (default "
        f"{SYMBOLIC_SECONDS:g}; 0 skips it)",
    )


def limits_from(args: argparse.Namespace) -> SandboxLimits:
    if args.timeout <= 0 or args.memory <= 0 or args.points < 1:
        raise ChainruleError("--timeout, --memory and --points must be positive")
    return SandboxLimits(wall_seconds=args.timeout, memory_bytes=args.memory * 2**20)


def truth_from(args: argparse.Namespace) -> Truth:
    return Truth(load_model(args.model), n_points=args.points, seed=args.seed)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="check a student's gradient / backward-pass answer",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_argument(p)
    p.add_argument(
        "--answer", required=True, metavar="ANSWER", help="the answer file (plain text or LaTeX)"
    )
    add_format_argument(p, ("text", "json", "gradescope"))
    add_limit_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    limits = limits_from(args)
    truth = truth_from(args)
    path = Path(args.answer)
    if not path.is_file():
        raise ChainruleError(f"{args.answer}: no such answer file")
    rubric = load_rubric(args.rubric) if args.rubric else None
    res = check_file(truth, path, args.answer_format, limits, args.symbolic_timeout or None)
    if args.format == "gradescope":
        sys.stdout.write(safe_json(gradescope_results(res, rubric)) + "\n")
    else:
        sys.stdout.write(result_json(res) if args.format == "json" else result_text(res))
    return 0 if res.verdict == "correct" else 1
