"""Printing index notation as the lectures write it: ``z_i = Σ_j w⁽¹⁾_ij x_j + b⁽¹⁾_i``.

Entries of a matrix ``W1`` print in lower case with a layer superscript (w⁽¹⁾_ij)
unless the lower-case name is taken; error signals carry a bar (z̄_i, w̄⁽¹⁾_ij);
a product holding one sum is written with the sum first, the other factors inside
(``Σ_k (y_k − t_k) w⁽²⁾_ki σ'(z_i) x_j``), as the lectures do.

>>> import sympy as sp
>>> from chainrule.derive.index_form import index
>>> i, j = index("i"), index("j")
>>> W, x = sp.IndexedBase("W1"), sp.IndexedBase("x")
>>> index_unicode(sp.Sum(W[i, j] * x[j], (j, 1, sp.Symbol("n"))), {"W1"})
'Σ_j w⁽¹⁾_ij x_j'
>>> index_latex(sp.IndexedBase("W1_bar")[i, j], {"W1"})
'\\\\bar{w}^{(1)}_{ij}'
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import sympy as sp

from ..derive.index_form import EntryDerivative, Index, IndexDerivation, IndexLine
from ..symbolic.greek import NAMES  # noqa: I001
from .notation import LectureLatexPrinter, LectureTextPrinter, pretty_name, to_latex, to_unicode

PREC_MUL = sp.printing.precedence.PRECEDENCE["Mul"]
PREC_POW = sp.printing.precedence.PRECEDENCE["Pow"]


def _entry_name(label: str, lowercase: set[str]) -> tuple[str, bool]:
    bar = label.endswith("_bar")
    name = label[: -len("_bar")] if bar else label
    if name in lowercase:
        name = name[0].lower() + name[1:]
    return name, bar


def _factor_rank(f: sp.Basic) -> int:
    """Lecture order of factors: error signals, (sums of terms), weights, σ'(…), the rest."""
    if isinstance(f, sp.Indexed) and str(f.base).endswith("_bar"):
        return 0
    if isinstance(f, sp.Symbol) and f.name.endswith("_bar"):
        return 0
    if isinstance(f, sp.Add):
        return 1
    if isinstance(f, sp.Indexed) and len(f.indices) == 2:
        return 2
    if isinstance(f, sp.Function):
        return 3
    if isinstance(f, EntryDerivative):
        return 5  # the chain continues last: Σ_ℓ y_ℓ ∂z_ℓ/∂w_ij
    return 4


class _IndexMixin:
    """What the text and LaTeX printers share: factor order and the sum-first product."""

    _settings: dict[str, Any]
    _print: Any  # the printer's own

    def _split_mul(self, expr: sp.Mul) -> tuple[sp.Basic, list[sp.Basic], list[sp.Basic]]:
        coeff, factors = expr.as_coeff_mul()
        num, den = [], []
        for f in factors:
            if isinstance(f, sp.Pow) and (
                f.exp.is_Integer and int(f.exp) < 0 or f.exp == sp.Rational(-1, 2)
            ):
                den.append(f.base ** (-f.exp))  # 1/√(…) for ^(−1/2)
            else:
                num.append(f)
        if coeff.is_Rational and coeff.q != 1:
            den.insert(0, sp.Integer(coeff.q))
            coeff = sp.Integer(coeff.p)
        num.sort(key=_factor_rank)
        return coeff, num, den

    def _product(self, factors: list[sp.Basic], sep: str) -> str:
        sums = [f for f in factors if isinstance(f, sp.Sum)]
        if len(sums) == 1 and len(factors) > 1:  # Σ_k body · rest, written Σ_k (body rest)
            s = sums[0]
            rest = [f for f in factors if f is not s]
            inner = sorted([*sp.Mul.make_args(s.function), *rest], key=_factor_rank)
            return self._sum_head(s) + self._product(inner, sep)
        return sep.join(self._factor(f) for f in factors)

    def _factor(self, f: sp.Basic) -> str:
        if isinstance(f, sp.Add):
            return self._paren(self._print(f))
        return self._print(f)

    def _paren(self, text: str) -> str:
        raise NotImplementedError

    def _sum_head(self, s: sp.Sum) -> str:
        raise NotImplementedError


