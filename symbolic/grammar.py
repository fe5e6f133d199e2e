"""The text grammar of ``.chain`` models (and of plain-text student answers).

A hand-written tokenizer and recursive-descent parser: no ``eval``, no ``sympify``,
bounded by :class:`Limits`. It produces a small syntax tree (:class:`Expr` nodes with
source spans); :mod:`chainrule.symbolic.build` turns that tree into SymPy objects.

Expression grammar (lowest precedence first)::

    expr    := sum
    sum     := product (('+' | '-') product)*
    product := unary (('*' | '/' | '@') unary)*
    unary   := ('-' | '+') unary | power
    power   := postfix (('^' | '**') unary)?          # right-associative
    postfix := atom ('.T' | '^T' | "'" '(' args ')')*
    atom    := NUMBER | NAME | NAME '(' args ')' | '(' expr ')' | '[' items ']'

Statements, one per line (``#`` starts a comment)::

    param w, b            input x[n], t        const lambda = 0.01
    z = w*x + b           c += 1               loss L
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..ops import REGISTRY
from .errors import LimitError, ModelError, SourceSpan


@dataclass(frozen=True)
class Limits:
    """Bounds that keep parsing (and everything after it) small and fast."""

    max_chars: int = 200_000  # whole text
    max_line_chars: int = 5_000
    max_depth: int = 100  # nesting of parentheses / operators
    max_exponent: int = 64  # |integer exponent| of a power
    max_number_digits: int = 30
    max_statements: int = 20_000
    max_entries: int = 10_000_000  # entries of one declared array (80 MB in float64)


DEFAULT_LIMITS = Limits()


# ----------------------------------------------------------------------------- tree
@dataclass(frozen=True)
class Expr:
    span: SourceSpan = field(compare=False, repr=False)


@dataclass(frozen=True)
class Num(Expr):
    text: str  # the literal as written ("0.01", "3")


@dataclass(frozen=True)
class Name(Expr):
    id: str


@dataclass(frozen=True)
class Call(Expr):
    func: str
    args: tuple[Expr, ...]
    prime: bool = False  # sigma'(z)
    keywords: tuple[tuple[str, Expr], ...] = ()  # conv2d(X, K, stride=2)


@dataclass(frozen=True)
class BinOp(Expr):
    op: str  # one of + - * / @ ^
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Neg(Expr):
    operand: Expr


@dataclass(frozen=True)
class Transpose(Expr):
    operand: Expr


@dataclass(frozen=True)
class ArrayLit(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Word(Expr):
    """A quoted option word, e.g. ``"valid"`` in ``conv(x, w, "valid")``."""

    text: str  # without the quotes


# ------------------------------------------------------------------------ statements
@dataclass(frozen=True)
class Declared:
    """One name in a ``param``/``input``/``const`` line, e.g. ``W1[m, n]``."""

    name: str
    dims: tuple[int | str, ...]
    value: Expr | None
    span: SourceSpan


@dataclass(frozen=True)
class Declaration:
    kind: str  # "param" | "input" | "const"
    names: tuple[Declared, ...]
    span: SourceSpan


@dataclass(frozen=True)
class Assign:
    target: str
    op: str  # "=" or "+=", "-=", "*=", "/="
    value: Expr
    span: SourceSpan


@dataclass(frozen=True)
class BatchDecl:
    """``batch B``: the size B counts the examples of a whole-minibatch program."""

    name: str
    span: SourceSpan


@dataclass(frozen=True)
class LossDecl:
    name: str
    span: SourceSpan


@dataclass(frozen=True)
class FuncDef:
    """``def swish(z) = z*sigma(z)``, optionally with ``, swish'(z) = …`` (declared)."""

    name: str
    params: tuple[str, ...]
    body: Expr
    span: SourceSpan
    derivative: Expr | None = None
    derivative_params: tuple[str, ...] = ()
    derivative_span: SourceSpan | None = None


