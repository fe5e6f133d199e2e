"""``chainrule exercise TEMPLATE --students roster.csv --seed S -o DIR``: per-student
randomized backprop exercises (handout, solution, answer key)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..homework.exercise import (
    Derived,
    Exercise,
    Student,
    StudentVariant,
    assign_variants,
    earlier_assignment,
    numbered_students,
    read_roster,
    student_record,
    student_variant,
)
from ..homework.templates import Template, load_template
from ..progress import Progress
from ..symbolic.errors import ChainruleError

HELP = """\
Make one variant of TEMPLATE per student. A template is a .chain model with lines
'vary NAME in A, B, ...' (functions, numbers, sizes or expressions); every variant must
parse (errors point at the template's line and column). Each student gets, in DIR/<id>/:

  model.chain       their variant
  handout.md/.html  the model, its graph, what to derive (backward pass in bar notation)
                    and a numeric question (the gradient at their own point, 4 significant
                    digits, relative tolerance stated); handout.tex (and .pdf with --pdf)
  solution.md/.html the derivation report of the variant with the numeric answers
  answer_key.txt    a correct answer that 'chainrule check' accepts

and DIR/exercise.json records the template, the seed, the roster and every variant.
Variants are spread evenly: with as many students as variants, every variant is used.
Same template, seed and roster: byte-identical files on any machine. Run again into the
same DIR with a longer roster (same template and seed): listed students keep their
variants and files; new students get the least-used variants.

examples:
  chainrule exercise examples/exercises/one_hidden_unit.chain --students roster.csv --seed 7 -o hw4/
  chainrule exercise template.chain --count 30 --seed 1 -o variants/
  chainrule exercise one_hidden_unit --count 30 --seed 1 --preview
  chainrule grade --exercise hw4/ submissions/ -o grades.csv
  chainrule exercise one_hidden_unit --prairielearn pl/questions/backprop1/

--prairielearn DIR writes the template as a PrairieLearn question (see docs/exercises.md).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "exercise",
        help="per-student randomized exercises: handout, solution, answer key",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "template",
        metavar="TEMPLATE",
        help="a .chain model with 'vary' lines (or a shipped one: one_hidden_unit)",
    )
    who = p.add_mutually_exclusive_group()
    who.add_argument("--students", metavar="roster.csv", help="CSV roster with an 'id' column")
    who.add_argument("--count", type=int, metavar="N", help="N variants with ids v001, v002, …")
    p.add_argument("--seed", type=int, default=0, help="seed of variants and points (default 0)")
    p.add_argument("-o", "--output", metavar="DIR", help="folder to write (one subfolder per id)")
    p.add_argument(
        "--preview",
        nargs="?",
        const="",
        metavar="ID",
        help="print one student's variant (default: the first) instead of writing files",
    )
    p.add_argument(
        "--prairielearn",
        metavar="DIR",
        help="write a PrairieLearn question directory (info.json, question.html, server.py)",
    )
    p.add_argument("--pdf", action="store_true", help="also compile handout.pdf with pdflatex")
    p.add_argument("--no-tex", action="store_true", help="do not write handout.tex")
    p.add_argument("--no-progress", action="store_true", help="never draw the progress bar")
    p.set_defaults(run=run)


def _students(args: argparse.Namespace) -> list[Student]:
    if args.students:
        return read_roster(args.students)
    return numbered_students(args.count)


def template_path(spec: str) -> Path:
    """A template file, or the name of a shipped one (``one_hidden_unit``)."""
    from ..examples import HERE

    shipped = HERE / "exercises" / f"{spec}.chain"
    if not Path(spec).exists() and "/" not in spec and shipped.is_file():
        return shipped
    return Path(spec)


def run(args: argparse.Namespace) -> int:
    path = template_path(args.template)
    if args.prairielearn:
        from ..homework.prairielearn import export_question

        for written in export_question(path, args.prairielearn):
            print(f"wrote {written}", file=sys.stderr)
        return 0
    if not args.students and args.count is None:
        raise ChainruleError("give --students roster.csv or --count N (or --prairielearn DIR)")
    template = load_template(path)
    students = _students(args)
    for warning in template.validate(len(students)):
        print(warning, file=sys.stderr)
    kept = earlier_assignment(args.output, template.source, args.seed) if args.output else {}
    variants = assign_variants(template.count, [s.id for s in students], args.seed, kept)
    if kept and args.preview is None:
        n_kept = sum(1 for s in students if s.id in kept)
        print(f"note: {n_kept} students keep their variants from {args.output}", file=sys.stderr)
    if args.preview is not None:
        return _preview(template, students, variants, args)
    if not args.output:
        raise ChainruleError("give -o DIR (or --preview to print one variant)")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    cache: Derived = {}
    bar = Progress(len(students), "exercises", enabled=False if args.no_progress else None)
    with bar:
        for s in students:
            sv = student_variant(template, s, variants[s.id], args.seed, cache)
            _write_student(out / s.id, sv, template.count, args)
            records.append(student_record(sv))
            bar.advance()
    name = path.name
    exercise = Exercise(name, template.source, args.seed, template.count, records)
    (out / "exercise.json").write_text(exercise.to_json(), encoding="utf-8")
    used = len(set(variants.values()))
    print(
        f"wrote {len(students)} exercises ({used} of {template.count} variants used) to {out}",
        file=sys.stderr,
    )
    return 0


def _write_student(
    folder: Path, sv: StudentVariant, n_variants: int, args: argparse.Namespace
) -> None:
    from ..homework.exercise_docs import compile_pdf, render_documents

    folder.mkdir(parents=True, exist_ok=True)
    for name, text in render_documents(sv, n_variants, tex=not args.no_tex).items():
        (folder / name).write_text(text, encoding="utf-8")
    if args.pdf and not args.no_tex and compile_pdf(folder / "handout.tex") is None:
        print(f"note: {folder}/handout.pdf not made (pdflatex missing or failed)", file=sys.stderr)


def _preview(
    template: Template,
    students: list[Student],
    variants: dict[str, int],
    args: argparse.Namespace,
) -> int:
    from ..homework.exercise_docs import answer_key
    from ..homework.numeric import TOLERANCE_TEXT

    ids = {s.id: s for s in students}
    sid = args.preview or students[0].id
    if sid not in ids:
        raise ChainruleError(f"--preview: no student '{sid}' in the roster")
    sv = student_variant(template, ids[sid], variants[sid], args.seed)
    choices = ", ".join(f"{k} = {v}" for k, v in sv.choices.items())
    point = ", ".join(f"{k}={v}" for k, v in sv.point.items())
    sys.stdout.write(
        f"# {sid}: variant {sv.index + 1} of {template.count} ({choices})\n"
        f"{sv.program.source}\n# point: {point}\n# {TOLERANCE_TEXT}\n\n{answer_key(sv)}"
    )
    return 0