def _sums_first(terms: list[sp.Basic]) -> list[sp.Basic]:
    """Positive terms first, and among them sums first: Σ_j w_ij x_j + b_i."""

    def has_sum(t: sp.Basic) -> bool:
        return any(isinstance(f, sp.Sum) for f in sp.Mul.make_args(t))

    return sorted(terms, key=lambda t: (t.could_extract_minus_sign(), not has_sum(t)))


FRACTIONS = {2: "½", 3: "⅓", 4: "¼"}


class IndexTextPrinter(_IndexMixin, LectureTextPrinter):
    """One-line Unicode index notation."""

    _default_settings = {**LectureTextPrinter._default_settings, "lowercase": set()}

    def _print_Index(self, expr: Index) -> str:
        return expr.name

    def _subscript(self, indices: tuple) -> str:
        texts = [index_expression(self, i, "−") for i in indices]  # x_{t−τ+1}
        if all(len(t.rstrip("′″‴")) == 1 for t in texts):
            return "".join(texts)
        return "{" + ",".join(texts) + "}"

    def _print_Indexed(self, expr: sp.Indexed) -> str:
        name, bar = _entry_name(str(expr.base), self._settings["lowercase"])
        return pretty_name(name, vector=True, bar=bar) + "_" + self._subscript(expr.indices)

    def _print_KroneckerDelta(self, expr: sp.Basic) -> str:
        return "δ_" + self._subscript(expr.args)

    def _print_EntryDerivative(self, expr: EntryDerivative) -> str:
        return f"∂{self._print(expr.of)}/∂{self._print(expr.wrt)}"

    def _paren(self, text: str) -> str:
        return f"({text})"

    def _sum_head(self, s: sp.Sum) -> str:
        return "".join(f"Σ_{self._limit(lim)} " for lim in s.limits)

    def _limit(self, lim: tuple) -> str:
        """``j``, or ``{j=2i−1…2i}`` for a sum over part of a range (a pooling group)."""
        j, lo, hi = lim
        if lo == 1:
            return str(self._print(j))
        parts = (self._print(x).replace(" ", "") for x in (j, lo, hi))
        return "{{{}={}…{}}}".format(*parts)

    def _print_Sum(self, expr: sp.Sum) -> str:
        body = expr.function
        text = self._print(body)
        if isinstance(body, sp.Add):
            text = f"({text})"
        return self._sum_head(expr) + text

    def _print_exp(self, expr: sp.Basic) -> str:
        return f"exp({self._print(expr.args[0])})"

    def _print_Add(self, expr: sp.Add, order: str | None = None) -> str:
        return super()._print_Add(sp.Add(*_sums_first(list(expr.args)), evaluate=False), "none")

    def _print_Mul(self, expr: sp.Mul) -> str:
        coeff, num, den = self._split_mul(expr)
        if den == [sp.Integer(2)] and num and coeff == 1 or coeff == -1 and den == [2]:
            if any(isinstance(f, sp.Sum) for f in num):
                sign = "−" if coeff < 0 else ""
                return f"{sign}½ {self._product(num, ' ')}"
        sign = "−" if coeff < 0 else ""
        coeff = abs(coeff)
        head = "" if coeff == 1 else self._print(coeff) + " "
        top = self._product(num, " ") if num else ("1" if not head else "")
        text = (head + top).strip()
        atoms = (sp.Indexed, sp.Symbol)
        simple = [f for f in num if isinstance(f, atoms)]
        if len(den) == 1 and isinstance(den[0], atoms) and simple and len(num) > 1:
            first = simple[0]  # t_k/y_k ∂y_k/∂w_kj rather than (t_k ∂y_k/∂w_kj)/y_k
            rest = [f for f in num if f is not first]
            frac = f"{self._print(first)}/{self._print(den[0])}"
            return sign + (head + frac + " " + self._product(rest, " ")).strip()
        if den:
            bottom = " ".join(
                self._factor(d) if not isinstance(d, sp.Sum) else self._print(d) for d in den
            )
            if len(den) > 1 or isinstance(den[0], (sp.Mul, sp.Sum)):
                bottom = f"({bottom})" if len(den) > 1 or isinstance(den[0], sp.Mul) else bottom
            if len(num) > 1 or (num and isinstance(num[0], sp.Sum)):
                text = f"({text})"
            text = f"{text}/{bottom}"
        return sign + text

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        if isinstance(expr.base, sp.Sum):
            return (
                f"({self._print(expr.base)})"
                + super()._print_Pow(sp.Pow(sp.Symbol("X"), expr.exp, evaluate=False))[1:]
            )
        return super()._print_Pow(expr, rational)