Statement = Declaration | Assign | LossDecl | FuncDef | BatchDecl


@dataclass
class ParsedText:
    """A parsed ``.chain`` text: its statements and leading comment (the title)."""

    statements: list[Statement]
    title: str
    filename: str
    source: str


# ------------------------------------------------------------------------- tokens
@dataclass(frozen=True)
class Token:
    kind: str  # NUM NAME OP WORD END
    text: str
    col: int  # 1-based


_TOKEN_RE = re.compile(
    r"(?P<ws>[ \t]+)"
    r"|(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r'|(?P<word>"[A-Za-z_][A-Za-z0-9_]{0,31}")'
    r"|(?P<op>\*\*|\+=|-=|\*=|/=|\.T\b|[-+*/^@()\[\],=.'])"
)

KEYWORDS = {"param", "params", "input", "inputs", "const", "consts", "loss", "def"}

# Characters people paste from slides, mapped before tokenizing.
_UNICODE_OPERATORS = {
    "\u2212": "-",  # minus sign
    "\u2013": "-",
    "\u00b7": "*",  # middle dot
    "\u22c5": "*",
    "\u00d7": "*",
    "\u2218": "*",  # ∘ (Hadamard: elementwise product)
    "\u2299": "*",
    "\u00b2": "^2",
    "\u00b3": "^3",
    "\u1d40": ".T",  # ᵀ
    "\u2032": "'",  # prime
    "\u03bb": "lambda",
    "\u03b1": "alpha",
    "\u03b2": "beta",
    "\u03b3": "gamma",
    "\u03b7": "eta",
}


#: One-character function symbols from the registry (σ → sigma).
_FUNCTION_SYMBOLS = {
    s: op.name for op in REGISTRY for s in op.answer_spellings if len(s) == 1 and not s.isascii()
}


def normalize_text(text: str) -> str:
    """Map slide punctuation to ASCII and apply NFKC (so full-width ``ｘ`` is ``x``)."""
    return normalize_with_columns(text)[0]


def normalize_with_columns(text: str) -> tuple[str, list[int]]:
    """:func:`normalize_text`, plus the original 1-based column of each output character
    (one extra entry for the end), so errors point into the line as the user wrote it."""
    out: list[str] = []
    cols: list[int] = []
    for i, ch in enumerate(text, start=1):
        rep = _UNICODE_OPERATORS.get(ch) or _FUNCTION_SYMBOLS.get(ch)
        if rep is None:
            rep = unicodedata.normalize("NFKC", ch) if ord(ch) > 127 else ch
        out.append(rep)
        cols.extend([i] * len(rep))
    cols.append(len(text) + 1)
    return "".join(out), cols


def _column_mapper(cols: list[int]):  # noqa: ANN202
    def original(col: int) -> int:
        return cols[min(col - 1, len(cols) - 1)] if col >= 1 else col

    return original


def _non_ascii_error(ch: str, span: SourceSpan) -> ModelError:
    try:
        uname = unicodedata.name(ch)
    except ValueError:
        uname = "unnamed character"
    hint = "identifiers are ASCII letters, digits and '_'"
    if "CYRILLIC" in uname or "GREEK" in uname:
        hint += " (a look-alike letter from another alphabet is a different name)"
    return ModelError(f"character {ch!r} (U+{ord(ch):04X} {uname}) is not allowed", span, hint)


