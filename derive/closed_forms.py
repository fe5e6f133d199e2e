"""Closed-form backward passes shown against their paths, and proved equal.

Some operations' VJPs are closed forms of several paths: batch normalization's
``Z̄ = (Ȳ − mean₀(Ȳ) − X̂ ∘ mean₀(Ȳ ∘ X̂)) ∘ 1/σ̂`` sums what flows back through X̂, through
the mean μ and through the variance v. An entry that can be written out in simpler
operations (``Op.extra["expansion"]``) gets:

* the *paths*: backprop of the written-out program ``L = sum(Xh ∘ G)`` (G plays Ȳ), where
  Z's error signal collects the paths as fan-out in the DAG;
* the *proof*: the closed form minus ∂(Σ G ∘ Y)/∂Z differentiated entry by entry from the
  operation's unit form, simplified by SymPy to 0 at a small concrete size (symbolic, all
  values of Z and G at once), and the paths' numbers equal to the closed form's at random
  points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from ..ops import REGISTRY
from ..symbolic.program import Program
from .records import BackpropDerivation
from .unit_form import Expander


@dataclass
class ClosedForm:
    """One operation's closed-form VJP, its paths and the proof that they agree."""

    node: str  # the model's node whose line applies the operation
    operation: str  # the operation's name
    paths: BackpropDerivation  # backprop of the written-out operation
    closed: sp.Basic  # the closed form, Z̄ in terms of Z and G (= Ȳ)
    symbolic_ok: bool  # closed − entrywise derivative simplifies to 0
    size: tuple[int, int]  # the concrete size of the symbolic proof
    max_rel_err: float  # closed form vs the paths' numbers at random points

    @property
    def ok(self) -> bool:
        return self.symbolic_ok and self.max_rel_err <= 1e-10

    def line(self) -> str:
        verdict = "proved equal" if self.ok else "NOT equal"
        r, c = self.size
        return (
            f"{self.operation}: closed form and paths {verdict} — the closed form minus the "
            f"entrywise derivative of sum(G ∘ {self.operation}(Z)) simplifies to 0 for a "
            f"{r}×{c} Z (SymPy), and the paths give the same numbers at 3 random points "
            f"(max relative error {self.max_rel_err:.1e})"
        )


def closed_forms(program: Program) -> list[ClosedForm]:
    """The closed forms of the operations in ``program`` that can be written out."""
    out: list[ClosedForm] = []
    seen: set[str] = set()
    for a in program.assignments:
        for e in sp.preorder_traversal(a.expr):
            op = REGISTRY.for_node(e)
            expand = op.extra.get("expansion") if op is not None else None
            if expand is None or op is None or op.name in seen:
                continue
            seen.add(op.name)
            out.append(_closed_form(a.name, op, e, *expand(e)))
    return out


def _closed_form(node: str, op: Any, e: sp.Basic, decls: list[str], lines: list[str]) -> ClosedForm:
    from ..derive.vector import vector_backprop
    from ..numeric.agreement import rel_err
    from ..numeric.vector_eval import evaluate_expression, random_point, vector_gradient_at
    from ..symbolic import parse_program

    z_decl = next(d for d in decls if d.startswith("param Z"))
    g_decl = "input " + z_decl.split(" ", 1)[1].replace("Z", "G")
    out = lines[-1].split(" = ")[0]
    text = [f"# {op.name} by its paths", *decls, g_decl, *lines, f"L = sum({out} * G)", "loss L"]
    paths_program = parse_program("\n".join(text), filename=f"<{op.name} paths>")
    paths = vector_backprop(paths_program)
    z, g = paths_program.symbol("Z"), paths_program.symbol("G")
    value = type(e)(z, *e.args[1:])
    closed = op.vjp(g, value, 0)
    worst = 0.0
    for seed in range(3):
        point = random_point(paths_program, seed=seed, scale=1.0)
        _, grads = vector_gradient_at(paths, point)
        mine = evaluate_expression(closed, paths_program, point)
        worst = max(worst, rel_err(np.asarray(mine).reshape(np.shape(grads["Z"])), grads["Z"]))
    sizes = _sizes(paths_program)
    size = (int(z.shape[0].xreplace(sizes)), int(z.shape[1].xreplace(sizes)))
    proved = _symbolic_proof(closed, value, z, g, size)
    return ClosedForm(node, op.name, paths, closed, proved, size, worst)


def _sizes(program: Program) -> dict[sp.Basic, int]:
    return {sp.Symbol(k, integer=True, positive=True): v for k, v in program.sizes.items()}


def _symbolic_proof(
    closed: sp.Basic, value: sp.Basic, z: sp.Basic, g: sp.Basic, size: tuple[int, int]
) -> bool:
    """closed − ∂(Σ G ∘ value)/∂Z, entry by entry, simplifies to 0 at ``size``."""
    rows, cols = size
    zs = sp.ImmutableMatrix(rows, cols, lambda i, j: sp.Symbol(f"z_{i}_{j}", real=True))
    gs = sp.ImmutableMatrix(rows, cols, lambda i, j: sp.Symbol(f"g_{i}_{j}", real=True))
    dims = {s: size[k] for k, d in enumerate(z.shape) for s in sp.sympify(d).free_symbols}
    x = Expander({z: zs, g: gs}, dims)
    explicit = x(closed)
    y = x(value)
    objective = sp.Add(*[y[i, j] * gs[i, j] for i in range(rows) for j in range(cols)])
    return all(
        sp.simplify(explicit[i, j] - sp.diff(objective, zs[i, j])) == 0
        for i in range(rows)
        for j in range(cols)
    )
