"""Student answer files: one ``target = expression`` per line, plain text or LaTeX.

Targets name an error signal (``ybar``, ``y_bar``, ``ȳ``, ``\\bar{y}``) or a derivative
of the loss (``dL/dw``, ``∂L/∂w``, ``\\frac{\\partial \\mathcal{L}}{\\partial w}``); both
mean v̄ = ∂L/∂v for the model node v. Right-hand sides use the ``.chain`` expression
grammar (:func:`chainrule.symbolic.grammar.parse_expression`) or lecture LaTeX
(:mod:`chainrule.homework.latex`). Reading never evaluates anything: a line is parsed
into a syntax tree, and :class:`AnswerBuilder` turns that tree into SymPy directly.

>>> from chainrule.symbolic import parse_program
>>> prog = parse_program("param w, b\\ninput x, t\\nz = w*x + b\\ny = sigma(z)\\n"
...                      "L = (y - t)^2/2\\nloss L")
>>> ans = parse_answer_text("ybar = y - t\\nzbar = ybar * sigma'(z)", "a.txt", prog)
>>> [(a.line, a.node, a.error) for a in ans.lines]
[(1, 'y', None), (2, 'z', None)]
>>> str(AnswerBuilder(prog).build(ans.lines[1].tree))
'y_bar*sigma_prime(z)'
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import sympy as sp

from ..symbolic import grammar as g
from ..symbolic.build import CONSTANTS, ExprBuilder
from ..symbolic.errors import LimitError, ModelError, SourceSpan
from ..symbolic.program import Program

#: Largest answer file read at all (bytes); longer *lines* are refused one by one.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
#: Largest number of decimal digits an exact literal power may produce (``9^64`` is fine,
#: ``(9^64)^64^64`` is refused before SymPy computes it).
MAX_RESULT_DIGITS = 2_000
#: Names a derivative target may put on top: ``dL/dw``, ``dE/dw``, ``dJ/dw``.
LOSS_ALIASES = ("L", "E", "J", "loss", "ℒ")

_LATEX_HINT = re.compile(r"\\[A-Za-z]|\$|\\\[")


@dataclass
class AnswerLine:
    """One ``target = expression`` line of an answer (``error`` set when unparseable)."""

    line: int
    target_text: str
    node: str | None  # the model node whose error signal the line gives
    tree: g.Expr | None
    error: ModelError | None = None
    source: str = ""


@dataclass
class Answer:
    """A parsed answer file; ``error`` is a whole-file problem (empty, not UTF-8, …)."""

    filename: str
    format: str  # "text" | "latex"
    lines: list[AnswerLine] = field(default_factory=list)
    error: ModelError | None = None

    @classmethod
    def reads(cls, text: str, program: Program) -> bool:
        """True when a subclass (another notation, the package imports them) reads ``text``."""
        return False

    @classmethod
    def parse(cls, text: str, filename: str, program: Program, fmt: str) -> Answer:
        raise NotImplementedError


# ------------------------------------------------------------------ reading files
def read_answer(
    path: str | Path, program: Program, fmt: str = "auto", limits: g.Limits = g.DEFAULT_LIMITS
) -> Answer:
    """Read and parse an answer file (UTF-8; ``.tex`` files are LaTeX)."""
    path = Path(path)
    name = str(path)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_ANSWER_BYTES + 1)
    except OSError as exc:
        return Answer(
            name,
            "text",
            error=ModelError(f"cannot read answer: {exc.strerror}", SourceSpan(name, 1, 1)),
        )
    if fmt == "auto" and path.suffix.lower() in (".tex", ".latex"):
        fmt = "latex"
    return parse_answer_bytes(data, name, program, fmt, limits)


def parse_answer_bytes(
    data: bytes,
    filename: str,
    program: Program,
    fmt: str = "auto",
    limits: g.Limits = g.DEFAULT_LIMITS,
) -> Answer:
    """Decode (UTF-8, no NUL bytes, bounded size) and parse an answer."""
    if len(data) > MAX_ANSWER_BYTES:
        return Answer(
            filename,
            "text",
            error=LimitError(
                f"answer file is larger than {MAX_ANSWER_BYTES:,} bytes", SourceSpan(filename)
            ),
        )
    try:
        text = g.decode_source(data, filename)
    except ModelError as exc:
        return Answer(filename, "text", error=exc)
    return parse_answer_text(text, filename, program, fmt, limits)


def parse_answer_text(
    text: str,
    filename: str,
    program: Program,
    fmt: str = "auto",
    limits: g.Limits = g.DEFAULT_LIMITS,
) -> Answer:
    """Parse answer text line by line; a bad line is recorded, never raised."""
    if fmt == "auto":
        fmt = "latex" if _LATEX_HINT.search(text[:100_000]) else "text"
    if fmt not in ("text", "latex"):
        raise ValueError(f"answer format must be auto, text or latex, not {fmt!r}")
    for notation in Answer.__subclasses__():  # other notations (index: w̄⁽¹⁾_ij = z̄_i x_j)
        if notation.reads(text, program):
            return notation.parse(text, filename, program, fmt)
    answer = Answer(filename, fmt)
    raw_lines = text.splitlines()
    if not any(_content(r, fmt) for r in raw_lines):
        answer.error = ModelError(
            "the answer is empty (no 'target = expression' lines)", SourceSpan(filename, 1, 1)
        )
        return answer
    names = AnswerNames(program)
    for line_no, raw in enumerate(raw_lines, start=1):
        code = _content(raw, fmt)
        if not code:
            continue
        if is_numeric_header(code):
            break  # numeric answers of an exercise follow (chainrule.homework.numeric)
        if len(answer.lines) >= limits.max_statements:
            answer.error = LimitError(
                f"more than {limits.max_statements:,} answer lines",
                SourceSpan(filename, line_no, 1),
            )
            break
        answer.lines.append(_parse_line(code, raw, filename, line_no, fmt, names, limits))
    return answer


#: The line that starts an exercise's numeric answers; the backward pass ends there.
NUMERIC_HEADER = "numeric:"


def is_numeric_header(code: str) -> bool:
    """True for the ``numeric:`` line (any case, spaces ignored)."""
    return code.replace(" ", "").lower() == NUMERIC_HEADER


def _content(raw: str, fmt: str) -> str:
    """The part of a line that holds an answer (comments and LaTeX wrappers removed)."""
    if fmt == "latex":
        code = _strip_latex_comment(raw)
        code = re.sub(r"\\begin\{[^}]*\}|\\end\{[^}]*\}|\$\$?|\\\[|\\\]", " ", code)
        code = code.replace("&", " ").rstrip()
        code = re.sub(r"(\\\\\s*)+$", "", code).strip().rstrip(",.;").strip()
        return code
    idx = raw.find("#")
    return (raw if idx < 0 else raw[:idx]).strip()


def _strip_latex_comment(raw: str) -> str:
    m = re.search(r"(?<!\\)%", raw)
    return raw if m is None else raw[: m.start()]


# ------------------------------------------------------------------ one line
def _parse_line(
    code: str, raw: str, filename: str, line_no: int, fmt: str, names: AnswerNames, limits: g.Limits
) -> AnswerLine:
    span = SourceSpan(filename, line_no, 1, raw if len(raw) <= 1000 else raw[:1000])
    if len(raw) > limits.max_line_chars:
        err = LimitError(
            f"line is {len(raw):,} characters; the limit is {limits.max_line_chars:,}", span
        )
        return AnswerLine(line_no, "", None, None, err, raw[:200])
    target_text, node = "", None
    try:
        target_text, rhs, rhs_col = _split_target(code, raw, span)
        node = names.target_node(_canonical_target(target_text, fmt, names), span)
        tree = _parse_rhs(rhs, raw, filename, line_no, rhs_col, fmt, names, limits)
    except ModelError as exc:
        return AnswerLine(line_no, target_text, node, None, exc, raw)
    return AnswerLine(line_no, target_text, node, tree, None, raw)


def _split_target(code: str, raw: str, span: SourceSpan) -> tuple[str, str, int]:
    """``target = rhs`` → (target, rhs, column of rhs in ``raw``); the last ``=`` wins
    (``\\bar{z} = \\bar{y} \\frac{dy}{dz} = \\bar{y}\\sigma'(z)`` checks the final form)."""
    depth, first, last = 0, -1, -1
    for i, ch in enumerate(code):
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
        elif ch == "=" and depth == 0:
            first = i if first < 0 else first
            last = i
    if first < 0:
        raise ModelError("expected 'target = expression' (e.g. 'zbar = ybar * sigma'(z)')", span)
    target, rhs = code[:first].strip(), code[last + 1 :]
    if not target:
        raise ModelError("nothing before '=': which error signal is this?", span)
    if not rhs.strip():
        raise ModelError(
            "nothing after '='", SourceSpan(span.file, span.line, len(raw) + 1, span.text)
        )
    start = raw.find(rhs.strip()) if raw.find(rhs.strip()) >= 0 else 0
    return target, rhs, start + 1


_DERIV_RE = re.compile(r"^(?:d|∂|\\partial\s*)\s*(.+?)\s*/\s*(?:d|∂|\\partial\s*)\s*(.+)$")


def _canonical_target(text: str, fmt: str, names: AnswerNames) -> str:
    """A target in one form: ``v_bar`` or ``d<top>/d<v>``."""
    if fmt == "latex":
        from .latex import latex_target

        try:
            return latex_target(text, names.known())
        except ModelError as exc:
            raise ModelError(exc.message, SourceSpan(exc.span.file, 1, 1, text), exc.hint) from None
    text = normalize_answer_text(text).strip()
    m = _DERIV_RE.match(text)
    if m:
        return f"d{m.group(1).strip()}/d{m.group(2).strip()}"
    return text


def _parse_rhs(
    rhs: str,
    raw: str,
    filename: str,
    line_no: int,
    col: int,
    fmt: str,
    names: AnswerNames,
    limits: g.Limits,
) -> g.Expr:
    if fmt == "latex":
        from .latex import parse_latex

        return parse_latex(
            rhs.strip(),
            filename,
            line_no,
            limits,
            known_names=names.known(),
            column_offset=col - 1,
            source_line=raw,
            juxtapose="@" if names.program.is_vector else "*",  # W̄ = ȳ hᵀ is a product
            functions=names.program.functions,
        )
    text = normalize_answer_text(rhs.strip())
    try:  # padded, so that columns (also of names resolved later) match the line
        return g.parse_expression(" " * (col - 1) + text, filename, line_no, limits)
    except ModelError as exc:
        exc.span = SourceSpan(filename, line_no, exc.span.column, raw)
        raise


_MACRON_RE = re.compile(r"([A-Za-z])\u0304([A-Za-z0-9_]*)")


def normalize_answer_text(text: str) -> str:
    """Plain-text answer normalization: ``ȳ`` → ``y_bar``, then the model grammar's
    Unicode mapping (``σ`` → ``sigma``, ``−`` → ``-``, NFKC)."""
    text = unicodedata.normalize("NFD", text)
    text = _MACRON_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}_bar", text)
    return g.normalize_text(text)