class IndexLatexPrinter(_IndexMixin, LectureLatexPrinter):
    """LaTeX index notation (``\\bar{w}^{(1)}_{ij} = \\bar{z}_{i} x_{j}``)."""

    _default_settings = {**LectureLatexPrinter._default_settings, "lowercase": set()}

    def _print_Index(self, expr: Index) -> str:
        name = expr.name.replace("ℓ", r"\ell").replace("′", "'").replace("″", "''")
        name = name.replace("‴", "'" * 3)
        return "".join(rf"\{NAMES[ch]} " if ch in NAMES else ch for ch in name).rstrip()

    def _print_Indexed(self, expr: sp.Indexed) -> str:
        name, bar = _entry_name(str(expr.base), self._settings["lowercase"])
        base = pretty_name(name, vector=True, bar=bar, latex=True)
        sub = _join_tex([self._print(i) for i in expr.indices])
        if any(not isinstance(i, Index) for i in expr.indices):
            sub = ",".join(index_expression(self, i, "-") for i in expr.indices)
        return f"{base}_{{{sub}}}"

    def _print_KroneckerDelta(self, expr: sp.Basic, exp: str | None = None) -> str:
        sub = _join_tex([self._print(a) for a in expr.args])
        if any(not isinstance(a, Index) for a in expr.args):  # δ_{r,3a+b−3}
            sub = ",".join(self._print(a) for a in expr.args)
        return r"\delta_{" + sub + "}"

    def _print_EntryDerivative(self, expr: EntryDerivative) -> str:
        return rf"\frac{{\partial {self._print(expr.of)}}}{{\partial {self._print(expr.wrt)}}}"

    def _paren(self, text: str) -> str:
        return rf"\left({text}\right)"

    def _sum_head(self, s: sp.Sum) -> str:
        return "".join(self._limit(lim) for lim in s.limits)

    def _limit(self, lim: tuple) -> str:
        j, lo, hi = lim
        if lo == 1:
            return rf"\sum_{{{self._print(j)}}} "
        return rf"\sum_{{{self._print(j)}={self._print(lo)}}}^{{{self._print(hi)}}} "

    def _print_Sum(self, expr: sp.Sum) -> str:
        body = expr.function
        text = self._print(body)
        if isinstance(body, sp.Add):
            text = self._paren(text)
        return self._sum_head(expr) + text

    def _print_exp(self, expr: sp.Basic, exp: str | None = None) -> str:
        return f"e^{{{self._print(expr.args[0])}}}"

    def _print_Add(self, expr: sp.Add, order: str | None = None) -> str:
        return super()._print_Add(sp.Add(*_sums_first(list(expr.args)), evaluate=False), "none")

    def _print_Mul(self, expr: sp.Mul) -> str:
        coeff, num, den = self._split_mul(expr)
        sign = "-" if coeff < 0 else ""
        coeff = abs(coeff)
        top = self._product(num, r" \, ") if num else "1"
        if coeff != 1:
            top = (self._print(coeff) + " " + top) if num else self._print(coeff)
        if den:
            bottom = " ".join(self._print(d) for d in den)
            return rf"{sign}\frac{{{top}}}{{{bottom}}}"
        return sign + top

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        if isinstance(expr.base, sp.Sum):
            return rf"\left({self._print(expr.base)}\right)^{{{self._print(expr.exp)}}}"
        return super()._print_Pow(expr)