def tokenize(line: str, span_of) -> list[Token]:  # noqa: ANN001 - span_of(col) -> SourceSpan
    """Split one (normalized) line into tokens; comments are already removed."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(line):
        m = _TOKEN_RE.match(line, pos)
        if m is None:
            ch = line[pos]
            if ord(ch) > 127:
                raise _non_ascii_error(ch, span_of(pos + 1))
            raise ModelError(f"unexpected character {ch!r}", span_of(pos + 1))
        kind = m.lastgroup
        if kind != "ws":
            text = m.group()
            if kind == "num" and pos + len(text) < len(line):
                nxt = line[pos + len(text)]
                if nxt.isalpha() or nxt == "_":
                    raise ModelError(
                        f"a number followed by a name: {text}{nxt}…",
                        span_of(pos + 1),
                        f"write the product explicitly, e.g. {text}*{nxt}",
                    )
            tokens.append(
                Token(
                    {"num": "NUM", "name": "NAME", "op": "OP", "word": "WORD"}[kind or ""],
                    text,
                    pos + 1,
                )
            )
        pos = m.end()
    tokens.append(Token("END", "", len(line) + 1))
    return tokens


# ------------------------------------------------------------------------- parser
class ExprParser:
    """Recursive-descent parser for one line's tokens."""

    def __init__(self, tokens: list[Token], span_of, limits: Limits = DEFAULT_LIMITS) -> None:  # noqa: ANN001
        self.tokens = tokens
        self.i = 0
        self.span_of = span_of
        self.limits = limits
        self.depth = 0

    # -- token helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def at(self, *texts: str) -> bool:
        return self.tok.kind == "OP" and self.tok.text in texts

    def take(self) -> Token:
        t = self.tok
        self.i += 1
        return t

    def expect(self, text: str, what: str = "") -> Token:
        if not self.at(text):
            found = self.tok.text or "end of line"
            raise ModelError(f"expected {what or repr(text)}, found {found!r}", self.here())
        return self.take()

    def here(self) -> SourceSpan:
        return self.span_of(self.tok.col)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > self.limits.max_depth:
            raise LimitError(
                f"expression nested deeper than {self.limits.max_depth} levels", self.here()
            )

    @contextmanager
    def deeper(self) -> Iterator[None]:
        """One level of nesting (limited by ``max_depth``) for the block: ``with
        self.deeper(): inner = self.parse_expr()``."""
        self.enter()
        try:
            yield
        finally:
            self.depth -= 1

    # -- grammar
    def parse_expr(self) -> Expr:
        with self.deeper():
            return self.parse_sum()

    def parse_sum(self) -> Expr:
        left = self.parse_product()
        while self.at("+", "-"):
            op = self.take()
            right = self.parse_product()
            left = BinOp(self.span_of(op.col), op.text, left, right)
        return left

    def parse_product(self) -> Expr:
        left = self.parse_unary()
        while self.at("*", "/", "@"):
            op = self.take()
            right = self.parse_unary()
            left = BinOp(self.span_of(op.col), op.text, left, right)
        return left

    def parse_unary(self) -> Expr:
        if self.at("-", "+"):
            op = self.take()
            with self.deeper():
                operand = self.parse_unary()
            return Neg(self.span_of(op.col), operand) if op.text == "-" else operand
        return self.parse_power()

    def parse_power(self) -> Expr:
        base = self.parse_postfix()
        if self.at("^", "**"):
            op = self.take()
            with self.deeper():
                exponent = self.parse_unary()
            return BinOp(self.span_of(op.col), "^", base, exponent)
        return base

    def parse_postfix(self) -> Expr:
        node = self.parse_atom()
        while True:
            if self.at(".T"):
                node = Transpose(self.span_of(self.take().col), node)
            elif (
                self.at("^")
                and self.peek().kind == "NAME"
                and self.peek().text == "T"
                and (self.peek(2).kind == "END" or self.peek(2).text not in ("(",))
            ):
                col = self.take().col
                self.take()
                node = Transpose(self.span_of(col), node)
            else:
                return node

    def parse_args(self) -> tuple[Expr, ...]:
        return self.parse_call_args()[0]

    def parse_call_args(self) -> tuple[tuple[Expr, ...], tuple[tuple[str, Expr], ...]]:
        """``(a, b, name=value, …)``: positional arguments, then keyword ones."""
        self.expect("(")
        args: list[Expr] = []
        keywords: list[tuple[str, Expr]] = []
        while not self.at(")"):
            if args or keywords:
                self.expect(",", "',' between arguments or ')' to close them")
            t = self.tok
            if t.kind == "NAME" and self.peek().text == "=":
                self.take()
                self.take()
                if any(k == t.text for k, _ in keywords):
                    raise ModelError(f"keyword '{t.text}' is given twice", self.span_of(t.col))
                keywords.append((t.text, self.parse_expr()))
            elif keywords:
                raise ModelError(
                    "a positional argument after a keyword argument", self.span_of(t.col)
                )
            else:
                args.append(self.parse_expr())
        self.expect(")", "')' to close the argument list")
        return tuple(args), tuple(keywords)

    def parse_atom(self) -> Expr:
        t = self.tok
        span = self.span_of(t.col)
        if t.kind == "NUM":
            self.take()
            digits = len(t.text.replace(".", "").split("e")[0].split("E")[0])
            if digits > self.limits.max_number_digits:
                raise LimitError(
                    f"number literal longer than {self.limits.max_number_digits} digits", span
                )
            return Num(span, t.text)
        if t.kind == "WORD":
            self.take()
            return Word(span, t.text[1:-1])
        if t.kind == "NAME":
            if t.text in KEYWORDS:
                raise ModelError(
                    f"'{t.text}' is a keyword and cannot be used in an expression", span
                )
            self.take()
            if self.at("'") and self.peek().text == "(":
                self.take()
                return Call(span, t.text, self.parse_args(), prime=True)
            if self.at("("):
                with self.deeper():
                    args, keywords = self.parse_call_args()
                    return Call(span, t.text, args, keywords=keywords)
            return Name(span, t.text)
        if self.at("("):
            self.take()
            inner = self.parse_expr()  # parse_expr counts this level of nesting
            self.expect(")", "')' to close '('")
            return inner
        if self.at("["):
            self.take()
            with self.deeper():
                items = [self.parse_expr()]
                while self.at(","):
                    self.take()
                    items.append(self.parse_expr())
            self.expect("]", "']' to close '['")
            return ArrayLit(span, tuple(items))
        found = t.text or "end of line"
        raise ModelError(f"expected a number, a name or '(', found {found!r}", span)

    def parse_to_end(self) -> Expr:
        e = self.parse_expr()
        if self.tok.kind != "END":
            raise ModelError(
                f"unexpected {self.tok.text!r} after the expression",
                self.here(),
                "each line holds one statement; use '*' for products",
            )
        return e


