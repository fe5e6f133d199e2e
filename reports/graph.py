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


# ------------------------------------------------------------ LaTeX picture
def _parse_plain(plain: str) -> tuple[float, float, list[list[str]], list[list[str]]]:
    width = height = 0.0
    nodes, edges = [], []
    for line in plain.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "graph":
            width, height = float(parts[2]), float(parts[3])
        elif parts[0] == "node":
            nodes.append(parts)
        elif parts[0] == "edge":
            edges.append(parts)
    return width, height, nodes, edges


def _pt(x: float, y: float) -> str:
    return f"({x:.3f},{y:.3f})"


def _segment(a: tuple[float, float], b: tuple[float, float]) -> str:
    mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
    return rf"\qbezier{_pt(*a)}{_pt(*mid)}{_pt(*b)}"


def _edge_picture(points: list[tuple[float, float]]) -> list[str]:
    """Graphviz cubic pieces as quadratic ``\\qbezier`` curves, plus an arrowhead."""
    out = []
    for i in range(0, len(points) - 3, 3):
        p0, c1, c2, p3 = points[i : i + 4]
        q = ((3 * (c1[0] + c2[0]) - p0[0] - p3[0]) / 4, (3 * (c1[1] + c2[1]) - p0[1] - p3[1]) / 4)
        out.append(rf"\qbezier{_pt(*p0)}{_pt(*q)}{_pt(*p3)}")
    (ax, ay), (bx, by) = points[-2], points[-1]
    dx, dy = bx - ax, by - ay
    norm = (dx * dx + dy * dy) ** 0.5 or 1.0
    dx, dy = dx / norm, dy / norm
    tip = (bx + 0.1 * dx, by + 0.1 * dy)
    for sx in (1, -1):  # two barbs at ±25°
        c, s = 0.906, 0.423 * sx
        back = (-(dx * c - dy * s) * 0.1, -(dx * s + dy * c) * 0.1)
        out.append(_segment(tip, (tip[0] + back[0], tip[1] + back[1])))
    out.append(_segment((bx, by), tip))
    return out


def latex_picture(program: Program, plain: str, max_width_cm: float = 15.0) -> str:
    """The Graphviz layout (``dot -Tplain``) drawn with LaTeX's own ``picture``
    commands (``\\qbezier``, ``\\framebox``, ``\\oval``): pdflatex needs no package."""
    width, height, nodes, edges = _parse_plain(plain)
    unit_cm = min(2.54, max_width_cm / max(width, 0.1))
    lines = [
        rf"\setlength{{\unitlength}}{{{unit_cm:.3f}cm}}",
        rf"\begin{{picture}}({width:.3f},{height:.3f})",
    ]
    for parts in nodes:
        name, x, y, w, h = parts[1], *map(float, parts[2:6])
        if name not in program:
            continue
        item = program[name]
        label = pretty_name(getattr(item, "display", name), vector=program.is_vector, latex=True)
        role = _role(program, name)
        if role in ("param", "input", "const"):
            kind = r"\dashbox{0.05}" if role == "const" else r"\framebox"
            lines.append(rf"\put{_pt(x - w / 2, y - h / 2)}{{{kind}({w:.3f},{h:.3f}){{}}}}")
        else:
            lines.append(rf"\put{_pt(x, y)}{{\oval({w:.3f},{h:.3f})}}")
            if role == "loss":
                lines.append(rf"\put{_pt(x, y)}{{\oval({w + 0.08:.3f},{h + 0.08:.3f})}}")
        bold = r"\boldmath" if role == "param" or program.fan_out(name) > 1 else ""
        lines.append(rf"\put{_pt(x, y)}{{\makebox(0,0){{{bold}${label}$}}}}")
    for parts in edges:
        n = int(parts[3])
        coords = [float(v) for v in parts[4 : 4 + 2 * n]]
        points = list(zip(coords[::2], coords[1::2], strict=True))
        fan = program.fan_out(parts[1]) > 1 if parts[1] in program else False
        body = "".join(_edge_picture(points))
        lines.append(rf"{{\color{{red}}{body}}}" if fan else body)
    lines.append(r"\end{picture}")
    return "\n".join(lines)