def index_expression(printer: Any, e: sp.Basic, minus: str) -> str:
    """An index as a subscript, letters before the number and no spaces: ``t−τ+1``."""
    if not isinstance(e, sp.Add):
        return str(printer._print(e)).replace(" ", "")
    terms = sorted(e.args, key=lambda t: (t.is_Number, t.could_extract_minus_sign()))
    out = ""
    for k, t in enumerate(terms):
        negative = t.could_extract_minus_sign()
        text = str(printer._print(-t if negative else t)).replace(" ", "")
        out += (minus if negative else ("+" if k else "")) + text
    return out


def _join_tex(parts: list[str]) -> str:
    """Index letters side by side, a space after a command (``\\ell i``, not ``\\elli``)."""
    out = ""
    for part in parts:
        command = re.search(r"\\[A-Za-z]+$", out)
        out += (" " if command and part[:1].isalpha() else "") + part
    return out


def index_unicode(expr: sp.Basic, lowercase: set[str] | frozenset[str] = frozenset()) -> str:
    printer = IndexTextPrinter({"vector": True, "lowercase": set(lowercase)})
    return unicodedata.normalize("NFC", printer.doprint(expr))


def index_latex(expr: sp.Basic, lowercase: set[str] | frozenset[str] = frozenset()) -> str:
    return IndexLatexPrinter({"vector": True, "lowercase": set(lowercase)}).doprint(expr)


# ------------------------------------------------------------------ lines
def line_text(line: IndexLine, lowercase: set[str], steps: bool = False) -> str:
    """``h̄_i = Σ_k ȳ_k w⁽²⁾_ki`` (with ``steps``: ``h̄_i = Σ_k ȳ_k ∂y_k/∂h_i = …``)."""
    middle = ""
    if steps and line.general is not None:
        middle = f" = {index_unicode(line.general, lowercase)}"
    return f"{index_unicode(line.lhs, lowercase)}{middle} = {index_unicode(line.rhs, lowercase)}"


def matrix_text(line: IndexLine) -> str:
    return (
        f"{to_unicode(line.matrix_lhs, vector=True)} = {to_unicode(line.matrix_rhs, vector=True)}"
    )


def line_latex(line: IndexLine, lowercase: set[str]) -> str:
    return f"{index_latex(line.lhs, lowercase)} = {index_latex(line.rhs, lowercase)}"


def matrix_latex(line: IndexLine) -> str:
    return f"{to_latex(line.matrix_lhs, vector=True)} = {to_latex(line.matrix_rhs, vector=True)}"


def _bridged(lines: list[IndexLine], low: set[str], steps: bool = False) -> list[str]:
    left = [line_text(line, low, steps) for line in lines]
    width = min(max((len(t) for t in left), default=0), 60)
    return [
        f"{t.ljust(width)}   ⇔   {matrix_text(line)}" for t, line in zip(left, lines, strict=True)
    ]


def render_index_text(
    d: IndexDerivation,
    method: str = "both",
    steps: bool = True,
    costs: Any = None,
    bridge: Any = None,
) -> str:
    """The derivation in index notation, each line beside its matrix form."""
    low = d.lowercase
    out: list[str] = [d.program.title or d.program.filename, ""]
    letters = ", ".join(f"{v} over 1…{k}" for k, v in d.letters.items())
    ell = any("ℓ" in str(x.rhs) for x in d.forward)
    out += [f"Indices: {letters}{' (ℓ inside a softmax sum)' if ell else ''}", ""]
    out += _section("Forward pass (index notation ⇔ matrix form)", _bridged(d.forward, low))
    where = [f"{index_unicode(a, low)} = {index_unicode(b, low)}" for a, b in definitions(d)]
    if where:
        out[-1:-1] = ["where " + ", ".join(where)]
    if method in ("backprop", "both"):
        lines = _bridged(d.backprop, low, steps)
        lines += [f"    note: {line.note}" for line in d.backprop if line.note]
        out += _section("Backward pass (error signals, index notation ⇔ matrix form)", lines)
    if method in ("naive", "both"):
        out += _section(
            "Naive route (substitute, then differentiate per entry)", _naive_lines(d, steps)
        )
    if costs is not None:
        out += _section("Operation counts (formulas in the sizes)", cost_lines(costs))
    if bridge is not None:
        out.append(bridge.text())
    return "\n".join(out).rstrip()