# ---------------------------------------------------------------------- statements
def _strip_comment(line: str) -> tuple[str, str]:
    idx = line.find("#")
    return (line, "") if idx < 0 else (line[:idx], line[idx + 1 :].strip())


def _check_size(text: str, filename: str, limits: Limits) -> None:
    if len(text) > limits.max_chars:
        raise LimitError(
            f"input is {len(text):,} characters; the limit is {limits.max_chars:,}",
            SourceSpan(filename, 1, 1, ""),
        )


def read_source(path: str | Path, what: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """A text file (UTF-8) read within the size limit; errors name the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(
            f"cannot read {what}: {exc.strerror}", SourceSpan(str(path), 1, 1)
        ) from None
    if len(data) > limits.max_chars * 4:
        raise LimitError(
            f"file is {len(data):,} bytes; the limit is {limits.max_chars:,} characters",
            SourceSpan(str(path), 1, 1),
        )
    return decode_source(data, str(path))


def decode_source(data: bytes, filename: str) -> str:
    """Decode bytes as UTF-8 with a located error instead of a traceback."""
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise ModelError(
            "file contains a NUL byte (is it a binary file?)", SourceSpan(filename, line, 1, "")
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ModelError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x})", SourceSpan(filename, line, col, "")
        ) from None


def parse_expression(
    text: str, filename: str = "<input>", line_no: int = 1, limits: Limits = DEFAULT_LIMITS
) -> Expr:
    """Parse one expression (a right-hand side) into a syntax tree."""
    _check_size(text, filename, limits)
    original = text
    text, cols = normalize_with_columns(text)
    to_original = _column_mapper(cols)
    if len(text) > limits.max_line_chars:
        raise LimitError(
            f"line is {len(text):,} characters; the limit is {limits.max_line_chars:,}",
            SourceSpan(filename, line_no, 1, ""),
        )

    def span_of(col: int) -> SourceSpan:
        return SourceSpan(filename, line_no, to_original(col), original)

    return ExprParser(tokenize(text, span_of), span_of, limits).parse_to_end()


_ASSIGN_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(\+=|-=|\*=|/=|=)")
_DECL_RE = re.compile(r"^\s*(params?|inputs?|consts?)\b")
_LOSS_RE = re.compile(r"^\s*loss\b\s*(.*)$")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_text(text: str, filename: str = "<input>", limits: Limits = DEFAULT_LIMITS) -> ParsedText:
    """Parse a whole ``.chain`` text into statements (no meaning checked yet)."""
    _check_size(text, filename, limits)
    statements: list[Statement] = []
    title = ""
    seen_code = False
    for line_no, raw in enumerate(text.splitlines(), start=1):
        code, comment = _strip_comment(raw)
        if not seen_code and not code.strip() and comment and not title:
            title = comment
        if not code.strip():
            continue
        seen_code = True
        if len(statements) >= limits.max_statements:
            raise LimitError(
                f"more than {limits.max_statements:,} statements",
                SourceSpan(filename, line_no, 1, raw),
            )
        if len(raw) > limits.max_line_chars:
            raise LimitError(
                f"line is {len(raw):,} characters; the limit is {limits.max_line_chars:,}",
                SourceSpan(filename, line_no, 1, raw[:200]),
            )
        statements.append(_parse_statement(code, raw, filename, line_no, limits))
    return ParsedText(statements, title, filename, text)


def _parse_statement(code: str, raw: str, filename: str, line_no: int, limits: Limits) -> Statement:
    code, cols = normalize_with_columns(code)
    to_original = _column_mapper(cols)

    def span_of(col: int) -> SourceSpan:
        return SourceSpan(filename, line_no, to_original(col), raw)

    tokens = tokenize(code, span_of)
    first = tokens[0]
    if first.kind == "NAME" and first.text == "def" and tokens[1].kind == "NAME":
        return _parse_def(tokens, span_of, limits)
    if first.kind == "NAME" and _DECL_RE.match(code):
        return _parse_declaration(tokens, span_of, limits)
    if first.kind == "NAME" and first.text == "batch" and len(tokens) == 3:
        if tokens[1].kind == "NAME" and tokens[1].text not in KEYWORDS:
            return BatchDecl(tokens[1].text, span_of(tokens[1].col))
    if (
        first.kind == "NAME"
        and first.text == "loss"
        and not (tokens[1].kind == "OP" and tokens[1].text in ("=", "+=", "-=", "*=", "/="))
    ):
        if len(tokens) != 3 or tokens[1].kind != "NAME":
            raise ModelError("expected 'loss NAME'", span_of(first.col))
        return LossDecl(tokens[1].text, span_of(tokens[1].col))
    if (
        first.kind == "NAME"
        and tokens[1].kind == "OP"
        and tokens[1].text in ("=", "+=", "-=", "*=", "/=")
    ):
        parser = ExprParser(tokens, span_of, limits)
        parser.i = 2
        value = parser.parse_to_end()
        return Assign(first.text, tokens[1].text, value, span_of(first.col))
    raise ModelError(
        "expected a statement: 'name = expression', 'param …', 'input …', 'const …', "
        "'def f(z) = …' or 'loss NAME'",
        span_of(first.col),
    )


def _parse_signature(parser: ExprParser, prime: bool) -> tuple[Token, tuple[str, ...]]:
    """``name(a, b)`` or ``name'(a)`` (the head of a definition)."""
    head = parser.tok
    if head.kind != "NAME" or head.text in KEYWORDS:
        raise ModelError("expected a function name", parser.here())
    parser.take()
    if prime:
        parser.expect("'", f"\"'\" in {head.text}'(…), the declared derivative")
    parser.expect("(", "'(' and the parameter names")
    params: list[str] = []
    while True:
        t = parser.tok
        if t.kind != "NAME" or t.text in KEYWORDS:
            raise ModelError("expected a parameter name", parser.here())
        params.append(parser.take().text)
        if parser.at(","):
            parser.take()
            continue
        parser.expect(")", "')' to close the parameter list")
        break
    parser.expect("=", "'=' and the function's expression")
    return head, tuple(params)


def _parse_def(tokens: list[Token], span_of, limits: Limits) -> FuncDef:  # noqa: ANN001
    """``def NAME(params) = expr`` [``, NAME'(param) = expr``]."""
    parser = ExprParser(tokens, span_of, limits)
    parser.i = 1
    head, params = _parse_signature(parser, prime=False)
    body = parser.parse_expr()
    derivative: Expr | None = None
    d_params: tuple[str, ...] = ()
    d_span: SourceSpan | None = None
    if parser.at(","):
        parser.take()
        d_head, d_params = _parse_signature(parser, prime=True)
        d_span = span_of(d_head.col)
        if d_head.text != head.text:
            raise ModelError(
                f"the declared derivative must be {head.text}'(…), not {d_head.text}'(…)", d_span
            )
        derivative = parser.parse_expr()
    if parser.tok.kind != "END":
        raise ModelError(f"unexpected {parser.tok.text!r} in the definition", parser.here())
    return FuncDef(head.text, params, body, span_of(head.col), derivative, d_params, d_span)


def _parse_declaration(tokens: list[Token], span_of, limits: Limits) -> Declaration:  # noqa: ANN001
    kind = tokens[0].text.rstrip("s")
    parser = ExprParser(tokens, span_of, limits)
    parser.i = 1
    names: list[Declared] = []
    while True:
        t = parser.tok
        if t.kind != "NAME":
            raise ModelError(f"expected a name after '{kind}'", span_of(t.col))
        parser.take()
        dims: list[int | str] = []
        if parser.at("["):
            parser.take()
            while True:
                d = parser.tok
                if d.kind == "NUM" and d.text.isdigit():
                    if not 0 < int(d.text) <= 100_000:
                        raise LimitError("dimension must be between 1 and 100000", span_of(d.col))
                    dims.append(int(d.text))
                elif d.kind == "NAME":
                    dims.append(d.text)
                else:
                    raise ModelError(
                        "expected a size (a positive integer or a name)", span_of(d.col)
                    )
                parser.take()
                if parser.at(","):
                    parser.take()
                    continue
                parser.expect("]", "']' to close the shape")
                break
            if len(dims) > 4:
                raise ModelError(
                    "at most four axes (e.g. a conv kernel K[F, C, 3, 3])", span_of(t.col)
                )
        value = None
        if parser.at("="):
            parser.take()
            value = parser.parse_expr()
        elif kind == "const":
            raise ModelError(
                f"const '{t.text}' needs a value, e.g. const {t.text} = 0.1", span_of(t.col)
            )
        names.append(Declared(t.text, tuple(dims), value, span_of(t.col)))
        if parser.at(","):
            parser.take()
            continue
        if parser.tok.kind != "END":
            raise ModelError(
                f"unexpected {parser.tok.text!r} in the declaration", span_of(parser.tok.col)
            )
        break
    return Declaration(kind, tuple(names), span_of(tokens[0].col))


def is_safe_identifier(name: str) -> bool:
    """True for names that may reach generated code: ``[A-Za-z_][A-Za-z0-9_]*``."""
    return bool(_NAME_RE.match(name))
