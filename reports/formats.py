"""One Jinja2 environment per output format, each escaping every plain string.

* HTML: Jinja2's autoescaping; math becomes MathML (:mod:`chainrule.reports.mathml`).
* Markdown: every ``{{ … }}`` value goes through :func:`md_escape` (HTML and Markdown
  specials, ``$``), math is ``$…$`` / ``$$…$$``.
* LaTeX: every ``\\VAR{…}`` value goes through :func:`tex_escape`, math is ``\\(…\\)``.

Only values marked safe (:class:`markupsafe.Markup`, produced by the filters here from
LaTeX our printers wrote, or from escaped text) pass unescaped.

>>> tex_escape("a_b & {c} 50% <script>")
'a\\\\_b \\\\& \\\\{c\\\\} 50\\\\% \\\\textless{}script\\\\textgreater{}'
>>> md_escape("<script>alert('x')</script> *b*")
"&lt;script&gt;alert('x')&lt;/script&gt; \\\\*b\\\\*"
"""

from __future__ import annotations

import base64
import re
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from ..symbolic.greek import NAMES
from .mathml import latex_to_mathml

TEMPLATES = Path(__file__).resolve().parent / "templates"
FORMATS = ("html", "md", "tex")


# --------------------------------------------------------------------- escaping
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|$#~!{}])")


def md_escape(value: Any) -> str:
    """Plain text for Markdown: HTML entities for ``< > &``, backslashes before
    Markdown and math specials, newlines kept as spaces."""
    if isinstance(value, Markup):
        return str(value)
    s = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return s.replace("\r", " ").replace("\n", " ")


_TEX_CHARS = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "^": r"\textasciicircum{}",
    "_": r"\_",
    "%": r"\%",
    "~": r"\textasciitilde{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}
#: Greek letters as LaTeX writes them (ε is \varepsilon; \epsilon draws ϵ)
_TEX_GREEK = {
    c: "$\\" + ("varepsilon" if name == "epsilon" else name) + "$"
    for c, name in NAMES.items()
    if len(name) > 1 and name not in ("omicron", "Omicron")
}
_TEX_UNICODE = {
    **_TEX_GREEK,
    "ℒ": r"$\mathcal{L}$",
    "∂": r"$\partial$",
    "∘": r"$\circ$",
    "ᵀ": r"$^\top$",
    "×": r"$\times$",
    "·": r"$\cdot$",
    "⋅": r"$\cdot$",
    "−": "-",
    "–": "--",
    "—": "---",
    "→": r"$\to$",
    "←": r"$\leftarrow$",
    "≤": r"$\le$",
    "≥": r"$\ge$",
    "≈": r"$\approx$",
    "≠": r"$\ne$",
    "±": r"$\pm$",
    "∑": r"$\sum$",
    "√": r"$\surd$",
    "…": r"\dots{}",
    "′": "'",
    "’": "'",
    "‘": "`",
    "“": "``",
    "”": "''",
    "✓": r"$\checkmark$",
    "✗": "x",
    "‖": r"$\|$",
    "∞": r"$\infty$",
    "⁽": r"\textsuperscript{(}",
    "⁾": r"\textsuperscript{)}",
    "\u00a0": "~",
}
_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789", strict=True))
_SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉", "0123456789", strict=True))
_MACRON = "\u0304"


def _tex_char(c: str) -> str:
    if c in _TEX_CHARS:
        return _TEX_CHARS[c]
    if ord(c) < 128:
        return c
    if c in _TEX_UNICODE:
        return _TEX_UNICODE[c]
    if c in _SUPERSCRIPTS:
        return rf"\textsuperscript{{{_SUPERSCRIPTS[c]}}}"
    if c in _SUBSCRIPTS:
        return rf"\textsubscript{{{_SUBSCRIPTS[c]}}}"
    base = unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode()
    return _tex_escape_ascii(base) if base else "?"


def _tex_escape_ascii(s: str) -> str:
    return "".join(_TEX_CHARS.get(c, c) for c in s)


def tex_escape(value: Any) -> str:
    """Plain text for pdflatex: specials escaped, common Unicode (σ, ȳ, ⁽¹⁾) as LaTeX,
    anything else transliterated to ASCII or ``?`` — the output is pure ASCII."""
    if isinstance(value, Markup):
        return str(value)
    out: list[str] = []
    for c in unicodedata.normalize("NFD", str(value)):
        if c == _MACRON and out:
            out[-1] = rf"\={{{out[-1]}}}"
        elif unicodedata.combining(c):
            continue
        else:
            out.append(_tex_char(c))
    return "".join(out)


