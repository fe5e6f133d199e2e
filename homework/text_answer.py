r"""Plain-text answers as people (and chainrule's own output) write them.

The ``.chain`` expression grammar, extended for answers only:

* juxtaposition is a product: ``z̄ x``, ``L̄ (y − t)``, ``2 w``, ``σ(z)(1 − σ(z))``
  (``*`` for scalar models, ``@`` for matrix ones: ``ȳ hᵀ``); an unknown run of letters
  that spells model names is split (``wx`` → w·x);
* function spellings of :data:`~chainrule.homework.notation.FUNCTION_SPELLINGS`
  (``sigmoid``, ``sech``, ``ReLU``), calls without parentheses (``tanh z``) and function
  powers (``tanh^2(z)`` = tanh(z)²);
* indicators ``[z > 0]``, ``1[z > 0]``, ``indicator(z > 0)`` = step(z);
* ``dL/dy`` and ``∂L/∂y`` inside an expression mean ȳ;
* chainrule's Unicode (``W̄⁽²⁾``, ``ŷ``, ``hᵀ``, ``∘²``) via
  :func:`~chainrule.homework.notation.to_text_unicode`.

Nothing is evaluated: the result is a :mod:`chainrule.symbolic.grammar` tree, under the
same :class:`~chainrule.symbolic.grammar.Limits`.

>>> from chainrule.symbolic.grammar import parse_expression
>>> parse_text_answer("x (σ(b + w x) − t) σ'(b + w x)", known={"w", "b", "x", "t"}) == \
...     parse_expression("x*(sigma(b + w*x) - t)*sigma'(b + w*x)")
True
"""

from __future__ import annotations

import re

from ..ops import REGISTRY, Registry
from ..symbolic import grammar as g
from ..symbolic.errors import LimitError, ModelError, SourceSpan
from .notation import CALL_ONLY_SPELLINGS, function_of, to_text_unicode

_TOKEN_RE = re.compile(
    r"(?P<ws>[ \t]+)"
    r"|(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+(?![A-Za-z_]))?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|>=|<=|\.T\b|[-+*/^@()\[\],=.'<>])"
)
_LEIBNIZ = re.compile(r"(?:∂|\bd)\s*(?P<top>[A-Za-zℒ]\w*)\s*/\s*(?:∂|d)\s*(?P<v>[A-Za-z]\w*)")
_COMPARE = (">", "<", ">=", "<=")


def tokenize_answer(line: str, span_of) -> list[g.Token]:  # noqa: ANN001
    toks: list[g.Token] = []
    pos = 0
    while pos < len(line):
        m = _TOKEN_RE.match(line, pos)
        if m is None:
            ch = line[pos]
            if ord(ch) > 127:
                raise g._non_ascii_error(ch, span_of(pos + 1))
            raise ModelError(f"unexpected character {ch!r}", span_of(pos + 1))
        kind = m.lastgroup
        if kind != "ws":
            toks.append(
                g.Token({"num": "NUM", "name": "NAME", "op": "OP"}[kind or ""], m.group(), pos + 1)
            )
        pos = m.end()
    toks.append(g.Token("END", "", len(line) + 1))
    return toks


#: (function spellings, call-only spellings) of a registry: computed once per answer.
TextVocabulary = tuple[dict[str, str], dict[str, str]]


def text_vocabulary(functions: Registry = REGISTRY) -> TextVocabulary:
    """Plain-text function names: always functions, and functions only before '('."""
    spellings = {s: op.name for s, op in functions.spellings().items()}
    call_only = {s: op.name for s, op in functions.answer_names().items()}
    call_only.update(CALL_ONLY_SPELLINGS)
    return spellings, call_only


