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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy as sp

from ..symbolic import grammar as g
from ..symbolic.build import CONSTANTS, ExprBuilder
from ..symbolic.errors import LimitError, ModelError, SourceSpan
from ..symbolic.program import Program
from .notation import (
    JUXT,
    delta_node,
    expand_macros,
    hat_is_prediction,
    node_layers,
    prediction_of,
    substitute,
    to_text_unicode,
)

#: Largest answer file read at all (bytes); longer *lines* are refused one by one.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
#: Largest number of decimal digits an exact literal power may produce (``9^64`` is fine,
#: ``(9^64)^64^64`` is refused before SymPy computes it).
MAX_RESULT_DIGITS = 2_000
#: Names a derivative target may put on top: ``dL/dw``, ``dE/dw``, ``dJ/dw``.
LOSS_ALIASES = ("L", "E", "J", "loss", "ℒ", "ell", "l", "C", "cost", "Loss", "mathcal{L}")

_LATEX_HINT = re.compile(r"\\[A-Za-z,;!]|\$|\\\[|[\^_]\{")


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
    aliases: dict[str, str] = field(default_factory=dict)  # student name → model node
    intermediates: dict[str, sp.Basic] = field(default_factory=dict)  # name → inline value

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


#: Builders of answer expressions for programs with shapes, added by the modules that
#: define them (:mod:`.answer_matrix` registers the matrix one when the package loads).
SHAPED_BUILDERS: list[Any] = []


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
    names = AnswerNames(program)
    known = names.known()
    if not any(_content(r, fmt, known) for r in raw_lines):
        answer.error = ModelError(
            "the answer is empty (no 'target = expression' lines)", SourceSpan(filename, 1, 1)
        )
        return answer
    for line_no, raw in enumerate(raw_lines, start=1):
        content = _content(raw, fmt, known)
        if content and is_numeric_header(content):
            break  # numeric answers of an exercise follow (chainrule.homework.numeric)
        for code in _statements(content, fmt):
            if len(answer.lines) >= limits.max_statements:
                answer.error = LimitError(
                    f"more than {limits.max_statements:,} answer lines",
                    SourceSpan(filename, line_no, 1),
                )
                return answer
            if code.startswith("=") and answer.lines and answer.lines[-1].target_text:
                # an align chain: "&= …" continues the previous line; its last side counts
                code = answer.lines.pop().target_text + " " + code
            parsed = _parse_line(code, raw, filename, line_no, fmt, names, limits, answer)
            if parsed is not None:  # None: a definition (a = W x + b), matched and kept
                answer.lines.append(parsed)
    unused = [al for n, al in names.macro_lines.items() if n not in names.used]
    if unused:  # a shorthand no line uses: most likely a target chainrule cannot read
        answer.lines = sorted(answer.lines + unused, key=lambda al: al.line)
    return answer


#: The line that starts an exercise's numeric answers; the backward pass ends there.
NUMERIC_HEADER = "numeric:"


def is_numeric_header(code: str) -> bool:
    """True for the ``numeric:`` line (any case, spaces ignored)."""
    return code.replace(" ", "").lower() == NUMERIC_HEADER


_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\[(.+?)\\\]|\\\((.+?)\\\)")
_PREAMBLE = re.compile(
    r"^\s*\\(documentclass|usepackage|title|author|date|maketitle|section|subsection|"
    r"begin\{document\}|end\{document\}|item|label|caption)\b"
)


def _statements(code: str, fmt: str) -> list[str]:
    """One line's statements: ``a = … \\\\ b = …`` in LaTeX is two."""
    if fmt != "latex" or not code:
        return [code] if code else []
    parts = [p.strip().rstrip(",.;").strip() for p in re.split(r"\\\\(?:\[[^\]]*\])?", code)]
    out: list[str] = []
    for part in parts:  # a = …, \quad b = …: statements side by side
        for piece in re.split(r"\s*[,;]?\s*\\q?quad\s*|\s*;\s*", part):
            if out and "=" not in piece:
                out[-1] += " " + piece
            else:
                out.append(piece)
    out = [re.sub(r"(?:\s*(?:,|\\q?quad|\\text\{[^{}]*\}))+\s*$", "", p) for p in out]
    return [p.strip() for p in out if p.strip()]


def _content(raw: str, fmt: str, known: set[str] | frozenset[str] = frozenset()) -> str:
    """The part of a line that holds an answer (comments, LaTeX wrappers and lines of
    prose or Markdown with no ``=`` removed; ``known`` names are never prose)."""
    code = _content_of(raw, fmt)
    return "" if "=" not in code and _is_prose(code, known) else code


