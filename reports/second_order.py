"""Rendering the second-order derivation (forward-over-reverse) as text, JSON and LaTeX."""

from __future__ import annotations

from typing import Any

import sympy as sp

from ..derive.second_order import SecondOrderDerivation
from .notation import pretty_name, to_latex, to_unicode

#: Up to this many parameters the Hessian entries are shown one by one.
MAX_ENTRIES_SHOWN = 6

TITLE = "Second order: forward-over-reverse (the backprop program differentiated along ṗ)"
EXPLAIN = (
    "ṗ is a direction in parameter space (the v of H v); u̇ is the rate of change of u "
    "along it. The tangent of a gradient p̄ is (H v)_p."
)


def lecture_product(expr: sp.Basic) -> sp.Basic:
    """x₁ x₂ σ(z) (1 − σ(z)): plain factors first, sums last (print with order="none")."""
    if not isinstance(expr, sp.Mul):
        return expr
    plain = [f for f in expr.args if not isinstance(f, sp.Add)]
    sums = [f for f in expr.args if isinstance(f, sp.Add)]
    return sp.Mul(*plain, *sums, evaluate=False)


def _show(expr: sp.Basic, latex: bool = False) -> str:
    e = lecture_product(expr)
    return to_latex(e, order="none") if latex else to_unicode(e, order="none")


def tangent_lines(d: SecondOrderDerivation) -> list[str]:
    """One line per tangent, ż = … ; a gradient's tangent is marked (H v)_p."""
    vec = d.program.is_vector
    out = []
    for s in d.steps:
        line = f"{to_unicode(s.tangent, vec)} = {to_unicode(s.expression, vec)}"
        if s.kind == "gradient":
            line += f"      = (H v)_{pretty_name(s.node, vec)}"
        out.append(line)
    return out


def entry_lines(d: SecondOrderDerivation) -> list[str]:
    """∂²L/∂p∂q per example in closed form (small models), and the rank-one form."""
    names = list(d.directions)
    if d.program.is_vector:
        return [
            "(vector program: the entries of H are evaluated by "
            "'chainrule hessian MODEL --at …', H v by the generated hvp)"
        ]
    if len(names) > MAX_ENTRIES_SHOWN:
        return [
            f"({len(names)} parameters: the {len(names)}×{len(names)} entries are evaluated "
            "by 'chainrule hessian MODEL --at …')"
        ]
    loss = d.program.loss
    out = ["Hessian entries per example (the batch Hessian is their sum Σₙ over examples):"]
    for i, p in enumerate(names):
        for q in names[i:]:
            out.append(f"  {_second(loss, p, q)} = {_show(d.closed_form(p, q))}")
    found = d.rank_one()
    if found is not None:
        c, a = found
        entries_a = ", ".join(to_unicode(a[p]) for p in names)
        out.append(
            f"Rank one per example: H = Σₙ {_show(c)} a aᵀ with a = ({entries_a}) "
            f"= ∂z/∂({', '.join(pretty_name(p) for p in names)})"
            if _is_gradient_of_one_node(d, a)
            else f"Rank one per example: H = Σₙ {_show(c)} a aᵀ with a = ({entries_a})"
        )
    return out


def _is_gradient_of_one_node(d: SecondOrderDerivation, a: dict[str, sp.Basic]) -> bool:
    """a is ∂z/∂p of one node z (a = (x, 1) for z = w·x + b)."""
    for node in d.program.assignments:
        if all(sp.expand(sp.diff(node.expr, d.program.symbol(p)) - v) == 0 for p, v in a.items()):
            return True
    return False


def _second(loss: str, p: str, q: str) -> str:
    lo = pretty_name(loss)
    if p == q:
        return f"∂²{lo}/∂{pretty_name(p)}²"
    return f"∂²{lo}/∂{pretty_name(p)}∂{pretty_name(q)}"


def note_line(d: SecondOrderDerivation) -> str:
    if not d.almost_everywhere:
        return ""
    return (
        f"note: the model uses {', '.join(d.almost_everywhere)}: this is the almost-everywhere "
        "second derivative (the derivative of a kink taken as 0); at a kink the Hessian "
        "does not exist"
    )


def second_order_text(d: SecondOrderDerivation | None) -> str:
    """The section ``derive --order 2`` prints."""
    out = ["", TITLE, "-" * len(TITLE)]
    if d is None:
        out.append("an operation of this model has no forward-mode rule: no second order")
        return "\n".join(out) + "\n"
    out.append(EXPLAIN)
    out += tangent_lines(d)
    if note_line(d):
        out.append(note_line(d))
    out.append("")
    out += entry_lines(d)
    return "\n".join(out) + "\n"


def second_order_dict(d: SecondOrderDerivation) -> dict[str, Any]:
    """JSON: the tangent lines (text and LaTeX), the non-smooth functions, the entries."""
    names = list(d.directions)
    vec = d.program.is_vector
    out: dict[str, Any] = {
        "method": "forward-over-reverse",
        "tangents": [
            {
                "tangent": str(s.tangent),
                "of": str(s.of),
                "kind": s.kind,
                "text": f"{to_unicode(s.tangent, vec)} = {to_unicode(s.expression, vec)}",
                "latex": f"{to_latex(s.tangent, vec)} = {to_latex(s.expression, vec)}",
            }
            for s in d.steps
        ],
        "almost_everywhere": list(d.almost_everywhere),
    }
    if len(names) <= MAX_ENTRIES_SHOWN and not vec:
        out["hessian_entries"] = [
            {"row": p, "column": q, "text": _show(d.closed_form(p, q))}
            for i, p in enumerate(names)
            for q in names[i:]
        ]
        found = d.rank_one()
        if found is not None:
            out["rank_one"] = {
                "c": _show(found[0]),
                "a": {p: to_unicode(v) for p, v in found[1].items()},
            }
    return out


def second_order_latex(d: SecondOrderDerivation) -> dict[str, Any]:
    """Lines for the report: tangent lines and closed-form entries, in LaTeX."""
    names = list(d.directions)
    loss = d.program.loss
    vec = d.program.is_vector
    entries = []
    if len(names) <= MAX_ENTRIES_SHOWN and not vec:
        for i, p in enumerate(names):
            for q in names[i:]:
                lhs = rf"\frac{{\partial^2 {pretty_name(loss, latex=True)}}}{{{_d2(p, q)}}}"
                entries.append(f"{lhs} = {_show(d.closed_form(p, q), latex=True)}")
    found = d.rank_one() if len(names) <= MAX_ENTRIES_SHOWN and not vec else None
    rank_one = ""
    if found is not None:
        c, a = found
        entries_a = ", ".join(to_latex(a[p]) for p in names)
        rank_one = rf"H = \sum_n {_show(c, latex=True)}\, a a^\top,\quad a = ({entries_a})"
    return {
        "tangents": [
            f"{to_latex(s.tangent, vec)} = {to_latex(s.expression, vec)}" for s in d.steps
        ],
        "entries": entries,
        "rank_one": rank_one,
        "note": note_line(d),
    }


def _d2(p: str, q: str) -> str:
    if p == q:
        return rf"\partial {pretty_name(p, latex=True)}^2"
    return rf"\partial {pretty_name(p, latex=True)}\,\partial {pretty_name(q, latex=True)}"
