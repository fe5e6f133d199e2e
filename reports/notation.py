"""Printers for the lectures' notation: ȳ, W̄⁽²⁾, σ'(z), ∘, ᵀ.

Two SymPy printers dispatched by node type (``_print_<Class>``), kept apart from the
math: :class:`LectureTextPrinter` (one-line Unicode) and :class:`LectureLatexPrinter`.
Classes that know their own lecture form define ``_lecture_unicode(printer)`` or
``_lecture_latex(printer)``: every registered function and tensor operation does, with
the symbols of its registry entry (σ, ReLU, ‖·‖²).

>>> from sympy import Symbol
>>> from chainrule.derive import error_signal
>>> from chainrule.ops import REGISTRY
>>> sigma_prime = REGISTRY.by_name("sigma_prime").node
>>> z, t, y = Symbol("z"), Symbol("t"), Symbol("y")
>>> to_unicode(error_signal("y") * sigma_prime(z))
"ȳ σ'(z)"
>>> to_unicode(y - t)
'y − t'
>>> to_latex(error_signal("W1"), vector=True)
'\\\\bar{W}^{(1)}'
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from ..ops import REGISTRY

GREEK = {
    "alpha": ("α", r"\alpha"),
    "beta": ("β", r"\beta"),
    "gamma": ("γ", r"\gamma"),
    "delta": ("δ", r"\delta"),
    "epsilon": ("ε", r"\epsilon"),
    "eta": ("η", r"\eta"),
    "theta": ("θ", r"\theta"),
    "lambda": ("λ", r"\lambda"),
    "mu": ("μ", r"\mu"),
    "rho": ("ρ", r"\rho"),
    "tau": ("τ", r"\tau"),
    "phi": ("φ", r"\phi"),
    "omega": ("ω", r"\omega"),
    "kappa": ("κ", r"\kappa"),
    "nu": ("ν", r"\nu"),
}
_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_SUP = str.maketrans("0123456789()", "⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾")
_NAME_RE = re.compile(r"^(?P<base>[A-Za-z]+?)(?P<digits>\d*)(?:_(?P<sub>[A-Za-z0-9_]+))?$")
MACRON = "\u0304"


def _split(name: str) -> tuple[str, str, str]:
    m = _NAME_RE.match(name)
    if not m:
        return name, "", ""
    return m["base"], m["digits"], m["sub"] or ""


def pretty_name(name: str, vector: bool = False, bar: bool = False, latex: bool = False) -> str:
    """A program name in lecture notation.

    Trailing digits are a layer superscript in vector programs (``W1`` → W⁽¹⁾) and a
    subscript in unit-form programs (``w11`` → w₁₁); ``_suffix`` is a subscript
    (``L_reg`` → L_reg); Greek names become letters (``lambda`` → λ).

    >>> pretty_name("W1", vector=True, bar=True)
    'W̄⁽¹⁾'
    >>> pretty_name("w12")
    'w₁₂'
    >>> pretty_name("L_reg", bar=True, latex=True)
    '\\\\bar{L}_{\\\\mathrm{reg}}'
    """
    base, digits, sub = _split(name)
    if base in GREEK:
        base = GREEK[base][1 if latex else 0]
    elif base.lower() in GREEK and len(base) > 1:
        pass
    if latex:
        if bar:
            base = (
                rf"\bar{{{base}}}"
                if len(base) == 1 or base.startswith("\\")
                else rf"\overline{{\mathrm{{{base}}}}}"
            )
        elif len(base) > 1 and not base.startswith("\\"):
            base = rf"\mathrm{{{base}}}"
        out = base
        subs = []
        if digits and not vector:
            subs.append(digits)
        if sub:
            subs.append(sub if sub.isdigit() else rf"\mathrm{{{_latex_escape(sub)}}}")
        if subs:
            out += "_{" + ",".join(subs) + "}"
        if digits and vector:
            out += f"^{{({digits})}}"
        return out
    if bar:
        base = unicodedata.normalize("NFC", base[0] + MACRON) + base[1:]
    out = base
    if digits:
        out += f"({digits})".translate(_SUP) if vector else digits.translate(_SUB)
    if sub:
        out += "_" + sub if not sub.isdigit() else sub.translate(_SUB)
    return out


def dotted_name(name: str, vector: bool = False, latex: bool = False) -> str:
    """The tangent of a value in forward mode, a dot above its name: ``z_dot`` → ż,
    ``z1_bar_dot`` → z̄̇₁ (the tangent of the error signal z̄₁).

    >>> dotted_name("z1_bar_dot"), dotted_name("w_dot", latex=True)
    ('z̄̇₁', '\\\\dot{w}')
    """
    of = name[: -len("_dot")] if name.endswith("_dot") else name
    bar = of.endswith("_bar")
    base = of[: -len("_bar")] if bar else of
    text = pretty_name(base, vector=vector, bar=bar, latex=latex)
    if latex:
        cut = min((i for i in (text.find("_{"), text.find("^{")) if i > 0), default=len(text))
        return rf"\dot{{{text[:cut]}}}{text[cut:]}"
    k = 1
    while k < len(text) and unicodedata.combining(text[k]):
        k += 1
    return text[:k] + "\u0307" + text[k:]


def _latex_escape(s: str) -> str:
    return s.replace("_", r"\_")


def _order_terms(terms: list[sp.Basic]) -> list[sp.Basic]:
    """Positive terms first, as a lecture writes ``y − t`` rather than ``−t + y``."""
    return sorted(terms, key=lambda a: a.could_extract_minus_sign())


class LectureTextPrinter(StrPrinter):
    """One-line Unicode in the lectures' notation."""

    printmethod = "_lecture_unicode"
    _default_settings = {**StrPrinter._default_settings, "vector": False}

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        return pretty_name(expr.name, vector=self._settings["vector"])

    def _print_ErrorSignal(self, expr: sp.Symbol) -> str:
        return pretty_name(expr.name[: -len("_bar")], vector=self._settings["vector"], bar=True)

    def _print_MatrixSymbol(self, expr: sp.MatrixSymbol) -> str:
        return pretty_name(str(expr.name), vector=True)

    def _print_Tangent(self, expr: sp.Symbol) -> str:
        return dotted_name(expr.name, vector=self._settings["vector"])

    def _print_TangentMatrix(self, expr: sp.MatrixSymbol) -> str:
        return dotted_name(str(expr.name), vector=True)

    def _print_ErrorSignalMatrix(self, expr: sp.MatrixSymbol) -> str:
        return pretty_name(str(expr.name)[: -len("_bar")], vector=True, bar=True)

    def _print_Add(self, expr: sp.Add, order: str | None = None) -> str:
        terms = _order_terms(list(expr.args))
        prec = sp.printing.precedence.PRECEDENCE["Add"]
        out = self._print(terms[0])
        for t in terms[1:]:
            if t.could_extract_minus_sign():
                out += " − " + self.parenthesize(-t, prec)
                continue
            text = self.parenthesize(t, prec)
            if text.startswith(("−", "-")):  # a printed sign the term did not report
                out += " − " + text[1:].lstrip()
            else:
                out += " + " + text
        return out

    def _print_Pi(self, expr: sp.Basic) -> str:
        return "π"

    def _print_Mul(self, expr: sp.Mul) -> str:
        s = super()._print_Mul(expr)
        return s.replace("*", " ").replace("-", "−")

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        base, exp = expr.args
        if exp == sp.S.Half:
            return f"√({self._print(base)})"
        b = self.parenthesize(base, sp.printing.precedence.PRECEDENCE["Pow"], strict=True)
        if exp.is_Integer and 0 < int(exp) < 10:
            return b + str(int(exp)).translate(_SUP)
        if exp.is_Integer and int(exp) == -1:
            return f"1/{b}"
        if exp.is_Integer and int(exp) < 0:
            return f"1/{b}" + str(-int(exp)).translate(_SUP)
        return f"{b}^({self._print(exp)})"

    def _print(self, expr: Any, **kwargs: Any) -> str:
        op = REGISTRY.for_node(expr) if isinstance(expr, sp.Basic) else None
        if op is not None and not hasattr(expr, self.printmethod):
            render = op.extra.get("unicode_form")
            if render is not None:  # matrix algebra: ᵀ, ∘, juxtaposition
                return str(render(expr, self))
            if op.kind == "scalar":
                return self._print_application(op.unicode or op.name, expr)
        return str(super()._print(expr, **kwargs))

    def _print_application(self, symbol: str, expr: sp.Basic) -> str:
        """``tanh(z)``, ``max(a, b)``; a symbol with a ``·`` slot is a template: ``|z|``."""
        args = ", ".join(self._print(a) for a in expr.args)
        return symbol.replace("·", args) if "·" in symbol else f"{symbol}({args})"

    def _print_Function(self, expr: sp.Function) -> str:
        return self._print_application(expr.func.__name__, expr)

    def _print_Exp1(self, expr: sp.Basic) -> str:
        return "e"

    def _print_OneMatrix(self, expr: sp.Basic) -> str:
        return "𝟙"

    def _print_ZeroMatrix(self, expr: sp.Basic) -> str:
        return "0"


