"""Model and student text containing HTML/JS/LaTeX renders inert in every format."""

from __future__ import annotations

import re

import pytest

import chainrule
from chainrule.reports.document import build_report, render_report
from chainrule.reports.formats import md_escape, tex_escape

EVIL = '<script>alert("pwned")</script> <img src=x onerror="alert(1)"> & \\input{/etc/passwd} $x$'
MODEL = f"""# {EVIL}
param w, b
input x, t
# a comment with </pre><script>alert('c')</script> and "quotes" and `ticks`
z = w*x + b
y = sigma(z)
L = (y - t)^2 / 2
loss L
"""


@pytest.fixture(scope="module")
def report():
    program = chainrule.parse(MODEL, "evil<script>.chain")
    history = {
        "epochs": [{"epoch": 1, "loss": 0.5}],
        "data": "<script>alert(2)</script>",
        "config": {"lr": 0.1, "seed": 0},
    }
    data = build_report(program, checks=False, code=False, history=history)
    data.notes.append('note with <b onmouseover="x">html</b>')
    return data


def test_html_has_no_live_markup(report):
    html = render_report(report, "html")
    assert not re.search(r"<script", html, re.I)
    assert not re.search(r"<img\b", html, re.I)
    assert "onerror=" not in html.replace("onerror=&#34;", "")
    assert "<b onmouseover" not in html
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in html  # shown as text
    assert "&lt;/pre&gt;&lt;script&gt;" in html  # the model source too


def test_fragment_has_no_live_markup(report):
    html = render_report(report, "html", fragment=True)
    assert not re.search(r"<script|<img\b", html, re.I)


def test_markdown_escapes_html_and_math(report):
    md = render_report(report, "md")
    # code blocks and spans show their text literally; everything else is escaped
    outside_code = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", md, flags=re.S))
    assert not re.search(r"<script|<img\b|<b ", outside_code, re.I)
    assert "&lt;script&gt;" in outside_code
    assert "\\$x\\$" in outside_code  # a $ in text cannot open math
    # inside fenced code blocks the text is literal (Markdown shows it as code)
    assert "</pre><script>alert('c')</script>" in md


def test_latex_escapes_everything(report):
    tex = render_report(report, "tex")
    # verbatim blocks show text literally (no command runs there); elsewhere all is escaped
    outside = re.sub(r"\\begin\{verbatim\}.*?\\end\{verbatim\}", "", tex, flags=re.S)
    assert "<script>" not in outside
    assert "\\input{/etc/passwd}" not in outside
    assert r"\textless{}script\textgreater{}" in tex
    assert tex.isascii()


def test_escape_helpers():
    assert md_escape("a|b_c*d") == "a\\|b\\_c\\*d"
    assert tex_escape("ȳ = σ(z)") == r"\={y} = $\sigma$(z)"
    assert (
        tex_escape("W⁽¹⁾ x₁")
        == r"W\textsuperscript{(}\textsuperscript{1}\textsuperscript{)} x\textsubscript{1}"
    )
