"""Exercise templates: a ``.chain`` model with ``vary NAME in A, B, …`` lines.

A template is the model language plus ``vary`` lines. Each ``vary`` line names a
placeholder and its choices: a function name (``sigma``), a number (``0.1``, ``3``, a size
in a shape), or an expression (``sum((y - t)^2)/2``). A variant picks one choice per line
and substitutes it **token by token** into the rest of the text: only whole ``NAME`` tokens
equal to the placeholder change (``f(z)`` → ``tanh(z)``, ``W1[m, n]`` → ``W1[3, n]``), an
expression goes in parenthesised, a negative number as ``(-1)``. The result is parsed as an
ordinary model; an error in a variant is reported at the template's line and column.

Lines are read with the model grammar's tokenizer (:mod:`chainrule.symbolic.grammar`):
nothing is evaluated.

>>> t = parse_template("vary f in sigma, tanh\\nparam w\\ninput x\\ny = f(w*x)\\nloss y")
>>> t.count, t.variant_text(1).splitlines()[-2]
(2, 'y = tanh(w*x)')
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..symbolic import grammar as g
from ..symbolic.build import build_program
from ..symbolic.errors import LimitError, ModelError, SourceSpan
from ..symbolic.program import Program

#: At most this many choices on one ``vary`` line, ``vary`` lines, and variants in all.
MAX_CHOICES = 100
MAX_VARY_LINES = 32
MAX_VARIANTS = 10_000_000
#: Templates with at most this many variants have every variant parsed when validated.
MAX_VALIDATED = 2_000

_VARY_RE = re.compile(r"^\s*vary\s+[A-Za-z_]")


@dataclass(frozen=True)
class Choice:
    """One value of a ``vary`` line, as written and as substituted."""

    written: str  # "tanh", "0.1", "sum((y - t)^2)/2"
    text: str  # what replaces the placeholder: "tanh", "0.1", "(sum((y - t)^2)/2)"
    kind: str  # "name" | "number" | "expression"
    span: SourceSpan


@dataclass(frozen=True)
class Vary:
    """A ``vary NAME in A, B, …`` line."""

    name: str
    choices: tuple[Choice, ...]
    span: SourceSpan


@dataclass
class Template:
    """A parsed template: its ``vary`` lines and the model text around them."""

    filename: str
    source: str
    varies: tuple[Vary, ...]
    lines: list[str] = field(default_factory=list)  # the source lines, vary lines included
    limits: g.Limits = g.DEFAULT_LIMITS

    @property
    def count(self) -> int:
        """The number of variants (the product of the choice counts)."""
        return math.prod(len(v.choices) for v in self.varies)

    def choices(self, index: int) -> dict[str, Choice]:
        """The choice of every placeholder in variant ``index`` (first line varies slowest)."""
        if not 0 <= index < self.count:
            raise IndexError(f"variant {index} of {self.count}")
        picked: dict[str, Choice] = {}
        for v in reversed(self.varies):
            index, k = divmod(index, len(v.choices))
            picked[v.name] = v.choices[k]
        return {v.name: picked[v.name] for v in self.varies}

    def describe(self, index: int) -> dict[str, str]:
        """``{placeholder: choice as written}`` of variant ``index``."""
        return {k: c.written for k, c in self.choices(index).items()}

    def _substituted(self, index: int) -> list[tuple[str, list[int]]]:
        """Each line of variant ``index`` (vary lines blank) with its template columns."""
        picked = self.choices(index)
        out = []
        for line_no, raw in enumerate(self.lines, start=1):
            if _VARY_RE.match(raw):
                out.append(("", [1]))
                continue
            out.append(_substitute_line(raw, picked, self.filename, line_no))
        return out

    def variant_text(self, index: int, keep_vary_lines: bool = False) -> str:
        """The model text of variant ``index``; ``vary`` lines are left out (or blank,
        with ``keep_vary_lines``, so that line numbers match the template)."""
        lines = []
        for raw, (text, _) in zip(self.lines, self._substituted(index), strict=True):
            if _VARY_RE.match(raw):
                if keep_vary_lines:
                    lines.append("")
                continue
            lines.append(text)
        return "\n".join(lines) + "\n"

    def variant(self, index: int, filename: str = "model.chain") -> Program:
        """Variant ``index`` as a program (errors located in the template)."""
        subs = self._substituted(index)
        text = "\n".join(t for t, _ in subs) + "\n"
        try:
            program = build_program(g.parse_text(text, self.filename, self.limits), self.limits)
        except ModelError as exc:
            raise self._located(exc, index, subs) from None
        # the program a student sees: vary lines dropped, named model.chain
        program.filename = filename
        program.source = self.variant_text(index)
        return program

    def _located(
        self, exc: ModelError, index: int, subs: list[tuple[str, list[int]]]
    ) -> ModelError:
        span = exc.span
        if span.file == self.filename and 1 <= span.line <= len(self.lines):
            cols = subs[span.line - 1][1]
            col = cols[min(max(span.column, 1), len(cols)) - 1]
            span = SourceSpan(self.filename, span.line, col, self.lines[span.line - 1])
        where = ", ".join(f"{k} = {c}" for k, c in self.describe(index).items())
        return type(exc)(f"{exc.message} (in the variant {where})", span, exc.hint)

    def validate(self, students: int | None = None) -> list[str]:
        """Parse every variant (up to :data:`MAX_VALIDATED`; raises the first error) and
        return warnings: unused placeholders, fewer distinct variants than students."""
        warnings = []
        for v in self.varies:
            if not any(_uses(line, v.name) for line in self.lines if not _VARY_RE.match(line)):
                warnings.append(f"{v.span}: warning: '{v.name}' is never used in the model")
        n = self.count
        for i in range(min(n, MAX_VALIDATED)):
            self.variant(i)
        if n > MAX_VALIDATED:
            warnings.append(
                f"{self.filename}: note: {n:,} variants; the first {MAX_VALIDATED:,} were "
                "parsed (every student's own variant is parsed when it is written)"
            )
        distinct = self.distinct()
        if students is not None and distinct < students:
            warnings.append(
                f"{self.filename}: warning: {distinct} distinct variant"
                f"{'s' if distinct != 1 else ''} for {students} students: some students "
                "share a variant"
            )
        return warnings

    def distinct(self) -> int:
        """How many variants differ in their text (every variant when there are many)."""
        if self.count > MAX_VALIDATED:
            return self.count
        return len({self.variant_text(i) for i in range(self.count)})


# ------------------------------------------------------------------ parsing
def load_template(path: str | Path, limits: g.Limits = g.DEFAULT_LIMITS) -> Template:
    """Read a template file (UTF-8), named in errors as given."""
    return parse_template(g.read_source(path, "template", limits), str(path), limits)


def parse_template(
    text: str, filename: str = "<template>", limits: g.Limits = g.DEFAULT_LIMITS
) -> Template:
    """Read the ``vary`` lines of a template; the rest is checked when variants parse."""
    if len(text) > limits.max_chars:
        raise LimitError(
            f"input is {len(text):,} characters; the limit is {limits.max_chars:,}",
            SourceSpan(filename, 1, 1),
        )
    lines = text.splitlines()
    varies: list[Vary] = []
    for line_no, raw in enumerate(lines, start=1):
        if _VARY_RE.match(raw):
            vary = _parse_vary(raw, filename, line_no, limits)
            if any(v.name == vary.name for v in varies):
                raise ModelError(f"'{vary.name}' is varied twice", vary.span)
            varies.append(vary)
    if len(varies) > MAX_VARY_LINES:
        raise LimitError(f"more than {MAX_VARY_LINES} vary lines", varies[-1].span)
    template = Template(filename, text, tuple(varies), lines, limits)
    if template.count > MAX_VARIANTS:
        raise LimitError(
            f"{template.count:,} variants; the limit is {MAX_VARIANTS:,}", varies[-1].span
        )
    return template


SpanOf = Callable[[int], SourceSpan]


def _spans(raw: str, code: str, filename: str, line_no: int) -> tuple[str, list[int], SpanOf]:
    norm, cols = g.normalize_with_columns(code)

    def span_of(col: int) -> SourceSpan:
        return SourceSpan(filename, line_no, cols[min(col - 1, len(cols) - 1)], raw)

    return norm, cols, span_of


def _parse_vary(raw: str, filename: str, line_no: int, limits: g.Limits) -> Vary:
    code = raw.split("#", 1)[0]
    if len(raw) > limits.max_line_chars:
        raise LimitError(
            f"line is {len(raw):,} characters; the limit is {limits.max_line_chars:,}",
            SourceSpan(filename, line_no, 1, raw[:200]),
        )
    norm, _, span_of = _spans(raw, code, filename, line_no)
    tokens = g.tokenize(norm, span_of)
    usage = "write 'vary NAME in A, B, …' (functions, numbers or expressions)"
    if len(tokens) < 4 or tokens[1].kind != "NAME" or tokens[2].text != "in":
        raise ModelError("expected 'vary NAME in A, B, …'", span_of(tokens[0].col), usage)
    name = tokens[1].text
    if name in g.KEYWORDS or name in ("vary", "in"):
        raise ModelError(f"'{name}' is a keyword", span_of(tokens[1].col))
    groups = _split_choices(tokens[3:-1], span_of)
    if len(groups) > MAX_CHOICES:
        raise LimitError(f"more than {MAX_CHOICES} choices", span_of(tokens[3].col))
    choices: list[Choice] = []
    for group in groups:
        choice = _choice(group, norm, span_of, limits)
        if any(c.text == choice.text for c in choices):
            raise ModelError(f"'{choice.written}' is listed twice", choice.span)
        choices.append(choice)
    return Vary(name, tuple(choices), span_of(tokens[1].col))


def _split_choices(tokens: list[g.Token], span_of: SpanOf) -> list[list[g.Token]]:
    groups: list[list[g.Token]] = [[]]
    depth = 0
    for t in tokens:
        if t.kind == "OP" and t.text in "([":
            depth += 1
        elif t.kind == "OP" and t.text in ")]":
            depth -= 1
        if t.kind == "OP" and t.text == "," and depth == 0:
            if not groups[-1]:
                raise ModelError("empty choice", span_of(t.col))
            groups.append([])
            continue
        groups[-1].append(t)
    if not groups[-1]:
        end = tokens[-1].col + len(tokens[-1].text) if tokens else 1
        raise ModelError("expected a choice after ','", span_of(end))
    return groups


def _choice(group: list[g.Token], norm: str, span_of: SpanOf, limits: g.Limits) -> Choice:
    first, last = group[0], group[-1]
    written = norm[first.col - 1 : last.col - 1 + len(last.text)]
    span = span_of(first.col)
    if len(group) == 1 and first.kind == "NAME":
        if first.text in g.KEYWORDS:
            raise ModelError(f"'{first.text}' is a keyword", span)
        return Choice(written, first.text, "name", span)
    if len(group) == 1 and first.kind == "NUM":
        return Choice(written, first.text, "number", span)
    if len(group) == 2 and first.text == "-" and last.kind == "NUM":
        return Choice(written, f"(-{last.text})", "number", span)
    end = g.Token("END", "", last.col + len(last.text))
    g.ExprParser([*group, end], span_of, limits).parse_to_end()  # a valid expression?
    return Choice(written, f"({written})", "expression", span)


def _uses(raw: str, name: str) -> bool:
    code = raw.split("#", 1)[0]
    return any(t.kind == "NAME" and t.text == name for t in _tokens_or_empty(code))


def _tokens_or_empty(code: str) -> list[g.Token]:
    norm = g.normalize_text(code)
    try:
        return g.tokenize(norm, lambda col: SourceSpan())
    except ModelError:
        return []


def _substitute_line(
    raw: str, picked: dict[str, Choice], filename: str, line_no: int
) -> tuple[str, list[int]]:
    """The line with placeholders replaced; per output column, the template column."""
    idx = raw.find("#")
    code, comment = (raw, "") if idx < 0 else (raw[:idx], raw[idx:])
    if not any(name in code for name in picked):
        return raw, list(range(1, len(raw) + 2))
    norm, cols, span_of = _spans(raw, code, filename, line_no)
    tokens = g.tokenize(norm, span_of)
    out: list[str] = []
    out_cols: list[int] = []
    pos = 0
    for i, t in enumerate(tokens):
        if t.kind != "NAME" or t.text not in picked:
            continue
        start = t.col - 1
        out.append(norm[pos:start])
        out_cols.extend(cols[pos:start])
        value = picked[t.text].text
        whole = i > 0 and tokens[i - 1].text == "=" and tokens[i + 1].kind == "END"
        if whole and picked[t.text].kind != "name":  # the whole right-hand side: no parentheses
            value = picked[t.text].written
        out.append(value)
        out_cols.extend([cols[start]] * len(value))
        pos = start + len(t.text)
    out.append(norm[pos:])
    out_cols.extend(cols[pos : len(norm)])
    tail = len(raw) - len(comment) + 1
    out.append(comment)
    out_cols.extend(range(tail, tail + len(comment) + 1))
    return "".join(out), out_cols