class LectureLatexPrinter(LatexPrinter):
    """LaTeX in the lectures' notation (``\\bar{y}``, ``\\sigma'(z)``, ``\\circ``)."""

    printmethod = "_lecture_latex"
    _default_settings = {**LatexPrinter._default_settings, "vector": False}

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        return pretty_name(expr.name, vector=self._settings["vector"], latex=True)

    def _print_ErrorSignal(self, expr: sp.Symbol) -> str:
        return pretty_name(
            expr.name[: -len("_bar")], vector=self._settings["vector"], bar=True, latex=True
        )

    def _print_MatrixSymbol(self, expr: sp.MatrixSymbol) -> str:
        return pretty_name(str(expr.name), vector=True, latex=True)

    def _print_Tangent(self, expr: sp.Symbol) -> str:
        return dotted_name(expr.name, vector=self._settings["vector"], latex=True)

    def _print_TangentMatrix(self, expr: sp.MatrixSymbol) -> str:
        return dotted_name(str(expr.name), vector=True, latex=True)

    def _print_ErrorSignalMatrix(self, expr: sp.MatrixSymbol) -> str:
        return pretty_name(str(expr.name)[: -len("_bar")], vector=True, bar=True, latex=True)

    def _print_Add(self, expr: sp.Add, order: str | None = None) -> str:
        terms = _order_terms(list(expr.args))
        out = self._print(terms[0])
        for t in terms[1:]:
            if t.could_extract_minus_sign():
                out += " - " + self.parenthesize(-t, sp.printing.precedence.PRECEDENCE["Add"])
            else:
                out += " + " + self._print(t)
        return out

    def _print(self, expr: Any, **kwargs: Any) -> str:
        op = REGISTRY.for_node(expr) if isinstance(expr, sp.Basic) else None
        render = op.extra.get("latex_form") if op is not None else None
        if render is not None and not hasattr(expr, self.printmethod):
            return str(render(expr, self))  # matrix algebra: ^\top, \circ
        return str(super()._print(expr, **kwargs))

    def _print_OneMatrix(self, expr: sp.Basic) -> str:
        return r"\mathbf{1}"


