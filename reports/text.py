"""Plain-text and JSON renderings of a derivation (what ``chainrule derive`` prints)."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from typing import Any

import sympy as sp

from ..derive.differentiate import with_deep_stack
from ..derive.opcount import count_ops
from ..derive.records import (
    BackpropStep,
    Derivation,
    FunctionDefinition,
    NaiveDerivation,
    RuleStep,
)
from ..symbolic.expand import expand_derivatives, expand_fully, expand_modes
from .notation import derivative_symbol, entry_lines, pretty_name, to_latex, to_unicode

#: Expressions larger than this are summarized in text output (they stay in JSON).
MAX_PRINTED_OPS = 400
MAX_PRINTED_CHARS = 600

EXPANSIONS: dict[str, Callable[[sp.Basic], sp.Basic]] = {
    "none": lambda e: e,
    **{mode: expand_derivatives for mode in expand_modes()},  # σ'(z) → σ(z)(1 − σ(z))
    "full": expand_fully,  # every activation as exponentials
}


class _Notation:
    """Formats names and expressions of one program consistently."""

    def __init__(self, derivation: Derivation, expand: str = "none") -> None:
        self.vector = derivation.program.is_vector
        self.expand = EXPANSIONS[expand]

    def name(self, name: str, bar: bool = False) -> str:
        return pretty_name(name, vector=self.vector, bar=bar)

    def expr(self, e: Any) -> str:
        if e is None:
            return "—"
        return to_unicode(self.expand(e), vector=self.vector)

    def forward(self, a: Any) -> str:
        """An assignment's right-hand side in the order it was written, when known."""
        if a.as_written is not None and self.expand is EXPANSIONS["none"]:
            try:
                return to_unicode(a.as_written, vector=self.vector, order="none")
            except Exception:  # noqa: BLE001 - fall back to SymPy's canonical form
                pass
        return self.expr(a.expr)

    def long_expr(self, e: Any, axes: tuple[Any, ...] = ()) -> str:
        """An expression, or a summary when it is too long to read (expression swell);
        ``axes``: the shape to name for a tensor carried by the matrix ``e``."""
        try:
            ops = count_ops(e).total if isinstance(e, sp.Basic) else 0
        except RecursionError:
            return "[nested too deeply to print]"
        if ops > MAX_PRINTED_OPS:
            shape = f"{e.rows}×{e.cols} matrix, " if getattr(e, "is_Matrix", False) else ""
            if shape and len(axes) > 2:
                shape = "×".join(str(d) for d in axes) + " tensor, "
            other = " or --notation index" if shape else ""  # a vector program's entries
            return f"[{shape}{ops:,} operations: too long to print; see --format json{other}]"
        try:
            text = with_deep_stack(lambda: self.expr(e))
        except RecursionError:
            return "[nested too deeply to print; see --format json]"
        if len(text) > MAX_PRINTED_CHARS:
            return f"[{len(text):,} characters: too long to print; see --format json]"
        return text

    def shape(self, name: str, program: Any) -> str:
        shape = getattr(program[name], "shape", ())
        return "scalar" if not shape else " × ".join(str(d) for d in shape)

    def latex(self, e: Any) -> str:
        return "" if e is None else to_latex(self.expand(e), vector=self.vector)


def _width(s: str) -> int:
    """Display width: combining marks (the bar of ȳ) take no column."""
    return sum(1 for ch in s if not unicodedata.combining(ch))


def _pad(s: str) -> str:
    return " " * _width(s)


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    """A plain table; the first and last columns are left-aligned, numbers right."""
    n = len(header)
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(n)]

    def fmt(row: list[str]) -> str:
        cells = [
            c + " " * (w - _width(c)) if i in (0, n - 1) else " " * (w - _width(c)) + c
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows]


