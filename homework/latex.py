r"""Lecture-notation LaTeX for answers, read by a grammar of ours.

SymPy's LaTeX parsers do not read ``\sigma(…)``, ``\bar{y}`` or ``\mathcal{L}``, and they
build powers eagerly. This small recursive-descent parser reads the notation the lecture
notes use and produces the same syntax tree as :mod:`chainrule.symbolic.grammar`
(``Num, Name, Call(prime=…), BinOp, Neg, Transpose``), under the same :class:`Limits`.

What it reads:

* names: ``w``, ``x_1`` → ``x1``, ``w_{11}``, ``\mathbf{W}^{(2)}`` → ``W2``,
  ``\mathcal{L}_{reg}`` → ``L_reg``, ``\lambda``; letters written together are a
  product (``wx`` is w·x) unless they spell a known name;
* error signals: ``\bar{z}``, ``\overline{\mathbf{W}^{(2)}}``, ``\bar{y}_1`` → ``z_bar``…;
* products by juxtaposition, ``\cdot``, ``\times``, ``*``; Hadamard ``\circ``/``\odot``;
  ``\frac{a}{b}``, ``/``, ``^`` (``e^{…}`` is exp), ``^\top``/``^T`` (transpose);
* functions ``\sigma``, ``\exp``, ``\log``, ``\ln``, ``\tanh``, ``\operatorname{ReLU}``…,
  with or without parentheses, and primes ``\sigma'(z)``, ``\sigma^\prime(z)``;
* ``\left( … \right)``, spacing commands, ``\sum_k`` over the index values the model's
  names allow (or ``\sum_{k=1}^{K}``).

>>> from chainrule.symbolic.grammar import parse_expression
>>> parse_latex(r"\bar{y}\,\sigma'(z)") == parse_expression("y_bar*sigma'(z)")
True
>>> latex_target(r"\frac{\partial \mathcal{L}}{\partial w}")
'dL/dw'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from ..ops import REGISTRY, Registry
from ..symbolic import grammar as g
from ..symbolic.errors import LimitError, ModelError, SourceSpan
from .notation import FUNCTION_SPELLINGS, to_latex_unicode


# ------------------------------------------------------------------ vocabulary
def function_commands(functions: Registry = REGISTRY) -> dict[str, str]:
    """``\\command`` → the function's name in models (``\\ln`` → ``log``), from each
    entry's ``latex_commands``, then the answer spellings of
    :data:`~chainrule.homework.notation.FUNCTION_SPELLINGS` (``\\sinh``, ``\\sech``)."""
    out = {cmd: fn for cmd, fn in FUNCTION_SPELLINGS.items() if cmd not in ("sum", "mean")}
    out.update({cmd: op.name for cmd, op in functions.latex_commands().items()})
    return out


def group_commands(functions: Registry = REGISTRY) -> set[str]:
    """Commands whose argument is a braced group (``\\sqrt{x}``), not parentheses."""
    return {c for c, op in functions.latex_commands().items() if op.extra.get("latex_group")}


def function_words(functions: Registry = REGISTRY) -> dict[str, str]:
    """Words inside ``\\operatorname{…}``/``\\mathrm{…}``/``\\text{…}`` (any case) that
    name functions (``ReLU`` → ``relu``, ``sech`` → ``sech``)."""
    out = dict(FUNCTION_SPELLINGS)
    out.update({name.lower(): op.name for name, op in functions.answer_names().items()})
    out.update({name.lower(): name for name in functions.spellings("scalar")})
    return out


#: (commands, words, group commands) of a registry: computed once per answer.
Vocabulary = tuple[dict[str, str], dict[str, str], set[str]]


def latex_vocabulary(functions: Registry = REGISTRY) -> Vocabulary:
    """The function vocabulary of a registry, as the parser reads it."""
    return function_commands(functions), function_words(functions), group_commands(functions)


#: Commands whose braces may hold a function's name (``\operatorname{sech}``).
FUNCTION_STYLES = {"operatorname", "mathrm", "text", "textrm", "mathit", "textit", "mathsf"}
#: Decorations that keep the value they decorate (``\hat{y}`` is the prediction y).
DECORATIONS = {"hat": "hat", "widehat": "hat", "tilde": "tilde", "widetilde": "tilde"}
#: ``\mathbb{1}[z > 0]``: the indicator (step) function.
INDICATOR_STYLES = {"mathbb", "mathbf", "mathds", "boldsymbol", "mathrm", "bm"}
COMPARISONS = {
    ">": ">",
    "<": "<",
    "gt": ">",
    "lt": "<",
    "geq": ">",
    "ge": ">",
    "leq": "<",
    "le": "<",
    "geqslant": ">",
    "leqslant": "<",
}
GREEK = {
    "ell",
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "eta",
    "theta",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "rho",
    "tau",
    "phi",
    "varphi",
    "psi",
    "omega",
    "xi",
    "zeta",
    "pi",
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Phi",
    "Psi",
    "Omega",
}
NAME_STYLES = {
    "mathbf",
    "boldsymbol",
    "bm",
    "vec",
    "mathit",
    "mathcal",
    "mathscr",
    "mathsf",
    "mathrm",
    "mathbb",
    "text",
    "textrm",
    "textit",
    "textbf",
    "operatorname",
}
SPACING = {
    "bf",
    "rm",
    "it",
    "mit",
    "quad",
    "qquad",
    "left",
    "right",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "biggl",
    "biggr",
    "displaystyle",
    "textstyle",
    "nonumber",
    "notag",
    "limits",
}
PRODUCTS = {"cdot": "juxt", "times": "juxt", "circ": "*", "odot": "*", "ast": "*"}
TRANSPOSE_WORDS = {"T", "top", "intercal", "mathsf{T}", "mathrm{T}", "tr"}

#: Unicode letters that are a function's answer spelling (``σ``) → its LaTeX command.
_FUNCTION_LETTERS = {
    s: f"{op.latex} "
    for op in REGISTRY
    for s in op.answer_spellings
    if len(s) == 1 and not s.isascii() and op.latex_commands
}
_UNICODE_LATEX = {
    "\u2212": "-",
    "\u2013": "-",
    "\u00b7": r"\cdot ",
    "\u22c5": r"\cdot ",
    "\u00d7": r"\times ",
    "\u2218": r"\circ ",
    "\u2299": r"\odot ",
    "\u1d40": r"^\top ",
    "\u2032": "'",
    "\u03bb": r"\lambda ",
    "\u03b1": r"\alpha ",
    "\u03b2": r"\beta ",
    "\u03b3": r"\gamma ",
    "\u03b7": r"\eta ",
    "\u2202": r"\partial ",
    "\u2211": r"\sum ",
    "\u00b2": "^2",
    "\u00b3": "^3",
    **_FUNCTION_LETTERS,
}


def normalize_latex(text: str) -> str:
    """Slide Unicode to LaTeX (``σ`` → ``\\sigma``, ``−`` → ``-``, ``W̄⁽²⁾`` →
    ``\\bar{W}^{(2)}``), then NFKC."""
    text = to_latex_unicode(text)
    for k, v in _UNICODE_LATEX.items():
        text = text.replace(k, v)
    return unicodedata.normalize("NFKC", text)


# ------------------------------------------------------------------ tokens
@dataclass(frozen=True)
class Tok:
    kind: str  # NUM WORD CMD OP END
    text: str
    col: int


_TOKEN_RE = re.compile(
    r"(?P<ws>\s+|~|\\[,;:! ]|\\left\.|\\right\.)"
    r"|(?P<cmd>\\[A-Za-z]+)"
    r"|(?P<brace>\\[{}])"
    r"|(?P<num>\d+(?:\.\d+)?|\.\d+)"
    r"|(?P<word>[A-Za-z]+)"
    r"|(?P<op>[-+*/^_'(),\[\]{}=|!<>])"
)


def tokenize_latex(text: str, span_of) -> list[Tok]:  # noqa: ANN001 - span_of(col)
    toks: list[Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            ch = text[pos]
            if ord(ch) > 127:
                raise g._non_ascii_error(ch, span_of(pos + 1))
            raise ModelError(f"unexpected character {ch!r}", span_of(pos + 1))
        kind, s = m.lastgroup, m.group()
        if kind == "cmd" and s[1:] in SPACING:
            kind = "ws"
        if kind == "brace":
            toks.append(Tok("OP", "(" if s == r"\{" else ")", pos + 1))
        elif kind != "ws":
            toks.append(
                Tok(
                    {"cmd": "CMD", "num": "NUM", "word": "WORD", "op": "OP"}[kind or ""],
                    s[1:] if kind == "cmd" else s,
                    pos + 1,
                )
            )
        pos = m.end()
    # END repeated, so that looking a few tokens ahead never runs off the list
    toks.extend(Tok("END", "", len(text) + 1) for _ in range(LOOKAHEAD))
    return toks


#: How far the parser looks ahead (``W^{(2)}``: five tokens), with room to spare.
LOOKAHEAD = 16


# ------------------------------------------------------------------ names
@dataclass
class NameParts:
    """A name being assembled: base letters, subscript, ``^{(l)}`` layer, bar."""

    base: str
    sub: str = ""
    layer: str = ""
    bar: bool = False
    deco: str = ""  # hat | tilde: the value itself (ŷ is y unless the model names y_hat)

    def candidates(self) -> list[str]:
        b, s, lay = self.base, self.sub, self.layer
        if not s:
            out = [b + lay, f"{b}_{lay}"] if lay else [b]
        else:
            out = [b + lay + s, f"{b}{lay}_{s}", f"{b}_{s}{lay}", f"{b}{s}{lay}"]
        return list(dict.fromkeys(out))

    def resolve(self, known: set[str] | None) -> str:
        cands = self.candidates()
        chosen = next((c for c in cands if known and c in known), None)
        whole = self.base + self.layer
        if chosen is None and known and re.fullmatch(r"[ijkln]", self.sub) and whole in known:
            chosen = whole  # \bar{z}_i of a vector z: the statement holds entry by entry
        if chosen is None:
            chosen = cands[0] if (not self.sub or self.sub.isdigit()) else cands[1]
        if self.deco:
            chosen = f"{chosen}_{self.deco}"
        return f"{chosen}_bar" if self.bar else chosen


_TRANSPOSE = object()
_PRIME = object()


# ------------------------------------------------------------------ parser
class LatexParser:
    """Recursive descent over LaTeX tokens, producing :mod:`grammar` trees."""

    def __init__(
        self,
        toks: list[Tok],
        span_of,
        limits: g.Limits,  # noqa: ANN001
        known: set[str] | None,
        juxtapose: str,
        functions: Registry = REGISTRY,
        vocabulary: Vocabulary | None = None,
    ) -> None:
        vocabulary = vocabulary or latex_vocabulary(functions)  # the model's functions too
        self.commands, self.words, self.group_commands = vocabulary
        self.toks = toks
        self.i = 0
        self.span_of = span_of
        self.limits = limits
        self.known = known
        self.juxt = juxtapose
        self.depth = 0
        self.index: dict[str, str] = {}  # active \sum indices → value
        self.loss_names: set[str] = {"L", "E", "J", "loss", "ℒ"}

    # -- helpers
    @property
    def tok(self) -> Tok:
        return self.toks[min(self.i, len(self.toks) - 1)]

    def at(self, kind: str, *texts: str) -> bool:
        return self.tok.kind == kind and (not texts or self.tok.text in texts)

    def take(self) -> Tok:
        t = self.tok
        self.i += 1
        return t

    def span(self, t: Tok | None = None) -> SourceSpan:
        return self.span_of((t or self.tok).col)

    def expect(self, text: str, what: str) -> Tok:
        if not self.at("OP", text):
            found = self.tok.text or "end of line"
            raise ModelError(f"expected {what}, found {found!r}", self.span())
        return self.take()

    def enter(self) -> None:
        self.depth += 1
        if self.depth > self.limits.max_depth:
            raise LimitError(
                f"expression nested deeper than {self.limits.max_depth} levels", self.span()
            )

    def nested(self, fn, *args):  # noqa: ANN001, ANN002, ANN201
        self.enter()
        try:
            return fn(*args)
        finally:
            self.depth -= 1

    # -- grammar
    def parse_to_end(self) -> g.Expr:
        e = self.nested(self.parse_sum)
        if not self.at("END"):
            raise ModelError(f"unexpected {self.tok.text!r} after the expression", self.span())
        return e

    def parse_sum(self) -> g.Expr:
        left = self.parse_term()
        while self.at("OP", "+", "-"):
            op = self.take()
            left = g.BinOp(self.span(op), op.text, left, self.parse_term())
        return left

    def parse_term(self) -> g.Expr:
        left = self.parse_factor()
        while True:
            t = self.tok
            if self.at("OP", "*", "/"):
                self.take()
                op = t.text
            elif t.kind == "CMD" and t.text == "otimes":  # u ⊗ v: the outer product u vᵀ
                self.take()
                right = self.parse_factor()
                left = g.BinOp(self.span(t), "@", left, g.Transpose(self.span(t), right))
                continue
            elif t.kind == "CMD" and t.text in PRODUCTS:
                self.take()
                op = PRODUCTS[t.text]
            elif self._starts_atom():
                op = "juxt"
            else:
                return left
            right = self.parse_factor()
            left = g.BinOp(self.span(t), self.juxt if op == "juxt" else op, left, right)

    def _starts_atom(self) -> bool:
        t = self.tok
        if t.kind in ("NUM", "WORD"):
            return True
        if t.kind == "CMD":
            return t.text not in PRODUCTS and t.text not in COMPARISONS and t.text != "otimes"
        return t.kind == "OP" and t.text in "([{"

    def parse_factor(self) -> g.Expr:
        if self.at("OP", "-", "+"):
            op = self.take()
            operand = self.nested(self.parse_factor)
            return g.Neg(self.span(op), operand) if op.text == "-" else operand
        return self.parse_power()

    def parse_power(self) -> g.Expr:
        node = self.parse_atom()
        return self.apply_scripts(node)

    def apply_scripts(self, node: g.Expr) -> g.Expr:
        powered = False
        while self.at("OP", "^"):
            t = self.take()
            script = self.parse_script()
            if script is _TRANSPOSE:
                node = g.Transpose(self.span(t), node)
            elif script is _PRIME:
                raise ModelError("a prime needs a function, e.g. \\sigma'(z)", self.span(t))
            elif powered:
                raise ModelError("double superscript: use braces, e.g. a^{b^{c}}", self.span(t))
            else:
                node = g.BinOp(self.span(t), "^", node, script)  # type: ignore[arg-type]
                powered = True
        if self.at("OP", "_"):
            raise ModelError("a subscript belongs on a name (e.g. x_1)", self.span())
        return node

    def parse_script(self) -> object:
        """What follows ``^``: transpose, prime, or an exponent expression."""
        t = self.tok
        if t.kind == "CMD" and t.text in ("top", "intercal", "prime"):
            self.take()
            return _PRIME if t.text == "prime" else _TRANSPOSE
        if self.at("OP", "'"):
            self.take()
            return _PRIME
        if self.at("OP", "{"):
            special = self._special_group()
            if special is not None:
                return special
            self.take()
            inner = self.nested(self.parse_sum)
            self.expect("}", "'}'")
            return inner
        return self._single_char_atom()

    def _special_group(self) -> object | None:
        """``{\top}``, ``{T}``, ``{\\mathsf{T}}``, ``{\\prime}`` → marker (tokens taken)."""
        j = self.i + 1
        texts: list[str] = []
        while len(texts) < 5 and self.toks[j].kind != "END":
            texts.append(self.toks[j].text)
            j += 1
            if "".join(texts).count("{") < "".join(texts).count("}"):
                break
        inner = "".join(texts[:-1]).replace("{", "").replace("}", "")
        marker = {
            "T": _TRANSPOSE,
            "top": _TRANSPOSE,
            "intercal": _TRANSPOSE,
            "mathsfT": _TRANSPOSE,
            "mathrmT": _TRANSPOSE,
            "prime": _PRIME,
            "'": _PRIME,
        }.get(inner)
        if marker is not None:
            self.i = j
        return marker

    def _single_char_atom(self) -> g.Expr:
        """``x^2`` / ``e^x``: LaTeX takes one character as the script."""
        t = self.tok
        if t.kind in ("NUM", "WORD") and len(t.text) > 1:
            self.toks[self.i] = Tok(t.kind, t.text[1:], t.col + 1)
            t = Tok(t.kind, t.text[0], t.col)
            self.toks.insert(self.i, t)
        if t.kind == "WORD" and t.text == "T":
            self.take()
            return _TRANSPOSE  # type: ignore[return-value]
        return self.parse_atom()

    # -- atoms
    def parse_atom(self) -> g.Expr:
        t = self.tok
        if t.kind == "NUM" and t.text == "1" and self.toks[self.i + 1].text == "[":
            self.take()  # 1[z > 0]: the indicator
            return self.parse_atom()
        if t.kind == "NUM":
            self.take()
            if len(t.text.replace(".", "")) > self.limits.max_number_digits:
                raise LimitError(
                    f"number literal longer than {self.limits.max_number_digits} digits",
                    self.span(t),
                )
            return g.Num(self.span(t), t.text)
        if t.kind == "WORD":
            return self.parse_word()
        if t.kind == "CMD":
            return self.parse_command()
        if (
            self.at("OP", "{")
            and self.toks[self.i + 1].kind == "WORD"
            and self.toks[self.i + 2].text == "}"
            and len(self.toks[self.i + 1].text) == 1
        ):  # {\bf W}^{(2)}: a braced letter is a name with scripts
            self.take()
            word = self.take()
            self.take()
            return self.name_with_scripts(NameParts(word.text), self.span(word))
        if self.at("OP", "(", "[", "{"):
            close = {"(": ")", "[": "]", "{": "}"}[self.take().text]
            inner = self.nested(self.parse_compare)
            self.expect(close, f"'{close}'")
            return inner
        found = t.text or "end of line"
        raise ModelError(f"expected a number, a name or '(', found {found!r}", self.span(t))

    def parse_compare(self) -> g.Expr:
        """A sum, or a comparison ``a > b`` (inside an indicator: step(a − b))."""
        left = self.parse_sum()
        t = self.tok
        op = COMPARISONS.get(t.text) if t.kind in ("OP", "CMD") else None
        if op is None:
            return left
        self.take()
        if self.at("OP", "="):
            self.take()  # >= and <= read as > and < (the same almost everywhere)
        right = self.nested(self.parse_sum)
        diff = g.BinOp(self.span(t), "-", *((left, right) if op == ">" else (right, left)))
        return g.Call(self.span(t), "step", (diff,))

    def parse_word(self) -> g.Expr:
        t = self.take()
        word = t.text
        known = self.known or set()
        if (
            word.lower() in self.words
            and word not in known
            and (self.at("OP", "(", "'") or self.at("CMD", "left") or self._power_ahead())
        ):
            return self.parse_function(self.words[word.lower()], t)
        pieces = list(self._split_word(word))
        nodes: list[g.Expr] = []
        for k, (offset, piece) in enumerate(pieces):
            span = self.span_of(t.col + offset)
            if k == len(pieces) - 1:
                nodes.append(self.name_with_scripts(NameParts(piece), span))
            else:
                nodes.append(g.Name(span, NameParts(piece).resolve(self.known)))
        out = nodes[0]
        for n in nodes[1:]:
            out = g.BinOp(n.span, self.juxt, out, n)
        return out

    def _split_word(self, word: str) -> Iterator[tuple[int, str]]:
        """``wx`` → w, x; a known multi-letter name (``ybar``, ``lambda``) stays whole."""
        known = self.known or set()
        if word in known or (not known and word in GREEK):
            yield 0, word
            return
        rest = word[1:]
        if word[0] == "d" and "d" not in known and rest and any(k.startswith(rest) for k in known):
            yield 0, word  # dW, dz: the gradient (CS231n, deeplearning.ai)
            return
        i = 0
        while i < len(word):
            for j in range(len(word), i, -1):
                if j - i > 1 and word[i:j] in known:
                    yield i, word[i:j]
                    i = j
                    break
            else:
                yield i, word[i]
                i += 1

    def name_with_scripts(self, parts: NameParts, span: SourceSpan) -> g.Expr:
        """Attach ``_{sub}`` and ``^{(layer)}`` to a name; other superscripts stay powers."""
        transposed = self.scripts_into(parts)
        name = g.Name(span, parts.resolve(self.known))
        return g.Transpose(span, name) if transposed else name

    def scripts_into(self, parts: NameParts) -> bool:
        """Read subscripts and layer superscripts; True when ``^{(2)\top}`` transposes."""
        transposed = False
        for _ in range(4):
            if self.at("OP", "_"):
                self.take()
                parts.sub += self.script_text()
            elif self.at("OP", "^") and self._layer_ahead():
                self.take()
                layer, t = self._layer_text()
                parts.layer += layer
                transposed = transposed or t
            else:
                break
        return transposed

    def _layer_ahead(self) -> bool:
        t = self.toks
        return (
            t[self.i + 1].text == "{"
            and t[self.i + 2].text in ("(", "[")  # W^{(2)}, and W^{[2]} as in deeplearning.ai
            and t[self.i + 3].kind in ("NUM", "WORD")
            and t[self.i + 4].text in (")", "]")
        )

    def _layer_text(self) -> tuple[str, bool]:
        """``{(2)}`` → ('2', False); ``{(2)\top}`` or ``{(2)T}`` → ('2', True)."""
        self.take()  # {
        self.take()  # (
        text = self.take().text
        self.take()  # )
        transposed = False
        if self.at("OP", "^"):  # W^{(2)^\top}
            self.take()
        if self.at("CMD", "top", "intercal") or self.at("WORD", "T"):
            self.take()
            transposed = True
        elif self.at("CMD", "mathsf", "mathrm") and self.toks[self.i + 2].text == "T":
            self.i += 4  # \mathsf{T}
            transposed = True
        elif self.at("OP", "{") and self.toks[self.i + 1].text in ("top", "T"):
            self.i += 3  # ^{\top}
            transposed = True
        self.expect("}", "'}' to close the superscript")
        return text, transposed

    def script_text(self) -> str:
        """A subscript as text: ``1``, ``{11}``, ``{reg}``, ``{k,1}`` (indices applied)."""
        if not self.at("OP", "{"):
            t = self.tok
            if t.kind in ("NUM", "WORD"):
                self._single_char_atom_split()
                return self._index(self.take().text)
            if t.kind == "CMD" and t.text in GREEK:
                return self.take().text
            raise ModelError("expected a subscript", self.span())
        self.take()
        out = []
        depth = 0  # braces opened inside: _{\mathrm{reg}}
        while depth or not self.at("OP", "}"):
            t = self.take()
            if t.kind == "END":
                raise ModelError("expected '}' to close the subscript", self.span(t))
            if t.kind in ("NUM", "WORD"):
                out.append(self._index(t.text))
            elif t.kind == "CMD" and t.text in NAME_STYLES and self.at("OP", "{"):
                continue  # \text{reg}, \mathrm{reg}: the braces' content is read next
            elif t.kind == "CMD" and t.text in GREEK:
                out.append(t.text)
            elif t.kind == "OP" and t.text == ",":
                continue
            elif t.kind == "OP" and t.text in "{}":
                depth += 1 if t.text == "{" else -1
            else:
                raise ModelError(f"unexpected {t.text!r} in a subscript", self.span(t))
        self.take()
        return "".join(out)

    def _single_char_atom_split(self) -> None:
        t = self.tok
        if len(t.text) > 1:
            self.toks[self.i] = Tok(t.kind, t.text[1:], t.col + 1)
            self.toks.insert(self.i, Tok(t.kind, t.text[0], t.col))

    def _index(self, text: str) -> str:
        return "".join(self.index.get(ch, ch) for ch in text) if self.index else text

    # -- commands
    def parse_command(self) -> g.Expr:
        t = self.tok
        name = t.text
        if name in ("frac", "dfrac", "tfrac", "partial", "nabla"):
            leibniz = self._leibniz()
            if leibniz is not None:
                return leibniz
        if name in ("frac", "dfrac", "tfrac"):
            self.take()
            num = self.group()
            den = self.group()
            return g.BinOp(self.span(t), "/", num, den)
        if name in self.group_commands:  # \sqrt{x}
            self.take()
            if self.at("OP", "["):
                raise ModelError(
                    f"\\{name}[…]: only the plain \\{name}{{…}} is supported", self.span(t)
                )
            return g.Call(self.span(t), self.commands[name], (self.group(),))
        func = self.commands.get(name)
        if func is not None:
            self.take()
            return self.parse_function(func, t)
        if name in FUNCTION_STYLES and self._word_group_is_func():
            self.take()
            word = self._word_group()
            return self.parse_function(self.words[word.lower()], t)
        if name in INDICATOR_STYLES and self._indicator_ahead():
            return self.parse_indicator()
        if name in ("bar", "overline"):
            self.take()
            parts = self.nested(self.name_group)
            parts.bar = True
            return self.name_with_scripts(parts, self.span(t))
        if name in DECORATIONS:
            self.take()
            parts = self.nested(self.name_group)
            parts.deco = DECORATIONS[name]
            return self.name_with_scripts(parts, self.span(t))

        if name in NAME_STYLES and self._styled_function() is not None:
            func = self._styled_function()
            self.i += 4  # \boldsymbol{\sigma}: the function, in bold
            return self.parse_function(func, t)  # type: ignore[arg-type]
        if name in NAME_STYLES and self._styled_one():
            self.take()
            one = self.take() if self.at("NUM") else [self.take(), self.take(), self.take()][1]
            return g.Num(self.span(one), "1")  # \mathbf{1}: ones, as the number 1 broadcasts
        if name in NAME_STYLES or name in GREEK:
            parts = self.name_group_or_greek()
            return self.name_with_scripts(parts, self.span(t))
        if name == "sum":
            return self.parse_sum_command()
        if name in ("partial", "nabla"):
            raise ModelError(
                "derivative notation is only read as a target (left of '=')",
                self.span(t),
                "write the derivative's value, e.g. \\bar{y}\\,x",
            )
        raise ModelError(f"unknown LaTeX command \\{name}", self.span(t))

    def group(self) -> g.Expr:
        if not self.at("OP", "{"):
            return self._single_char_atom()
        self.take()
        inner = self.nested(self.parse_sum)
        self.expect("}", "'}'")
        return inner

    def _leibniz(self) -> g.Expr | None:
        r"""``\frac{\partial L}{\partial y}`` (L the loss) inside an expression: ȳ."""
        start, t, saved = self.i, self.tok, list(self.toks)
        found = _nabla_prefix(self) if t.text == "nabla" else _derivative_prefix(self)
        if found is not None and found[0] in self.loss_names:
            return g.Name(self.span(t), f"{found[1]}_bar")
        self.i, self.toks = start, saved
        return None

    def _indicator_ahead(self) -> bool:
        t = self.toks
        return (
            t[self.i + 1].text == "{"
            and t[self.i + 2].text in ("1", "I")
            and t[self.i + 3].text == "}"
            and t[self.i + 4].text in ("[", "(", "_")
        )

    def parse_indicator(self) -> g.Expr:
        r"""``\mathbb{1}[z > 0]``, ``\mathbb{1}_{z>0}``, ``\mathbf{1}(z > 0)``: step."""
        t = self.take()
        self.i += 3  # {1}
        if self.at("OP", "_"):
            self.take()
        opening = self.take().text
        close = {"(": ")", "[": "]", "{": "}"}.get(opening)
        if close is None:
            raise ModelError("expected a condition after the indicator", self.span())
        inner = self.nested(self.parse_compare)
        self.expect(close, f"'{close}'")
        if isinstance(inner, g.Call) and inner.func == "step":
            return inner
        raise ModelError("the indicator needs a condition, e.g. \\mathbb{1}[z > 0]", self.span(t))

    def _styled_function(self) -> str | None:
        """``\\boldsymbol{\\sigma}``, ``\\mathrm{\\tanh}``: a function command in a style."""
        t = self.toks
        if t[self.i + 1].text == "{" and t[self.i + 2].kind == "CMD" and t[self.i + 3].text == "}":
            return self.commands.get(t[self.i + 2].text)
        return None

    def _styled_one(self) -> bool:
        """``\\mathbf{1}`` / ``\\mathbf 1`` not followed by a condition (the ones vector)."""
        t = self.toks
        if t[self.i + 1].kind == "NUM" and t[self.i + 1].text == "1":
            return t[self.i + 2].text not in ("[", "(", "_")
        return (
            t[self.i + 1].text == "{"
            and t[self.i + 2].text == "1"
            and t[self.i + 3].text == "}"
            and t[self.i + 4].text not in ("[", "(", "_")
        )

    def _power_ahead(self) -> bool:
        """``^2`` or ``^{2}`` after a function name: a function power (tanh²)."""
        t = self.toks
        if not self.at("OP", "^"):
            return False
        nxt = t[self.i + 1]
        if nxt.kind == "NUM":
            return True
        return nxt.text == "{" and t[self.i + 2].kind == "NUM" and t[self.i + 3].text == "}"

    def _word_group_is_func(self) -> bool:
        t = self.toks
        return (
            t[self.i + 1].text == "{"
            and t[self.i + 2].kind == "WORD"
            and t[self.i + 2].text.lower() in self.words
            and t[self.i + 3].text == "}"
            and t[self.i + 2].text not in (self.known or set())
        )

    def _word_group(self) -> str:
        self.take()
        word = self.take().text
        self.take()
        return word

    def name_group_or_greek(self) -> NameParts:
        t = self.take()
        if t.text in GREEK:
            return NameParts(t.text)
        if self.at("WORD"):  # \mathbf h: one letter without braces
            self._single_char_atom_split()
            return NameParts(self.take().text)
        if self.at("CMD") and self.tok.text in GREEK:  # \boldsymbol\delta
            return NameParts(self.take().text)
        if not self.at("OP", "{"):
            raise ModelError(f"expected '{{' after \\{t.text}", self.span())
        self.take()
        inner = self.tok
        if inner.kind == "CMD" and inner.text in ("bar", "overline", *DECORATIONS):
            self.take()  # \mathbf{\bar{W}}: the decoration inside the style
            parts = self.nested(self.name_group)
            if inner.text in DECORATIONS:
                parts.deco = DECORATIONS[inner.text]
            else:
                parts.bar = True
            self.expect("}", "'}'")
            return parts
        if inner.kind == "WORD" and self.toks[self.i + 1].text == "}":
            self.take()
            self.take()
            return NameParts(inner.text)
        if inner.kind == "CMD" and inner.text in GREEK and self.toks[self.i + 1].text == "}":
            self.take()
            self.take()
            return NameParts(inner.text)
        raise ModelError(f"\\{t.text}{{…}} should hold one name", self.span(inner))

    def name_group(self) -> NameParts:
        """The name under ``\\bar{…}``/``\\overline{…}``, with its own scripts."""
        braced = self.at("OP", "{")
        if braced:
            self.take()
        t = self.tok
        if t.kind == "WORD":
            self.take()
            parts = NameParts(t.text)
        elif t.kind == "CMD" and (t.text in NAME_STYLES or t.text in GREEK):
            parts = self.name_group_or_greek()
        elif t.kind == "CMD" and t.text in DECORATIONS:
            self.take()
            parts = self.nested(self.name_group)  # \bar{\hat{y}}: the decoration adds nothing
        else:
            raise ModelError("\\bar{…} should hold a name, e.g. \\bar{z}", self.span(t))
        if braced:
            if self.scripts_into(parts):
                raise ModelError("write the transpose outside the bar", self.span())
            self.expect("}", "'}' to close \\bar{…}")
        return parts

    def parse_function(self, func: str, t: Tok) -> g.Expr:
        prime, power = False, None
        while True:
            if self.at("OP", "'") or (self.at("OP", "^") and self._prime_script_ahead()):
                if self.take().text == "^":
                    self.parse_script()
                prime = True
            elif power is None and self._power_ahead():  # \tanh^2(z) = (\tanh z)^2
                self.take()
                power = self.parse_script()
            else:
                break
        if self.at("OP", "("):
            args = self.nested(self._call_args)
        elif self.at("OP", "["):
            args = (self.nested(self.parse_atom),)
        else:
            args = (self.nested(self.parse_power),)
        call: g.Expr = g.Call(self.span(t), func, args, prime=prime)
        if func == "step" and len(args) == 1 and isinstance(args[0], g.Call):
            call = args[0] if args[0].func == "step" else call  # step(z > 0)
        if power is not None:
            call = g.BinOp(self.span(t), "^", call, power)  # type: ignore[arg-type]
        return self.apply_scripts(call)

    def _prime_script_ahead(self) -> bool:
        nxt = self.toks[self.i + 1]
        if nxt.text == "prime" or nxt.text == "'":
            return True
        return nxt.text == "{" and self.toks[self.i + 2].text in ("prime", "'")

    def _call_args(self) -> tuple[g.Expr, ...]:
        self.expect("(", "'('")
        args = [self.nested(self.parse_compare)]
        while self.at("OP", ","):
            self.take()
            args.append(self.nested(self.parse_compare))
        self.expect(")", "')' to close the argument list")
        return tuple(args)

    # -- sums
    def parse_sum_command(self) -> g.Expr:
        t = self.take()
        if not self.at("OP", "_"):
            raise ModelError("\\sum needs an index, e.g. \\sum_k", self.span(t))
        self.take()
        index, lo, hi = self._sum_bounds()
        start = self.i
        saved = dict(self.index)
        self.index[index] = "\x00"
        self.nested(self.parse_factor_product)
        end = self.i
        values = (
            [str(v) for v in range(lo, hi + 1)]
            if hi is not None
            else self._index_values(index, start, t)
        )
        terms: list[g.Expr] = []
        for v in values:
            self.toks_restore(start)
            self.index = {**saved, index: v}
            terms.append(self.nested(self.parse_factor_product))
        self.index = saved
        self.i = end
        out = terms[0]
        for term in terms[1:]:
            out = g.BinOp(self.span(t), "+", out, term)
        return out

    def toks_restore(self, start: int) -> None:
        self.i = start

    def parse_factor_product(self) -> g.Expr:
        """The summand: factors multiplied together, up to the next + or -."""
        left = self.parse_factor()
        while (
            self._starts_atom()
            or self.at("OP", "*")
            or (self.tok.kind == "CMD" and self.tok.text in PRODUCTS)
        ):
            t = self.tok
            op = "juxt"
            if self.at("OP", "*") or t.kind == "CMD":
                op = PRODUCTS.get(self.take().text, "*")
            left = g.BinOp(
                self.span(t), self.juxt if op == "juxt" else op, left, self.parse_factor()
            )
        return left

    def _sum_bounds(self) -> tuple[str, int, int | None]:
        if not self.at("OP", "{"):
            t = self.take()
            if t.kind != "WORD":
                raise ModelError("expected an index letter after \\sum_", self.span(t))
            if len(t.text) > 1:
                self.i -= 1
                self._single_char_atom_split()
                t = self.take()
            return t.text, 1, None
        self.take()
        idx = self.take()
        if idx.kind != "WORD" or len(idx.text) != 1:
            raise ModelError("the index of \\sum is one letter", self.span(idx))
        lo, hi = 1, None
        if self.at("OP", "="):
            self.take()
            lo = int(self._int())
        self.expect("}", "'}'")
        if self.at("OP", "^"):
            self.take()
            if self.at("OP", "{"):
                self.take()
                hi = int(self._int())
                self.expect("}", "'}'")
            else:
                self._single_char_atom_split()
                hi = int(self._int())
            if hi - lo > 1000:
                raise LimitError("a sum of more than 1000 terms", self.span())
        return idx.text, lo, hi

    def _int(self) -> str:
        t = self.take()
        if t.kind != "NUM" or not t.text.isdigit():
            raise ModelError("expected a whole number", self.span(t))
        return t.text

    def _index_values(self, index: str, start: int, t: Tok) -> list[str]:
        """Values of the index for which every name in the summand is a model name."""
        if not self.known:
            raise ModelError(f"give the range of {index}: \\sum_{{{index}=1}}^{{K}}", self.span(t))
        saved = dict(self.index)
        values = []
        for v in range(0, 21):
            self.i = start
            self.index = {**saved, index: str(v)}
            try:
                tree = self.nested(self.parse_factor_product)
            except ModelError:
                continue
            if all(n in self.known or n.removesuffix("_bar") in self.known for n in _names(tree)):
                values.append(str(v))
        self.index = saved
        if not values:
            raise ModelError(
                f"no value of {index} gives names of the model",
                self.span(t),
                f"give the range: \\sum_{{{index}=1}}^{{K}}",
            )
        return values


def _names(e: g.Expr) -> Iterator[str]:
    if isinstance(e, g.Name):
        yield e.id
    for child in getattr(e, "args", ()) or ():
        yield from _names(child)
    for attr in ("left", "right", "operand"):
        child = getattr(e, attr, None)
        if child is not None:
            yield from _names(child)


# ------------------------------------------------------------------ entry points
def _parser(
    text: str,
    filename: str,
    line_no: int,
    limits: g.Limits,
    known: set[str] | None,
    column_offset: int,
    source_line: str | None,
    juxtapose: str,
    functions: Registry = REGISTRY,
    vocabulary: Vocabulary | None = None,
) -> LatexParser:
    if len(text) > limits.max_line_chars:
        raise LimitError(
            f"line is {len(text):,} characters; the limit is {limits.max_line_chars:,}",
            SourceSpan(filename, line_no, 1, ""),
        )
    norm = normalize_latex(text)
    shown = source_line if source_line is not None else text

    def span_of(col: int) -> SourceSpan:
        return SourceSpan(filename, line_no, col + column_offset, shown)

    toks = tokenize_latex(norm, span_of)
    return LatexParser(toks, span_of, limits, known, juxtapose, functions, vocabulary)


def parse_latex(
    text: str,
    filename: str = "<input>",
    line_no: int = 1,
    limits: g.Limits = g.DEFAULT_LIMITS,
    known_names: set[str] | None = None,
    column_offset: int = 0,
    source_line: str | None = None,
    juxtapose: str = "*",
    functions: Registry = REGISTRY,
    loss_names: set[str] | None = None,
    vocabulary: Vocabulary | None = None,
) -> g.Expr:
    """Parse a LaTeX expression into a :mod:`grammar` syntax tree.

    ``known_names`` (the model's names) decides how letters split (``wx`` is w·x) and
    how subscripts join (``x_1`` → ``x1``); ``juxtapose`` is the operator written
    by putting factors side by side (``*`` for scalar models, ``@`` for matrices);
    ``functions`` (the model's registry) names the functions an answer may call.
    """
    p = _parser(
        text,
        filename,
        line_no,
        limits,
        known_names,
        column_offset,
        source_line,
        juxtapose,
        functions,
        vocabulary,
    )
    if loss_names:
        p.loss_names |= loss_names
    return p.parse_to_end()


def latex_target(
    text: str, known_names: set[str] | None = None, vocabulary: Vocabulary | None = None
) -> str:
    r"""A LaTeX answer target as ``v_bar`` or ``d<top>/d<v>``.

    >>> latex_target(r"\overline{\mathbf{W}^{(2)}}")
    'W2_bar'
    >>> latex_target(r"\frac{d\mathcal{L}}{dy}")
    'dL/dy'
    """
    limits = g.DEFAULT_LIMITS
    p = _parser(text, "<target>", 1, limits, known_names, 0, None, "*", vocabulary=vocabulary)
    saved = list(p.toks)
    deriv = _derivative_target(p) or _nabla_target(p)
    if deriv is not None:
        return deriv
    p.i, p.toks = 0, saved
    tree = p.parse_to_end()
    if not isinstance(tree, g.Name):
        raise ModelError(
            f"cannot tell which error signal '{text.strip()}' is",
            SourceSpan("<target>", 1, 1, text),
            "write e.g. \\bar{z} = … or \\frac{\\partial L}{\\partial w} = …",
        )
    return tree.id


def _nabla_target(p: LatexParser) -> str | None:
    """``\\nabla_{\\mathbf{W}^{(1)}} \\mathcal{L}`` → ``dL/dW1``."""
    p.i = 0
    found = _nabla_prefix(p)
    return f"d{found[0]}/d{found[1]}" if found is not None and p.at("END") else None


def _nabla_prefix(p: LatexParser) -> tuple[str, str] | None:
    """Read ``\\nabla_{v} L`` at the parser's position: (top, wrt), or None."""
    try:
        if not p.at("CMD", "nabla"):
            return None
        p.take()
        p.expect("_", "'_'")
        if p.at("OP", "{"):
            p.take()
            wrt = p.nested(p.parse_sum)
            p.expect("}", "'}'")
        else:
            wrt = p.parse_atom()
        top = p.parse_atom() if not p.at("END") else g.Name(p.span(), "L")
        if isinstance(wrt, g.Name) and isinstance(top, g.Name):
            return top.id, wrt.id
    except (ModelError, IndexError):
        return None
    return None


def _derivative_target(p: LatexParser) -> str | None:
    """``\\frac{\\partial L}{\\partial w}``, ``\\frac{dL}{dw}``, ``\\partial L/\\partial w``."""
    found = _derivative_prefix(p)
    if found is None or not p.at("END"):
        return None
    return f"d{found[0]}/d{found[1]}"


def _derivative_prefix(p: LatexParser) -> tuple[str, str] | None:
    """Read a derivative ∂top/∂wrt at the parser's position: (top, wrt), or None."""
    try:
        if p.at("CMD", "frac", "dfrac", "tfrac"):
            p.take()
            p.expect("{", "'{'")
            top = _d_name(p)
            p.expect("}", "'}'")
            p.expect("{", "'{'")
            wrt = _d_name(p)
            p.expect("}", "'}'")
        else:
            top = _d_name(p)
            p.expect("/", "'/'")
            wrt = _d_name(p)
        return top, wrt
    except (ModelError, IndexError):
        return None


def _d_name(p: LatexParser) -> str:
    t = p.tok
    if t.kind == "CMD" and t.text == "partial":
        p.take()
    elif t.kind == "CMD" and t.text in FUNCTION_STYLES and p.toks[p.i + 2].text == "d":
        p.i += 4
    elif t.kind == "WORD" and t.text.startswith("d") and len(t.text) > 1:
        p.toks[p.i] = Tok("WORD", t.text[1:], t.col + 1)
    elif t.kind == "WORD" and t.text == "d":
        p.take()
    else:
        raise ModelError("not a derivative", p.span())
    node = p.parse_atom()
    if not isinstance(node, g.Name):
        raise ModelError("not a derivative", p.span())
    return node.id
