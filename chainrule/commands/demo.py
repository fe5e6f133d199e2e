"""``chainrule demo [-o DIR]``: the report gallery of every shipped example."""

from __future__ import annotations

import argparse
import sys
import time
from html import escape
from pathlib import Path

HELP = """\
Build the report gallery: one self-contained HTML report for every shipped example
(derivations, graph, costs, checks, generated code) and an index.html linking them.
Needs no input; open DIR/index.html in a browser.

examples:
  chainrule demo
  chainrule demo -o /tmp/gallery
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="build the HTML report gallery of the shipped examples",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-o", "--output", default="gallery", metavar="DIR", help="directory (default: gallery/)"
    )
    p.add_argument(
        "--budget",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="time budget of each naive derivation (default: 20)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=run)


def index_html(entries: list[tuple[str, str, str, str]]) -> str:
    """The gallery page: (file, title, summary, status) per example, all escaped."""
    rows = "\n".join(
        f'<li><a href="{escape(f)}">{escape(t)}</a> <span class="s">{escape(s)}</span>'
        f"{' <em>' + escape(st) + '</em>' if st else ''}</li>"
        for f, t, s, st in entries
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>chainrule report gallery</title>
<style>body {{ font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; max-width: 50rem;
margin: 0 auto; padding: 1rem; line-height: 1.5; }} li {{ margin: .5rem 0; }}
.s {{ display: block; color: #555; font-size: .9rem; }} em {{ color: #b3261e; }}</style>
</head><body>
<h1>chainrule report gallery</h1>
<p>Each report derives one shipped example twice — naively, as in calculus class, and by
error-signal backpropagation — and shows the computation graph, operation counts,
gradient checks and the generated NumPy code.</p>
<ul>
{rows}
</ul>
</body></html>
"""


def _summary(data: object) -> str:
    model = data.model  # type: ignore[attr-defined]
    params = [v.name for v in model.leaves if v.role == "param"]
    checks = data.checks  # type: ignore[attr-defined]
    verdict = ""
    if checks is not None:
        verdict = f"; gradient check {'passed' if checks.passed else 'FAILED'}"
    return f"{len(params)} parameters, {len(model.equations)} nodes, loss {model.loss}" + verdict


def run(args: argparse.Namespace) -> int:
    from ..examples import example_names
    from ..progress import Progress
    from ..reports.data import ReportOptions
    from ..reports.document import build_report, render_report

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    names = example_names()
    entries: list[tuple[str, str, str, str]] = []
    failures = 0
    start = time.perf_counter()
    with Progress(len(names), "demo", enabled=False if args.quiet else None) as bar:
        for name in names:
            file = f"{name}.html"
            try:
                data = build_report(name, ReportOptions(naive_budget=args.budget, order=2))
                (out / file).write_text(render_report(data, "html"), encoding="utf-8")
                entries.append((file, data.title, _summary(data), ""))
            except Exception as exc:  # noqa: BLE001 - one bad example must not stop the gallery
                failures += 1
                entries.append(("#", name, "", f"failed: {exc}"))
                print(f"error: {name}: {exc}", file=sys.stderr)
            bar.advance(example=name)
            if not args.quiet and not bar.enabled:
                print(f"[{len(entries)}/{len(names)}] {name}", file=sys.stderr, flush=True)
    (out / "index.html").write_text(index_html(entries), encoding="utf-8")
    if not args.quiet:
        seconds = time.perf_counter() - start
        print(
            f"wrote {len(names) - failures} reports and {out / 'index.html'} in {seconds:.1f} s",
            file=sys.stderr,
        )
    return 1 if failures else 0