def backprop_lines(step: BackpropStep, n: _Notation, steps: bool) -> list[str]:
    """``z̄ = ȳ σ'(z)``; with ``steps``, the sum over children first."""
    lhs = n.name(step.node, bar=True)
    if step.role == "loss":
        return [f"{lhs} = 1"]
    if not step.contributions:
        return [f"{lhs} = {n.expr(step.expression)}"]
    terms = [n.expr(c.term) for c in step.contributions]
    result = " + ".join(terms) if len(terms) > 1 else n.expr(step.expression)
    lines = []
    if steps:
        chain = " + ".join(
            f"{n.name(c.child, bar=True)} {derivative_symbol(c.child, step.node, n.vector)}"
            for c in step.contributions
        )
        lines.append(f"{lhs} = {chain}")
        locals_ = [
            f"{derivative_symbol(c.child, step.node, n.vector)} = {n.expr(c.local_derivative)}"
            for c in step.contributions
            if c.local_derivative is not None
        ]
        if locals_:
            lines.append(_pad(lhs) + "    where " + "; ".join(locals_))
        lines.append(_pad(lhs) + f" = {result}")
    else:
        lines.append(f"{lhs} = {result}")
    if step.fan_out > 1:
        children = ", ".join(n.name(c.child) for c in step.contributions)
        lines[-1] += f"      (fan-out {step.fan_out}: {children})"
    if step.note:
        lines.append(_pad(lhs) + f"   note: {step.note}")
    if n.vector and step.role != "loss":
        lines += [_pad(lhs) + f"   entrywise: {e}" for e in entry_lines(step.node, step.expression)]
    return lines


def _closed_forms(derivation: Derivation) -> list[Any]:
    if not derivation.program.is_vector or derivation.backprop is None:
        return []
    from ..derive.closed_forms import closed_forms

    return closed_forms(derivation.program)


def closed_form_lines(derivation: Derivation, n: _Notation, steps: bool) -> list[str]:
    """Each closed-form VJP (batch/layer normalization) with its paths and the proof."""
    out: list[str] = []
    for cf in _closed_forms(derivation):
        title = f"{cf.operation} in {n.name(cf.node)}: its paths, then the closed form"
        out += ["", title, "-" * len(title)]
        out += [f"{n.name(a.name)} = {n.forward(a)}" for a in cf.paths.program.assignments]
        out.append("backprop (G plays Ȳ; Z̄ collects the paths as fan-out):")
        for s in cf.paths.steps:
            out += ["  " + line for line in backprop_lines(s, n, steps)]
        out.append(f"closed form: Z̄ = {n.expr(cf.closed)}")
        out.append(f"check: {cf.line()}")
    return out


def jacobian_lines(derivation: Derivation, n: _Notation) -> list[str]:
    from ..derive.vector import jacobians

    assert derivation.backprop is not None
    out = []
    for j in jacobians(derivation.backprop):
        d = derivative_symbol(j.child, j.parent, vector=True)
        out.append(f"{d} = {n.expr(j.jacobian)}   ({j.form})")
        out.append(
            f"    {n.name(j.parent, bar=True)} += ({d})ᵀ {n.name(j.child, bar=True)} "
            f"= {n.expr(j.vjp)}"
        )
    return out or ["(no vector-to-vector edges)"]


DEFINITION_NOTES = {
    "definition": "",
    "derived": "   (from the body)",
    "declared": "   (declared; check-grad checks it)",
}


def definition_lines(definitions: list[FunctionDefinition], n: _Notation) -> list[str]:
    """``swish(z) = z σ(z)``, ``swish'(z) = z σ'(z) + σ(z)   (from the body)``."""
    return [
        f"{n.expr(d.application)} = {n.expr(d.body)}{DEFINITION_NOTES[d.role]}" for d in definitions
    ]


def rule_line(step: RuleStep, n: _Notation) -> str:
    what = f"{step.rule} rule" + (f" ({step.function})" if step.function else "")
    d = f"d/d{n.name(str(step.wrt))}"
    return f"{'  ' * step.depth}{what}: {d}[{n.expr(step.expr)}] = {n.expr(step.result)}"