_MARKDOWN = re.compile(r"^(#{1,6}(\s|$)|```|~~~|>\s|[-*+]\s|\d+\.\s)")
_TWO_WORDS = re.compile(r"\b[A-Za-z]{3,}[,:;.]?\s+[A-Za-z]{2,}\b")


def _is_prose(code: str, known: set[str] | frozenset[str] = frozenset()) -> bool:
    """A sentence or a Markdown marker line, not a formula (``The backward pass:``)."""
    if not code:
        return False
    if _MARKDOWN.match(code):
        return True
    words = re.sub(r"\\[A-Za-z]+", " ", code)
    if re.search(r"[*^_'@∘·]|\w\(", re.sub(r"\$[^$]*\$", " ", words)):
        return False  # formula signs: a formula that lost its '='
    words = re.sub(r"[A-Za-z_][A-Za-z0-9_]*", lambda m: "0" if m[0] in known else m[0], words)
    return bool(_TWO_WORDS.search(words))  # model names are never prose


def _content_of(raw: str, fmt: str) -> str:
    if fmt == "latex":
        code = _strip_latex_comment(raw)
        if _PREAMBLE.match(code):
            return ""
        inline = [next(g for g in m.groups() if g is not None) for m in _MATH.finditer(code)]
        if inline and "=" in "".join(inline) and _MATH.sub("", code).strip():
            code = " \\\\ ".join(inline)  # prose around $…$: only the math is the answer
        code = re.sub(r"\\(?:label|tag\*?|eqref|ref)\{[^{}]*\}", " ", code)  # \label{eq:1}
        code = re.sub(r"\\(?:coloneqq|coloneq|triangleq|equiv|stackrel\{[^{}]*\}\{=\})", "=", code)
        code = re.sub(r"\\begin\{[^}]*\}|\\end\{[^}]*\}|\$\$?|\\\[|\\\]", " ", code)
        code = code.replace("&", " ").rstrip()
        code = re.sub(r"(\\\\\s*)+$", "", code).strip().rstrip(",.;").strip()
        return code
    idx = raw.find("#")
    code = (raw if idx < 0 else raw[:idx]).strip().replace("≔", "=")
    if code.lower().startswith("note:"):  # chainrule's own notes under a line
        return ""
    return re.sub(r"\s{2,}\((?:fan-out|note)\b[^()]*\)\s*$", "", code)


def _strip_latex_comment(raw: str) -> str:
    m = re.search(r"(?<!\\)%", raw)
    return raw if m is None else raw[: m.start()]


# ------------------------------------------------------------------ one line
def _parse_line(
    code: str,
    raw: str,
    filename: str,
    line_no: int,
    fmt: str,
    names: AnswerNames,
    limits: g.Limits,
    answer: Answer | None = None,
) -> AnswerLine | None:
    span = SourceSpan(filename, line_no, 1, raw if len(raw) <= 1000 else raw[:1000])
    if len(raw) > limits.max_line_chars:
        err = LimitError(
            f"line is {len(raw):,} characters; the limit is {limits.max_line_chars:,}", span
        )
        return AnswerLine(line_no, "", None, None, err, raw[:200])
    target_text, node = "", None
    try:
        target_text, rhs, rhs_col = _split_target(code, raw, span)
        target = _canonical_target(target_text, fmt, names)
        if answer is not None and names.is_definition(target):
            tree = _parse_rhs(rhs, raw, filename, line_no, rhs_col, fmt, names, limits)
            names.define(target, tree, answer, span)
            if target in names.macros:  # kept; refused at the end if no line uses it
                names.macro_lines[target] = AnswerLine(
                    line_no,
                    target_text,
                    None,
                    None,
                    ModelError(
                        f"cannot tell which error signal '{target}' is: it is not a model "
                        "name, and no later line uses it",
                        span,
                        "write e.g. 'zbar = …', 'z_bar = …' or 'dL/dw = …'",
                    ),
                    raw,
                )
            return None
        node = names.target_node(target, span, answer)
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
    target, rhs = code[:first].strip().removesuffix(":").strip(), code[last + 1 :]  # a := b
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
            return latex_target(text, names.known(), names.vocabulary("latex"))
        except ModelError as exc:
            raise ModelError(exc.message, SourceSpan(exc.span.file, 1, 1, text), exc.hint) from None
    text = normalize_answer_text(text).strip()
    text = re.sub(r"\^\(?\{?\(?(\d)\)?\}?\)?", r"\1", text)  # W^(2)_bar: a layer in a target
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
    tree = _parse_rhs_tree(rhs, raw, filename, line_no, col, fmt, names, limits)
    tree = hat_is_prediction(tree, names.program, names.items)
    if names.macros:
        tree = substitute(tree, names.macros, names.used)
    return expand_macros(tree, names.program.is_vector)


