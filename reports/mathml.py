"""LaTeX math (the subset chainrule's printers write) → MathML Core, with no network.

The HTML reports typeset the very LaTeX strings that the ``.tex`` and Markdown reports
contain, so all three formats show the same math. Browsers render MathML Core natively
(Chromium ≥ 109, Firefox, Safari), so a report needs no script and fetches nothing.

The converter is a small recursive-descent parser over LaTeX tokens; each construct
maps to one MathML element (``\\frac`` → ``mfrac``, ``x_{1}`` → ``msub``,
``\\bar{y}`` → a ruled ``mrow``, ``\\left( … \\right)`` → stretchy ``mo`` fences).
All text is XML-escaped; an unknown command raises :class:`MathMLError` when
``strict`` (tests use this) and otherwise shows as upright text.

>>> latex_to_mathml(r"\\bar{z} = \\bar{y} \\sigma'\\left(z\\right)", display=False)
'<math><mrow style="border-top: 0.065em solid; padding-top: 0.08em"><mi>z</mi></mrow><mo>=</mo>\
<mrow style="border-top: 0.065em solid; padding-top: 0.08em"><mi>y</mi></mrow><msup><mi>σ</mi>\
<mo>′</mo></msup><mrow><mo stretchy="true">(</mo><mi>z</mi><mo stretchy="true">)</mo></mrow></math>'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape

from ..ops import REGISTRY, Registry
from ..symbolic.greek import CAPITALS, LETTERS

#: LaTeX's Greek commands (\epsilon and \phi draw the lunate forms; \var… the others)
GREEK = {
    **{k: v for k, v in LETTERS.items() if k != "omicron"},
    "epsilon": "ϵ",
    "varepsilon": "ε",
    "vartheta": "ϑ",
    "phi": "ϕ",
    "varphi": "φ",
}
GREEK_UPPER = {k: v for k, v in CAPITALS.items() if v not in "ΑΒΕΖΗΙΚΜΝΟΡΤΧ"}  # not Latin-like
#: commands printed as an operator (``mo``)
OPERATORS = {
    "cdot": "⋅",
    "times": "×",
    "circ": "∘",
    "odot": "⊙",
    "otimes": "⊗",
    "oplus": "⊕",
    "pm": "±",
    "mp": "∓",
    "to": "→",
    "rightarrow": "→",
    "leftarrow": "←",
    "Rightarrow": "⇒",
    "mapsto": "↦",
    "leq": "≤",
    "le": "≤",
    "geq": "≥",
    "ge": "≥",
    "neq": "≠",
    "ne": "≠",
    "approx": "≈",
    "equiv": "≡",
    "sim": "∼",
    "in": "∈",
    "ldots": "…",
    "dots": "…",
    "cdots": "⋯",
    "vdots": "⋮",
    "mid": "∣",
    "|": "‖",
    "{": "{",
    "}": "}",
    "lbrace": "{",
    "rbrace": "}",
    "langle": "⟨",
    "rangle": "⟩",
    "lvert": "|",
    "rvert": "|",
    "lVert": "‖",
    "rVert": "‖",
    "sum": "∑",
    "prod": "∏",
    "int": "∫",
    "setminus": "∖",
    "cup": "∪",
    "cap": "∩",
    "forall": "∀",
    "exists": "∃",
    "lfloor": "⌊",
    "rfloor": "⌋",
    "lceil": "⌈",
    "rceil": "⌉",
    "ast": "∗",
    "star": "⋆",
    "bullet": "∙",
    "gets": "←",
    "longrightarrow": "⟶",
    "Leftrightarrow": "⇔",
    "ll": "≪",
    "gg": "≫",
    "propto": "∝",
    "colon": ":",
    "vert": "|",
    "Vert": "‖",
    "lt": "<",
    "gt": ">",
}
#: commands printed as an identifier (``mi``)
IDENTIFIERS = {
    "partial": "∂",
    "infty": "∞",
    "nabla": "∇",
    "top": "⊤",
    "prime": "′",
    "ell": "ℓ",
    "hbar": "ℏ",
    "emptyset": "∅",
    "intercal": "⊺",
    "dagger": "†",
    "imath": "ı",
}
#: LaTeX's own function-name commands printed upright (``mi``); the registry's
#: operations add theirs (:func:`function_names`).
LATEX_FUNCTION_NAMES = {
    "tan",
    "sinh",
    "cosh",
    "det",
    "arg",
    "sup",
    "inf",
    "lim",
    "sec",
    "csc",
    "cot",
    "arcsin",
    "arccos",
    "arctan",
    "dim",
    "ker",
    "Pr",
    "argmax",
    "argmin",
}


def function_names(functions: Registry = REGISTRY) -> set[str]:
    """Commands that name a function (``\\log``, ``\\tanh``, ``\\max``, ``\\sgn``): LaTeX's
    own and every operation's ``latex_commands`` that are not a letter (``\\sigma``) or a
    construct with a group argument (``\\sqrt{…}``)."""
    ops = {
        c
        for c, op in functions.latex_commands().items()
        if c not in GREEK and not op.extra.get("latex_group")
    }
    return LATEX_FUNCTION_NAMES | ops


FUNCTION_NAMES = function_names()
ACCENTS = {
    "bar": "¯",
    "overline": "‾",
    "hat": "^",
    "widehat": "^",
    "tilde": "~",
    "widetilde": "~",
    "vec": "→",
    "dot": "˙",
    "ddot": "¨",
    "check": "ˇ",
    "breve": "˘",
}
SPACES = {
    ",": "0.1667em",
    ":": "0.2222em",
    ";": "0.2778em",
    " ": "0.25em",
    "quad": "1em",
    "qquad": "2em",
    "!": "0",
    "enspace": "0.5em",
    "thinspace": "0.1667em",
}
IGNORED = {
    "displaystyle",
    "textstyle",
    "limits",
    "nolimits",
    "scriptstyle",
    "nonumber",
    "notag",
    "relax",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
}
FONTS = {
    "mathrm",
    "operatorname",
    "text",
    "textrm",
    "mathit",
    "mathbf",
    "textbf",
    "boldsymbol",
    "mathcal",
    "mathbb",
    "mathsf",
    "texttt",
    "mathtt",
    "textit",
    "bm",
}
CALLIGRAPHIC = dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "𝒜ℬ𝒞𝒟ℰℱ𝒢ℋℐ𝒥𝒦ℒℳ𝒩𝒪𝒫𝒬ℛ𝒮𝒯𝒰𝒱𝒲𝒳𝒴𝒵", strict=True))
BLACKBOARD = {"R": "ℝ", "N": "ℕ", "Z": "ℤ", "Q": "ℚ", "C": "ℂ", "E": "𝔼", "1": "𝟙", "P": "ℙ"}
MATRIX_FENCES = {
    "matrix": ("", ""),
    "pmatrix": ("(", ")"),
    "bmatrix": ("[", "]"),
    "Bmatrix": ("{", "}"),
    "vmatrix": ("|", "|"),
    "Vmatrix": ("‖", "‖"),
    "array": ("", ""),
    "aligned": ("", ""),
    "align": ("", ""),
    "align*": ("", ""),
    "cases": ("{", ""),
    "gathered": ("", ""),
    "split": ("", ""),
}
CHAR_OPERATORS = set("+-=<>,()[]|/!:;*.?")

_TOKEN = re.compile(
    r"\\(?:[A-Za-z]+\*?|.)"  # command: \frac, \, \{
    r"|\d+(?:\.\d+)?|\.\d+"  # number
    r"|[{}^_&']"  # structure
    r"|\s+"  # space
    r"|.",  # any other single character
    re.DOTALL,
)


class MathMLError(ValueError):
    """LaTeX the converter does not understand (raised only in strict mode)."""


@dataclass
class _Parser:
    tokens: list[str]
    strict: bool = False
    pos: int = 0
    unknown: list[str] = field(default_factory=list)

    # -- token helpers
    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self) -> str:
        if self.pos >= len(self.tokens):
            raise MathMLError("unexpected end of formula")
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def expect(self, tok: str) -> None:
        got = self.next()
        if got != tok:
            raise MathMLError(f"expected {tok!r}, found {got!r}")

    # -- grammar
    def sequence(self, stop: tuple[str, ...] = ("}",)) -> list[str]:
        """Atoms (with their scripts) up to one of ``stop`` (not consumed) or the end."""
        out: list[str] = []
        while True:
            tok = self.peek()
            if tok is None or tok in stop or tok in (r"\right", r"\end"):
                return out
            atom = self.atom()
            if atom is None:
                continue
            out.append(self.scripts(atom))

    def scripts(self, base: str) -> str:
        sub = sup = None
        primes = 0
        while self.peek() in ("^", "_", "'"):
            tok = self.next()
            if tok == "'":
                primes += 1
            elif tok == "^":
                sup = self.argument()
            else:
                sub = self.argument()
        if primes:
            prime = f"<mo>{'′' * primes}</mo>"
            sup = prime if sup is None else f"<mrow>{prime}{sup}</mrow>"
        if sub is not None and sup is not None:
            return f"<msubsup>{base}{sub}{sup}</msubsup>"
        if sub is not None:
            return f"<msub>{base}{sub}</msub>"
        if sup is not None:
            return f"<msup>{base}{sup}</msup>"
        return base

    def argument(self) -> str:
        """One required argument: a braced group or a single token."""
        while self.peek() is not None and self.peek().isspace():  # type: ignore[union-attr]
            self.next()
        if self.peek() == "{":
            return self.group()
        atom = self.atom()
        return atom if atom is not None else "<mrow></mrow>"

    def group(self) -> str:
        self.expect("{")
        items = self.sequence(("}",))
        self.expect("}")
        return _row(items)

    def raw_group(self) -> str:
        """The source text of a braced group (for ``\\text{…}`` and environment names)."""
        self.expect("{")
        depth, parts = 1, list[str]()
        while True:
            tok = self.next()
            if tok == "{":
                depth += 1
            elif tok == "}":
                depth -= 1
                if depth == 0:
                    return "".join(parts)
            parts.append(tok)

    def atom(self) -> str | None:
        tok = self.next()
        if tok.isspace():
            return None
        if tok == "{":
            self.pos -= 1
            return self.group()
        if tok[0].isdigit() or (tok[0] == "." and len(tok) > 1):
            return f"<mn>{tok}</mn>"
        if tok.startswith("\\"):
            return self.command(tok[1:])
        if tok in ("^", "_"):  # a script with no base: attach it to an empty row
            self.pos -= 1
            return "<mrow></mrow>"
        if tok == "&" or tok == "}":
            raise MathMLError(f"unexpected {tok!r}")
        if tok == "'":
            return "<mo>′</mo>"
        if tok == "-":
            return "<mo>−</mo>"
        if tok in CHAR_OPERATORS:
            return f"<mo>{escape(tok)}</mo>"
        if tok == "~":
            return '<mspace width="0.25em"></mspace>'
        return f"<mi>{escape(tok)}</mi>"

    def command(self, name: str) -> str | None:  # noqa: PLR0911 - one branch per construct
        if name in GREEK:
            return f"<mi>{GREEK[name]}</mi>"
        if name in GREEK_UPPER:
            return f'<mi mathvariant="normal">{GREEK_UPPER[name]}</mi>'
        if name in IDENTIFIERS:
            return f"<mi>{IDENTIFIERS[name]}</mi>"
        if name in OPERATORS:
            large = ' largeop="true"' if name in ("sum", "prod", "int") else ""
            return f"<mo{large}>{escape(OPERATORS[name])}</mo>"
        if name in FUNCTION_NAMES:
            return f"<mi>{name}</mi>"
        if name in SPACES:
            return f'<mspace width="{SPACES[name]}"></mspace>'
        if name in IGNORED:
            return None
        if name in ("frac", "dfrac", "tfrac"):
            return f"<mfrac>{self.argument()}{self.argument()}</mfrac>"
        if name == "sqrt":
            return self.root()
        if name in ACCENTS:
            return self.accent(name)
        if name in FONTS:
            return self.font(name)
        if name == "left":
            return self.fenced()
        if name == "begin":
            return self.environment()
        if name in ("overset", "stackrel"):
            over = self.argument()
            return f"<mover>{self.argument()}{over}</mover>"
        if name == "underset":
            under = self.argument()
            return f"<munder>{self.argument()}{under}</munder>"
        if name in ("color", "textcolor"):
            self.raw_group()
            return None if name == "color" else self.argument()
        if name == "\\":
            raise MathMLError("a line break outside an environment")
        return self.unknown_command(name)

    def unknown_command(self, name: str) -> str:
        if self.strict:
            raise MathMLError(f"unknown LaTeX command \\{name}")
        self.unknown.append(name)
        return f"<mtext>{escape(name)}</mtext>"

    def root(self) -> str:
        if self.peek() == "[":
            self.next()
            index = _row(self.sequence(("]",)))
            self.expect("]")
            return f"<mroot>{self.argument()}{index}</mroot>"
        return f"<msqrt>{self.argument()}</msqrt>"

    def accent(self, name: str) -> str:
        body = self.argument()
        if name in ("overline", "bar"):
            # a CSS rule over the group: the bar of an error signal (ȳ, W̄⁽²⁾) must show in
            # every browser, and a macron glyph's placement depends on the math font
            return f'<mrow style="border-top: 0.065em solid; padding-top: 0.08em">{body}</mrow>'

        stretchy = "true" if name in ("overline", "widehat", "widetilde") else "false"
        mark = escape(ACCENTS[name])
        return (
            f'<mover accent="true">{body}<mo stretchy="{stretchy}">{mark}</mo></mover>'
            if stretchy == "true"
            else f'<mover accent="true">{body}<mo>{mark}</mo></mover>'
        )

    def font(self, name: str) -> str:
        start = self.pos
        text = self.raw_group() if self.peek() == "{" else self.next()
        if name in ("text", "textrm", "texttt", "textit", "textbf"):
            return f"<mtext>{escape(text)}</mtext>"
        if "\\" in text or "{" in text or "^" in text or "_" in text:
            self.pos = start
            body = self.argument()
            style = ' style="font-weight:bold"' if "bf" in name or "bold" in name else ""
            return f"<mrow{style}>{body}</mrow>"
        text = text.strip()
        if name == "mathcal":
            return "<mi>" + escape("".join(CALLIGRAPHIC.get(c, c) for c in text)) + "</mi>"
        if name == "mathbb":
            return "<mi>" + escape("".join(BLACKBOARD.get(c, c) for c in text)) + "</mi>"
        tag = "mn" if text.replace(".", "").isdigit() else "mi"
        if name in ("mathbf", "boldsymbol", "bm"):
            variant = ' mathvariant="normal"' if len(text) == 1 and tag == "mi" else ""
            return f'<{tag}{variant} style="font-weight:bold">{escape(text)}</{tag}>'
        if name == "mathit":
            return "".join(f"<mi>{escape(c)}</mi>" for c in text)
        variant = ' mathvariant="normal"' if len(text) == 1 and tag == "mi" else ""
        return f"<{tag}{variant}>{escape(text)}</{tag}>"

    def delimiter(self) -> str:
        tok = self.next()
        while tok.isspace():
            tok = self.next()
        if tok == ".":
            return ""
        if tok.startswith("\\"):
            name = tok[1:]
            if name in OPERATORS:
                tok = OPERATORS[name]
            elif self.strict:
                raise MathMLError(f"unknown delimiter {tok}")
            else:
                tok = name
        return f'<mo stretchy="true">{escape(tok)}</mo>'

    def fenced(self) -> str:
        opening = self.delimiter()
        body = self.sequence(())
        if self.peek() != r"\right":
            raise MathMLError(r"\left without \right")
        self.next()
        closing = self.delimiter()
        return f"<mrow>{opening}{''.join(body)}{closing}</mrow>"

    def environment(self) -> str:
        env = self.raw_group().strip()
        if env not in MATRIX_FENCES:
            if self.strict:
                raise MathMLError(f"unknown environment {env}")
            self.unknown.append(env)
        if env == "array" and self.peek() == "{":
            self.raw_group()  # column spec
        rows: list[list[str]] = [[]]
        cell: list[str] = []
        while True:
            cell += self.sequence(("&", r"\\"))
            tok = self.next()
            if tok == "&":
                rows[-1].append(_row(cell))
                cell = []
            elif tok == r"\\":
                rows[-1].append(_row(cell))
                rows.append([])
                cell = []
            elif tok == r"\end":
                rows[-1].append(_row(cell))
                self.raw_group()
                break
            else:  # \right or a stray token ending the sequence
                raise MathMLError(f"unexpected {tok!r} inside {env}")
        rows = [r for r in rows if any(c != "<mrow></mrow>" for c in r)]
        align = ' columnalign="right left"' if env.startswith(("align", "split")) else ""
        table = "<mtable{}>{}</mtable>".format(
            align, "".join("<mtr>" + "".join(f"<mtd>{c}</mtd>" for c in r) + "</mtr>" for r in rows)
        )
        left, right = MATRIX_FENCES.get(env, ("", ""))
        fence_l = f'<mo stretchy="true">{escape(left)}</mo>' if left else ""
        fence_r = f'<mo stretchy="true">{escape(right)}</mo>' if right else ""
        return f"<mrow>{fence_l}{table}{fence_r}</mrow>"


def _row(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return "<mrow>" + "".join(items) + "</mrow>"


def tokenize(latex: str) -> list[str]:
    return _TOKEN.findall(latex)


def latex_to_mathml(latex: str, display: bool = True, strict: bool = False) -> str:
    """A ``<math>`` element for ``latex`` (``display`` gives a block equation).

    >>> latex_to_mathml(r"\\frac{1}{2}", display=False)
    '<math><mfrac><mn>1</mn><mn>2</mn></mfrac></math>'
    """
    parser = _Parser(tokenize(latex), strict=strict)
    try:
        items = parser.sequence(())
        if parser.peek() is not None:
            raise MathMLError(f"unexpected {parser.peek()!r}")
    except MathMLError:
        if strict:
            raise
        return _fallback(latex, display)
    attrs = ' display="block"' if display else ""
    return f"<math{attrs}>{''.join(items)}</math>"


def _fallback(latex: str, display: bool) -> str:
    """Malformed input: show the source as text (escaped), never as markup."""
    attrs = ' display="block"' if display else ""
    return f"<math{attrs}><mtext>{escape(latex)}</mtext></math>"


__all__ = ["MathMLError", "latex_to_mathml", "tokenize"]
