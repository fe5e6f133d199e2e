"""The computation graph as Graphviz DOT, drawn by ``dot`` when it is installed.

Parameters are filled boxes, inputs plain boxes, constants dashed, interior nodes
ellipses, the loss a double ellipse; a node used by several children (fan-out > 1)
has a bold outline and its out-edges colored, so the places where backprop sums
contributions stand out.

>>> from chainrule.symbolic import parse_program
>>> p = parse_program("param w\\ninput x\\nz = w*x\\nL = z^2 + w^2\\nloss L")
>>> print(to_dot(p).splitlines()[0])
digraph computation {
>>> "w -> L" in to_dot(p)
True
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from ..symbolic.program import Program
from .notation import pretty_name

DOT_TIMEOUT = 20.0

#: role → DOT node attributes
STYLES = {
    "param": 'shape=box, style="rounded,filled", fillcolor="#fde7c8", color="#b5651d"',
    "input": 'shape=box, style="rounded", color="#3b6ea5"',
    "const": 'shape=box, style="rounded,dashed", color="#777777"',
    "node": 'shape=ellipse, color="#333333"',
    "loss": 'shape=ellipse, peripheries=2, style="filled", fillcolor="#e3f0e3", color="#2e7d32"',
}
FAN_OUT_EDGE = 'color="#c62828", penwidth=1.6'


@dataclass
class Rendered:
    """The SVG (or None) and a note saying why not."""

    svg: str | None
    note: str = ""


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _shape_text(shape: tuple) -> str:
    if not shape:
        return ""
    return "(" + ", ".join(str(d) for d in shape) + ")"


def node_label(program: Program, name: str) -> str:
    """The unicode name with its shape: ``W⁽¹⁾ (m, n)``."""
    item = program[name]
    display = getattr(item, "display", name)
    label = pretty_name(display, vector=program.is_vector)
    shape = _shape_text(getattr(item, "shape", ()))
    return f"{label}\n{shape}" if shape else label


def _role(program: Program, name: str) -> str:
    if name == program.loss:
        return "loss"
    return getattr(program[name], "role", "node")


def to_dot(program: Program) -> str:
    """DOT source: leaves at the top (rank=source), edges parent → child."""
    lines = [
        "digraph computation {",
        '  graph [rankdir=TB, nodesep=0.35, ranksep=0.45, bgcolor="transparent"];',
        '  node [fontname="DejaVu Sans", fontsize=12, height=0.3];',
        '  edge [color="#555555", arrowsize=0.7];',
    ]
    needed = program.needed_by_loss()
    for name in program.topological_order():
        extra = ", penwidth=2.2" if program.fan_out(name) > 1 else ""
        faded = "" if name in needed else ', fontcolor="#999999"'
        lines.append(
            f"  {name} [label={_quote(node_label(program, name))}, "
            f"{STYLES[_role(program, name)]}{extra}{faded}];"
        )
    leaves = [v.name for v in program.variables]
    if leaves:
        lines.append("  { rank=source; " + "; ".join(leaves) + "; }")
    for child in (a.name for a in program.assignments):
        for parent in program.parents(child):
            style = f" [{FAN_OUT_EDGE}]" if program.fan_out(parent) > 1 else ""
            lines.append(f"  {parent} -> {child}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_binary() -> str | None:
    return shutil.which("dot")


def run_dot(dot_source: str, fmt: str = "svg") -> Rendered:
    """Lay the graph out with Graphviz (``dot -T<fmt>``), bounded by a timeout."""
    exe = dot_binary()
    if exe is None:
        return Rendered(
            None,
            "Graphviz is not installed (no `dot` on PATH), so the graph "
            "is shown as DOT source; install the `graphviz` package to draw it.",
        )
    try:
        proc = subprocess.run(
            [exe, f"-T{fmt}"],
            input=dot_source,
            capture_output=True,
            text=True,
            timeout=DOT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Rendered(
            None, f"Graphviz took longer than {DOT_TIMEOUT:g} s; the graph is shown as DOT source."
        )
    except OSError as exc:
        return Rendered(None, f"Graphviz could not run ({exc}); the graph is shown as DOT source.")
    if proc.returncode != 0:
        reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
        return Rendered(None, f"Graphviz failed ({reason}); the graph is shown as DOT source.")
    return Rendered(proc.stdout)


_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def inline_svg(svg: str) -> str:
    """Graphviz SVG made fit to inline in HTML: no XML prolog, DOCTYPE or comments
    (CSS scales it down to the page width)."""
    svg = _COMMENT.sub("", _PROLOG.sub("", svg, count=1))
    svg = svg.replace(
        "<svg ", '<svg class="cr-graph" role="img" aria-label="computation graph" ', 1
    )
    return svg.strip()


def render_graph(program: Program) -> tuple[str, Rendered, str | None]:
    """(DOT source, inline SVG or a note, ``-Tplain`` layout or None)."""
    source = to_dot(program)
    rendered = run_dot(source, "svg")
    if rendered.svg is None:
        return source, rendered, None
    plain = run_dot(source, "plain")
    return source, Rendered(inline_svg(rendered.svg)), plain.svg