def naive_lines(naive: NaiveDerivation, n: _Notation, steps: bool) -> list[str]:
    loss = naive.program.loss
    lines = [f"{n.name(loss)} = {n.long_expr(naive.substituted_loss)}", ""]
    for p, g in naive.gradients.items():
        axes = getattr(naive.program[p], "shape", ())
        lines.append(f"{derivative_symbol(loss, p, n.vector)} = {n.long_expr(g.gradient, axes)}")
        if steps:
            lines += ["    " + rule_line(s, n) for s in reversed(g.steps)]
            if g.steps_truncated:
                lines.append("    … (further steps omitted)")
    if not naive.complete:
        lines.append(f"[stopped: {naive.note}]")
    return lines


def cost_lines(derivation: Derivation) -> list[str]:
    rows = []
    for r in derivation.costs:
        if r.ops is None:
            rows.append([r.route, "", "", "", "", "—", "—", r.note])
        else:
            o = r.ops
            rows.append(
                [
                    r.route,
                    o.adds,
                    o.muls,
                    o.divs,
                    o.calls,
                    o.total,
                    f"{r.ratio:.2f}×" if r.ratio is not None else "",
                    r.note,
                ]
            )
    return _table(
        [[str(c) for c in r] for r in rows],
        ["route", "adds", "muls", "divs", "calls", "total", "/forward", "note"],
    )


def render_text(
    derivation: Derivation,
    steps: bool = False,
    expand: str = "none",
    shapes: bool = False,
    show_jacobians: bool = False,
    **_: Any,
) -> str:
    """The derivation as the CLI prints it: forward, backward, naive, op counts.

    ``shapes`` annotates each error signal with its shape; ``show_jacobians`` lists the
    local Jacobians of a vector program (never used to compute anything).
    """
    p = derivation.program
    n = _Notation(derivation, expand)
    out = [p.title, "=" * len(p.title)]
    params = ", ".join(n.name(v.name) for v in p.params)
    inputs = ", ".join(n.name(v.name) for v in p.inputs) or "none"
    out.append(f"parameters: {params}    inputs: {inputs}")
    if p.consts:
        out.append(
            "constants: " + ", ".join(f"{n.name(c.name)} = {_number(c.value)}" for c in p.consts)
        )
    definitions = derivation.definitions
    if definitions:
        out += ["", "Functions", "---------"] + definition_lines(definitions, n)
    out += ["", "Forward pass", "------------"]
    out += [f"{n.name(a.name)} = {n.forward(a)}" for a in p.assignments]
    if derivation.backprop is not None:
        out += [
            "",
            "Backward pass (error signals, reverse topological order)",
            "--------------------------------------------------------",
        ]
        for s in derivation.backprop.steps:
            lines = backprop_lines(s, n, steps)
            if shapes:
                lines[0] += f"      [{n.shape(s.node, p)}]"
            out += lines
        if derivation.agreement is not None:
            out.append(f"check: {derivation.agreement.line()}")
        out += closed_form_lines(derivation, n, steps)
        if show_jacobians and p.is_vector:
            out += [
                "",
                "Local Jacobians (for teaching; backprop uses the products above)",
                "----------------------------------------------------------------",
            ]
            out += jacobian_lines(derivation, n)
    if derivation.naive is not None:
        out += [
            "",
            "Naive: substitute, then differentiate per parameter",
            "---------------------------------------------------",
        ]
        out += naive_lines(derivation.naive, n, steps)
    if derivation.costs:
        out += ["", "Operation counts", "----------------"] + cost_lines(derivation)
    return "\n".join(out) + "\n"


def _number(v: Any) -> str:
    if isinstance(v, sp.Rational) and not v.is_Integer:
        return f"{float(v):g}"
    return str(v)


# ---------------------------------------------------------------------- JSON
def _expr_json(e: Any, n: _Notation) -> dict[str, str] | None:
    if e is None:
        return None
    return {"expr": str(e), "text": n.expr(e), "latex": n.latex(e)}


