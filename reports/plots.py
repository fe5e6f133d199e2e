"""Small self-contained SVG charts: the op-count bar chart and learning curves.

Written by hand (no plotting library needed); PNG output uses matplotlib when it is
installed. Every text is XML-escaped.

>>> svg = learning_curves({"epochs": [{"epoch": 1, "loss": 0.7}, {"epoch": 2, "loss": 0.5}]})
>>> svg.startswith("<svg") and "training" in svg
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

COLORS = {"train": "#1f77b4", "val": "#d62728"}
BAR_COLORS = {
    "forward": "#7f7f7f",
    "naive": "#d62728",
    "naive + CSE": "#ff7f0e",
    "backprop": "#2ca02c",
}
FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"'


def _fmt(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _text(
    x: float, y: float, s: str, size: int = 11, anchor: str = "start", extra: str = ""
) -> str:
    return (
        f'<text x="{_fmt(x)}" y="{_fmt(y)}" font-size="{size}" text-anchor="{anchor}" '
        f"{FONT}{extra}>{escape(s)}</text>"
    )


def _svg(width: float, height: float, body: Iterable[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cr-chart" role="img" '
        f'aria-label="{escape(label)}" viewBox="0 0 {_fmt(width)} {_fmt(height)}" '
        f'width="{_fmt(width)}" height="{_fmt(height)}">' + "".join(body) + "</svg>"
    )


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, v = [round(start, 12)], start
    while v < hi - step * 1e-9:
        v += step
        ticks.append(round(v, 12))
    return ticks


# ---------------------------------------------------------------- bar chart
def bar_chart(
    items: Sequence[tuple[str, float | None]],
    title: str = "",
    unit: str = "operations",
    log_scale: bool | None = None,
) -> str:
    """A horizontal bar chart of ``(label, value)``; ``None`` values show "not finished".

    A logarithmic axis is chosen when the largest value is over 50× the smallest.
    """
    values = [v for _, v in items if v is not None and v > 0]
    if log_scale is None:
        log_scale = bool(values) and max(values) / min(values) > 50
    top = max(values) if values else 1.0
    left, right, bar_h, gap = 110.0, 90.0, 22.0, 10.0
    width = 560.0
    plot_w = width - left - right
    head = 26.0 if title else 8.0
    height = head + len(items) * (bar_h + gap) + 30

    def scale(v: float) -> float:
        if log_scale:
            return plot_w * math.log10(1 + v) / math.log10(1 + top)
        return plot_w * v / top

    body = [f'<rect width="{_fmt(width)}" height="{_fmt(height)}" fill="white"/>']
    if title:
        body.append(_text(8, 17, title, 13, extra=' font-weight="bold"'))
    for i, (label, v) in enumerate(items):
        y = head + i * (bar_h + gap)
        body.append(_text(left - 6, y + bar_h * 0.7, label, 12, "end"))
        if v is None:
            body.append(
                _text(
                    left + 4,
                    y + bar_h * 0.7,
                    "not finished (time budget)",
                    11,
                    extra=' fill="#888"',
                )
            )
            continue
        w = max(scale(v), 1.0)
        color = BAR_COLORS.get(label, "#1f77b4")
        body.append(
            f'<rect x="{_fmt(left)}" y="{_fmt(y)}" width="{_fmt(w)}" '
            f'height="{_fmt(bar_h)}" fill="{color}"/>'
        )
        body.append(_text(left + w + 4, y + bar_h * 0.7, f"{v:,.0f}", 11))
    axis_y = head + len(items) * (bar_h + gap)
    body.append(
        f'<line x1="{_fmt(left)}" y1="{_fmt(head - 4)}" x2="{_fmt(left)}" '
        f'y2="{_fmt(axis_y)}" stroke="#333"/>'
    )
    scale_note = " (log scale)" if log_scale else ""
    body.append(_text(left, axis_y + 18, unit + scale_note, 11, extra=' fill="#444"'))
    return _svg(width, height, body, title or "bar chart")


def bar_fractions(
    items: Sequence[tuple[str, float | None]],
) -> tuple[list[tuple[str, float | None, float | None]], bool]:
    """``(label, value, fraction of the longest bar)`` rows and whether the scale is log
    (the same scale :func:`bar_chart` draws; the LaTeX report draws bars with ``\\rule``).

    >>> bar_fractions([("a", 10.0), ("b", 20.0)])
    ([('a', 10.0, 0.5), ('b', 20.0, 1.0)], False)
    """
    values = [v for _, v in items if v is not None and v > 0]
    log_scale = bool(values) and max(values) / min(values) > 50
    top = max(values) if values else 1.0
    out: list[tuple[str, float | None, float | None]] = []
    for label, v in items:
        if v is None:
            out.append((label, None, None))
        elif log_scale:
            out.append((label, v, math.log10(1 + v) / math.log10(1 + top)))
        else:
            out.append((label, v, v / top))
    return out, log_scale


def cost_items(cost_rows: Sequence[Any]) -> list[tuple[str, float | None]]:
    items: list[tuple[str, float | None]] = []
    for row in cost_rows:
        if isinstance(row, dict):
            items.append((str(row["route"]), row.get("total")))
        else:
            items.append((row.route, None if row.ops is None else float(row.ops.total)))
    return items


def cost_chart(cost_rows: Sequence[Any]) -> str:
    """Bar chart of an op-count table (``derive.costs.cost_table`` rows, or dicts with
    ``route`` and ``total``)."""
    return bar_chart(cost_items(cost_rows), "Operations to evaluate the gradient")


# ------------------------------------------------------------ learning curves
def _series(history: dict[str, Any], key: str) -> list[tuple[float, float]]:
    out = []
    for i, row in enumerate(history.get("epochs", [])):
        v = row.get(key)
        if v is None:
            continue
        try:
            fv = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(fv):
            out.append((float(row.get("epoch", i + 1)), fv))
    return out


def _panel(
    x0: float,
    y0: float,
    w: float,
    h: float,
    title: str,
    lines: list[tuple[str, str, list[tuple[float, float]]]],
) -> list[str]:
    pts = [p for _, _, s in lines for p in s]
    body = [_text(x0 + w / 2, y0 - 8, title, 12, "middle", ' font-weight="bold"')]
    body.append(
        f'<rect x="{_fmt(x0)}" y="{_fmt(y0)}" width="{_fmt(w)}" height="{_fmt(h)}" '
        'fill="none" stroke="#999"/>'
    )
    if not pts:
        body.append(_text(x0 + w / 2, y0 + h / 2, "no data", 11, "middle"))
        return body
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    xt = _nice_ticks(min(xs), max(xs), 5)
    yt = _nice_ticks(min(ys), max(ys), 4)
    x_lo, x_hi, y_lo, y_hi = xt[0], xt[-1], yt[0], yt[-1]

    def px(x: float) -> float:
        return x0 + (x - x_lo) / ((x_hi - x_lo) or 1) * w

    def py(y: float) -> float:
        return y0 + h - (y - y_lo) / ((y_hi - y_lo) or 1) * h

    for t in yt:
        body.append(
            f'<line x1="{_fmt(x0)}" y1="{_fmt(py(t))}" x2="{_fmt(x0 + w)}" '
            f'y2="{_fmt(py(t))}" stroke="#eee"/>'
        )
        body.append(_text(x0 - 4, py(t) + 4, f"{t:g}", 10, "end"))
    for t in xt:
        body.append(_text(px(t), y0 + h + 14, f"{t:g}", 10, "middle"))
    body.append(_text(x0 + w / 2, y0 + h + 28, "epoch", 10, "middle"))
    for label, color, series in lines:
        if not series:
            continue
        path = " ".join(f"{_fmt(px(x))},{_fmt(py(y))}" for x, y in series)
        body.append(
            f'<polyline points="{path}" fill="none" stroke="{color}" '
            f'stroke-width="2"><title>{escape(label)}</title></polyline>'
        )
    return body


def learning_curves_svg(history: dict[str, Any]) -> str:
    """Loss and accuracy per epoch, training and validation, side by side."""
    panels = [("loss", "loss", "val_loss"), ("accuracy", "accuracy", "val_accuracy")]
    panels = [p for p in panels if _series(history, p[1]) or _series(history, p[2])]
    if not panels:
        panels = [("loss", "loss", "val_loss")]
    pw, ph, margin = 250.0, 170.0, 52.0
    width = margin + len(panels) * (pw + margin)
    height = ph + 100
    body = [f'<rect width="{_fmt(width)}" height="{_fmt(height)}" fill="white"/>']
    for i, (title, train_key, val_key) in enumerate(panels):
        lines = [
            ("training", COLORS["train"], _series(history, train_key)),
            ("validation", COLORS["val"], _series(history, val_key)),
        ]
        body += _panel(margin + i * (pw + margin), 30, pw, ph, title, lines)
    ly = ph + 84
    for j, (label, color) in enumerate(
        (("training", COLORS["train"]), ("validation", COLORS["val"]))
    ):
        lx = margin + j * 120
        body.append(
            f'<line x1="{_fmt(lx)}" y1="{_fmt(ly)}" x2="{_fmt(lx + 24)}" '
            f'y2="{_fmt(ly)}" stroke="{color}" stroke-width="2"/>'
        )
        body.append(_text(lx + 30, ly + 4, label, 11))
    return _svg(width, height, body, "learning curves")


def learning_curves_latex(history: dict[str, Any], panel_cm: float = 6.5) -> str:
    """The learning curves as a LaTeX ``picture`` (``\\qbezier`` segments): pdflatex
    needs no package. Training is drawn thick, validation thin."""
    panels = [("loss", "loss", "val_loss"), ("accuracy", "accuracy", "val_accuracy")]
    panels = [p for p in panels if _series(history, p[1]) or _series(history, p[2])]
    if not panels:
        return ""
    w, h, gap = panel_cm, panel_cm * 0.62, 1.6
    out = [
        r"\setlength{\unitlength}{1cm}",
        rf"\begin{{picture}}({len(panels) * (w + gap):.2f},{h + 1.6:.2f})(-1.2,-1.0)",
    ]
    for i, (title, train_key, val_key) in enumerate(panels):
        x0 = i * (w + gap)
        series = [
            (_series(history, train_key), r"\thicklines"),
            (_series(history, val_key), r"\thinlines"),
        ]
        pts = [p for s, _ in series for p in s]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        xt, yt = _nice_ticks(min(xs), max(xs), 4), _nice_ticks(min(ys), max(ys), 4)

        def px(x: float, x0: float = x0, xt: list[float] = xt) -> float:
            return x0 + (x - xt[0]) / ((xt[-1] - xt[0]) or 1) * w

        def py(y: float, yt: list[float] = yt) -> float:
            return (y - yt[0]) / ((yt[-1] - yt[0]) or 1) * h

        out.append(rf"\thinlines\put({x0:.2f},0){{\framebox({w:.2f},{h:.2f}){{}}}}")
        out.append(rf"\put({x0 + w / 2:.2f},{h + 0.25:.2f}){{\makebox(0,0)[b]{{{title}}}}}")
        for t in xt:
            out.append(rf"\put({px(t):.2f},-0.15){{\makebox(0,0)[t]{{\scriptsize {t:g}}}}}")
        for t in yt:
            out.append(
                rf"\put({x0 - 0.1:.2f},{py(t):.2f}){{\makebox(0,0)[r]{{\scriptsize {t:g}}}}}"
            )
        out.append(rf"\put({x0 + w / 2:.2f},-0.65){{\makebox(0,0)[t]{{\scriptsize epoch}}}}")
        for s, weight in series:
            out.append(weight)
            for (xa, ya), (xb, yb) in zip(s, s[1:], strict=False):
                a, b = (px(xa), py(ya)), (px(xb), py(yb))
                mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
                out.append(
                    rf"\qbezier({a[0]:.3f},{a[1]:.3f})({mid[0]:.3f},{mid[1]:.3f})"
                    rf"({b[0]:.3f},{b[1]:.3f})"
                )
    out.append(r"\thinlines\end{picture}")
    return "\n".join(out)


def _png(history: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError(
            "PNG learning curves need matplotlib (pip install matplotlib); "
            "write .svg instead, which needs nothing"
        ) from exc
    keys = [("loss", "val_loss"), ("accuracy", "val_accuracy")]
    keys = [k for k in keys if _series(history, k[0]) or _series(history, k[1])] or keys[:1]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
    for ax, (train_key, val_key) in zip(axes[0], keys, strict=True):
        for key, label, color in (
            (train_key, "training", COLORS["train"]),
            (val_key, "validation", COLORS["val"]),
        ):
            s = _series(history, key)
            if s:
                ax.plot([p[0] for p in s], [p[1] for p in s], label=label, color=color)
        ax.set_title(train_key)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def learning_curves(history: dict[str, Any], path: str | Path | None = None) -> str:
    """Learning curves as SVG text; also written to ``path`` (SVG, or PNG when the path
    ends in ``.png`` — that needs matplotlib and says so clearly otherwise)."""
    svg = learning_curves_svg(history)
    if path is not None:
        p = Path(path)
        if p.suffix.lower() == ".png":
            _png(history, p)
        else:
            p.write_text(svg, encoding="utf-8")
    return svg


__all__ = [
    "bar_chart",
    "cost_chart",
    "learning_curves",
    "learning_curves_latex",
    "learning_curves_svg",
]
