"""Golden-structure tests of the reports: sections in order, every error signal, no
byte-for-byte snapshots; plus the LaTeX validity check and the Jupyter hooks."""

from __future__ import annotations

import doctest
import re
import shutil
import subprocess

import pytest

import chainrule
from chainrule.reports import data as data_module
from chainrule.reports import document, formats, graph, highlight, mathml, plots
from chainrule.reports.document import build_report, render_report
from chainrule.reports.mathml import MathMLError, latex_to_mathml

ORDER = ["model", "graph", "naive", "backprop", "costs", "checks", "code"]


@pytest.fixture(scope="module")
def l2():
    return build_report("logistic_least_squares_l2")


@pytest.fixture(scope="module")
def vec():
    return build_report("vector_mlp", naive=False)


@pytest.mark.parametrize(
    "module", [document, formats, graph, highlight, mathml, plots, data_module]
)
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


def _section_order(html: str) -> list[str]:
    return re.findall(r'<section id="([a-z]+)"', html)


def test_html_sections_in_order(l2):
    html = render_report(l2, "html")
    assert _section_order(html) == ORDER
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "http://" not in html.replace("http://www.w3.org", "")  # fetches nothing
    assert "https://" not in html
    assert "<svg" in html and "<math" in html


def test_every_error_signal_is_shown(l2):
    bp = chainrule.derivation("logistic_least_squares_l2").backprop
    html, md, tex = (render_report(l2, f) for f in ("html", "md", "tex"))
    for step in bp.steps:
        assert f'id="signal-{step.node}"' in html
        view = next(s for s in l2.backprop.steps if s.node == step.node)
        assert view.equation in md and view.equation in tex
    # fan-out at w: both contributions, summed explicitly
    w = next(s for s in l2.backprop.steps if s.node == "w")
    assert w.fan_out == 2 and "fan-out 2" in html
    assert w.equation.startswith(
        r"\bar{w} = \bar{z}\, \frac{\partial z}{\partial w} + "
        r"\bar{R}\, \frac{\partial R}{\partial w}"
    )
    z = next(s for s in l2.backprop.steps if s.node == "z")
    assert z.equation == (
        r"\bar{z} = \bar{y}\, \frac{\partial y}{\partial z} = "
        r"\bar{y}\, \sigma'\left(z\right)"
    )


def test_naive_steps_name_rules(l2):
    w = next(p for p in l2.naive.params if p.name == "w")
    rules = [s.rule for s in w.steps]
    assert rules[0] == "sum rule" and "chain rule (sigma)" in rules and "power rule" in rules
    assert w.steps[0].depth == 0 and all(
        s.before.startswith(r"\frac{\partial}{\partial w}") for s in w.steps
    )


def test_step_limit_and_all_steps():
    few = build_report("xor", checks=False, code=False, graph=False, max_steps=3)
    assert all(len(p.steps) <= 3 for p in few.naive.params)
    assert any(p.omitted_steps for p in few.naive.params)
    assert "more rule applications" in render_report(few, "html")
    every = build_report("xor", checks=False, code=False, graph=False, steps=True)
    assert all(p.omitted_steps == 0 for p in every.naive.params)


def test_checks_pass_and_costs(l2):
    assert l2.checks.passed and l2.checks.worst < 1e-6 and l2.checks.rows
    routes = [r.route for r in l2.costs.rows]
    assert routes[0] == "forward" and "backprop" in routes and "naive" in routes
    assert l2.costs.chart_svg.startswith("<svg") and len(l2.costs.bars) == len(routes)


def test_sections_omitted_cleanly():
    r = build_report("sum_times", naive=False, graph=False, checks=False, code=False)
    assert r.present() == ["model", "backprop", "costs"]
    for fmt in ("html", "md", "tex"):
        out = render_report(r, fmt)
        assert "Naive derivation" not in out and "Computation graph" not in out
    html = render_report(r, "html")
    assert _section_order(html) == ["model", "backprop", "costs"]


def test_vector_report(vec):
    html = render_report(vec, "html")
    assert "checks" in vec.present()
    assert vec.checks.agreement.startswith("unit form agrees") and vec.checks.agreement_passed
    assert [m["pass"] for m in vec.costs.macs] == ["forward", "backward"]
    assert r"\top" in "".join(s.equation for s in vec.backprop.steps)
    for fmt in ("md", "tex"):
        assert "Multiply" in render_report(vec, fmt)
    assert "Multiply–adds" in html


def test_graph_without_dot_degrades(monkeypatch):
    monkeypatch.setattr(graph, "dot_binary", lambda: None)
    r = build_report("sum_times", checks=False, code=False, naive=False)
    assert r.graph.svg is None and "not installed" in r.graph.note
    html = render_report(r, "html")
    assert "digraph computation" in html and "not installed" in html
    assert "digraph computation" in render_report(r, "tex")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")
