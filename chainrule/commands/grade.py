"""``chainrule grade MODEL SUBMISSIONS_DIR -o grades.csv``: grade a class's answers."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..homework.feedback import write_feedback
from ..homework.grading import find_submissions, grade
from ..homework.results import grades_csv, grades_json
from ..homework.rubric import load_rubric
from ..homework.sandbox import Outcome, SandboxLimits
from ..progress import Progress
from ..symbolic.errors import ChainruleError
from .check import add_limit_arguments, limits_from, truth_from

HELP = """\
Grade every answer file in SUBMISSIONS_DIR (and its subfolders; hidden files and
symbolic links are skipped) against MODEL, in parallel worker processes. Each answer is
isolated: a wall-clock limit (--timeout, default 10 s), as many CPU seconds and a memory
limit (--memory, default 2048 MiB), so one hostile or pathological answer cannot stop,
slow or crash the batch. Points are seeded (--seed): re-grading gives identical files.

The CSV has one row per submission: verdict, score (correct lines / (lines + parameters
left out)), counts per status, the parameters left out, the status of each error signal
of the model (empty when not answered) and every line as line:target:status.

With --exercise DIR (a folder written by 'chainrule exercise'), each file <id>.txt,
<id>.tex or <id>.md is graded against that student's own variant, the numeric answers
(after the line 'numeric:') against the gradient at their own point; the CSV then has
one row per file (an id not in the roster is reported, not graded) and per student
with no file, with the backward-pass score, the numeric score and their mean (total).

--feedback DIR writes one HTML and one Markdown page per student: each line with its
verdict, diagnosis, counterexample and points (--rubric rubric.toml for the points).

examples:
  chainrule grade logistic_least_squares submissions/ -o grades.csv
  chainrule grade --exercise hw4/ submissions/ -o grades.csv --json grades.json
  chainrule grade vector_mlp hw/ -o grades.csv --feedback feedback/ --rubric rubric.toml
  chainrule grade mlp.chain hw3/ -o grades.csv --json grades.json --jobs 4 --timeout 5

A course that outgrows one machine can run the same grading on a Dask cluster
(pip install "dask[distributed]"): --scheduler tcp://HOST:8786; see docs/grading.md.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "grade",
        help="grade a folder of answers into a CSV",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        nargs="?",
        help="a .chain model file (or the name of a shipped example); not with --exercise",
    )
    p.add_argument(
        "submissions", metavar="SUBMISSIONS_DIR", nargs="?", help="folder of answer files"
    )
    p.add_argument(
        "--exercise",
        metavar="DIR",
        help="grade each student against their own variant (a 'chainrule exercise' folder)",
    )
    p.add_argument("-o", "--output", required=True, metavar="grades.csv", help="CSV file to write")
    p.add_argument("--json", metavar="grades.json", help="also write every detail as JSON")
    p.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="worker processes at a time (default: the number of CPUs)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="grade on a Dask cluster (needs dask.distributed installed)",
    )
    p.add_argument("--no-progress", action="store_true", help="never draw the progress bar")
    p.add_argument(
        "--feedback", metavar="DIR", help="write one HTML and Markdown page per student here"
    )
    add_limit_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    limits = limits_from(args)
    rubric = load_rubric(args.rubric) if args.rubric else None
    if args.jobs < 1:
        raise ChainruleError("--jobs must be at least 1")
    if args.exercise:
        if args.feedback or args.rubric:
            raise ChainruleError("--feedback and --rubric grade a class against one MODEL")
        return run_exercise(args, limits)
    if args.model is None or args.submissions is None:
        raise ChainruleError("grade needs MODEL and SUBMISSIONS_DIR (or --exercise DIR)")
    truth = truth_from(args)
    subs = find_submissions(args.submissions, args.answer_format)
    if not subs:
        raise ChainruleError(f"{args.submissions}: no answer files found")
    bar = Progress(len(subs), "grading", enabled=False if args.no_progress else None)

    def done(index: int, outcome: Outcome) -> None:
        bar.advance()

    with bar:
        if args.scheduler:
            from ..homework.grading_dask import grade_on_dask

            results = grade_on_dask(
                args.scheduler,
                args.model,
                subs,
                limits,
                args.points,
                args.seed,
                args.symbolic_timeout or None,
                on_done=done,
            )
        else:
            results = grade(
                truth, subs, args.jobs, limits, args.symbolic_timeout or None, on_done=done
            )
    order = [n for n in truth.program.topological_order() if n in truth.steps]
    targets = [truth.target_name(n) for n in order]
    points = rubric.score if rubric else None
    Path(args.output).write_text(grades_csv(results, targets, points), encoding="utf-8")
    if args.json:
        text = grades_json(results, str(args.model), points)
        Path(args.json).write_text(text, encoding="utf-8")
    if args.feedback:
        write_feedback(results, args.feedback, str(args.model), rubric)
    n_ok = sum(1 for r in results if r.verdict == "correct")
    print(
        f"graded {len(results)} submissions: {n_ok} fully correct; wrote {args.output}",
        file=sys.stderr,
    )
    return 0


def run_exercise(args: argparse.Namespace, limits: SandboxLimits) -> int:
    """``grade --exercise DIR SUBMISSIONS_DIR``: each student against their own variant."""
    from ..homework.exercise import load_exercise
    from ..homework.exercise_grading import (
        exercise_grades_csv,
        exercise_grades_json,
        grade_exercise,
    )

    if args.submissions is not None:
        raise ChainruleError("with --exercise, give only SUBMISSIONS_DIR (no MODEL)")
    if args.model is None:
        raise ChainruleError("grade --exercise DIR needs SUBMISSIONS_DIR")
    if args.scheduler:
        raise ChainruleError("--exercise grades on this machine (no --scheduler)")
    exercise = load_exercise(args.exercise)
    subs = find_submissions(args.model, args.answer_format)
    if not subs:
        raise ChainruleError(f"{args.model}: no answer files found")
    bar = Progress(len(subs), "grading", enabled=False if args.no_progress else None)
    with bar:
        grades = grade_exercise(
            exercise,
            subs,
            args.jobs,
            limits,
            args.symbolic_timeout or None,
            args.points,
            args.seed,
            on_done=lambda i, o: bar.advance(),
        )
    Path(args.output).write_text(exercise_grades_csv(grades), encoding="utf-8")
    if args.json:
        name = Path(args.exercise).name
        Path(args.json).write_text(exercise_grades_json(grades, name), encoding="utf-8")
    for gr in grades:
        if gr.verdict in ("unknown id", "missing"):
            what = gr.submission if gr.verdict == "unknown id" else gr.id
            print(f"{gr.verdict}: {what}", file=sys.stderr)
    n_ok = sum(1 for gr in grades if gr.verdict == "correct")
    n_subs = sum(1 for gr in grades if gr.verdict != "missing")
    print(
        f"graded {n_subs} submissions: {n_ok} fully correct; wrote {args.output}",
        file=sys.stderr,
    )
    return 0