def definitions(d: IndexDerivation) -> list[tuple[sp.Basic, sp.Basic]]:
    """(name, definition) of every named quantity the lines use (a normalization's
    μ(z) = Σ_j z_j/n and σ²(z)), once each, in order of appearance."""
    out: dict[str, tuple[sp.Basic, sp.Basic]] = {}
    lines = [*d.forward, *d.backprop]
    for e in [x.rhs for x in lines] + [g.result for g in d.naive]:
        for node in sp.preorder_traversal(e):
            shown = getattr(node, "shown", None)
            if shown is not None:
                name, body = shown()
                out.setdefault(index_unicode(name), (name, body))
    return [out[k] for k in sorted(out)]  # μ before σ²


def _section(title: str, lines: list[str]) -> list[str]:
    return [title, "-" * len(title), *lines, ""]


def _naive_lines(d: IndexDerivation, steps: bool) -> list[str]:
    low = d.lowercase
    out = []
    if d.substituted_loss is not None:
        loss = d.program.loss
        out.append(
            f"{index_unicode(sp.Symbol(loss), low)} = "
            f"{index_unicode(d.substituted_loss, low)}   (every assignment substituted)"
        )
    for g in d.naive:
        out.append("")
        shown = g.steps  # short at symbolic sizes: always every rule
        for s in shown:
            rules = f"   [{', '.join(s.rules)}]" if s.rules else ""
            out.append(f"{index_unicode(s.lhs, low)} = {index_unicode(s.rhs, low)}{rules}")
    return out


def index_json(d: IndexDerivation, costs: Any = None, bridge: Any = None) -> dict[str, Any]:
    """Machine-readable index form: every line as text and LaTeX with its matrix form."""
    low = d.lowercase

    def row(line: IndexLine) -> dict[str, Any]:
        return {
            "name": line.name,
            "index": line_text(line, low),
            "index_latex": line_latex(line, low),
            "matrix": matrix_text(line),
            "matrix_latex": matrix_latex(line),
            **({"note": line.note} if line.note else {}),
        }

    return {
        "notation": "index",
        "indices": d.letters,
        "forward": [row(x) for x in d.forward],
        **(
            {
                "where": [
                    {
                        "index": _eq(index_unicode, a, b, low),
                        "index_latex": _eq(index_latex, a, b, low),
                    }
                    for a, b in definitions(d)
                ]
            }
            if definitions(d)
            else {}
        ),
        "backprop": [row(x) for x in d.backprop],
        "naive": [
            {
                "param": g.param,
                "gradient": _eq(index_unicode, g.steps[-1].lhs, g.result, low),
                "gradient_latex": _eq(index_latex, g.steps[-1].lhs, g.result, low),
                "steps": [
                    {
                        "line": f"{index_unicode(s.lhs, low)} = {index_unicode(s.rhs, low)}",
                        "rules": s.rules,
                    }
                    for s in g.steps
                ],
            }
            for g in d.naive
        ],
        **({"costs": costs.as_json()} if costs is not None else {}),
        **({"bridge": bridge.as_json()} if bridge is not None else {}),
        "seconds": round(d.seconds, 3),
    }


_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _eq(printer: Any, lhs: sp.Basic, rhs: sp.Basic, low: set[str]) -> str:
    return f"{printer(lhs, low)} = {printer(rhs, low)}"


