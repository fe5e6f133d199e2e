"""Grade an exercise: each submission against its student's own variant.

Everything ``grade`` does (sandboxed workers, parallel jobs, per-line verdicts) runs per
submission with that student's :class:`~chainrule.homework.check.Truth`; the numeric
answers (after ``numeric:``) are judged in the same worker against the gradient at the
student's point. A file whose id is not in the roster is reported, never graded; a
student with no file gets a ``missing`` row.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..symbolic import grammar as g
from ..symbolic.errors import ModelError
from .answers import _LATEX_HINT, MAX_ANSWER_BYTES
from .check import N_POINTS, SEED, SYMBOLIC_SECONDS, CheckResult, Truth
from .exercise import Exercise, StudentVariant, recorded_variants
from .grading import CheckTask, Submission, result_from_outcome
from .numeric import NumericResult, grade_numbers
from .results import STATUSES, csv_cell, safe_json
from .sandbox import Outcome, SandboxLimits, SandboxPool, Send


@dataclass
class ExerciseGrade:
    """One row of an exercise's grades."""

    id: str
    submission: str
    verdict: str  # correct | incorrect | error | unknown id | missing
    variant: int | None = None  # 1-based
    result: CheckResult | None = None
    numeric: list[NumericResult] = field(default_factory=list)
    error: str | None = None

    @property
    def score(self) -> float:
        return self.result.score if self.result else 0.0

    @property
    def numeric_score(self) -> float:
        asked = [r for r in self.numeric if r.param]  # one per parameter
        ok = sum(1 for r in asked if r.status == "correct")
        return round(ok / len(asked), 4) if asked else 0.0

    @property
    def total(self) -> float:
        """The mean of the backward-pass score and the numeric score."""
        return round((self.score + self.numeric_score) / 2, 4)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "submission": self.submission,
            "variant": self.variant,
            "verdict": self.verdict,
            "score": self.score,
            "numeric_score": self.numeric_score,
            "total": self.total,
            "error": self.error,
            "backward_pass": self.result.to_dict() if self.result else None,
            "numeric": [r.to_dict() for r in self.numeric],
        }


def submission_id(name: str, known: set[str]) -> str:
    """The student id of a submission file: ``s001.txt`` or ``s001/answer.txt`` → ``s001``."""
    path = Path(name)
    if len(path.parts) > 1:
        return path.parts[0]
    for candidate in (path.stem, path.name.split(".")[0]):
        if candidate in known:
            return candidate
    return path.stem


@dataclass
class ExerciseTask:
    """The worker's job: the numeric answers, then the backward pass (``CheckTask``)."""

    truths: dict[int, Truth]
    students: dict[str, StudentVariant]
    ids: dict[str, str]  # submission name → id
    symbolic_seconds: float | None = SYMBOLIC_SECONDS

    def __call__(self, sub: Submission, send: Send) -> None:
        sv = self.students[self.ids[sub.name]]
        if sub.data is not None and sub.name.lower().endswith((".md", ".markdown")):
            sub = dataclasses.replace(sub, data=markdown_answer(sub.data))
        if sub.data is not None and len(sub.data) <= MAX_ANSWER_BYTES:
            try:
                text = g.decode_source(sub.data, sub.name)
            except ModelError:
                text = ""
            fmt = sub.fmt
            if fmt == "auto":
                fmt = "latex" if _LATEX_HINT.search(text[:100_000]) else "text"
            numeric = grade_numbers(text, sub.name, sv.program, sv.gradient, fmt)
            send(("numeric", [r.to_dict() for r in numeric]))
        CheckTask(self.truths[sv.index], self.symbolic_seconds)(sub, send)


_MARKDOWN_LINE = re.compile(rb"^[ \t]*(```|~~~|#{1,6}[ \t]|\$\$[ \t]*$)[^\n]*", re.MULTILINE)


def markdown_answer(data: bytes) -> bytes:
    r"""A Markdown answer with code fences, headings and lone ``$$`` lines blanked (line
    numbers kept), so that only the answer lines are read.

    >>> markdown_answer(b"## Backprop\n```text\nybar = y - t\n```\n")
    b'\n\nybar = y - t\n\n'
    """
    return _MARKDOWN_LINE.sub(b"", data)


