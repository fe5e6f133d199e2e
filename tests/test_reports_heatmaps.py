"""Report section 9, "Feature maps and kernels": a CNN's kernels and feature maps drawn
as heatmaps (reports/heatmaps.py, reports/feature_maps.py).

Most tests build the report from the parsed program alone (no derivation: the section
needs only the forward pass); the end-to-end ones run the real ``chainrule report``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

import chainrule
from chainrule.commands.common import load_model
from chainrule.derive.records import Derivation
from chainrule.numeric.vector_eval import forward_values
from chainrule.reports.data import ReportOptions
from chainrule.reports.document import build_report, render_report, report_assets
from chainrule.reports.feature_maps import check_point, feature_maps_section
from chainrule.reports.heatmaps import (
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    Heatmap,
    diverging_color,
    diverging_rgb,
    heatmap_panel_svg,
    number,
    scale_position,
    shown,
    symmetric_limit,
)
from chainrule.reports.sections import TrainedRun

QUICK = {"naive": False, "checks": False, "code": False, "graph": False}


def quick_report(program, **kw):
    """A report of ``program`` without deriving it (the section needs no derivation)."""
    return build_report(Derivation(program, None, None), **{**QUICK, **kw})


@pytest.fixture(scope="module")
def cnn():
    return load_model("cnn_digits")


@pytest.fixture(scope="module")
def cnn_report(cnn):
    return quick_report(cnn)


def section_html(report) -> str:
    html = render_report(report, "html")
    start = html.index('<section id="feature_maps">')
    return html[start : html.index("</section>", start)]


def panel(report, node):
    return next(p for layer in report.feature_maps.layers for p in layer.panels if p.node == node)


# ------------------------------------------------------------------ the colour scale
@pytest.mark.parametrize("v", [0.1, 0.5, 1.0, 2.5, 3.0, 7.0])
def test_the_colour_scale_is_symmetric_around_zero(v):
    m = 3.0
    assert scale_position(v, m) == -scale_position(-v, m)
    t = min(v / m, 1.0)
    # v and −v sit at the same distance from the neutral middle, toward opposite ends
    up = diverging_rgb(v, m)
    down = diverging_rgb(-v, m)
    for n, hi, lo, a, b in zip(NEUTRAL, POSITIVE, NEGATIVE, up, down, strict=True):
        assert a == round(n + (hi - n) * t)
        assert b == round(n + (lo - n) * t)


def test_zero_is_the_neutral_colour_and_the_ends_are_plus_minus_the_limit():
    assert diverging_color(0.0, 5.0) == "#f7f7f7"
    assert diverging_color(5.0, 5.0) == "#b2182b" == diverging_color(50.0, 5.0)
    assert diverging_color(-5.0, 5.0) == "#2166ac" == diverging_color(-50.0, 5.0)
    assert diverging_color(1.0, 0.0) == "#f7f7f7"  # an all-zero picture stays neutral
    assert diverging_color(float("nan"), 1.0) == "#888888"


def test_the_limit_is_the_largest_magnitude_so_the_scale_is_centred():
    assert symmetric_limit([np.array([-3.0, 1.0]), np.array([[2.0]])]) == 3.0
    assert symmetric_limit([np.array([0.5, np.inf, -np.nan])]) == 0.5
    svg = heatmap_panel_svg("t", [[Heatmap("a", np.array([[-1.0, 4.0]]))]])
    assert ">-4<" in svg and ">4<" in svg and "min -1, max 4" in svg  # legend −m … +m
    assert svg.count("<title>") == 2


def test_large_maps_are_drawn_averaged_over_blocks():
    big = np.arange(100.0 * 100).reshape(100, 100)
    small = shown(big)
    assert max(small.shape) <= 32 and small.mean() == pytest.approx(big.mean())


# ------------------------------------------------------------------ which programs
def test_the_section_appears_for_a_cnn(cnn_report):
    assert "feature_maps" in cnn_report.present()
    html = render_report(cnn_report, "html")
    assert "9. Feature maps and kernels" in html
    [layer] = cnn_report.feature_maps.layers
    assert [p.node for p in layer.panels] == ["K", "X", "Y", "H", "P"]


@pytest.mark.parametrize("name", ["vector_mlp", "conv_signal", "xor"])
def test_no_section_without_a_conv_layer(name):
    report = quick_report(load_model(name))
    assert report.feature_maps is None and "feature_maps" not in report.present()
    for fmt in ("html", "md", "tex"):
        assert "Feature maps and kernels" not in render_report(report, fmt)


def test_the_option_turns_it_off(cnn):
    assert quick_report(cnn, feature_maps=False).feature_maps is None
    assert ReportOptions().feature_maps  # on by default: the gallery shows it


# ------------------------------------------------------------------ the pictures
def test_html_has_one_picture_per_kernel_and_per_feature_map(cnn_report):
    html = section_html(cnn_report)
    assert html.count("<svg") == 5  # kernels, input, Y, H, P
    titles = re.findall(r'<g role="img" aria-label="([^"]*)"><title>\1</title>', html)
    names = [t.split(":")[0] for t in titles]
    kernels = [f"K[{f}, 0]" for f in range(8)]
    maps = [f"{n}[{f}]" for n in "YHP" for f in range(8)]
    assert names == kernels + ["X[0]"] + maps
    for svg in re.findall(r"<svg.*?</svg>", html, flags=re.S):
        assert re.search(r'role="group" aria-label="[^"]+"[^>]*><title>', svg)


def test_the_pictures_stay_small(cnn_report):
    html = section_html(cnn_report)
    assert 33 * 9 < html.count("<rect") < 3000  # one per cell (6×6, 3×3, 8×8), no more
    assert len(html) < 150_000


def test_values_shown_equal_the_forward_pass(cnn, cnn_report):
    point = check_point(cnn, 0)
    values = {**point, **forward_values(cnn, point)}
    for name in "KXYHP":
        p = panel(cnn_report, name)
        arr = np.asarray(values[name])
        assert p.shape == str(arr.shape).replace(",)", ")")
        assert (p.vmin, p.vmax) == (arr.min(), arr.max())
        assert p.limit == np.abs(arr).max()
        assert f"min {number(arr.min())}, max {number(arr.max())}" in p.svg
    # every cell of Y[3] in its colour, row by row
    y = np.asarray(values["Y"])
    svg = panel(cnn_report, "Y").svg
    group = svg[svg.index('aria-label="Y[3]') :]
    cell = r'<rect x="[^"]*" y="[^"]*" width="[^"]*" height="[^"]*" fill="(#\w+)"/>'
    fills = re.findall(cell, group)
    limit = np.abs(y).max()
    assert fills[: y[3].size] == [diverging_color(v, limit) for v in y[3].ravel()]


def test_relu_maps_keep_zero_neutral(cnn_report):
    h = panel(cnn_report, "H")
    assert h.vmin == 0.0 and "#f7f7f7" in h.svg and "#2166ac" not in h.svg.split("legend")[0]


def test_two_layers_and_conv1d():
    two = chainrule.parse(
        """