def test_graph_svg_shows_names_and_fan_out(l2):
    svg = l2.graph.svg
    assert svg.startswith("<svg") and "<?xml" not in svg and "<!--" not in svg
    for name in ("w", "b", "x", "t", "z", "y", "R", "L_reg", "λ"):
        assert f">{name}<" in svg
    assert svg.count('stroke="#c62828"') >= 2  # w's two out-edges
    assert r"\begin{picture}" in l2.graph.picture


def test_markdown_math_and_images(l2):
    md = render_report(l2, "md")
    assert "$$\n\\bar{z} = " in md and "](data:image/svg+xml;base64," in md
    linked = render_report(l2, "md", assets={"graph": "x-graph.svg"})
    assert "![computation graph](x-graph.svg)" in linked


# ----------------------------------------------------------------- LaTeX validity
ENV = re.compile(r"\\(begin|end)\{([^}]*)\}")


def check_latex_structure(tex: str) -> None:
    """Balanced braces and environments outside verbatim; ASCII only."""
    assert tex.isascii()
    body = re.sub(r"\\begin\{verbatim\}.*?\\end\{verbatim\}", "", tex, flags=re.S)
    body = re.sub(r"\\[{}$%&#_]", "", body)  # escaped specials
    body = re.sub(r"(?<!\\)%.*", "", body)  # comments
    depth = 0
    for c in body:
        depth += {"{": 1, "}": -1}.get(c, 0)
        assert depth >= 0, "unbalanced }"
    assert depth == 0, "unbalanced {"
    stack = []
    for kind, name in ENV.findall(body):
        if kind == "begin":
            stack.append(name)
        else:
            assert stack and stack.pop() == name, f"\\end{{{name}}} does not match"
    assert stack == []
    assert body.count(r"\(") == body.count(r"\)")


@pytest.mark.parametrize("name", ["logistic_least_squares_l2", "xor", "vector_mlp"])
def test_latex_is_well_formed(name, l2, vec):
    r = {"logistic_least_squares_l2": l2, "vector_mlp": vec}.get(name) or build_report(
        name, checks=False
    )
    check_latex_structure(render_report(r, "tex"))


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
@pytest.mark.parametrize("which", ["l2", "vec"])
def test_latex_compiles_with_pdflatex(which, l2, vec, tmp_path):
    r = {"l2": l2, "vec": vec}[which]
    (tmp_path / "r.tex").write_text(render_report(r, "tex"), encoding="ascii")
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "r.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "r.pdf").stat().st_size > 10_000


# ----------------------------------------------------------------- MathML
def _all_latex(r) -> list[str]:
    out = [e.latex for e in r.model.equations] + [v.latex for v in r.model.leaves]
    if r.naive:
        out.append(r.naive.loss_latex)
        for p in r.naive.params:
            out += [p.latex, p.result] + [s.before + " = " + s.after for s in p.steps]
    if r.backprop:
        out += [s.equation for s in r.backprop.steps] + [g.latex for g in r.backprop.gradients]
    return out


def test_every_formula_converts_strictly(l2, vec):
    for r in (l2, vec, build_report("softmax_regression", checks=False, code=False)):
        for latex in _all_latex(r):
            m = latex_to_mathml(latex, strict=True)
            assert "<mtext>" not in m or r"\text" in latex, latex


def test_mathml_constructs():
    assert latex_to_mathml(r"\frac{a}{b}", display=False) == (
        "<math><mfrac><mi>a</mi><mi>b</mi></mfrac></math>"
    )
    assert "<msubsup>" in latex_to_mathml("x_{1}^{2}")
    assert '<mo stretchy="true">(</mo>' in latex_to_mathml(r"\left(x\right)")
    assert "<mtable>" in latex_to_mathml(r"\begin{pmatrix}1 & 2\\ 3 & 4\end{pmatrix}")
    assert "&lt;" in latex_to_mathml(r"a < b") and "<mo>&lt;</mo>" in latex_to_mathml("a<b")
    with pytest.raises(MathMLError):
        latex_to_mathml(r"\unknowncommand{x}", strict=True)
    lenient = latex_to_mathml(r"\unknowncommand{x} {", strict=False)
    assert lenient.startswith("<math") and "<mtext>" in lenient  # shown as text, no crash


# ----------------------------------------------------------------- Jupyter
def test_jupyter_fragments():
    d = chainrule.derivation("sum_times")
    html = d._repr_html_()
    assert html.startswith('<div class="chainrule-report">') and "<math" in html
    assert "<!DOCTYPE" not in html and "checks" not in _section_order(html)
    md = d._repr_markdown_()
    assert md.startswith("### ") and "$$" in md


def test_unknown_format():
    with pytest.raises(ValueError, match="html, md or tex"):
        render_report(build_report("sum_times", checks=False, code=False, graph=False), "pdf")


def test_repr_latex_lists_every_signal():
    d = chainrule.derivation("logistic_least_squares_l2", method="backprop")
    latex = d._repr_latex_()
    assert latex.startswith("$$\\begin{aligned}") and latex.endswith("\\end{aligned}$$")
    assert latex.count("&=") == len(d.backprop.steps)