def ascii_code(code: str) -> str:
    """Code for a LaTeX ``verbatim`` block: ASCII only, no ``\\end{verbatim}``."""
    greek = {
        **NAMES,
        "ε": "eps",
        "∂": "d",
        "∘": "o",
        "ᵀ": "^T",
        "−": "-",
        "·": "*",
        "…": "...",
    }
    out = []
    for c in unicodedata.normalize("NFC", code):
        if ord(c) < 128:
            out.append(c)
        elif c in greek:
            out.append(greek[c])
        else:
            base = unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode()
            out.append(base or "?")
    text = "".join(out).replace(r"\end{verbatim}", r"\end {verbatim}")
    return "\n".join(_wrap(line) for line in text.splitlines())


def _wrap(line: str, width: int = 92) -> str:
    """A long code line split for print, continuation lines marked with ``>>``."""
    if len(line) <= width:
        return line
    parts = [line[:width]]
    rest = line[width:]
    while rest:
        parts.append("  >> " + rest[: width - 5])
        rest = rest[width - 5 :]
    return "\n".join(parts)


def _finalize(escape_fn: Any) -> Any:
    def finalize(value: Any) -> Any:
        if value is None:
            return ""
        return Markup(escape_fn(value))

    return finalize


# ------------------------------------------------------------------ math filters
def _md_math(latex: str) -> str:
    """LaTeX safe inside Markdown ``$…$`` (and table cells): no ``< > $ |``."""
    s = latex.replace("\\|", r"\Vert ").replace("|", r"\vert ")
    return s.replace("<", r"\lt ").replace(">", r"\gt ").replace("$", r"\$")


def _md_image(svg: str, alt: str, asset: str | None = None) -> Markup:
    """``![alt](file)`` for a written asset, else the SVG inline as a data URI."""
    if asset:
        return Markup(f"![{md_escape(alt)}]({quote(asset)})")
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return Markup(f"![{md_escape(alt)}](data:image/svg+xml;base64,{data})")


def _filters(fmt: str) -> dict[str, Any]:
    if fmt == "html":
        return {
            "math": lambda s: Markup(latex_to_mathml(str(s), display=False)),
            "dmath": lambda s: Markup(latex_to_mathml(str(s), display=True)),
            "safe_svg": lambda s: Markup(s),
        }
    if fmt == "md":
        return {
            "math": lambda s: Markup(f"${_md_math(str(s))}$"),
            "dmath": lambda s: Markup(f"\n$$\n{_md_math(str(s))}\n$$"),
            "code": _md_code,
            "codeblock": _md_codeblock,
            "image": _md_image,
        }
    return {
        "math": lambda s: Markup(rf"\({s}\)"),
        "dmath": lambda s: Markup("\\begin{center}\\fiteq{" + str(s) + "}\\end{center}"),
        "verbatim": lambda s: Markup(ascii_code(str(s))),
        "picture": lambda s: Markup(str(s)),  # LaTeX our graph module wrote
    }


def _md_code(text: str) -> Markup:
    """An inline code span (shown literally by Markdown, so nothing to escape)."""
    text = str(text).replace("\n", " ")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return Markup(f"{fence}{pad}{text}{pad}{fence}")


def _md_codeblock(code: str, lang: str = "") -> Markup:
    longest = max((len(m) for m in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return Markup(f"{fence}{lang}\n{code.rstrip()}\n{fence}")


def _number(value: Any, digits: int = 3) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.{digits}e}"
    return f"{v:.{digits + 3}g}"


# ---------------------------------------------------------------- environments
@cache
def environment(fmt: str) -> jinja2.Environment:
    """The Jinja2 environment of ``fmt`` (html, md or tex), loading ``templates/*.j2``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r} (choose html, md or tex)")
    loader = jinja2.FileSystemLoader(str(TEMPLATES))
    common: dict[str, Any] = {
        "loader": loader,
        "undefined": jinja2.StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "keep_trailing_newline": True,
    }
    if fmt == "html":
        env = jinja2.Environment(autoescape=True, **common)
    elif fmt == "md":
        env = jinja2.Environment(autoescape=False, finalize=_finalize(md_escape), **common)
    else:
        env = jinja2.Environment(
            autoescape=False,
            finalize=_finalize(tex_escape),
            block_start_string=r"\BLOCK{",
            block_end_string="}",
            variable_start_string=r"\VAR{",
            variable_end_string="}",
            comment_start_string=r"\#{",
            comment_end_string="}",
            line_comment_prefix="%#",
            **common,
        )
    env.filters.update(_filters(fmt))
    env.filters["num"] = _number
    return env


def render_template(fmt: str, name: str, **context: Any) -> str:
    return environment(fmt).get_template(name).render(**context)
