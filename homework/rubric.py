"""Partial credit: a TOML rubric, points per line, and Gradescope's ``results.json``.

A rubric gives points per error signal or parameter, and points taken off a wrong line
by the kind of its diagnosis (instead of all of its points)::

    [points]            # node names (W1) or signal names (W1_bar); default: 1
    default = 1
    W1 = 3
    W2 = 3

    [deductions]        # a wrong line with this diagnosis keeps points − deduction
    sign = 0.5
    factor_of_2 = 0.5
    transpose = 1

Without a rubric every answered line and every parameter left out weighs 1, so
score / max_score is :attr:`CheckResult.score`.

>>> r = Rubric()
>>> r.line_points("W1_bar"), diagnosis_kind("incorrect", "sign error: the value is …")
(1.0, 'sign')
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..symbolic.errors import ChainruleError
from .check import CheckResult, LineResult

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: the same parser, as the tomli backport
    import tomli as tomllib

#: Diagnosis kinds a rubric may deduct by, and the message beginnings that mark them.
DIAGNOSIS_KINDS: dict[str, tuple[str, ...]] = {
    "layer_mixup": ("layer mix-up", "index mix-up"),
    "sign": ("sign error",),
    "factor_of_2": ("factor of 2",),
    "transpose": ("transposed", "wrong shape: you wrote", "wrong shape"),
    "shape": ("shape error",),
    "missing_local_derivative": ("missing local derivative",),
    "missing_factor": ("missing factor",),
    "fan_out": ("fan-out contribution left out",),
    "activation_for_derivative": ("σ where", "tanh where", "ReLU where"),
    "index_order": ("weights indexed the wrong way round",),
    "not_finite": ("not finite",),
    "mismatch": ("does not match",),
}
OTHER_KINDS = ("unparseable", "timeout", "missing")


def diagnosis_kind(status: str, message: str) -> str:
    """The rubric kind of a line's verdict (``correct``, ``sign``, ``unparseable``…)."""
    if status in ("correct", "unparseable", "timeout"):
        return status
    for kind, starts in DIAGNOSIS_KINDS.items():
        if message.startswith(starts):
            if kind == "transpose" and "transpose" not in message:
                return "shape"
            if kind == "shape" and "missing transpose" in message:
                return "transpose"
            if kind == "fan_out" and "regularizer" in message:
                return "regularization"
            return kind
    return "mismatch"


@dataclass
class Rubric:
    """Points per target and deductions per diagnosis kind (see the module doc)."""

    points: dict[str, float] = field(default_factory=dict)
    deductions: dict[str, float] = field(default_factory=dict)
    default: float = 1.0
    source: str = "<default rubric>"

    def line_points(self, target: str) -> float:
        node = target.removesuffix("_bar")
        return self.points.get(target, self.points.get(node, self.default))

    def earned(self, line: LineResult) -> float:
        pts = self.line_points(line.target)
        if line.status == "correct":
            return pts
        kind = diagnosis_kind(line.status, line.message)
        if kind in self.deductions:
            return max(0.0, pts - self.deductions[kind])
        return 0.0

    def score(self, res: CheckResult) -> tuple[float, float]:
        """(points earned, points possible) for one checked answer."""
        got = sum(self.earned(r) for r in res.lines)
        total = sum(self.line_points(r.target) for r in res.lines)
        total += sum(self.line_points(m) for m in res.missing)
        return round(got, 4), round(total, 4)


def load_rubric(path: str | Path) -> Rubric:
    """Read a TOML rubric; mistakes are located errors (exit status 2 at the CLI)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise ChainruleError(f"{path}: cannot read the rubric: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ChainruleError(f"{path}: the rubric is not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"line (\d+), column (\d+)", str(exc))
        where = f"{path}:{at.group(1)}:{at.group(2)}" if at else str(path)
        raise ChainruleError(f"{where}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"points", "deductions"})
    if unknown:
        raise ChainruleError(
            f"{_where(path, text, unknown[0])}: unknown table(s) {', '.join(unknown)}; "
            "a rubric has [points] and [deductions]"
        )
    points = _numbers(data.get("points", {}), path, "points", text)
    deductions = _numbers(data.get("deductions", {}), path, "deductions", text)
    kinds = {*DIAGNOSIS_KINDS, "regularization", *OTHER_KINDS}
    bad = sorted(set(deductions) - kinds)
    if bad:
        raise ChainruleError(
            f"{_where(path, text, bad[0])}: [deductions]: unknown diagnosis kind(s) "
            f"{', '.join(bad)}; known: {', '.join(sorted(kinds))}"
        )
    default = points.pop("default", 1.0)
    return Rubric(points, deductions, default, str(path))


def _where(path: Path, text: str, key: str) -> str:
    """``file:line:col`` of a key (or table) in the rubric's text."""
    pattern = re.compile(rf"^\s*\[?\s*\"?{re.escape(key)}\b", re.MULTILINE)
    m = pattern.search(text)
    if m is None:
        return str(path)
    line = text.count("\n", 0, m.start()) + 1
    col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + len(m.group()) - len(key) + 1
    return f"{path}:{line}:{col}"


def _numbers(table: Any, path: Path, name: str, text: str = "") -> dict[str, float]:
    if not isinstance(table, dict):
        raise ChainruleError(f"{_where(path, text, name)}: [{name}] must be a table")
    out: dict[str, float] = {}
    for key, value in table.items():
        where = _where(path, text, str(key))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ChainruleError(f"{where}: [{name}] {key} must be a number, not {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ChainruleError(f"{where}: [{name}] {key} must be a number ≥ 0")
        out[str(key)] = float(value)
    return out


# ------------------------------------------------------------------ Gradescope
def line_output(r: LineResult) -> str:
    """A line's verdict, diagnosis and counterexample as plain text."""
    from .results import line_text

    lines = ([f"you wrote: {r.source}"] if r.source else []) + [f"{r.status}: {r.message}"]
    lines += [s.strip() for s in line_text(r)[1:]]
    return "\n".join(lines)


def gradescope_results(
    res: CheckResult, rubric: Rubric | None = None, visibility: str = "visible"
) -> dict[str, Any]:
    """Gradescope's autograder ``results.json`` for one checked answer."""
    rubric = rubric or Rubric()
    tests: list[dict[str, Any]] = []
    for r in res.lines:
        pts = rubric.line_points(r.target)
        tests.append(
            {
                "name": f"line {r.line}: {r.target}",
                "score": round(rubric.earned(r), 4),
                "max_score": pts,
                "status": "passed" if r.status == "correct" else "failed",
                "output": line_output(r),
                "visibility": visibility,
            }
        )
    for m in res.missing:
        tests.append(
            {
                "name": f"missing: {m}",
                "score": 0.0,
                "max_score": rubric.line_points(m),
                "status": "failed",
                "output": f"no line gives {m}",
                "visibility": visibility,
            }
        )
    score, total = rubric.score(res)
    out = f"{res.verdict}: {score:g} of {total:g} points"
    if res.error:
        out += f"\n{res.error}"
    return {
        "score": score,
        "max_score": total,
        "output": out,
        "visibility": visibility,
        "tests": tests,
    }
