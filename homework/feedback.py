"""Feedback pages: one HTML and one Markdown page per student.

Each answer line is listed with its verdict, diagnosis, counterexample and points.
Student text is escaped (HTML) or put in code spans (Markdown), never interpreted.

>>> from chainrule.homework.check import CheckResult, LineResult
>>> res = CheckResult("ann.txt", "incorrect", [LineResult(1, "z_bar", "incorrect", "sign error")])
>>> "sign error" in feedback_markdown(res, "model")
True
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from .check import CheckResult, LineResult
from .results import _fmt, safe_text
from .rubric import Rubric


def _cx_lines(r: LineResult) -> list[str]:
    cx = r.counterexample
    if not cx:
        return []
    point = ", ".join(f"{k}={_fmt(v)}" for k, v in cx["point"].items())
    out = [f"at {point}", f"expected {_fmt(cx['expected'])}, got {_fmt(cx.get('student'))}"]
    if "expected_given_your_earlier_lines" in cx:
        out.append(f"given your earlier lines: {_fmt(cx['expected_given_your_earlier_lines'])}")
    return out


def _md_code(s: str) -> str:
    s = safe_text(s).replace("\n", " ")
    return "`` " + s.replace("``", "` `") + " ``"


def feedback_markdown(res: CheckResult, model: str, rubric: Rubric | None = None) -> str:
    rubric = rubric or Rubric()
    got, total = rubric.score(res)
    out = [
        f"# Feedback: {_md_code(res.answer)}",
        "",
        f"Model: {_md_code(model)} · verdict **{res.verdict}** · {got:g} / {total:g} points",
        "",
    ]
    if res.error:
        out += [f"Error: {_md_code(res.error)}", ""]
    out += [
        "| line | you wrote | target | verdict | points | diagnosis |",
        "|---|---|---|---|---|---|",
    ]
    for r in res.lines:
        pts = f"{rubric.earned(r):g} / {rubric.line_points(r.target):g}"
        detail = "<br>".join([_md_code(r.message), *(_md_code(c) for c in _cx_lines(r))])
        wrote = _md_code(r.source) if r.source else ""
        out.append(f"| {r.line} | {wrote} | {_md_code(r.target)} | {r.status} | {pts} | {detail} |")
    for m in res.missing:
        out.append(f"| – | | {_md_code(m)} | missing | 0 / {rubric.line_points(m):g} | no line |")
    return "\n".join(out) + "\n"


_STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;"
    "vertical-align:top}.correct{color:#075}.incorrect,.missing{color:#a00}"
    ".unparseable,.timeout{color:#a60}code{white-space:pre-wrap}"
)


def feedback_html(res: CheckResult, model: str, rubric: Rubric | None = None) -> str:
    rubric = rubric or Rubric()
    got, total = rubric.score(res)
    e = html.escape
    rows = []
    for r in res.lines:
        detail = "<br>".join(f"<code>{e(safe_text(s))}</code>" for s in [r.message, *_cx_lines(r)])
        rows.append(
            f"<tr><td>{r.line}</td><td><code>{e(safe_text(r.source))}</code></td>"
            f"<td>{e(r.target)}</td><td class='{e(r.status)}'>"
            f"{e(r.status)}</td><td>{rubric.earned(r):g} / {rubric.line_points(r.target):g}"
            f"</td><td>{detail}</td></tr>"
        )
    for m in res.missing:
        rows.append(
            f"<tr><td>–</td><td></td><td>{e(m)}</td><td class='missing'>missing</td>"
            f"<td>0 / {rubric.line_points(m):g}</td><td>no line</td></tr>"
        )
    error = f"<p>Error: <code>{e(safe_text(res.error))}</code></p>" if res.error else ""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Feedback: {e(res.answer)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>Feedback: {e(res.answer)}</h1><p>Model: <code>{e(model)}</code> · verdict "
        f"<b class='{e(res.verdict)}'>{e(res.verdict)}</b> · {got:g} / {total:g} points</p>"
        f"{error}<table><tr><th>line</th><th>you wrote</th><th>target</th><th>verdict</th>"
        "<th>points</th>"
        f"<th>diagnosis</th></tr>{''.join(rows)}</table></body></html>\n"
    )


def page_name(answer: str, taken: set[str]) -> str:
    """A safe, unique file stem for a submission (``hw/ann.tex`` → ``hw__ann.tex``)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", answer.replace("/", "__")).strip("._") or "answer"
    stem = stem[:120]
    name, k = stem, 2
    while name in taken:
        name, k = f"{stem}-{k}", k + 1
    taken.add(name)
    return name


def write_feedback(
    results: list[CheckResult], folder: str | Path, model: str, rubric: Rubric | None = None
) -> list[Path]:
    """One ``.html`` and one ``.md`` page per submission in ``folder``."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    written = []
    for res in results:
        stem = page_name(res.answer, taken)
        for ext, text in (
            (".html", feedback_html(res, model, rubric)),
            (".md", feedback_markdown(res, model, rubric)),
        ):
            path = out / f"{stem}{ext}"
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
