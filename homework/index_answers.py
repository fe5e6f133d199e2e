"""Index-notation answers for vector programs: read, then judge at symbolic sizes.

A student may write the backward pass unit by unit, as the lectures do::

    \\bar{y}_k = y_k - t_k
    \\overline{w_{ki}^{(2)}} = \\bar{y}_k h_i
    \\bar{h}_i = \\sum_k \\bar{y}_k W^{(2)}_{ki}
    \\delta_i = \\bar{h}_i \\sigma'(z_i)
    \\bar{W}^{(1)}_{ij} = \\delta_i x_j

or in plain text (``hbar_i = sum_k ybar_k W2_ki``, ``W1bar_ij = zbar_i x_j``, ``Σ``,
``σ'``, ``ȳ_k`` all read). Lines are read by this module's own tokenizer and
recursive-descent parser (never ``eval``/``sympify``), with the limits of the matrix
answers. ``δ_i`` is the error signal of the affine node indexed by i (z̄_i in the MLP).

Judging uses no fixed size: index ranges are inferred from where each index is used
(``w⁽²⁾_ki``: k over W2's rows, i over its columns); an index used over two different
sizes is an error located at the entry, and when swapping the two indices of one entry
makes the line right, the diagnosis is "indices swapped (a missing transpose)". A
consistent line is evaluated entry by entry at random points on two sets of distinct
sizes and compared with the matrix-form backprop (relative error ≤ 1e-6), given the
true error signals, so a mistake is reported once, where it is made.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from ..derive.index_form import Index, index, lecture_letters
from ..ops import REGISTRY, Op, Registry
from ..ops.tensor import local_partial
from ..symbolic.errors import ModelError, SourceSpan
from ..symbolic.program import Program
from .answers import Answer, AnswerLine

#: Deepest nesting of parentheses, braces and sums in one line.
MAX_DEPTH = 60
#: Most tokens in one line.
MAX_TOKENS = 2_000
RTOL = 1e-6
#: Literal limits, as for the model grammar: digits of a number, |exponent|.
MAX_DIGITS = 30
MAX_EXPONENT = 64
#: Most sums nested inside one another (each one loops over a size when judged).
MAX_SUMS = 6

# ----------------------------------------------------------------- spellings
# Function names come from the program's registry (answer spellings, LaTeX commands).
# fmt: off
SUM_WORDS = ("sum", "Σ", "∑")
SKIPPED_COMMANDS = {",", ";", "!", ":", " ", "quad", "qquad", "left", "right", "mathbf",
                    "mathrm", "boldsymbol", "bm", "mathit", "displaystyle", "limits"}
TIMES_COMMANDS = {"cdot", "times", "circ"}
# fmt: on


class IndexAnswerLine(AnswerLine):
    """An answer line in index notation: the target entry and the right-hand side."""

    def __init__(
        self,
        line: int,
        target_text: str,
        node: str | None,
        error: ModelError | None = None,
        source: str = "",
        target_indices: tuple[Index, ...] = (),
        rhs: sp.Basic | None = None,
        spans: dict[sp.Basic, int] | None = None,
    ) -> None:
        super().__init__(line, target_text, node, None, error, source)
        self.target_indices = target_indices
        self.rhs = rhs
        self.spans = spans or {}


# ----------------------------------------------------------------- detection
_TEXT_TARGET = re.compile(
    r"^\s*(?:[A-Za-z][A-Za-z0-9]*?(?:_?bar)_\{?[A-Za-z][A-Za-z'′,]*\}?"
    r"|(?:delta|δ)_\{?[A-Za-z]|[A-Za-z]\u0304[A-Za-z0-9]*_[A-Za-z]"
    r"|[d∂]\s*(?:L|E|J|ℒ|loss)\s*/\s*[d∂]\s*[A-Za-z][A-Za-z0-9]*(?:⁽\d+⁾)?_\{?[A-Za-z])"
)
_LATEX_TARGET = re.compile(
    r"^\s*(?:\\(?:bar|overline)\s*\{[^=]*\}\s*(?:\^\{?\(\d+\)\}?)?\s*_|"
    r"\\overline\s*\{[^=]*_[^=]*\}|\\delta\s*_|"
    r"\\frac\s*\{\s*\\partial[^=]*\}\s*\{\s*\\partial[^=]*_\s*\{?\s*[A-Za-z])"
)


_DELTA_NODE = re.compile(r"^\s*\\?(?:delta|δ)\s*_\s*\{?\s*([A-Za-z][A-Za-z0-9_]*)\s*\}?\s*$")


def is_index_answer(text: str, program: Program) -> bool:
    """True when some line's target carries letter subscripts (``\\bar{h}_i``, ``hbar_i``)."""
    if not program.is_vector:
        return False
    for raw in text.splitlines()[:10_000]:
        code = raw.split("%")[0].split("#")[0].replace("$", " ").strip()
        target = code.split("=")[0] if "=" in code else ""
        if not target.strip():
            continue
        m = _DELTA_NODE.match(target)
        if m and m.group(1).replace("_", "") in program:  # δ_z: z̄ of the node z (issue 12)
            continue
        sub = re.search(r"_\s*\{?\s*([A-Za-z0-9])", target)
        if sub and sub.group(1).isdigit():  # \bar{W}_1: a layer number, not an index
            continue
        if _LATEX_TARGET.match(target) or _TEXT_TARGET.match(unicodedata.normalize("NFD", target)):
            return True
    return False


