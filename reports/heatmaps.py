"""Heatmaps of arrays as small hand-written pictures: SVG for HTML and Markdown, a LaTeX
``picture`` (``\\color`` and ``\\rule``, no package beyond ``color``) for pdflatex.

One diverging colour scale, centred on 0: blue below, near-white at 0, red above, with
the same lightness at ``v`` and ``−v``. The limit ``m`` of a panel is the largest
``|v|`` over all its pictures, so pictures in one panel can be compared; the legend
shows ``−m … 0 … +m`` and the array's own minimum and maximum.

>>> diverging_color(0.0, 1.0), diverging_color(1.0, 1.0), diverging_color(-1.0, 1.0)
('#f7f7f7', '#b2182b', '#2166ac')
>>> svg = heatmap_panel_svg("K", [[Heatmap("K[0, 0]", np.eye(2))]])
>>> svg.count("<title>"), svg.startswith("<svg")
(2, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

from .formats import tex_escape

NEGATIVE = (33, 102, 172)  # #2166ac: the most negative value
NEUTRAL = (247, 247, 247)  # #f7f7f7: zero
POSITIVE = (178, 24, 43)  # #b2182b: the most positive value
NOT_FINITE = "#888888"
FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"'

#: Pictures a panel shows per row, and the largest side a picture keeps (a larger map is
#: averaged over blocks), so that an SVG stays small whatever the layer's size.
PER_ROW = 8
MAX_SIDE = 32
LEGEND_STEPS = 21


# ------------------------------------------------------------------ the colour scale
def scale_position(value: float, limit: float) -> float:
    """Where ``value`` sits on the scale ``[−limit, limit]``, as a number in ``[−1, 1]``
    (0 at zero; a limit of 0 puts everything at the centre).

    >>> scale_position(0.5, 2.0), scale_position(-3.0, 2.0), scale_position(1.0, 0.0)
    (0.25, -1.0, 0.0)
    """
    if not (limit > 0 and math.isfinite(limit)) or not math.isfinite(value):
        return 0.0
    return max(-1.0, min(1.0, value / limit))


def diverging_rgb(value: float, limit: float) -> tuple[int, int, int]:
    """The colour of ``value`` on the scale ``[−limit, limit]`` as 0–255 channels."""
    t = scale_position(value, limit)
    end = POSITIVE if t > 0 else NEGATIVE
    a = abs(t)
    r, g, b = (round(n + (e - n) * a) for n, e in zip(NEUTRAL, end, strict=True))
    return r, g, b


def diverging_color(value: float, limit: float) -> str:
    """``#rrggbb`` of ``value`` (grey when it is not finite)."""
    if not math.isfinite(value):
        return NOT_FINITE
    return "#{:02x}{:02x}{:02x}".format(*diverging_rgb(value, limit))


def symmetric_limit(arrays: Sequence[np.ndarray]) -> float:
    """The scale's limit m: the largest finite ``|v|`` of all the arrays (0 if none)."""
    top = 0.0
    for a in arrays:
        finite = np.asarray(a, dtype=float)
        finite = finite[np.isfinite(finite)]
        if finite.size:
            top = max(top, float(np.max(np.abs(finite))))
    return top


def value_range(arrays: Sequence[np.ndarray]) -> tuple[float, float]:
    """(minimum, maximum) of the finite entries of all the arrays ((0, 0) if none)."""
    parts = [np.asarray(a, dtype=float) for a in arrays]
    flat = np.concatenate([a[np.isfinite(a)].ravel() for a in parts] + [np.zeros(0)])
    if flat.size == 0:
        return 0.0, 0.0
    return float(np.min(flat)), float(np.max(flat))


def number(v: float) -> str:
    """A value for a legend: 4 significant digits.

    >>> number(0.123456), number(-12345.0), number(0.0)
    ('0.1235', '-1.234e+04', '0')
    """
    return f"{v:.4g}"


# ------------------------------------------------------------------ pictures
@dataclass
class Heatmap:
    """One picture: a label (its ``<title>``) and a 2-D array (a 1-D one is a strip)."""

    label: str
    values: np.ndarray

    @property
    def grid(self) -> np.ndarray:
        a = np.asarray(self.values, dtype=float)
        return a.reshape(1, -1) if a.ndim < 2 else a