param K1[4, 2, 3, 3], b1[4], K2[4, 4, 3, 3], V[2, 100], c[2]
input X[2, 12, 12], t[2]
Y1 = conv2d(X, K1, b1)
H1 = relu(Y1)
Y2 = conv2d(H1, K2, padding=1)
P = maxpool2d(tanh(Y2), 2)
u = V @ flatten(P) + c
L = sum((u - t)^2) / 2
loss L
"""
    )
    first, second = quick_report(two).feature_maps.layers
    # 4 channels throughout: the second layer's lines are its own, not the first's
    assert [p.node for p in first.panels] == ["K1", "X", "Y1", "H1"]
    assert [p.node for p in second.panels] == ["K2", "H1", "Y2", "P"]
    assert second.panels[0].pictures == 16  # 4 filters × 4 channels
    assert first.title == "Layer 1: Y1 = conv2d(X, K1, b1)"
    one = chainrule.parse(
        """
param K[4, 2, 3], V[1, 32]
input X[2, 10], t[1]
Y = conv1d(X, K)
h = flatten(relu(Y))
L = sum((V @ h - t)^2)
loss L
"""
    )
    [layer] = quick_report(one).feature_maps.layers
    assert [(p.node, p.shape) for p in layer.panels] == [
        ("K", "(4, 2, 3)"),
        ("X", "(2, 10)"),
        ("Y", "(4, 8)"),
    ]


def test_many_large_maps_are_capped():
    program = chainrule.parse(
        """