class TextAnswerParser(g.ExprParser):
    """:class:`~chainrule.symbolic.grammar.ExprParser` plus juxtaposition and the rest."""

    def __init__(
        self,
        tokens: list[g.Token],
        span_of,  # noqa: ANN001
        limits: g.Limits,
        known: set[str],
        juxtapose: str,
        functions: Registry = REGISTRY,
        vocabulary: TextVocabulary | None = None,
    ) -> None:
        super().__init__(tokens, span_of, limits)
        self.known = known
        self.juxt = juxtapose
        self.spellings, self.call_only = vocabulary or text_vocabulary(functions)

    def _function(self, word: str) -> str | None:
        """The function a word names here (a model name is never one)."""
        if word in self.known:
            return None
        if word in self.spellings:  # the model's own functions and the shipped ones
            return self.spellings[word]
        if self.peek().text in ("(", "'", "^", "["):  # H(z), sech(z), ReLU'(z)
            return function_of(word) or self.call_only.get(word)
        return function_of(word)

    def _starts_atom(self) -> bool:
        t = self.tok
        return t.kind in ("NUM", "NAME") or (t.kind == "OP" and t.text in ("(", "["))

    def parse_product(self) -> g.Expr:
        left = self.parse_unary()
        while True:
            if self.at("*", "/", "@"):
                op = self.take()
                right = self.parse_unary()
                left = g.BinOp(self.span_of(op.col), op.text, left, right)
            elif self.tok.kind == "NAME" and self.tok.text == "outer" and self.peek().text != "(":
                span = self.span_of(self.take().col)  # u ⊗ v: the outer product u vᵀ
                right = self.parse_unary()
                left = g.BinOp(span, "@", left, g.Transpose(span, right))
            elif self._starts_atom():
                col = self.tok.col
                right = self.parse_power()
                left = g.BinOp(self.span_of(col), self.juxt, left, right)
            else:
                return left

    def parse_power(self) -> g.Expr:
        base = self.parse_postfix()
        if self.at("^", "**"):
            op = self.take()
            with self.deeper():
                exponent = self.parse_exponent()
            return self.parse_postfix_of(g.BinOp(self.span_of(op.col), "^", base, exponent))
        return base

    def parse_exponent(self) -> g.Expr:
        """``x^2``, ``x^-1``, ``x^(n+1)``: a signed atom (no juxtaposition inside)."""
        if self.at("-", "+"):
            op = self.take()
            inner = self.parse_exponent()
            return g.Neg(self.span_of(op.col), inner) if op.text == "-" else inner
        base = self.parse_postfix()
        if self.at("^", "**"):  # right-associative: 2^3^2 = 2^(3^2)
            op = self.take()
            with self.deeper():
                return g.BinOp(self.span_of(op.col), "^", base, self.parse_exponent())
        return base

    def parse_postfix(self) -> g.Expr:
        node = super().parse_postfix()
        while True:
            if self.at("'") and not isinstance(node, g.Call):  # x' (MATLAB): the transpose
                node = g.Transpose(self.span_of(self.take().col), node)
            elif self.at(".") and self.peek().text in ("dot", "transpose", "T"):
                node = self.parse_method(node)  # a.dot(b), a.transpose(), a.T
            else:
                return node
            node = self.parse_postfix_of(node)

    def parse_method(self, node: g.Expr) -> g.Expr:
        """NumPy methods on a value: ``a.dot(b)`` is a @ b, ``a.transpose()`` is aᵀ."""
        span = self.span_of(self.take().col)
        name = self.take().text
        if name == "T":
            return g.Transpose(span, node)
        self.expect("(", "'(' after the method name")
        if name == "transpose":
            self.expect(")", "')'")
            return g.Transpose(span, node)
        with self.deeper():
            arg = self.parse_expr()
        self.expect(")", "')' to close the argument list")
        return g.BinOp(span, "@", node, arg)

    def parse_postfix_of(self, node: g.Expr) -> g.Expr:
        while self.at(".T"):
            node = g.Transpose(self.span_of(self.take().col), node)
        return node

    def parse_atom(self) -> g.Expr:
        t = self.tok
        if t.kind == "NAME":
            func = self._function(t.text)
            if func is not None:
                return self.parse_function(func)
            layered = self._layer_name(t.text)
            if layered is not None:  # W^(2), W^{(2)}: the layer's W2, not a power
                return layered
            if t.text in self.known:  # a value, even when '(' follows: L̄ (y − t)
                self.take()
                return g.Name(self.span_of(t.col), t.text)
            if t.text not in self.known and t.text.isalnum() and len(t.text) > 1:
                split = self._split(t.text)
                if split:
                    self.take()
                    nodes = [g.Name(self.span_of(t.col + k), piece) for k, piece in split]
                    out: g.Expr = nodes[0]
                    for n in nodes[1:]:
                        out = g.BinOp(n.span, self.juxt, out, n)
                    return out
        if self.at("["):
            return self.parse_bracket()
        if self.at("("):  # (z > 0): a comparison in parentheses is an indicator too
            self.take()
            with self.deeper():
                inner = self.parse_compare()
            self.expect(")", "')' to close '('")
            return inner
        if t.kind == "NUM" and t.text == "1" and self.peek().text == "[":
            self.take()  # 1[z > 0]: the indicator
            return self.parse_bracket()
        return super().parse_atom()

    def _layer_name(self, word: str) -> g.Expr | None:
        """``W^(2)`` → ``W2`` when the model knows W2 and not W (``bar`` suffix kept)."""
        toks = self.tokens[self.i : self.i + 5]
        if len(toks) < 5 or [t.text for t in toks[1:3]] != ["^", "("] or toks[4].text != ")":
            return None
        base, bar = (word[:-4], "_bar") if word.endswith("_bar") else (word, "")
        name = f"{base}{toks[3].text}"
        if toks[3].kind != "NUM" or base in self.known or name not in self.known:
            return None
        self.i += 5
        return g.Name(self.span_of(toks[0].col), name + bar)

    def _split(self, word: str) -> list[tuple[int, str]] | None:
        out, i = [], 0
        while i < len(word):
            for j in range(len(word), i, -1):
                if word[i:j] in self.known:
                    out.append((i, word[i:j]))
                    i = j
                    break
            else:
                return None
        return out if len(out) > 1 else None

    def parse_function(self, func: str) -> g.Expr:
        t = self.take()
        span = self.span_of(t.col)
        prime, power = False, None
        while True:
            if self.at("'"):
                self.take()
                prime = True
            elif power is None and self.at("^", "**") and self.peek().kind == "NUM":
                self.take()
                power = g.Num(self.span_of(self.tok.col), self.take().text)
            else:
                break
        with self.deeper():
            if self.at("("):
                args = self.parse_args_compare()
            elif self.at("["):
                args = (self.parse_bracket(),)
            else:
                args = (self.parse_power(),)
        if (
            func == "step"
            and len(args) == 1
            and isinstance(args[0], g.Call)
            and args[0].func == "step"
        ):
            call: g.Expr = args[0]  # indicator(z > 0)
        else:
            call = g.Call(span, func, args, prime=prime)
        if power is not None:
            call = g.BinOp(span, "^", call, power)
        return call

    def parse_args_compare(self) -> tuple[g.Expr, ...]:
        self.expect("(")
        args = [self.parse_compare()]
        while self.at(","):
            self.take()
            args.append(self.parse_compare())
        self.expect(")", "')' to close the argument list")
        return tuple(args)

    def parse_compare(self) -> g.Expr:
        left = self.parse_expr()
        if self.at(*_COMPARE):
            op = self.take()
            right = self.parse_expr()
            span = self.span_of(op.col)
            diff = (
                g.BinOp(span, "-", left, right)
                if op.text[0] == ">"
                else g.BinOp(span, "-", right, left)
            )
            return g.Call(span, "step", (diff,))
        return left

    def parse_bracket(self) -> g.Expr:
        """``[z > 0]`` (Iverson bracket: step) or ``[ … ]`` used as parentheses."""
        self.take()
        with self.deeper():
            inner = self.parse_compare()
        self.expect("]", "']' to close '['")
        return inner