def to_unicode(expr: sp.Basic, vector: bool = False, order: str | None = None) -> str:
    """One-line lecture notation: ``ȳ σ'(z)``, ``W⁽²⁾ᵀ ȳ``. ``order="none"`` keeps the
    terms in the order they are stored (an assignment as written)."""
    settings: dict = {"vector": vector} | ({"order": order} if order else {})
    return unicodedata.normalize("NFC", LectureTextPrinter(settings).doprint(expr))


def entry_lines(name: str, expr: sp.Basic, vector: bool = True) -> list[str]:
    """The entrywise readings of the backward nodes in ``expr`` (an entry's
    ``extra["entry_form"]``), written for the error signal of ``name``:
    ``K̄[f,c,s,t] = Σ_{i,j} Ȳ[f,i,j] X[c,i+s,j+t]``."""
    printer = LectureTextPrinter({"vector": vector})
    lhs = pretty_name(name, vector=vector, bar=True)
    out: list[str] = []
    for e in sp.preorder_traversal(expr):
        op = REGISTRY.for_node(e) if isinstance(e, sp.Basic) else None
        form = op.extra.get("entry_form") if op is not None else None
        text = form(e, printer) if form is not None else None
        if text and lhs + text not in out:
            out.append(unicodedata.normalize("NFC", lhs + text))
    return out


def to_latex(expr: sp.Basic, vector: bool = False, order: str | None = None) -> str:
    """LaTeX in lecture notation: ``\\bar{y} \\sigma'\\left(z\\right)``."""
    settings: dict = {"vector": vector} | ({"order": order} if order else {})
    return LectureLatexPrinter(settings).doprint(expr)


def derivative_symbol(of: str, wrt: str, vector: bool = False, latex: bool = False) -> str:
    """∂L/∂w in the chosen notation."""
    a = pretty_name(of, vector=vector, latex=latex)
    b = pretty_name(wrt, vector=vector, latex=latex)
    if latex:
        return rf"\frac{{\partial {a}}}{{\partial {b}}}"
    return f"∂{a}/∂{b}"