param K[20, 2, 3, 3], V[1, 20]
input X[2, 42, 42], t[1]
Y = conv2d(X, K)
P = maxpool2d(Y, 40)
L = sum((V @ flatten(P) - t)^2)
loss L
"""
    )
    y = panel(quick_report(program), "Y")
    assert y.pictures == 16 and "16 of 20" in y.note and "averaged" in y.note
    assert y.svg.count("<rect") < 7000


# ------------------------------------------------------------------ which values
def test_check_point_caption(cnn_report):
    fm = cnn_report.feature_maps
    assert not fm.trained
    assert fm.caption.startswith("Random parameters at the check point")
    assert "random parameters at the check point" in section_html(cnn_report).lower()


def test_trained_values_and_caption(cnn):
    k = np.linspace(-1, 2, 72).reshape(8, 1, 3, 3)
    x = np.arange(64.0).reshape(1, 8, 8) / 4
    run = TrainedRun({"epochs": [{}, {}]}, {"K": k}, {"X": x}, "digits", "7")
    fm, why = feature_maps_section(cnn, ReportOptions(), run)
    assert why == "" and fm.trained and fm.caption.startswith("Trained parameters")
    assert "after 2 epochs on digits" in fm.caption and "first example (target 7)" in fm.caption
    kernels, inp = fm.layers[0].panels[:2]
    assert (kernels.vmin, kernels.vmax) == (-1.0, 2.0) and (inp.vmin, inp.vmax) == (0.0, 15.75)


def test_trained_without_a_single_example_says_so(cnn):
    run = TrainedRun({"epochs": [{}]}, {}, {}, "batches.npz")
    fm, _ = feature_maps_section(cnn, ReportOptions(), run)
    assert fm.trained and "after 1 epoch on batches.npz" in fm.caption
    assert "the check point's first example" in fm.caption


def test_a_failing_forward_pass_is_a_note_not_a_crash(cnn):
    run = TrainedRun({}, {"K": np.zeros((2, 2))}, {}, "digits")  # K of the wrong shape
    fm, why = feature_maps_section(cnn, ReportOptions(), run)
    assert fm is None and why.startswith("feature maps: the forward pass failed")


# ------------------------------------------------------------------ the formats
def test_markdown_links_or_embeds_the_pictures(cnn_report, tmp_path):
    inline = render_report(cnn_report, "md")
    assert "## 9. Feature maps and kernels" in inline
    assert inline.count("](data:image/svg+xml;base64,") == 5
    assets = report_assets(cnn_report, "cnn")
    keys = [k for k in assets if k.startswith("maps-")]
    assert len(keys) == 5 and assets["maps-1-Y"][0] == "cnn-maps-1-Y.svg"
    linked = render_report(cnn_report, "md", assets={k: assets[k][0] for k in keys})
    assert "](cnn-maps-1-kernels.svg)" in linked and "data:image" not in linked
    assert "| " + "`Y`" in linked  # the table of value ranges


def test_latex_draws_the_pictures(cnn_report, tmp_path):
    tex = render_report(cnn_report, "tex")
    assert tex.count(r"\begin{picture}") >= 5 and r"\color[rgb]" in tex
    assert "9. Feature maps and kernels" in tex and "texttt{Y}" in tex
    if shutil.which("pdflatex") is None:
        pytest.skip("no pdflatex")
    (tmp_path / "r.tex").write_text(tex, encoding="utf-8")
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "r.tex"],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]


# ------------------------------------------------------------------ end to end
def test_report_takes_data_as_another_name_for_train():
    from chainrule.cli import build_parser
    from chainrule.commands.report import report_options

    args = build_parser().parse_args(["report", "cnn_digits", "--data", "digits"])
    assert report_options(args).train["data"] == "digits"


@pytest.fixture(scope="module")
def cnn_derivation():
    from chainrule.pipeline import derive_model

    return derive_model("cnn_digits", method="backprop")


@pytest.mark.slow
def test_report_trains_and_draws_the_trained_kernels(cnn_derivation, tmp_path):
    """``chainrule report cnn_digits --data digits``: trained kernels, the first digit."""
    from chainrule.commands.report import write_report
    from chainrule.numeric.data import load_dataset

    train = {"data": "digits", "epochs": 1, "lr": 0.1, "batch": 32, "seed": 0}
    report = build_report(cnn_derivation, **{**QUICK, "train": train})
    assert report.training is not None and report.feature_maps.trained
    write_report(report, "md", str(tmp_path / "cnn.md"))
    md = (tmp_path / "cnn.md").read_text(encoding="utf-8")
    assert "*Trained parameters (after 1 epoch on digits)" in md
    assert "first example (target 0)" in md and "## 8. Training" in md
    for key in ("kernels", "input", "Y", "H", "P"):
        assert f"](cnn-maps-1-{key}.svg)" in md
        assert (tmp_path / f"cnn-maps-1-{key}.svg").read_text().startswith("<svg")
    first = load_dataset("digits").features[0]
    x_svg = (tmp_path / "cnn-maps-1-input.svg").read_text()
    assert f"min {number(first.min())}, max {number(first.max())}" in x_svg
    # the kernels drawn are the trained ones, not the check point's
    kernels = panel(report, "K")
    start = np.asarray(check_point(cnn_derivation.program, 0)["K"])
    assert (kernels.vmin, kernels.vmax) != (start.min(), start.max())


@pytest.mark.slow
def test_the_gallery_shows_the_cnn_pictures(cnn_derivation, tmp_path, monkeypatch):
    """``chainrule demo`` builds cnn_digits' page with the section (derived once here)."""
    import chainrule.examples as examples
    import chainrule.reports.document as document
    from chainrule.cli import main

    monkeypatch.setattr(examples, "example_names", lambda: ["cnn_digits"])
    monkeypatch.setattr(document, "derive_for_report", lambda model, options: cnn_derivation)
    assert main(["demo", "-o", str(tmp_path), "--quiet"]) == 0
    page = (tmp_path / "cnn_digits.html").read_text(encoding="utf-8")
    assert 'href="cnn_digits.html"' in (tmp_path / "index.html").read_text()
    assert page.count('<g role="img"') == 33 and "9. Feature maps and kernels" in page
    assert "Random parameters at the check point" in page