def _parse_rhs_tree(
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
            juxtapose=JUXT if names.program.is_vector else "*",  # W̄ = ȳ hᵀ is a product
            functions=names.program.functions,
            loss_names=_loss_names(names.program),
            vocabulary=names.vocabulary("latex"),  # type: ignore[arg-type]
        )
    from .text_answer import parse_text_answer

    return parse_text_answer(
        rhs.strip(),
        filename,
        line_no,
        limits,
        known=names.known(),
        juxtapose=JUXT if names.program.is_vector else "*",
        column_offset=col - 1,
        source_line=raw,
        loss_names=_loss_names(names.program),
        functions=names.program.functions,
        vocabulary=names.vocabulary("text"),  # type: ignore[arg-type]
    )


def _loss_names(program: Program) -> set[str]:
    loss = program.loss_assignment
    return {loss.name, loss.display, *LOSS_ALIASES}


def normalize_answer_text(text: str) -> str:
    """Plain-text answer normalization: ``ȳ`` → ``y_bar``, ``W̄⁽²⁾`` → ``W2_bar``, then
    the model grammar's Unicode mapping (``σ`` → ``sigma``, ``−`` → ``-``, NFKC)."""
    return g.normalize_text(to_text_unicode(text))


# ------------------------------------------------------------------ names
class AnswerNames:
    """How names in answers map to the model: forward values, error signals, targets."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.items: dict[str, str] = {}  # written name → model name
        self.macros: dict[str, g.Expr] = {}  # the student's shorthands (e = y − t)
        self.macro_lines: dict[str, AnswerLine] = {}  # their lines, until a line uses them
        self.used: set[str] = set()
        self._vocabularies: dict[str, tuple] = {}

        for v in program.variables:
            self.items[v.name] = v.name
        for a in program.assignments:  # a re-assigned c means its latest version
            self.items[a.display] = a.name
            self.items[a.name] = a.name
        for node, layer in node_layers(program).items():  # z^{(1)} for z, in layer 1
            display = program[node].display  # type: ignore[union-attr]
            if not display[-1].isdigit():
                self.items.setdefault(f"{display}{layer}", node)
        for written, name in list(self.items.items()):  # W_2 for W2 (plain text)
            m = re.match(r"^([A-Za-z]+)(\d+)$", written)
            if m:
                self.items.setdefault(f"{m.group(1)}_{m.group(2)}", name)
        if "y" not in self.items and "y_hat" not in self.items:  # ŷ: the prediction
            prediction = prediction_of(program)
            if prediction is not None:
                self.macros["y_hat"] = prediction
        for written, name in list(self.items.items()):  # ŷ, ỹ, \vec{x}: the value itself
            for deco in ("hat", "tilde", "vec"):
                self.items.setdefault(f"{written}_{deco}", name)

    def vocabulary(self, fmt: str) -> tuple:
        """The function vocabulary of the model for a format, computed once."""
        if fmt not in self._vocabularies:
            if fmt == "latex":
                from .latex import latex_vocabulary

                self._vocabularies[fmt] = latex_vocabulary(self.program.functions)
            else:
                from .text_answer import text_vocabulary

                self._vocabularies[fmt] = text_vocabulary(self.program.functions)
        return self._vocabularies[fmt]

    def known(self) -> set[str]:
        """Every name an answer may write (for LaTeX letter splitting)."""
        out = set(self.items) | set(self.macros)
        out |= {f"{n}_bar" for n in self.items} | {f"{n}bar" for n in self.items}
        return out

    def signal_node(self, name: str) -> str | None:
        """The model node of an error-signal name (``zbar``/``z_bar`` → ``z``), or None."""
        for suffix in ("_bar", "bar"):
            if name.endswith(suffix) and name[: -len(suffix)] in self.items:
                return self.items[name[: -len(suffix)]]
        if name.startswith("delta") and name not in self.items:
            return delta_node(name, self.program, self.items)
        m = re.match(r"^d(?:L|E|J|loss)_?d_?([A-Za-z].*)$", name)  # dLdz, dL_dW1
        if m and m.group(1) in self.items and name not in self.items:
            return self.items[m.group(1)]
        for prefix, suffix in (
            ("d", ""),
            ("d_", ""),
            ("grad_", ""),
            ("", "_grad"),
            ("g_", ""),
            ("bar_", ""),
        ):
            # dW1 (CS231n, deeplearning.ai), grad_W1, W1_grad: the gradient of W1
            base = name[len(prefix) : len(name) - len(suffix)]
            if name not in self.items and name.startswith(prefix) and name.endswith(suffix):
                if base in self.items and base != name:
                    return self.items[base]
        return None

    def is_definition(self, target: str) -> bool:
        """``a = …`` with ``a`` a plain name that is no error signal: a definition."""
        if not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", target) or target.startswith("delta"):
            return False
        if target.endswith("bar") and len(target) > 3:
            return False
        return self.signal_node(target) is None

    def define(self, name: str, tree: g.Expr, answer: Answer, span: SourceSpan) -> None:
        """Match a student's definition to a model node or an inline value (or refuse)."""
        from .intermediates import match_definition

        value = self._build(tree)
        found = match_definition(self.program, value) if value is not None else None
        if name in self.items and name not in answer.aliases:
            if found is not None and found[1] is None and found[0] == self.items[name]:
                return  # the forward pass restated (z = W x + b): nothing to grade
            raise ModelError(
                f"'{name}' is a model value; name its error signal "
                f"('{name}bar', '{name}_bar' or 'dL/d{name}')",
                span,
                "a line restating the forward pass must match the model's definition",
            )
        if found is None:  # the student's own shorthand (e = y − t): written out where used
            self.macros[name] = tree
            return
        self.macros.pop(name, None)
        node, sub = found
        if sub is None:
            self.items[name] = node
            answer.aliases[name] = node
        else:
            self._name_inline(name, sub, answer)

    def _name_inline(self, name: str, sub: sp.Basic, answer: Answer) -> str:
        """Make ``name`` the node of an inline value (or another name for it)."""
        for other, value in answer.intermediates.items():
            if value == sub:
                self.items[name] = other
                answer.aliases[name] = other
                return other
        self.items[name] = name
        answer.intermediates[name] = sub
        return name

    def _build(self, tree: g.Expr) -> sp.Basic | None:
        builder: Any
        if self.program.is_vector and SHAPED_BUILDERS:
            builder = SHAPED_BUILDERS[0](self.program)
        else:
            builder = AnswerBuilder(self.program)
        builder.names = self
        try:
            value = builder.build(tree)
        except (ModelError, ValueError, TypeError, RecursionError, ArithmeticError):
            return None
        signals = [s for s in builder.signals.values() if value.has(s)]
        return None if signals else value

    def implicit(self, name: str, answer: Answer | None) -> str | None:
        """An undefined ``\\bar{a}``: the model's inline pre-activation (see intermediates)."""
        from .intermediates import guess_inline

        if answer is None or not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", name):
            return None
        key = "a" + name.removeprefix("delta").lstrip("_") if name.startswith("delta") else name
        sub = guess_inline(self.program, key)
        if sub is None:
            m = re.match(r"^(?:a|net)_?(\d?)$", name)
            node = delta_node(f"delta{m.group(1)}", self.program, self.items) if m else None
            if node is not None:  # a⁽ˡ⁾, net: the pre-activation the model names itself
                self.items[name] = node
                answer.aliases[name] = node
            return node
        if name.startswith("delta"):  # δ⁽ˡ⁾: the signal of a node named like a⁽ˡ⁾
            while key in self.items or key in self.program:
                key += "_"
            return self._name_inline(key, sub, answer)
        return self._name_inline(name, sub, answer)

    def target_node(self, target: str, span: SourceSpan, answer: Answer | None = None) -> str:
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
        base = re.sub(r"_?bar$", "", target) if target.endswith("bar") else target
        if node is None and base in self.macros:
            self.used.add(base)
            raise ModelError(
                f"'{base}' is your own shorthand for a value the model does not compute as "
                "one node, so its error signal cannot be checked",
                span,
                "give the error signals of the model's values, e.g. \\bar{z} = …",
            )
        if node is None:
            node = (
                self.implicit(base, answer) if base != target or base.startswith("delta") else None
            )
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
        if node.op in ("@", JUXT):
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