def cost_lines(costs: Any) -> list[str]:
    """The op-count formulas of an :class:`~chainrule.derive.index_costs.IndexCosts`."""
    shown = ", ".join(f"{k} = {v}" for k, v in costs.sizes.items())
    out = []
    for name, ops in costs.rows():
        at = f"   = {ops.at(costs.sizes):,} at {shown}" if costs.sizes else ""
        if name.startswith("naive"):
            out.append(f"{name}: {formula(ops.total)}{at}")
            continue
        out.append(
            f"{name}: {formula(ops.total)}{at}   ({formula(ops.multiplications)} "
            f"multiplications, {formula(ops.additions)} additions, "
            f"{formula(ops.calls)} calls)"
        )
    growth = costs.naive_growth()
    if growth is not None:
        out.append(
            f"the naive route grows as {formula(growth[0])} (degree {growth[1]}); backprop "
            f"as {formula(costs.backprop_leading())}"
        )
    if not costs.naive_complete:
        out.append("(naive route stopped at its time budget: parameters left out)")
    return out


def formula(e: sp.Expr) -> str:
    """A size polynomial as the lectures write it: ``k·m + m·n``."""
    if e == 0:
        return "0"
    terms = sp.Add.make_args(sp.expand(e))
    out = []
    for t in sorted(
        terms, key=lambda t: (-sp.Poly(t).total_degree() if t.free_symbols else 1, str(t))
    ):
        coeff, rest = t.as_coeff_Mul()
        factors = []
        for f in sp.Mul.make_args(rest):
            if f == 1:
                continue
            if isinstance(f, sp.Pow):
                factors.append(f"{f.base}{str(int(f.exp)).translate(_SUPERSCRIPTS)}")
            else:
                factors.append(str(f))
        body = "·".join(sorted(factors))
        sign = "−" if coeff < 0 else "+"
        c = abs(coeff)
        text = body if c == 1 and body else (f"{c}" + (f"·{body}" if body else ""))
        out.append((sign, text))
    first_sign, first = out[0]
    text = ("−" if first_sign == "−" else "") + first
    for sign, t in out[1:]:
        text += f" {sign} {t}"
    return text


# ------------------------------------------------------------------ the view
@dataclass
class IndexView:
    """An index-notation derivation with its op counts and bridge check; Jupyter shows it
    typeset (``chainrule.derivation(model, notation="index")``)."""

    derivation: IndexDerivation
    costs: Any = None
    bridge: Any = None
    method: str = "both"
    steps: bool = True

    def __str__(self) -> str:
        return render_index_text(self.derivation, self.method, self.steps, self.costs, self.bridge)

    def as_json(self) -> dict[str, Any]:
        return index_json(self.derivation, self.costs, self.bridge)

    def _repr_markdown_(self) -> str:
        return render_index_document(self, "md")

    def _repr_html_(self) -> str:
        return render_index_document(self, "html", fragment=True)

    def _repr_latex_(self) -> str:
        low = self.derivation.lowercase
        rows = [line_latex(x, low) for x in self.derivation.backprop]
        return (
            "$$\\begin{aligned}"
            + r"\\ ".join(r.replace(" = ", " &= ", 1) for r in rows)
            + "\\end{aligned}$$"
        )

    def gradient(self, param: str) -> str:
        """w̄⁽¹⁾_ij = z̄_i x_j: the backprop line of ``param`` in index notation."""
        return line_text(self.derivation.gradient(param), self.derivation.lowercase)


def index_view(
    program: Any,
    method: str = "both",
    sizes: dict[str, int] | None = None,
    budget: float = 10.0,
    check: bool = True,
    steps: bool = True,
) -> IndexView:
    """Derive ``program`` in index notation, count its ops, check the bridge."""
    from ..derive.index_costs import index_costs
    from ..derive.index_form import index_derivation
    from ..numeric.index_eval import bridge_check

    d = index_derivation(program, naive=method in ("naive", "both"), budget=budget)
    costs = index_costs(d, sizes)
    bridge = bridge_check(d) if check and _small(program) else None
    return IndexView(d, costs, bridge, method, steps)