def test_the_pictures_render_offline_and_fit_a_phone(cnn_report, tmp_path):
    """Chromium (where installed) shows every picture, fetches nothing, and the page
    does not overflow a phone's width (the browser test's own helpers)."""
    browser = pytest.importorskip("test_reports_browser")
    if browser.BROWSER is None:
        pytest.skip("no Chromium on PATH")
    path = tmp_path / "cnn.html"
    path.write_text(render_report(cnn_report, "html"), encoding="utf-8")
    js = """Array.from(document.querySelectorAll('#feature_maps svg')).map(s => {
        const r = s.getBoundingClientRect(); return [r.width, r.height]; })"""
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        dt = browser.DevTools(browser.BROWSER, profile)
        try:
            session, events, m = browser.open_report(dt, path, width=390)
            sizes = browser._evaluate(dt, session, js)
        finally:
            dt.close()
    errors, requests = browser.problems(events, path.as_uri())
    assert errors == [] and requests == []
    assert "feature_maps" in m["sections"]
    assert len(sizes) == 5 and all(0 < w <= 390 and h > 0 for w, h in sizes)
    assert m["scrollWidth"] <= m["innerWidth"] + 1, (m["scrollWidth"], m["innerWidth"])


def test_a_layer_inside_a_longer_line_draws_its_own_output():
    program = chainrule.parse(
        """
param K[3, 1, 2, 2], V[1, 27]
input X[1, 4, 4], t[1]
h = flatten(relu(conv2d(X, K)))
L = sum((V @ h - t)^2)
loss L
"""
    )
    [layer] = quick_report(program).feature_maps.layers
    assert [(p.node, p.shape) for p in layer.panels] == [
        ("K", "(3, 1, 2, 2)"),
        ("X", "(1, 4, 4)"),
        ("conv", "(3, 3, 3)"),
    ]
    point = check_point(program, 0)
    x, k = point["X"][0], point["K"][:, 0]
    y = np.array([[[(x[i : i + 2, j : j + 2] * k[f]).sum() for j in range(3)] for i in range(3)]
                  for f in range(3)])  # fmt: skip
    conv = layer.panels[2]
    assert (conv.vmin, conv.vmax) == pytest.approx((y.min(), y.max()), rel=1e-12)