def derivation_dict(
    derivation: Derivation, steps: bool = False, expand: str = "none"
) -> dict[str, Any]:
    """A JSON-ready dict of the whole derivation."""
    p = derivation.program
    n = _Notation(derivation, expand)
    out: dict[str, Any] = {
        "model": p.title,
        "file": p.filename,
        "loss": p.loss,
        "params": [{"name": v.name, "shape": list(v.shape)} for v in p.params],
        "inputs": [{"name": v.name, "shape": list(v.shape)} for v in p.inputs],
        "consts": [{"name": v.name, "value": str(v.value)} for v in p.consts],
        "forward": [{"name": a.name, **(_expr_json(a.expr, n) or {})} for a in p.assignments],
    }
    if derivation.definitions:
        out["functions"] = [
            {
                "name": d.name,
                "role": d.role,
                "of": d.of or None,
                "params": [str(s) for s in d.params],
                **(_expr_json(d.body, n) or {}),
            }
            for d in derivation.definitions
        ]
    if derivation.backprop is not None:
        out["backprop"] = [
            _step_json(s, n, tuple(getattr(p[s.node], "shape", ())))
            for s in derivation.backprop.steps
        ]
        out["gradients"] = {v.name: str(derivation.backprop.gradient(v.name)) for v in p.params}
    if derivation.naive is not None:
        nv = derivation.naive
        out["naive"] = {
            "complete": nv.complete,
            "note": nv.note,
            "seconds": round(nv.seconds, 4),
            "gradients": {
                k: {
                    **(_expr_json(g.gradient, n) or {}),
                    **({"steps": [_rule_json(s, n) for s in reversed(g.steps)]} if steps else {}),
                }
                for k, g in nv.gradients.items()
            },
        }
    if derivation.agreement is not None:
        a = derivation.agreement
        err = None if a.ok is None else a.max_rel_err
        out["unit_form_agreement"] = {"ok": a.ok, "max_rel_err": err, "line": a.line()}
    forms = _closed_forms(derivation)
    if forms:
        out["closed_forms"] = [
            {
                "operation": cf.operation,
                "node": cf.node,
                "paths": [_step_json(st, n) for st in cf.paths.steps],
                "closed_form": _expr_json(cf.closed, n),
                "proved_equal": cf.ok,
                "symbolic_size": list(cf.size),
                "max_rel_err": cf.max_rel_err,
                "line": cf.line(),
            }
            for cf in forms
        ]
    out["costs"] = [
        {
            "route": r.route,
            **(r.ops.as_dict() if r.ops else {"total": None}),
            "ratio": r.ratio,
            "note": r.note,
        }
        for r in derivation.costs
    ]
    return out


def _step_json(s: BackpropStep, n: _Notation, axes: tuple[Any, ...] = ()) -> dict[str, Any]:
    """One backprop step; ``axes``: the node's declared shape (a tensor's axes are shown
    rather than the matrix that carries it)."""
    shape = list(getattr(s.signal, "shape", ())) and [str(d) for d in s.signal.shape]
    entrywise = entry_lines(s.node, s.expression) if n.vector and s.role != "loss" else []
    return {
        "node": s.node,
        "signal": str(s.signal),
        "shape": [str(d) for d in axes] if len(axes) > 2 else shape,
        **({"entrywise": entrywise} if entrywise else {}),
        "role": s.role,
        "fan_out": s.fan_out,
        **(_expr_json(s.expression, n) or {}),
        "contributions": [
            {
                "child": c.child,
                "local_derivative": _expr_json(c.local_derivative, n),
                "term": _expr_json(c.term, n),
            }
            for c in s.contributions
        ],
        "note": s.note,
    }


def _rule_json(s: RuleStep, n: _Notation) -> dict[str, Any]:
    return {
        "rule": s.rule,
        "function": s.function,
        "depth": s.depth,
        "before": n.expr(s.expr),
        "after": n.expr(s.result),
        "before_latex": n.latex(s.expr),
        "after_latex": n.latex(s.result),
    }


def render_json(derivation: Derivation, steps: bool = False, expand: str = "none", **_: Any) -> str:
    return json.dumps(derivation_dict(derivation, steps, expand), indent=2, ensure_ascii=False)
