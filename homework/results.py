"""Check and grade results as text, JSON and CSV, with student text kept inert.

Student text reaches messages (unknown names, the offending line). Every output here is
safe to show: terminal control characters are escaped in text, ``<``, ``>`` and ``&`` are
``\\u`` escapes in JSON (so a report embedding it in HTML runs no script), and CSV cells
that a spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@``) get a ``'`` prefix.

>>> safe_text("ok\\x1b[31m")
'ok\\\\x1b[31m'
>>> csv_cell("=HYPERLINK(1)")
"'=HYPERLINK(1)"
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Callable
from typing import Any

import numpy as np

from .check import CheckResult, LineResult

STATUSES = ("correct", "incorrect", "unparseable", "timeout")


def safe_text(s: object) -> str:
    """Escape control and format characters (ESC, BEL, bidi overrides) for a terminal."""
    out = []
    for ch in str(s):
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"):
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def safe_json(obj: Any, indent: int | None = 2) -> str:
    """JSON with ``<``, ``>``, ``&`` escaped (valid JSON, inert inside HTML)."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def csv_cell(value: object) -> str:
    s = safe_text(value).replace("\n", " ")
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


# ------------------------------------------------------------------ one answer
def _fmt(v: object) -> str:
    """Numbers to 6 digits; matrices (nested lists) as ``[[1, 2], [3, 4]]``."""
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if v is None:
        return "—"
    return f"{v:.6g}" if isinstance(v, float) else str(v)


#: A counterexample's arrays longer than this print as their shape and first entries
#: (the whole point is in --format json).
SHOWN_ENTRIES = 12


def _fmt_short(v: object) -> str:
    """``_fmt``, with a large array as ``(8, 1, 3, 3) array [0.0629, -0.066, …]``."""
    arr = np.asarray(v, dtype=object) if isinstance(v, list) else None
    if arr is None or arr.size <= SHOWN_ENTRIES:
        return _fmt(v)
    head = ", ".join(_fmt(x) for x in arr.reshape(-1)[:6])
    return f"{arr.shape} array [{head}, …]"


def line_text(r: LineResult) -> list[str]:
    where = f"line {r.line}" + (f", col {r.column}" if r.column else "")
    out = [f"  {where:<14} {r.target:<12} {r.status:<11} {r.message}"]
    if r.status == "correct" and r.symbolic != "skipped":
        out[0] += f"  [symbolic: {r.symbolic}]"
    cx = r.counterexample
    if cx:
        point = ", ".join(f"{k}={_fmt_short(v)}" for k, v in cx["point"].items())
        out.append(f"  {'':14} at {point}")
        extra = ""
        if "expected_given_your_earlier_lines" in cx:
            extra = f" (given your earlier lines: {_fmt(cx['expected_given_your_earlier_lines'])})"
        out.append(
            f"  {'':14} expected {_fmt(cx['expected'])}, got {_fmt(cx['student'])}"
            f", relative error {_fmt(cx['relative_error'])}{extra}"
        )
    return out


def result_text(res: CheckResult) -> str:
    """A readable report of one checked answer."""
    lines = [f"{res.answer}: {res.verdict} (score {res.score:.2f})"]
    if res.error:
        lines.append(f"  error: {res.error}")
    for r in res.lines:
        lines.extend(line_text(r))
    if res.missing:
        lines.append("  missing (no line for): " + ", ".join(res.missing))
    return safe_text("\n".join(lines)) + "\n"


def result_json(res: CheckResult) -> str:
    return safe_json(res.to_dict()) + "\n"


# ------------------------------------------------------------------ a class
Points = Callable[[CheckResult], tuple[float, float]]


def grades_csv(results: list[CheckResult], targets: list[str], points: Points | None = None) -> str:
    """One row per submission: verdict, score, counts, a status per target, the lines.

    With ``points`` (a rubric's scoring), the score is points / max points and the two
    are added as the last columns.
    """
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = ["submission", "verdict", "score", *STATUSES, "missing", *targets, "lines", "error"]
    w.writerow(head + (["points", "max_points"] if points else []))
    for res in results:
        got, total = points(res) if points else (res.score, 1.0)
        score = got / total if total else 0.0
        extra = [f"{got:g}", f"{total:g}"] if points else []
        counts = {s: sum(1 for r in res.lines if r.status == s) for s in STATUSES}
        by_target = {r.target: r.status for r in res.lines}
        detail = " ".join(f"{r.line}:{r.target}:{r.status}" for r in res.lines)
        w.writerow(
            [
                csv_cell(c)
                for c in (
                    res.answer,
                    res.verdict,
                    f"{score:.4f}",
                    *counts.values(),
                    " ".join(res.missing),
                    *(by_target.get(t, "") for t in targets),
                    detail,
                    res.error or "",
                    *extra,
                )
            ]
        )
    return buf.getvalue()


def grades_json(results: list[CheckResult], model: str, points: Points | None = None) -> str:
    subs = []
    for r in results:
        d = r.to_dict()
        if points:
            d["points"], d["max_points"] = points(r)
        subs.append(d)
    return safe_json({"model": model, "submissions": subs}) + "\n"
