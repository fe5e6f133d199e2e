"""The report's "Feature maps and kernels": every conv1d/conv2d layer of a program drawn
as heatmaps (:mod:`chainrule.reports.heatmaps`), where a person would rather look than
read.

For each layer: its kernels ``K[f, c]`` (a grid, F rows × C columns), the input example
``X[c]``, and the feature maps ``Y[f]`` of the line holding the layer and of the lines
after it that keep its channels (relu, max-pooling), each node on its own colour scale
centred on 0. The layers are found through the operator registry: an entry whose
``extra["feature_maps"]`` gives ``(input, kernel, geometry)`` of a node.

Which values: a report that trains shows the trained parameters and the data set's
first example; any other report the point the gradient checks start from (seeded random
parameters and inputs), and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from ..symbolic.program import Program
from .data import ConvLayerView, FeatureMapsSection, HeatmapPanel, ReportOptions
from .heatmaps import (
    MAX_SIDE,
    Heatmap,
    heatmap_panel_latex,
    heatmap_panel_svg,
    symmetric_limit,
    value_range,
)

#: Pictures drawn per node (kernels: per axis); the rest are counted in a note.
MAX_PICTURES = 16


@dataclass
class ConvSite:
    """One conv layer in a program: the line holding it, its node, input and kernel."""

    line: str
    node: sp.Basic
    x: sp.Basic
    k: sp.Basic
    geometry: Any  # ops.conv.ConvGeometry: dims, F, C, x_axes(), k_axes(), y_axes()


def conv_sites(program: Program) -> list[ConvSite]:
    """Every conv layer, in program order (found through the operator registry)."""
    out: list[ConvSite] = []
    for a in program.assignments:
        for e in sp.preorder_traversal(a.expr):
            op = program.functions.for_node(e)
            parts = op.extra.get("feature_maps") if op is not None else None
            if parts is not None:
                x, k, geometry = parts(e)
                out.append(ConvSite(a.name, e, x, k, geometry))
    return out


# ------------------------------------------------------------------ the values
def check_point(program: Program, seed: int = 0) -> dict[str, Any]:
    """The first point of the report's gradient checks (seed ``seed``): its parameters
    and the first example of its inputs, in declared shapes."""
    from ..numeric.gradcheck import random_point

    params, data = random_point(program, np.random.default_rng(seed))
    return {**params, **{k: np.asarray(v)[0] for k, v in data.items()}}


def _shape(a: np.ndarray) -> str:
    return "(" + ", ".join(str(n) for n in a.shape) + ")"


def _name(program: Program, expr: sp.Basic, fallback: str) -> str:
    item = program.item_of(expr)
    return item.name if item is not None else fallback


# ------------------------------------------------------------------ the panels
def _panel(
    key: str,
    title: str,
    node: str,
    array: np.ndarray,
    rows: list[list[Heatmap]],
    note: str,
    labels: tuple[list[str], list[str]] = ([], []),
) -> HeatmapPanel:
    """A panel of ``rows`` of pictures (``labels``: a grid's row and column labels)."""
    lo, hi = value_range([array])
    return HeatmapPanel(
        key,
        title,
        node,
        _shape(array),
        lo,
        hi,
        symmetric_limit([array]),
        sum(len(r) for r in rows),
        heatmap_panel_svg(title, rows, *labels),
        heatmap_panel_latex(rows),
        note,
    )


def _cut(n: int, what: str) -> str:
    return f"the first {MAX_PICTURES} of {n} {what} are drawn" if n > MAX_PICTURES else ""


def kernel_panel(key: str, name: str, k: np.ndarray) -> HeatmapPanel:
    """K[f, c] (kh × kw, or a 1 × k strip) in a grid of F rows and C columns."""
    f_all, c_all = k.shape[:2]
    rows = [
        [Heatmap(f"{name}[{f}, {c}]", k[f, c]) for c in range(min(c_all, MAX_PICTURES))]
        for f in range(min(f_all, MAX_PICTURES))
    ]
    note = "; ".join(n for n in (_cut(f_all, "filters"), _cut(c_all, "channels")) if n)
    title = (
        f"Kernels {name}[f, c]: {f_all} filter{'s' * (f_all != 1)} (rows) × "
        f"{c_all} channel{'s' * (c_all != 1)} (columns)"
    )
    labels = ([f"f = {f}" for f in range(len(rows))], [f"c = {c}" for c in range(len(rows[0]))])
    return _panel(key, title, name, k, rows, note, labels)


def maps_panel(key: str, name: str, value: np.ndarray, what: str) -> HeatmapPanel:
    """value[f] for every channel f, eight to a row."""
    n = value.shape[0]
    shown = [Heatmap(f"{name}[{f}]", value[f]) for f in range(min(n, MAX_PICTURES))]
    rows = [shown[i : i + 8] for i in range(0, len(shown), 8)]
    each = " × ".join(str(d) for d in value.shape[1:])
    title = f"{what}: {n} channel{'s' * (n != 1)} of {each}"
    notes = [_cut(n, "channels")]
    if max(value.shape[1:]) > MAX_SIDE:
        notes.append(f"maps larger than {MAX_SIDE} × {MAX_SIDE} are drawn averaged over blocks")
    return _panel(key, title, name, value, rows, "; ".join(n for n in notes if n))


def _followers(
    program: Program, start: str, channels: int, dims: int, values: Mapping, stop: set[str]
) -> list[str]:
    """The lines after ``start`` that read a drawn node and keep its channel axes (up to
    the lines in ``stop``: the next layers)."""
    names = [a.name for a in program.assignments]
    drawn = {program[start].symbol}
    out = []
    for a in program.assignments[names.index(start) + 1 :]:
        v = np.asarray(values.get(a.name))
        keeps = v.ndim == dims + 1 and v.shape[0] == channels
        if keeps and a.name not in stop and a.expr.has(*drawn):
            drawn.add(a.symbol)
            out.append(a.name)
    return out


def written(program: Program, name: str) -> str:
    """A line as the model wrote it (``H = relu(Y)``), else its name."""
    span = getattr(program[name], "span", None)
    text = span.text.split("#", 1)[0].strip() if span is not None and span.text else ""
    whole = text.count("(") == text.count(")")  # not the first line of a longer one
    return text if text and whole else name


def layer_view(
    program: Program,
    site: ConvSite,
    number: int,
    ev: Any,
    values: Mapping[str, Any],
    stop: set[str],
) -> ConvLayerView:
    """The panels of one layer at the evaluated point ``ev`` (forward ``values``); the
    lines in ``stop`` hold other layers."""
    geo = site.geometry
    x = np.asarray(ev(site.x), dtype=float).reshape(geo.x_axes())
    k = np.asarray(ev(site.k), dtype=float).reshape(geo.k_axes())
    x_name = _name(program, site.x, "input")
    k_name = _name(program, site.k, "K")
    key = f"maps-{number}"
    panels = [
        kernel_panel(f"{key}-kernels", k_name, k),
        maps_panel(f"{key}-input", x_name, x, f"Input {x_name}"),
    ]
    if np.shape(values[site.line]) == tuple(geo.y_axes()):  # the line is the layer
        names = [site.line]
        names += _followers(program, site.line, geo.F, geo.dims, values, stop)
    else:  # the layer sits inside a longer expression: draw the layer's own output
        y = np.asarray(ev(site.node), dtype=float).reshape(geo.y_axes())
        panels.append(maps_panel(f"{key}-conv", "conv", y, "Feature maps of the layer"))
        names = []
    for name in names:
        what = f"Feature maps {written(program, name)}"
        panels.append(maps_panel(f"{key}-{name}", name, np.asarray(values[name]), what))
    return ConvLayerView(f"Layer {number}: {written(program, site.line)}", panels)


def feature_maps_section(
    program: Program, options: ReportOptions, run: Any = None
) -> tuple[FeatureMapsSection | None, str]:
    """The section for a program with conv layers (None, "" without any); ``run`` is a
    finished training (:class:`~chainrule.reports.sections.TrainedRun`) or None."""
    sites = conv_sites(program)
    if not sites:
        return None, ""
    try:
        from ..numeric.vector_eval import evaluator, forward_values
    except ImportError:
        return None, "feature maps: not available in this build (numeric evaluation)"
    try:
        point, caption = _values(program, options, run)
        ev = evaluator(program, point)
        with np.errstate(all="ignore"):  # the loss may overflow; the pictures do not
            values = forward_values(program, point, ev)
        stop = {s.line for s in sites}
        layers = [layer_view(program, s, i, ev, values, stop) for i, s in enumerate(sites, 1)]
    except Exception as exc:  # noqa: BLE001 - a report notes it and goes on
        return None, f"feature maps: the forward pass failed ({exc})"
    return FeatureMapsSection(caption, run is not None, layers), ""


def _values(program: Program, options: ReportOptions, run: Any) -> tuple[dict[str, Any], str]:
    """(the point the pictures show, the caption that says which it is)."""
    start = check_point(program, options.seed)
    if run is None:
        return start, (
            f"Random parameters at the check point (seed {options.seed}, the first point "
            "of the gradient checks); the input is its first example, random too."
        )
    epochs = len(run.history.get("epochs", []))
    label = f" (target {run.label})" if run.label else ""
    example = (
        f"the data set's first example{label}"
        if run.example
        else "the check point's first example (random: the data gives no single example)"
    )
    caption = (
        f"Trained parameters (after {epochs} epoch{'s' * (epochs != 1)} on {run.data}); "
        f"the input is {example}."
    )
    return {**start, **run.params, **run.example}, caption