def _small(program: Any, limit: int = 8) -> bool:
    """Bound sizes small enough for the entry-by-entry bridge check at run time."""
    return all(v <= limit for v in program.sizes.values())


def _paired(section: str) -> bool:
    """Sections whose rows pair an index line with its matrix form (⇔)."""
    return not section.startswith(("Naive", "Where"))


def _md_math(tex: str) -> str:
    return f"$${tex}$$"


def render_index_document(view: IndexView, fmt: str, fragment: bool = False) -> str:
    """The index-notation derivation as Markdown (LaTeX math), HTML or LaTeX."""
    import html

    d = view.derivation
    low = d.lowercase
    title = d.program.title or d.program.filename
    sections: list[tuple[str, list[tuple[str, str, str, str]]]] = [
        (
            "Forward pass",
            [
                (line_text(x, low), matrix_text(x), line_latex(x, low), matrix_latex(x))
                for x in d.forward
            ],
        ),
        (
            "Backward pass (error signals)",
            [
                (line_text(x, low), matrix_text(x), line_latex(x, low), matrix_latex(x))
                for x in d.backprop
            ],
        ),
    ]
    where = [
        (_eq(index_unicode, a, b, low), "definition", _eq(index_latex, a, b, low), "definition")
        for a, b in definitions(d)
    ]
    if where:
        sections.insert(1, ("Where (named statistics)", where))
    naive_rows = []
    for g in d.naive:
        for s in g.steps:
            naive_rows.append(
                (
                    f"{index_unicode(s.lhs, low)} = {index_unicode(s.rhs, low)}",
                    ", ".join(s.rules),
                    f"{index_latex(s.lhs, low)} = {index_latex(s.rhs, low)}",
                    _rules_tex(", ".join(s.rules)),
                )
            )
    if naive_rows:
        sections.append(("Naive route (substitute, then differentiate per entry)", naive_rows))
    extra = (cost_lines(view.costs) if view.costs is not None else []) + (
        [view.bridge.text()] if view.bridge is not None else []
    )
    if fmt == "md":
        out = [f"## {title} — index notation", ""]
        for name, rows in sections:
            out += [f"### {name}", ""]
            for _, _, tex, right_tex in rows:
                joiner = r" \quad\Longleftrightarrow\quad " if _paired(name) else r" \quad "
                tail = right_tex if _paired(name) else rf"\text{{{right_tex}}}"
                out += [_md_math(tex + joiner + tail), ""]
        out += [f"    {x}" for x in extra]
        return "\n".join(out) + "\n"
    if fmt == "tex":
        out = [
            r"\documentclass{article}",
            r"\usepackage{amsmath}",
            r"\usepackage{amssymb}",
            r"\begin{document}",
            rf"\section*{{{_tex_escape(title)} --- index notation}}",
        ]
        for name, rows in sections:
            out += [rf"\subsection*{{{name}}}", r"\begin{align*}"]
            body = []
            for _, _, tex, right_tex in rows:
                tail = (
                    (r" &\Longleftrightarrow " + right_tex)
                    if _paired(name)
                    else (rf" && \text{{{right_tex}}}")
                )
                body.append(tex.replace(" = ", " &= ", 1) + tail)
            out += [" \\\\\n".join(body), r"\end{align*}"]
        out += [
            r"\begin{verbatim}",
            *[_ascii(x) for x in extra],
            r"\end{verbatim}",
            r"\end{document}",
        ]
        return "\n".join(out) + "\n"
    parts = [f"<h2>{html.escape(title)} — index notation</h2>"]
    for name, rows in sections:
        parts.append(f"<h3>{html.escape(name)}</h3><table class='index'>")
        for left, right, _, _ in rows:
            parts.append(
                f"<tr><td>{html.escape(left)}</td><td>⇔</td><td>{html.escape(right)}</td></tr>"
                if _paired(name)
                else f"<tr><td>{html.escape(left)}</td><td></td>"
                f"<td><small>{html.escape(right)}</small></td></tr>"
            )
        parts.append("</table>")
    parts.append("<pre>" + html.escape("\n".join(extra)) + "</pre>")
    html_body = "\n".join(parts)
    if fragment:
        return f"<div class='chainrule-index'>{html_body}</div>"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>body{{font-family:serif;max-width:60em;"
        "margin:auto;padding:1em}td{padding:.2em .6em}</style></head><body>"
        f"{html_body}</body></html>\n"
    )


_ASCII = str.maketrans(
    {
        "−": "-",
        "·": "*",
        "⁰": "^0",
        "¹": "^1",
        "²": "^2",
        "³": "^3",
        "⁴": "^4",
        "⁵": "^5",
        "⁶": "^6",
        "⁷": "^7",
        "⁸": "^8",
        "⁹": "^9",
    }
)


def _ascii(text: str) -> str:
    """Op-count lines for pdflatex's verbatim (no Unicode font there)."""
    return text.translate(_ASCII)


def _rules_tex(text: str) -> str:
    """Rule names inside ``\\text{…}``: Greek letters and ∂ as math, ``_`` escaped."""
    text = _tex_escape(text)
    for a in sorted({c for c in text if c in NAMES}):  # Greek letters (Σ, δ, σ)
        text = text.replace(a, "$\\" + NAMES[a] + "$")
    for a, b in (("∂", r"$\partial$"), ("'", "$'$")):
        text = text.replace(a, b)
    return text


def _tex_escape(s: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("_", r"\_"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("#", r"\#"),
        ("$", r"\$"),
        ("{", r"\{"),
        ("}", r"\}"),
    ):
        s = s.replace(a, b)
    return s


def _plain_rules(rules: list[str]) -> str:
    """Rule names safe in every format (the report templates print them as words)."""
    words = {
        "∂w_ab/∂w_ij = δ_ai δ_bj": "entry derivative (Kronecker delta)",
        "linearity of Σ": "linearity of the sum",
    }
    out = []
    for r in rules:
        r = words.get(r, r)
        if r.startswith("substitute"):
            r = "substitute, contract the Kronecker deltas"
        out.append(r.replace("σ'", "sigma'").replace("σ", "sigma"))
    return ", ".join(out)


def index_naive_section(program: Any, naive_seconds: float, budget: float | None) -> Any:
    """The standard report's naive section for a vector program, in index notation.

    The calculus-class route at symbolic sizes (substitute, then ∂L/∂θ_ij rule by rule);
    the fully expanded entrywise form remains only as the small-size unit-form
    agreement check of the checks section.
    """
    from ..derive.index_form import IndexFormError, index_derivation
    from .data import NaiveParamView, NaiveSection, NaiveStepView

    try:
        d = index_derivation(program, budget=budget or 10.0)
    except IndexFormError:
        return None
    low = d.lowercase
    params = []
    for g in d.naive:
        *steps, final = g.steps
        views = [
            NaiveStepView(
                _plain_rules(s.rules), 0, index_latex(s.lhs, low), index_latex(s.rhs, low)
            )
            for s in steps
        ]
        params.append(
            NaiveParamView(g.param, index_latex(final.lhs, low), index_latex(g.result, low), views)
        )
    loss = index_latex(sp.Symbol(program.loss), low)
    substituted = d.substituted_loss if d.substituted_loss is not None else sp.S.Zero
    note = (
        "index notation at symbolic sizes; the fully expanded entrywise form is the "
        "unit-form agreement check of the checks section"
    )
    if _small(program):
        from ..numeric.index_eval import bridge_check

        check = bridge_check(d, seeds=(0,))
        sizes = ", ".join(f"{k} = {v}" for k, v in check.sizes[0].items())
        note += (
            f"; each gradient here {'equals' if check.ok else 'DIFFERS FROM'} backprop's at "
            f"random sizes{' (' + sizes + ')' if sizes else ''}, max relative error "
            f"{check.naive:.1e}"
        )
    return NaiveSection(
        f"{loss} = {index_latex(substituted, low)}",
        params,
        len(d.naive) == len(program.params),
        note,
        d.seconds,
        sum(len(g.steps) for g in d.naive),
    )
