"""Grade answers safely: each one checked in a limited worker process.

The parent builds the :class:`~chainrule.homework.check.Truth` once, reads each answer's
bytes (bounded), and forks a worker per answer (:mod:`chainrule.homework.sandbox`). The
worker parses and checks the answer and streams one message per line, so an answer that
runs past its limits keeps the lines it finished; the rest are marked ``timeout``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..symbolic.errors import ModelError, SourceSpan
from .answers import MAX_ANSWER_BYTES, parse_answer_bytes
from .check import (
    SYMBOLIC_SECONDS,
    CheckResult,
    LineResult,
    Truth,
    first_line,
    iter_check,
    missing_params,
    verdict_of,
)
from .sandbox import Outcome, SandboxLimits, SandboxPool, Send


@dataclass(frozen=True)
class Submission:
    """An answer to grade: a display name and its bytes (or a read error)."""

    name: str
    data: bytes | None
    fmt: str = "auto"  # auto | text | latex (".tex" files are LaTeX under auto)
    read_error: str | None = None


def read_submission(path: str | Path, name: str | None = None, fmt: str = "auto") -> Submission:
    """Read at most ``MAX_ANSWER_BYTES + 1`` bytes of an answer file."""
    path = Path(path)
    if fmt == "auto" and path.suffix.lower() in (".tex", ".latex"):
        fmt = "latex"
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_ANSWER_BYTES + 1)
    except OSError as exc:
        return Submission(name or str(path), None, fmt, f"cannot read answer: {exc.strerror}")
    return Submission(name or str(path), data, fmt)


@dataclass
class CheckTask:
    """The worker's job for one submission (a callable the sandbox forks)."""

    truth: Truth
    symbolic_seconds: float | None = SYMBOLIC_SECONDS

    def __call__(self, sub: Submission, send: Send) -> None:
        if sub.data is None:
            send(("end", {"error": sub.read_error, "missing": []}))
            return
        answer = parse_answer_bytes(sub.data, sub.name, self.truth.program, sub.fmt)
        plan = [
            (al.line, self.truth.target_name(al.node) if al.node else al.target_text)
            for al in answer.lines
        ]
        send(("plan", plan))
        results: list[LineResult] = []
        for r in iter_check(self.truth, answer, self.symbolic_seconds):
            results.append(r)
            send(("line", r.to_dict()))
        error = first_line(answer.error)
        send(("end", {"error": error, "missing": missing_params(self.truth, results)}))


def result_from_outcome(name: str, outcome: Outcome, limits: SandboxLimits) -> CheckResult:
    """Assemble a :class:`CheckResult` from a worker's messages (complete or cut short)."""
    plan: list[tuple[int, str]] = []
    lines: list[LineResult] = []
    end: dict[str, Any] | None = None
    for kind, payload in outcome.messages:
        if kind == "plan":
            plan = [tuple(p) for p in payload]
        elif kind == "line":
            lines.append(LineResult(**payload))
        elif kind == "end":
            end = payload
    if end is not None and outcome.ok:
        return CheckResult(
            name, verdict_of(lines, end["error"]), lines, end["missing"], end["error"]
        )
    why = outcome.describe(limits)
    for line, target in plan[len(lines) :]:
        lines.append(LineResult(line, target or "?", "timeout", f"not checked: {why}"))
    if not plan:
        return CheckResult(name, "error", lines, error=f"{name}: {why} while reading the answer")
    return CheckResult(name, verdict_of(lines, None), lines)


def grade(
    truth: Truth,
    submissions: Iterable[Submission],
    jobs: int = 1,
    limits: SandboxLimits | None = None,
    symbolic_seconds: float | None = SYMBOLIC_SECONDS,
    on_done: Callable[[int, Outcome], None] | None = None,
) -> list[CheckResult]:
    """Check every submission in sandboxed workers; results in submission order."""
    limits = limits or SandboxLimits()
    subs = list(submissions)
    truth.prepare()  # computed once here, shared by every forked worker
    gc.collect()
    gc.freeze()  # keep the shared objects out of the workers' garbage collections (COW)
    pool = SandboxPool(CheckTask(truth, symbolic_seconds), jobs, limits, on_done)
    results: dict[int, CheckResult] = {}
    for i, outcome in pool.map(subs):
        results[i] = result_from_outcome(subs[i].name, outcome, limits)
    return [results[i] for i in range(len(subs))]


def check_file(
    truth: Truth,
    path: str | Path,
    fmt: str = "auto",
    limits: SandboxLimits | None = None,
    symbolic_seconds: float | None = SYMBOLIC_SECONDS,
) -> CheckResult:
    """Check one answer file in a sandboxed worker."""
    return grade(truth, [read_submission(path, fmt=fmt)], 1, limits, symbolic_seconds)[0]


def find_submissions(folder: str | Path, fmt: str = "auto") -> list[Submission]:
    """Every regular, non-hidden file in ``folder`` and its subfolders, sorted by path.

    Symbolic links are skipped (an answer cannot point the grader at other files).
    """
    root = Path(folder)
    if not root.is_dir():
        raise ModelError(f"not a folder: {folder}", SourceSpan(str(folder), 1, 1))
    subs = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or p.is_symlink():
            continue
        if p.is_file():
            subs.append(read_submission(p, rel.as_posix(), fmt))
    return subs