# ----------------------------------------------------------------- tokens
@dataclass(frozen=True)
class Tok:
    kind: str  # name | num | cmd | op | bar (a combining macron after a name)
    text: str
    col: int


_TOKEN = re.compile(
    r"(?P<space>\s+)|(?P<cmd>\\(?:[A-Za-z]+|.))|(?P<name>[A-Za-z][A-Za-z0-9]*)"
    r"|(?P<num>\d+(?:\.\d+)?)|(?P<op>[-+*/^_(){}\[\],'=·∘−′Σ∑σδℓ∂ℒ\u0304⁽⁾¹²³⁴⁵⁶⁷⁸⁹])"
)
_SUPERSCRIPT_DIGITS = str.maketrans("¹²³⁴⁵⁶⁷⁸⁹", "123456789")


def tokenize(code: str, span: SourceSpan) -> list[Tok]:
    text = unicodedata.normalize("NFD", code)  # ȳ → y + U+0304
    out: list[Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _error(f"unexpected character {text[pos]!r}", span, pos + 1)
        kind = m.lastgroup or ""
        if kind != "space":
            value = m.group()
            if kind == "op" and value == "\u0304":
                kind = "bar"
            out.append(Tok(kind, value, pos + 1))
        pos = m.end()
        if len(out) > MAX_TOKENS:
            raise _error(f"more than {MAX_TOKENS:,} tokens in one line", span, pos)
    return out


def _error(msg: str, span: SourceSpan, col: int, hint: str = "") -> ModelError:
    return ModelError(msg, SourceSpan(span.file, span.line, max(col, 1), span.text), hint)


# ----------------------------------------------------------------- parser
@dataclass
class Entry:
    """A written entry: name, bar, layer, indices (e.g. w̄⁽¹⁾_ij)."""

    name: str
    bar: bool
    layer: str
    indices: list[str]
    col: int


@dataclass
class IndexParser:
    """Recursive descent over one side of a line (text and LaTeX in one grammar)."""

    toks: list[Tok]
    span: SourceSpan
    resolve: Any  # Entry → sympy expression
    loss: str = "L"
    registry: Registry | None = None
    pos: int = 0
    depth: int = 0
    bound: list[str] = field(default_factory=list)
    functions: dict[str, Op] = field(default_factory=dict)

    def __post_init__(self) -> None:
        reg = self.registry or REGISTRY
        words = {k: op for k, op in reg.answer_names().items() if op.kind == "scalar"}
        commands = {c: op for c, op in reg.latex_commands().items() if op.kind == "scalar"}
        self.functions = words | commands

    # -- helpers
    def peek(self, k: int = 0) -> Tok | None:
        i = self.pos + k
        return self.toks[i] if i < len(self.toks) else None

    def at(self, *texts: str) -> bool:
        t = self.peek()
        return t is not None and t.text in texts

    def take(self) -> Tok:
        t = self.peek()
        if t is None:
            raise _error("unexpected end of the line", self.span, self._end())
        self.pos += 1
        return t

    def expect(self, text: str) -> Tok:
        t = self.peek()
        if t is None or t.text != text:
            col = t.col if t else self._end()
            raise _error(f"expected '{text}'", self.span, col)
        return self.take()

    def text_at(self, k: int) -> str:
        t = self.peek(k)
        return t.text if t is not None else ""

    def col(self) -> int:
        """The column of the next token (or of the line's end)."""
        t = self.peek()
        return t.col if t is not None else self._end()

    def _end(self) -> int:
        return (self.toks[-1].col + len(self.toks[-1].text)) if self.toks else 1

    def skip_noise(self) -> None:
        while (t := self.peek()) is not None and t.kind == "cmd" and t.text[1:] in SKIPPED_COMMANDS:
            self.pos += 1

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _error(f"nested more than {MAX_DEPTH} levels", self.span, self.col())

    # -- grammar
    def parse(self) -> sp.Basic:
        e = self.expr()
        self.skip_noise()
        if (t := self.peek()) is not None:
            raise _error(f"unexpected '{t.text}'", self.span, t.col)
        return e

    def expr(self) -> sp.Basic:
        self.nest()
        self.skip_noise()
        sign = -1 if self.at("-", "−") else 1
        if self.at("-", "−", "+"):
            self.take()
        out = sign * self.term()
        while True:
            self.skip_noise()
            if self.at("+"):
                self.take()
                out = out + self.term()
            elif self.at("-", "−"):
                self.take()
                out = out - self.term()
            else:
                break
        self.depth -= 1
        return out

    def term(self) -> sp.Basic:
        out = self.factor()
        while True:
            self.skip_noise()
            t = self.peek()
            if t is None or t.text in ("+", "-", "−", ")", "}", "]", ",", "="):
                return out
            if t.text in ("*", "·", "∘") or (t.kind == "cmd" and t.text[1:] in TIMES_COMMANDS):
                self.take()
                out = out * self.factor()
            elif t.text == "/":
                self.take()
                out = out / self.factor()
            else:
                out = out * self.factor()  # juxtaposition

    def factor(self) -> sp.Basic:
        base = self.atom()
        self.skip_noise()
        if self.at("^"):
            t = self.take()
            power = self.group_or_atom()
            if power.is_Number and (abs(power) > MAX_EXPONENT or not power.is_Rational):
                raise _error(f"exponent too large (|p| ≤ {MAX_EXPONENT})", self.span, t.col)
            return base**power
        if self.at("²"):
            self.take()
            return base**2
        return base

    def group_or_atom(self) -> sp.Basic:
        if self.at("{"):
            self.take()
            e = self.expr()
            self.expect("}")
            return e
        return self.atom()

    def atom(self) -> sp.Basic:
        self.skip_noise()
        t = self.peek()
        if t is None:
            raise _error("expected a value", self.span, self._end())
        if t.kind == "num":
            self.take()
            if len(t.text) > MAX_DIGITS:
                raise _error(f"number longer than {MAX_DIGITS} digits", self.span, t.col)
            return sp.Rational(t.text)
        if t.text in ("(", "{", "["):
            close = {"(": ")", "{": "}", "[": "]"}[t.text]
            self.take()
            e = self.expr()
            self.skip_noise()
            self.expect(close)
            return e
        if t.text in SUM_WORDS or t.text in ("\\sum",):
            return self.sum()
        if t.kind == "cmd" and t.text == "\\frac":
            self.take()
            top = self.group_or_atom()
            bottom = self.group_or_atom()
            return top / bottom
        name = t.text[1:] if t.kind == "cmd" else t.text
        if name in self.functions and not self._is_entry_name(name):
            return self.function(name)
        if name == "e" and self.text_at(1) == "^":
            self.take()
            self.take()
            return sp.exp(self.group_or_atom())
        return self.resolve(self.entry())

    def _is_entry_name(self, name: str) -> bool:
        nxt = self.peek(1)
        return nxt is not None and nxt.text == "_"

    def function(self, name: str) -> sp.Basic:
        self.take()
        op = self.functions[name]
        prime = False
        while self.at("'", "′"):
            self.take()
            prime = True
        self.skip_noise()
        if self.at("^") and self.text_at(1) in ("'", "′"):
            self.take()
            self.take()
            prime = True
        if self.at("_"):  # \sigma_{...} is not a function call
            raise _error(f"'{name}' is a function here; write {name}(…)", self.span, self.col())
        col = self.col()
        arg = self.atom_paren()
        if len(op.arity) and min(op.arity) > 1:
            raise _error(f"{name} takes {min(op.arity)} arguments; write it out", self.span, col)
        value = op.build(arg) if op.build is not None else op.node(arg)
        if not prime:
            return value
        derivative = local_partial(value, 0, self.registry)
        if derivative.has(sp.Derivative):
            raise _error(f"{name}' is not known; write it out", self.span, col)
        return derivative

    def atom_paren(self) -> sp.Basic:
        self.skip_noise()
        if not self.at("(", "{", "["):
            t = self.peek()
            raise _error(
                "expected '(' after a function name", self.span, t.col if t else self._end()
            )
        return self.atom()

    def sum(self) -> sp.Basic:
        start = self.take()
        if not self.at("_"):
            raise _error("a sum names its index: Σ_k or \\sum_k", self.span, start.col)
        self.take()
        names = self.index_group()
        if self.at("^"):  # bounds are inferred: \sum_{k=1}^{K}
            self.take()
            self.skip_group()
        self.nest()
        self.bound.extend(names)
        if len(self.bound) > MAX_SUMS:
            raise _error(f"more than {MAX_SUMS} nested sums", self.span, start.col)
        body = self.factor()
        while True:
            self.skip_noise()
            t = self.peek()
            if t is None or t.text in ("+", "-", "−", ")", "}", "]", ",", "="):
                break
            if t.text in ("*", "·", "∘") or (t.kind == "cmd" and t.text[1:] in TIMES_COMMANDS):
                self.take()
            body = body * self.factor()
        for _ in names:
            self.bound.pop()
        self.depth -= 1
        for n in reversed(names):
            body = sp.Sum(body, (index(n), 1, sp.Symbol(f"size_of_{n}")))
        return body

    def skip_group(self) -> None:
        """One token, or a balanced ``{…}``, read and ignored (a sum's upper bound)."""
        depth = 0
        while True:
            t = self.take()
            depth += (t.text == "{") - (t.text == "}")
            if depth <= 0:
                return

    def index_group(self) -> list[str]:
        """``k``, ``ki``, ``{k,i}``, ``{ki}``, ``i'`` → index names."""
        if self.at("{"):
            self.take()
            names: list[str] = []
            while not self.at("}"):
                t = self.peek()
                if t is None:
                    raise _error("unclosed '{'", self.span, self._end())
                if t.text == ",":
                    self.take()
                    continue
                if t.text == "=":  # \sum_{k=1}
                    self.take()
                    while not self.at("}") and self.peek() is not None:
                        self.take()
                    continue
                names.extend(self.index_letters())
            self.take()
            return names
        return self.index_letters()

    def index_letters(self) -> list[str]:
        t = self.take()
        if t.kind == "cmd" and t.text == "\\ell":
            letters = ["ℓ"]
        elif t.text == "ℓ":
            letters = ["ℓ"]
        elif t.kind == "name" and t.text.isalpha():
            letters = list(t.text)
        else:
            raise _error(f"expected index letters, got '{t.text}'", self.span, t.col)
        while self.at("'", "′"):
            self.take()
            letters[-1] += "′"
        return letters

    def derivative_target(self) -> Entry | None:
        """``∂L/∂w⁽¹⁾_ij``, ``dL/dW1_ij``, ``\\frac{\\partial L}{\\partial w^{(1)}_{ij}}``:
        the loss's derivative by one entry, i.e. that entry's error signal."""
        t = self.peek()
        if t is None:
            return None
        if t.text == "\\frac":
            self.take()
            self.expect("{")
            self._partial_of_loss()
            self.expect("}")
            self.expect("{")
            self._partial()
            e = self.entry()
            self.skip_noise()
            self.expect("}")
        elif t.text in ("∂", "d") or (t.kind == "name" and t.text[0] == "d" and len(t.text) > 1):
            self._partial_of_loss()
            self.expect("/")
            nxt = self.peek()
            if (
                nxt is not None
                and nxt.kind == "name"
                and nxt.text.startswith("d")
                and len(nxt.text) > 1
            ):  # dW1 as one word
                self.pos += 1
                e = Entry(nxt.text[1:], False, "", [], nxt.col + 1)
                self._entry_tail(e)
            else:
                self._partial()
                e = self.entry()
        else:
            return None
        e.bar = True
        return e

    def _partial(self) -> None:
        self.skip_noise()
        t = self.take()
        if t.text not in ("∂", "d", "\\partial"):
            raise _error("expected ∂ (or d)", self.span, t.col)

    def _partial_of_loss(self) -> None:
        """``∂L``, ``dL``, ``\\partial \\mathcal{L}``: only the loss is differentiated."""
        self.skip_noise()
        t = self.take()
        if t.kind == "name" and t.text.startswith("d") and len(t.text) > 1:
            name = t.text[1:]
        else:
            if t.text not in ("∂", "d", "\\partial"):
                raise _error("expected ∂L (or dL)", self.span, t.col)
            self.skip_noise()
            if self.at("\\mathcal"):
                self.take()
                self.expect("{")
                name = self.take().text
                self.expect("}")
            else:
                name = self.take().text
        if name not in ("L", "E", "J", "ℒ", "loss", self.loss):
            raise _error(
                f"only derivatives of the loss are checked, not of {name}", self.span, t.col
            )

    def entry(self) -> Entry:
        t = self.take()
        bar = False
        if t.kind == "cmd" and t.text in ("\\bar", "\\overline", "\\hat"):
            if t.text == "\\hat":
                raise _error("write error signals with a bar", self.span, t.col)
            bar = True
            self.expect("{")
            self.skip_noise()
            inner = self.entry_head()
            self.skip_noise()
            self.expect("}")
            inner.bar = True
            inner.col = t.col
            self._entry_tail(inner)
            return inner
        self.pos -= 1
        e = self.entry_head()
        e.bar = e.bar or bar
        return e

    def entry_head(self) -> Entry:
        self.skip_noise()
        if self.at("{"):
            self.take()
            e = self.entry_head()
            self.expect("}")
            self._entry_tail(e)
            return e
        t = self.take()
        if t.kind == "cmd" and t.text == "\\delta":
            name = "delta"
        elif t.text == "δ":
            name = "delta"
        elif t.kind == "name":
            name = t.text
        else:
            raise _error(f"expected a name, got '{t.text}'", self.span, t.col)
        e = Entry(name, False, "", [], t.col)
        if (nxt := self.peek()) is not None and nxt.kind == "bar":
            self.take()
            e.bar = True
        self._entry_tail(e)
        return e

    def _entry_tail(self, e: Entry) -> None:
        """Layer superscripts and subscripts in either order: ``^{(2)}_{ki}``, ``_{ki}^{(2)}``."""
        for _ in range(3):
            self.skip_noise()
            if self.at("^") and self._layer_ahead():
                self.take()
                e.layer = self._layer()
            elif self.at("⁽"):
                e.layer = self._layer()
            elif self.at("_"):
                self.take()
                if self.text_at(0) == "bar":
                    self.take()
                    e.bar = True
                    continue
                if e.indices:
                    raise _error("two subscripts on one name", self.span, self.col())
                e.indices = self.index_group()
            elif self.at("["):  # W2[k, i]
                self.take()
                while not self.at("]"):
                    if self.at(","):
                        self.take()
                        continue
                    e.indices.extend(self.index_letters())
                self.take()
            else:
                return

    def _layer_ahead(self) -> bool:
        a, b = self.peek(1), self.peek(2)
        return a is not None and (
            a.text == "(" or (a.text == "{" and b is not None and b.text == "(")
        )

    def _layer(self) -> str:
        if self.at("⁽"):
            self.take()
            digits = ""
            while not self.at("⁾"):
                digits += self.take().text.translate(_SUPERSCRIPT_DIGITS)
            self.take()
            return digits
        brace = self.at("{")
        if brace:
            self.take()
        self.expect("(")
        t = self.take()
        if t.kind != "num":
            raise _error("a layer number goes in ^{(…)}", self.span, t.col)
        self.expect(")")
        if brace:
            self.expect("}")
        return t.text


# ----------------------------------------------------------------- names
@dataclass
class Names:
    """Written names → model names (``w^{(2)}`` → W2, ``hbar`` → h̄, ``δ_i`` → z̄_i)."""

    program: Program
    letters: dict[str, str]

    def model_name(self, e: Entry, span: SourceSpan) -> tuple[str, bool]:
        name, bar = e.name, e.bar
        if name == "delta":
            return self.delta(e, span), True
        for suffix in ("_bar", "bar"):
            if not e.layer and name.endswith(suffix) and len(name) > len(suffix):
                stem = name[: -len(suffix)]
                if self._find(stem) is not None:
                    name, bar = stem, True
                    break
        full = name + e.layer
        found = self._find(full)
        if found is None:
            raise _error(f"unknown name '{full}'", span, e.col, "names come from the model")
        return found, bar

    def _find(self, name: str) -> str | None:
        names = [v.name for v in self.program.variables] + [
            a.name for a in self.program.assignments
        ]
        if name in names:
            return name
        matches = [n for n in names if n.lower() == name.lower()]
        return matches[0] if len(matches) == 1 else None

    def delta(self, e: Entry, span: SourceSpan) -> str:
        """δ_i: the error signal of the affine node indexed by i (z̄ in the MLP)."""
        letter = e.indices[0].rstrip("′") if e.indices else ""
        candidates = []
        for a in self.program.assignments:
            if not a.shape or self.letters.get(str(a.shape[0])) != letter:
                continue
            if e.layer and not a.name.endswith(e.layer):
                continue
            if a.expr.has(sp.MatMul):
                candidates.append(a.name)
        if len(candidates) != 1:
            raise _error(
                f"cannot tell which error signal δ_{letter} is",
                span,
                e.col,
                "write the bar form instead, e.g. \\bar{z}_i",
            )
        return candidates[0]


def _shape2(program: Program, name: str) -> tuple[Any, ...]:
    return tuple(program[name].shape)


# ----------------------------------------------------------------- reading
@dataclass
class IndexAnswer(Answer):
    """An answer in index notation; ``Answer``'s readers find it as a subclass."""

    @classmethod
    def reads(cls, text: str, program: Program) -> bool:
        return is_index_answer(text, program)

    @classmethod
    def parse(cls, text: str, filename: str, program: Program, fmt: str) -> Answer:
        return parse_index_answer(text, filename, program, fmt)

    def check_lines(self, truth: Any) -> Iterator[Any]:
        return check_index_lines(truth, self)


def parse_index_answer(text: str, filename: str, program: Program, fmt: str) -> Answer:
    """Every line of an index-notation answer (a bad line is recorded, never raised)."""
    from .answers import _content

    answer = IndexAnswer(filename, f"index-{fmt}")
    names = Names(program, lecture_letters(program))
    for line_no, raw in enumerate(text.splitlines(), start=1):
        code = _content(raw, "latex" if fmt == "latex" else "text")
        if fmt != "latex":
            code = code.split("%")[0].strip()
        if not code:
            continue
        span = SourceSpan(filename, line_no, 1, raw if len(raw) <= 1000 else raw[:1000])
        if len(raw) > 5_000:
            err = _error("line is too long (5,000 characters at most)", span, 1)
            answer.lines.append(IndexAnswerLine(line_no, "", None, err, raw[:200]))
            continue
        answer.lines.append(_parse_line(code, raw, span, names))
        if len(answer.lines) > 1_000:
            answer.error = _error("more than 1,000 answer lines", span, 1)
            break
    if not answer.lines:
        answer.error = ModelError("the answer is empty", SourceSpan(filename, 1, 1))
    return answer


def _parse_line(code: str, raw: str, span: SourceSpan, names: Names) -> IndexAnswerLine:
    offset = raw.find(code[:20]) if code[:20] in raw else 0
    span = SourceSpan(span.file, span.line, 1, span.text)
    target_text = code.split("=")[0].strip() if "=" in code else code
    node: str | None = None
    try:
        toks = tokenize(code, span)
        toks = [Tok(t.kind, t.text, t.col + offset) for t in toks]
        eqs = _top_level_equals(toks)
        if not eqs:
            raise _error("expected 'target = expression' (e.g. \\bar{h}_i = …)", span, 1)
        spans: dict[sp.Basic, int] = {}

        def resolve(e: Entry) -> sp.Basic:
            name, bar = names.model_name(e, span)
            label = f"{name}_bar" if bar else name
            dims = [d for d in _shape2(names.program, name)]
            if len(e.indices) != len(dims):
                raise _error(
                    f"{_written(e)} has {len(e.indices)} index(es); "
                    f"{name} has {len(dims)} (shape {tuple(dims)})",
                    span,
                    e.col,
                )
            if not dims:
                return sp.Symbol(label, real=True)
            out = sp.IndexedBase(label, real=True)[tuple(index(i) for i in e.indices)]
            spans.setdefault(out, e.col)
            return out

        target_parser = IndexParser(
            toks[: eqs[0]], span, resolve, names.program.loss, names.program.functions
        )
        target = target_parser.derivative_target() or target_parser.entry()
        if (t := target_parser.peek()) is not None:
            raise _error(f"unexpected '{t.text}' in the target", span, t.col)
        node, bar = names.model_name(target, span)
        if not bar:
            raise _error(
                f"'{_written(target)}' is a model value; name its error signal (a bar)",
                span,
                target.col,
            )
        if len(target.indices) != len(_shape2(names.program, node)):
            raise _error(
                f"{_written(target)} needs {len(_shape2(names.program, node))} indices",
                span,
                target.col,
            )
        rhs = IndexParser(
            toks[eqs[-1] + 1 :], span, resolve, names.program.loss, names.program.functions
        ).parse()
    except ModelError as exc:  # the target is kept when it was read (for "missing")
        return IndexAnswerLine(span.line, target_text, node, exc, raw)
    return IndexAnswerLine(
        span.line,
        target_text,
        node,
        None,
        raw,
        tuple(index(i) for i in target.indices),
        rhs,
        spans,
    )


def _top_level_equals(toks: list[Tok]) -> list[int]:
    """Positions of ``=`` outside braces (``\\sum_{k=1}`` holds one that is no equation)."""
    out, depth = [], 0
    for k, t in enumerate(toks):
        if t.text in ("{", "(", "["):
            depth += 1
        elif t.text in ("}", ")", "]"):
            depth -= 1
        elif t.text == "=" and depth == 0:
            out.append(k)
    return out


def _written(e: Entry) -> str:
    bar = "̄" if e.bar else ""
    layer = f"⁽{e.layer}⁾" if e.layer else ""
    sub = "_" + "".join(e.indices) if e.indices else ""
    return unicodedata.normalize("NFC", f"{e.name[0]}{bar}{e.name[1:]}{layer}{sub}")


# ----------------------------------------------------------------- judging
@dataclass
class Ranges:
    """Which size each index runs over, from its uses; the first conflict found."""

    sizes: dict[Index, str] = field(default_factory=dict)
    conflict: tuple[sp.Indexed, Index, str, str] | None = None


def _ranges(program: Program, target: sp.Basic, indices: tuple, rhs: sp.Basic) -> Ranges:
    out = Ranges()
    for i, d in zip(indices, program[str(target)].shape, strict=True):
        out.sizes[i] = str(d)
    for ent in sorted(rhs.atoms(sp.Indexed), key=sp.default_sort_key):
        label = str(ent.base)
        name = label[: -len("_bar")] if label.endswith("_bar") else label
        for i, d in zip(ent.indices, program[name].shape, strict=True):
            size = str(d)
            if i in out.sizes and out.sizes[i] != size and out.conflict is None:
                out.conflict = (ent, i, out.sizes[i], size)
            out.sizes.setdefault(i, size)
    return out


def _free_indices(e: sp.Basic) -> set[Index]:
    return {s for s in e.free_symbols if isinstance(s, Index)}


def _with_sizes(rhs: sp.Basic, sizes: dict[Index, str]) -> sp.Basic:
    def fix(s: sp.Sum) -> sp.Sum:
        (j, lo, _), *more = s.limits
        return sp.Sum(s.function, (j, lo, sp.Symbol(sizes.get(j, "1"))), *more)

    return rhs.replace(lambda x: isinstance(x, sp.Sum), fix)


@dataclass
class IndexTruth:
    """True values (forward, error signals) at random points on two sets of sizes."""

    program: Program
    cases: list[tuple[dict[str, int], dict[str, Any]]] = field(default_factory=list)

    @classmethod
    def of(cls, program: Program, seeds: tuple[int, ...] = (0, 1)) -> IndexTruth:
        from ..derive.sizes import concrete_sizes, unbound_sizes
        from ..derive.vector import vector_backprop
        from ..numeric.vector_eval import backward_values, random_point

        truth = cls(program)
        matrix = vector_backprop(program)
        free = unbound_sizes(program)
        pools = [(3, 2, 4, 5, 6), (4, 5, 2, 3, 6)]
        for seed in seeds:
            pool = pools[seed % len(pools)]
            given = {n: pool[k % len(pool)] for k, n in enumerate(free)}
            sizes = concrete_sizes(program, given)
            point = random_point(program, sizes, seed=seed)
            fwd, signals, _ = backward_values(matrix, point)
            values: dict[str, Any] = {k: np.asarray(v, dtype=float) for k, v in point.items()}
            values |= {k: np.asarray(v, dtype=float) for k, v in fwd.items()}
            values |= {f"{k}_bar": np.asarray(v, dtype=float) for k, v in signals.items()}
            for c in program.consts:
                if not isinstance(c.value, list):
                    values[c.name] = np.asarray(float(c.value))  # type: ignore[arg-type]
            truth.cases.append((sizes, values))
        return truth


def _evaluate(
    truth: IndexTruth, node: str, indices: tuple, rhs: sp.Basic
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(student, expected) arrays over every case."""
    from ..numeric.index_eval import IndexEvaluator

    out = []
    for sizes, values in truth.cases:
        ev = IndexEvaluator(values, sizes)
        expected = np.asarray(values[f"{node}_bar"], dtype=float)
        got = np.zeros(expected.shape)
        for pos in itertools.product(*(range(1, n + 1) for n in expected.shape)):
            got[tuple(p - 1 for p in pos)] = ev(rhs, dict(zip(indices, pos, strict=True)))
        out.append((got, expected))
    return out


def _agrees(pairs: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    for got, exp in pairs:
        den = np.abs(got) + np.abs(exp)
        err = np.where(den > 1e-12, np.abs(got - exp) / np.where(den > 0, den, 1), 0.0)
        if not np.all(np.isfinite(got)) or np.max(err, initial=0.0) > RTOL:
            return False
    return True


def _swaps(rhs: sp.Basic) -> Iterator[tuple[sp.Indexed, sp.Basic]]:
    """Each two-index entry of ``rhs`` with its indices swapped, one at a time."""
    for ent in sorted(rhs.atoms(sp.Indexed), key=sp.default_sort_key):
        if len(ent.indices) == 2 and ent.indices[0] != ent.indices[1]:
            swapped = ent.base[ent.indices[1], ent.indices[0]]
            yield ent, rhs.xreplace({ent: swapped})


def judge_line(truth: IndexTruth, al: IndexAnswerLine) -> tuple[str, str, dict | None]:
    """(status, message, counterexample) of one parsed index line."""
    from ..reports.index_notation import index_unicode

    program = truth.program
    node, rhs, indices = al.node or "", al.rhs, al.target_indices
    assert rhs is not None
    target = sp.Symbol(node)
    low = {v.name for v in program.variables if len(v.shape) == 2}
    stray = _free_indices(rhs) - set(indices)
    if stray:
        names = ", ".join(sorted(str(s) for s in stray))
        return "incorrect", f"index {names} is neither summed (Σ) nor on the left-hand side", None
    used = {i for ent in rhs.atoms(sp.Indexed) for i in ent.indices}
    idle = sorted(str(s.limits[0][0]) for s in rhs.atoms(sp.Sum) if s.limits[0][0] not in used)
    if idle:
        return "incorrect", f"the sum over {idle[0]} runs over nothing indexed by {idle[0]}", None
    candidates = [(None, rhs)] + list(_swaps(rhs))
    for target_swap in (False, True):
        idx = indices[::-1] if target_swap else indices
        if target_swap and (len(indices) != 2 or indices[0] == indices[1]):
            continue
        for swapped, expr in candidates:
            if target_swap and swapped is not None:
                continue
            r = _ranges(program, target, idx, expr)
            if r.conflict is not None:
                continue
            pairs = _evaluate(truth, node, idx, _with_sizes(expr, r.sizes))
            if not _agrees(pairs):
                continue
            if swapped is None and not target_swap:
                return "correct", "correct (at symbolic sizes; checked at two sets of sizes)", None
            where = (
                f"{index_unicode(swapped, low)} should be "
                f"{index_unicode(swapped.base[swapped.indices[1], swapped.indices[0]], low)}"
                if swapped is not None
                else f"exchange {indices[0]} and {indices[1]} on one side of the line"
            )
            return "incorrect", f"indices swapped (a missing transpose): {where}", None
    r = _ranges(program, target, indices, rhs)
    if r.conflict is not None:
        ent, i, a, b = r.conflict
        return (
            "incorrect",
            f"index {i} runs over {a} on one side but over {b} in {index_unicode(ent, low)}",
            None,
        )
    pairs = _evaluate(truth, node, indices, _with_sizes(rhs, r.sizes))
    got, exp = pairs[0]
    sizes = truth.cases[0][0]
    pos = np.unravel_index(int(np.argmax(np.abs(got - exp))), exp.shape) if exp.shape else ()
    cx = {
        "point": {"sizes": ", ".join(f"{k}={v}" for k, v in sizes.items())},
        "expected": float(exp[pos]),
        "student": float(got[pos]),
        "relative_error": float(abs(got[pos] - exp[pos]) / (abs(got[pos]) + abs(exp[pos]) or 1)),
    }
    if np.allclose(got, -exp):
        return "incorrect", "sign error: the value is the negative of the correct one", cx
    return "incorrect", "does not match the correct value", cx


def check_index_lines(truth: Any, answer: Answer) -> Iterator[Any]:
    """Line results of an index-notation answer (the hook of ``iter_check``)."""
    from .check import LineResult, _unparseable

    itruth = IndexTruth.of(truth.program)
    for al in answer.lines:
        assert isinstance(al, IndexAnswerLine)
        target = truth.target_name(al.node) if al.node else al.target_text
        if al.error is not None:
            yield _unparseable(al, target, al.error)
            continue
        try:
            status, message, cx = judge_line(itruth, al)
        except (ArithmeticError, KeyError, ValueError, TypeError, IndexError) as exc:
            status, message, cx = "incorrect", f"cannot be evaluated ({type(exc).__name__})", None
        yield LineResult(al.line, target, status, message, cx)