def leibniz_to_bars(text: str, loss_names: set[str], nodes: set[str]) -> str:
    """``dL/dy`` and ``∂L/∂y`` (L the loss) → ``y_bar``."""

    def repl(m: re.Match[str]) -> str:
        if m.group("top") in loss_names and m.group("v") in nodes:
            return f"{m.group('v')}_bar"
        return m.group()

    return _LEIBNIZ.sub(repl, text)


def parse_text_answer(
    text: str,
    filename: str = "<input>",
    line_no: int = 1,
    limits: g.Limits = g.DEFAULT_LIMITS,
    known: set[str] | None = None,
    juxtapose: str = "*",
    column_offset: int = 0,
    source_line: str | None = None,
    loss_names: set[str] | None = None,
    functions: Registry = REGISTRY,
    vocabulary: TextVocabulary | None = None,
) -> g.Expr:
    """Parse one plain-text answer expression into a syntax tree."""
    if len(text) > limits.max_line_chars:
        raise LimitError(
            f"line is {len(text):,} characters; the limit is {limits.max_line_chars:,}",
            SourceSpan(filename, line_no, 1, ""),
        )
    known = known or set()
    norm = g.normalize_text(to_text_unicode(text))
    norm = leibniz_to_bars(norm, loss_names or set(), known)
    norm = re.sub(r"\b(?:np|numpy|torch|jnp)\.(?=[A-Za-z_])", "", norm)  # np.outer(…)
    norm = re.sub(r"\.(?:astype\([A-Za-z_.]*\)|float\(\))", "", norm)  # (z > 0).astype(float)
    norm = re.sub(r"(?<=[\w)\]'])\s*\.([*/^])", r" \1", norm)  # MATLAB's .* ./ .^
    shown = source_line if source_line is not None else text

    def span_of(col: int) -> SourceSpan:
        return SourceSpan(filename, line_no, min(col, len(text) + 1) + column_offset, shown)

    toks = tokenize_answer(norm, span_of)
    parser = TextAnswerParser(toks, span_of, limits, known, juxtapose, functions, vocabulary)
    return parser.parse_to_end()