# ------------------------------------------------------------------ names
class AnswerNames:
    """How names in answers map to the model: forward values, error signals, targets."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.items: dict[str, str] = {}  # written name → model name
        for v in program.variables:
            self.items[v.name] = v.name
        for a in program.assignments:  # a re-assigned c means its latest version
            self.items[a.display] = a.name
            self.items[a.name] = a.name

    def known(self) -> set[str]:
        """Every name an answer may write (for LaTeX letter splitting)."""
        out = set(self.items)
        out |= {f"{n}_bar" for n in self.items} | {f"{n}bar" for n in self.items}
        return out

    def signal_node(self, name: str) -> str | None:
        """The model node of an error-signal name (``zbar``/``z_bar`` → ``z``), or None."""
        for suffix in ("_bar", "bar"):
            if name.endswith(suffix) and name[: -len(suffix)] in self.items:
                return self.items[name[: -len(suffix)]]
        return None

    def target_node(self, target: str, span: SourceSpan) -> str:
        m = re.match(r"^d(.+)/d(.+)$", target)
        if m:
            top, node = m.group(1).strip(), m.group(2).strip()
            loss = self.program.loss_assignment
            if top not in (loss.name, loss.display, *LOSS_ALIASES):
                raise ModelError(
                    f"'{target}': only derivatives of the loss '{loss.display}' are checked", span
                )
            if node in self.items:
                return self.items[node]
            raise self._unknown(node, span)
        if target in self.items and self.signal_node(target) is None:
            raise ModelError(
                f"'{target}' is a model value; name its error signal "
                f"('{target}bar', '{target}_bar' or 'dL/d{target}')",
                span,
            )
        node = self.signal_node(target)
        if node is None:
            raise ModelError(
                f"cannot tell which error signal '{target}' is",
                span,
                "write e.g. 'zbar = …', 'z_bar = …' or 'dL/dw = …'",
            )
        return node

    def _unknown(self, name: str, span: SourceSpan) -> ModelError:
        close = difflib.get_close_matches(name, list(self.items), n=1)
        hint = f"did you mean '{close[0]}'?" if close else "names come from the model"
        return ModelError(f"unknown name '{name}'", span, hint)


class AnswerBuilder(ExprBuilder):
    """SymPy from an answer's syntax tree (scalar programs).

    Names resolve to the model's symbols; ``zbar``/``z_bar`` to the error signal
    z̄ (``signals`` maps node → symbol; default the ``v_bar`` symbols of backprop).
    Juxtaposition and ``@`` are products, a scalar's transpose is itself.
    """

    def __init__(
        self,
        program: Program,
        signals: dict[str, sp.Basic] | None = None,
        limits: g.Limits = g.DEFAULT_LIMITS,
    ) -> None:
        super().__init__(self._resolve, limits, program.functions)
        self.names = AnswerNames(program)
        self.program = program
        if signals is None:
            from ..derive.records import error_signal

            signals = {n: error_signal(n) for n in program.topological_order()}
        self.signals = signals

    def build(self, tree: g.Expr) -> sp.Basic:
        return self(tree)

    def _resolve(self, node: g.Name) -> sp.Basic:
        name = node.id
        if name in self.names.items:
            return self.program.symbol(self.names.items[name])
        sig = self.names.signal_node(name)
        if sig is not None:
            if sig not in self.signals:
                raise ModelError(
                    f"'{name}': {sig} has no error signal (a constant, or not used by the loss)",
                    node.span,
                )
            return self.signals[sig]
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in self.functions.spellings("scalar"):
            raise ModelError(f"'{name}' is a function; call it like {name}(z)", node.span)
        raise self.names._unknown(name, node.span)

    def build_BinOp(self, node: g.BinOp) -> sp.Basic:
        if node.op == "@":
            return self(node.left) * self(node.right)
        return super().build_BinOp(node)

    def build_Transpose(self, node: g.Transpose) -> sp.Basic:
        return self(node.operand)

    def build_Call(self, node: g.Call) -> sp.Basic:
        if (
            node.func.endswith("_prime")
            and node.func[:-6] in self.functions.spellings("scalar")
            and not node.prime
        ):
            node = g.Call(node.span, node.func[:-6], node.args, prime=True)
        return super().build_Call(node)

    def power(self, base: sp.Basic, exponent: sp.Basic, span: SourceSpan) -> sp.Basic:
        if base.is_Rational and exponent.is_Number and not base.is_zero:
            digits = abs(float(exponent)) * _log10_size(base)
            if digits > MAX_RESULT_DIGITS:
                raise LimitError(
                    f"a power of about {digits:,.0f} digits; the limit is {MAX_RESULT_DIGITS:,}",
                    span,
                )
        return super().power(base, exponent, span)


def _log10_size(r: sp.Rational) -> float:
    """max(|log10 p|, |log10 q|) for r = p/q, without converting big integers."""
    p, q = abs(int(r.p)), abs(int(r.q))
    return max(p.bit_length(), q.bit_length()) * math.log10(2)