def shown(grid: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """``grid`` averaged over blocks until no side exceeds ``max_side`` (as it is when
    small enough): a picture of a large feature map stays a few hundred cells.

    >>> shown(np.arange(16.0).reshape(4, 4), 2).tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """
    rows, cols = grid.shape
    fr, fc = math.ceil(rows / max_side), math.ceil(cols / max_side)
    if fr == 1 and fc == 1:
        return grid
    pr, pc = -rows % fr, -cols % fc
    padded = np.pad(grid, ((0, pr), (0, pc)), constant_values=np.nan)
    blocks = padded.reshape(padded.shape[0] // fr, fr, padded.shape[1] // fc, fc)
    with np.errstate(invalid="ignore"):
        return np.nanmean(blocks, axis=(1, 3))


def cell_size(rows: int, cols: int) -> float:
    """Pixels per cell: a picture about 60 px across, cells between 4 and 14 px."""
    return float(max(4, min(14, round(60 / max(rows, cols)))))


def _f(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, s: str, size: int = 10, anchor: str = "start") -> str:
    return (
        f'<text x="{_f(x)}" y="{_f(y)}" font-size="{size}" text-anchor="{anchor}" '
        f"{FONT}>{escape(s)}</text>"
    )


def _picture_svg(
    h: Heatmap, x0: float, y0: float, limit: float, labelled: bool = True
) -> tuple[list[str], float, float]:
    """One picture at (x0, y0): a group with its ``<title>``, its label above it (when
    ``labelled``), one ``<rect>`` per cell; also its width and height."""
    grid = shown(h.grid)
    rows, cols = grid.shape
    c = cell_size(rows, cols)
    lo, hi = value_range([h.grid])
    name = f"{h.label}: min {number(lo)}, max {number(hi)}"
    out = [f'<g role="img" aria-label="{escape(name)}"><title>{escape(name)}</title>']
    top = y0
    if labelled:
        out.append(_text(x0, y0 + 10, h.label, 10))
        top += 14
    for i in range(rows):
        for j in range(cols):
            out.append(
                f'<rect x="{_f(x0 + j * c)}" y="{_f(top + i * c)}" width="{_f(c)}" '
                f'height="{_f(c)}" fill="{diverging_color(float(grid[i, j]), limit)}"/>'
            )
    out.append(
        f'<rect x="{_f(x0)}" y="{_f(top)}" width="{_f(cols * c)}" height="{_f(rows * c)}" '
        'fill="none" stroke="#999" stroke-width="0.5"/></g>'
    )
    width = max(cols * c, 6.5 * len(h.label)) if labelled else cols * c
    return out, width, top - y0 + rows * c


def _legend_svg(x0: float, y0: float, limit: float, lo: float, hi: float) -> list[str]:
    """The colour bar ``−m … 0 … +m`` and the array's range."""
    w = 10.0
    out = ['<g class="legend">']
    for k in range(LEGEND_STEPS):
        v = limit * (2 * k / (LEGEND_STEPS - 1) - 1)
        out.append(
            f'<rect x="{_f(x0 + k * w)}" y="{_f(y0)}" width="{_f(w)}" height="10" '
            f'fill="{diverging_color(v, limit)}"/>'
        )
    end = x0 + LEGEND_STEPS * w
    out += [
        _text(x0, y0 + 22, number(-limit), 9, "middle"),
        _text((x0 + end) / 2, y0 + 22, "0", 9, "middle"),
        _text(end, y0 + 22, number(limit), 9, "middle"),
        _text(end + 24, y0 + 9, f"min {number(lo)}, max {number(hi)}", 10),
        "</g>",
    ]
    return out


def _column_widths(rows: Sequence[Sequence[Heatmap]], labels: Sequence[str]) -> list[float]:
    """A grid's column widths: the widest picture or label of each column."""
    widths: list[float] = []
    for row in rows:
        for j, h in enumerate(row):
            g = shown(h.grid)
            label = 6.5 * len(labels[j]) if j < len(labels) else 0.0
            widths += [0.0] * (j + 1 - len(widths))
            widths[j] = max(widths[j], g.shape[1] * cell_size(*g.shape), label)
    return widths


def heatmap_panel_svg(
    title: str,
    rows: Sequence[Sequence[Heatmap]],
    row_labels: Sequence[str] = (),
    col_labels: Sequence[str] = (),
) -> str:
    """Pictures laid out in ``rows`` on one colour scale, with a legend: one ``<svg>``
    (``role="group"``) holding one ``<g role="img">`` with a ``<title>`` per picture.
    With ``row_labels``/``col_labels`` (a grid) the pictures are labelled by their row
    and column instead of one by one."""
    pictures = [h for row in rows for h in row]
    limit = symmetric_limit([h.grid for h in pictures])
    lo, hi = value_range([h.grid for h in pictures])
    grid = bool(row_labels or col_labels)
    left = 8.0 + (6.5 * max(len(s) for s in row_labels) + 6 if row_labels else 0.0)
    body: list[str] = []
    y, width, gap = 24.0, 0.0, 6.0 if grid else 12.0
    columns = _column_widths(rows, col_labels) if grid else []
    if grid:
        x = left
        for label, w in zip(col_labels, columns, strict=False):
            body.append(_text(x, y + 10, label, 10))
            x += w + gap
        y += 14 if col_labels else 0
    for r, row in enumerate(rows):
        x, tallest = left, 0.0
        for j, h in enumerate(row):
            parts, w, tall = _picture_svg(h, x, y, limit, labelled=not grid)
            body += parts
            x += (columns[j] if grid else w) + gap
            tallest = max(tallest, tall)
        if r < len(row_labels):
            body.append(_text(left - 6, y + tallest / 2 + 4, row_labels[r], 10, "end"))
        width = max(width, x)
        y += tallest + gap
    body += _legend_svg(24.0, y + 4, limit, lo, hi)
    legend = f"min {number(lo)}, max {number(hi)}"
    width = max(width, 24 + LEGEND_STEPS * 10 + 24 + 6.5 * len(legend), 7 * len(title))
    height = y + 34
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cr-heatmaps" role="group" '
        f'aria-label="{escape(title)}" viewBox="0 0 {_f(width)} {_f(height)}" '
        f'width="{_f(width)}" height="{_f(height)}"><title>{escape(title)}</title>',
        f'<rect width="{_f(width)}" height="{_f(height)}" fill="white"/>',
        _text(8, 15, title, 12),
    ]
    return "".join(head + body) + "</svg>"


# ------------------------------------------------------------------ LaTeX
def _rgb_tex(value: float, limit: float) -> str:
    if not math.isfinite(value):
        return "0.53,0.53,0.53"
    return ",".join(f"{c / 255:.3f}" for c in diverging_rgb(value, limit))


def heatmap_panel_latex(
    rows: Sequence[Sequence[Heatmap]], cell_mm: float = 1.6, max_width_mm: float = 150.0
) -> str:
    """The same panel as a LaTeX ``picture``: one ``\\rule`` per cell in its colour
    (needs only the ``color`` package), labels below each picture, and the legend;
    scaled down to ``max_width_mm`` when wider."""
    pictures = [h for row in rows for h in row]
    limit = symmetric_limit([h.grid for h in pictures])
    lo, hi = value_range([h.grid for h in pictures])
    grids = [[shown(h.grid) for h in row] for row in rows]
    scale = [[cell_mm * cell_size(*g.shape) / 10 for g in row] for row in grids]
    heights = [
        max((g.shape[0] * s for g, s in zip(r, sr, strict=True)), default=0.0)
        for r, sr in zip(grids, scale, strict=True)
    ]
    out: list[str] = []
    y = 12.0  # the legend's band at the bottom
    width = 0.0
    for row, grow, srow, tall in reversed(list(zip(rows, grids, scale, heights, strict=True))):
        x = 0.0
        for h, g, c in zip(row, grow, srow, strict=True):
            top = y + 4 + tall
            for i in range(g.shape[0]):
                for j in range(g.shape[1]):
                    out.append(
                        rf"\put({x + j * c:.2f},{top - (i + 1) * c:.2f})"
                        rf"{{\color[rgb]{{{_rgb_tex(float(g[i, j]), limit)}}}"
                        rf"\rule{{{c:.2f}\unitlength}}{{{c:.2f}\unitlength}}}}"
                    )
            label = tex_escape(h.label)
            out.append(rf"\put({x:.2f},{y + 0.5:.2f}){{\makebox(0,0)[bl]{{\scriptsize {label}}}}}")
            x += max(g.shape[1] * c, 1.7 * len(h.label)) + 3
        width = max(width, x)
        y += tall + 8
    w = 3.0
    for k in range(LEGEND_STEPS):
        v = limit * (2 * k / (LEGEND_STEPS - 1) - 1)
        out.append(
            rf"\put({k * w:.2f},5){{\color[rgb]{{{_rgb_tex(v, limit)}}}"
            rf"\rule{{{w}\unitlength}}{{2.5\unitlength}}}}"
        )
    end = LEGEND_STEPS * w
    for x, s in ((0.0, number(-limit)), (end / 2, "0"), (end, number(limit))):
        out.append(rf"\put({x:.2f},4){{\makebox(0,0)[t]{{\tiny {tex_escape(s)}}}}}")
    out.append(
        rf"\put({end + 4:.2f},6){{\makebox(0,0)[l]{{\scriptsize min "
        rf"{tex_escape(number(lo))}, max {tex_escape(number(hi))}}}}}"
    )
    width = max(width, end + 40)
    unit = min(1.0, max_width_mm / width)  # a wide panel is drawn smaller
    head = [
        rf"\setlength{{\unitlength}}{{{unit:.3f}mm}}",
        rf"\begin{{picture}}({width:.1f},{y:.1f})",
    ]
    return "\n".join(head + out + [r"\end{picture}"])


__all__ = [
    "Heatmap",
    "diverging_color",
    "heatmap_panel_latex",
    "heatmap_panel_svg",
    "scale_position",
    "symmetric_limit",
    "value_range",
]