def grade_exercise(
    exercise: Exercise,
    submissions: list[Submission],
    jobs: int = 1,
    limits: SandboxLimits | None = None,
    symbolic_seconds: float | None = SYMBOLIC_SECONDS,
    n_points: int = N_POINTS,
    seed: int = SEED,
    on_done: Callable[[int, Outcome], None] | None = None,
) -> list[ExerciseGrade]:
    """Grades of every submission (in order), then a ``missing`` row per silent student."""
    limits = limits or SandboxLimits()
    records = exercise.by_id()
    known = set(records)
    ids = {s.name: submission_id(s.name, known) for s in submissions}
    to_grade = [s for s in submissions if ids[s.name] in known]
    wanted = sorted({ids[s.name] for s in to_grade})
    students = recorded_variants(exercise, [records[i] for i in wanted])
    truths: dict[int, Truth] = {}
    for sv in students.values():
        if sv.index not in truths:
            truths[sv.index] = Truth(sv.program, n_points=n_points, seed=seed).prepare()
    task = ExerciseTask(truths, students, ids, symbolic_seconds)
    done: dict[str, ExerciseGrade] = {}
    for i, outcome in SandboxPool(task, jobs, limits, on_done).map(to_grade):
        sub = to_grade[i]
        done[sub.name] = _grade_of(sub, students[ids[sub.name]], outcome, limits)
    out: list[ExerciseGrade] = []
    for s in submissions:
        if s.name in done:
            out.append(done[s.name])
        else:
            why = f"id '{ids[s.name]}' is not in the exercise's roster"
            out.append(ExerciseGrade(ids[s.name], s.name, "unknown id", error=why))
    answered = {ids[s.name] for s in to_grade}
    for sid in records:
        if sid not in answered:
            out.append(ExerciseGrade(sid, "", "missing", records[sid]["variant"] + 1))
    return out


def _grade_of(
    sub: Submission, sv: StudentVariant, outcome: Outcome, limits: SandboxLimits
) -> ExerciseGrade:
    result = result_from_outcome(sub.name, outcome, limits)
    numeric: list[NumericResult] = []
    for kind, payload in outcome.messages:
        if kind == "numeric":
            numeric = [NumericResult(**r) for r in payload]
    verdict = result.verdict
    if verdict == "correct" and not all(r.status == "correct" for r in numeric):
        verdict = "incorrect"
    return ExerciseGrade(
        sv.student.id, sub.name, verdict, sv.index + 1, result, numeric, result.error
    )


# ------------------------------------------------------------------ output
COLUMNS = [
    "id",
    "submission",
    "variant",
    "verdict",
    "score",
    "numeric_score",
    "total",
    *STATUSES,
    "missing",
    "numeric",
    "lines",
    "error",
]


def exercise_grades_csv(grades: list[ExerciseGrade]) -> str:
    """One row per submission (and per student without one)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for gr in grades:
        res = gr.result
        lines = res.lines if res else []
        counts = [sum(1 for r in lines if r.status == s) for s in STATUSES]
        w.writerow(
            [
                csv_cell(c)
                for c in (
                    gr.id,
                    gr.submission,
                    gr.variant or "",
                    gr.verdict,
                    f"{gr.score:.4f}",
                    f"{gr.numeric_score:.4f}",
                    f"{gr.total:.4f}",
                    *counts,
                    " ".join(res.missing) if res else "",
                    " ".join(f"{r.param or f'line{r.line}'}:{r.status}" for r in gr.numeric),
                    " ".join(f"{r.line}:{r.target}:{r.status}" for r in lines),
                    gr.error or "",
                )
            ]
        )
    return buf.getvalue()


def exercise_grades_json(grades: list[ExerciseGrade], exercise: str) -> str:
    return safe_json({"exercise": exercise, "submissions": [g.to_dict() for g in grades]}) + "\n"
