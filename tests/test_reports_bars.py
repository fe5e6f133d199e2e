"""Error-signal bars in HTML do not depend on the reader's math font."""

from __future__ import annotations

from chainrule.reports.mathml import latex_to_mathml


def test_bar_is_a_ruled_group_not_a_macron_glyph():
    m = latex_to_mathml(r"\bar{W}^{(2)} = \bar{y} h^\top", display=False)
    assert m.count("border-top") == 2
    assert "¯" not in m and "mover" not in m


def test_html_report_bars_every_error_signal(tmp_path):
    from chainrule.cli import main

    out = tmp_path / "r.html"
    assert main(["report", "logistic_least_squares_l2", "-o", str(out), "--no-naive"]) == 0
    html = out.read_text()
    backprop = html.split('id="backprop"')[1].split("</section>")[0]
    # L̄_reg, R̄, L̄, ȳ, z̄, b̄, w̄ each start a line of the backward pass
    assert backprop.count("border-top: 0.065em solid") >= 7
