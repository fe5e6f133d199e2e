"""Second order by forward-over-reverse: differentiate the backprop program itself.

The backprop program (forward nodes, then error signals, then p̄ for every parameter)
is straight-line code, so it has a forward-mode derivative like any program. Give
every parameter a direction ṗ (the vector v of H v); every line ``u = f(a, b, …)``
gets a *tangent* line

    u̇ = ∂f/∂a ȧ + ∂f/∂b ḃ + …

with dotted names (ż, ȳ̇, z̄̇). Inputs and constants have no tangent. The tangent of
a gradient p̄ is (H v)_p, the Hessian–vector product: one more pass over the program
at about the cost of the gradient itself. Each Hessian entry is
H_pq = ∂(H v)_p / ∂q̇, a coefficient of the linear form (H v)_p.

Non-smooth functions (relu, step, abs, max, …) get the almost-everywhere second
derivative: relu'' = step' = 0 away from the kink; there the Hessian does not exist.

>>> import chainrule
>>> d = second_order(chainrule.load("logistic_least_squares"))
>>> [str(s.tangent) for s in d.steps][:3]
['z_dot', 'y_dot', 'y_bar_dot']
>>> str(d.hvp("b"))
'z_bar_dot'
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from ..ops import REGISTRY, in_forward_values
from ..symbolic.program import Program
from .differentiate import local_derivative
from .records import BackpropDerivation


class Tangent(sp.Symbol):
    """The tangent u̇ of a value ``u`` of the backprop program, a symbol named ``u_dot``.

    ``of`` is the name of the value: a node (``z``), an error signal (``z_bar``) or a
    parameter (``w``, whose tangent ṗ is the direction).
    """

    @property
    def of(self) -> str:
        return self.name[: -len("_dot")]


def tangent(name: str) -> Tangent:
    return Tangent(f"{name}_dot", real=True)


class TangentMatrix(sp.MatrixSymbol):
    """The tangent of a vector or matrix value (Ẇ⁽¹⁾, z̄̇), a matrix symbol ``W1_dot``."""

    @property
    def of(self) -> str:
        return str(self.name)[: -len("_dot")]


def tangent_like(value: sp.Basic, name: str) -> sp.Basic:
    """u̇ in the shape of u: a :class:`Tangent` or a :class:`TangentMatrix`."""
    if getattr(value, "is_Matrix", False):
        return TangentMatrix(f"{name}_dot", *value.shape)
    return tangent(name)


@dataclass
class TangentStep:
    """One tangent line u̇ = Σ ∂u/∂a ȧ of the differentiated backprop program."""

    of: sp.Basic  # u: a node symbol or an error signal
    tangent: sp.Basic  # u̇: a Tangent (or a TangentMatrix in vector programs)
    expression: sp.Basic  # in forward values, error signals and tangents
    kind: str  # "forward", "backward" or "gradient" (the tangent of p̄: (H v)_p)
    node: str  # the program name of the node (or parameter)


@dataclass
class SecondOrderDerivation:
    """The tangent program of a backprop derivation (forward-over-reverse)."""

    backprop: BackpropDerivation
    directions: dict[str, sp.Basic]  # parameter → ṗ
    steps: list[TangentStep]
    almost_everywhere: list[str] = field(default_factory=list)  # non-smooth functions met

    @property
    def program(self) -> Program:
        return self.backprop.program

    def hvp(self, param: str) -> sp.Basic:
        """(H v)_p: the tangent of p̄, in forward values, signals and tangents."""
        for s in self.steps:
            if s.kind == "gradient" and s.node == param:
                return s.expression
        return sp.S.Zero

    def expanded_hvp(self, param: str) -> sp.Basic:
        """(H v)_p with every tangent line substituted: linear in the directions ṗ."""
        full: dict[sp.Basic, sp.Basic] = {}
        for s in self.steps:
            full[s.tangent] = sp.expand(s.expression.xreplace(full))
        return full.get(tangent(f"{param}_bar"), sp.S.Zero)

    def hessian_entry(self, p: str, q: str) -> sp.Basic:
        """H_pq = ∂²L/∂p∂q per example, in forward values and error signals."""
        return sp.expand(self.expanded_hvp(p)).coeff(self.directions[q])

    @property
    def smooth(self) -> bool:
        return not self.almost_everywhere

    def closed_form(self, p: str, q: str) -> sp.Basic:
        """H_pq per example in forward values only, simplified: error signals substituted
        (seed L̄ = 1), σ'(z) written as y(1 − y) where y = σ(z), then cancelled and
        factored, and y shown as σ(z) again — the form a lecture writes."""
        program = self.program
        signals = self.backprop.expanded_signals()
        subs = {s.signal: signals[s.node] for s in self.backprop.steps}
        seed = next(s.signal for s in self.backprop.steps if s.role == "loss")
        entry = self.hessian_entry(p, q).xreplace(subs).xreplace({seed: 1})
        forward = {
            a.expr: a.symbol
            for a in program.assignments
            if isinstance(a.expr, sp.Function) and REGISTRY.for_node(a.expr) is not None
        }
        entry = in_forward_values(entry, forward)
        entry = _tidy_sign(sp.factor(sp.cancel(sp.together(entry))))
        return entry.xreplace({y: f for f, y in forward.items()})

    def rank_one(self) -> tuple[sp.Basic, dict[str, sp.Basic]] | None:
        """(c, a) when every example's Hessian is c·a aᵀ (logistic regression:
        σ(z)(1 − σ(z)) x xᵀ with a = (x, 1)), else None. Found from a parameter q0 whose
        a_q0 = 1 (H_q0q0 = c): a_p = H_pq0 / c, then H_pq = c a_p a_q is checked."""
        names = list(self.directions)
        if len(names) > 12:
            return None
        h = {(p, q): self.closed_form(p, q) for p in names for q in names}
        found = []
        for q0 in names:
            c = h[q0, q0]
            if c == 0:
                continue
            a = {p: _tidy_sign(sp.factor(sp.cancel(h[p, q0] / c))) for p in names}
            if all(sp.cancel(h[p, q] - c * a[p] * a[q]) == 0 for p in names for q in names):
                found.append((c, a))
        polynomial = [f for f in found if all(sp.denom(v) == 1 for v in f[1].values())]
        best = polynomial or found
        return best[0] if best else None


def _tidy_sign(expr: sp.Basic) -> sp.Basic:
    """−x (σ − 1) σ → x σ (1 − σ): a leading minus absorbed into a difference factor."""
    if not isinstance(expr, sp.Mul):
        return expr
    coeff, factors = expr.as_coeff_mul()
    if coeff >= 0:
        return expr
    for i, f in enumerate(factors):
        if isinstance(f, sp.Add):
            return sp.Mul(-coeff, *factors[:i], -f, *factors[i + 1 :])
    return expr


def second_order(model: object) -> SecondOrderDerivation:
    """Differentiate the backprop program of a scalar (unit-form) model in forward mode."""
    from ..symbolic.build import load_model as load
    from .backprop import backprop

    if isinstance(model, BackpropDerivation):
        bp = model
    else:
        bp = backprop(load(model))  # type: ignore[arg-type]
    program = bp.program
    if program.is_vector:
        return _vector_second_order(bp)
    needed = program.needed_by_loss()
    lines = [(a.symbol, a.expr, "forward", a.name) for a in program.assignments if a.name in needed]
    for s in bp.steps:
        if s.role == "loss":
            continue  # the seed v̄_N = 1 (or 1/B) is a constant: no tangent
        kind = "gradient" if s.role == "param" else "backward"
        lines.append((s.signal, s.expression, kind, s.node))
    directions = {v.name: tangent(v.name) for v in program.params}
    steps = tangent_steps(lines, {program.symbol(k): t for k, t in directions.items()})
    return SecondOrderDerivation(bp, directions, steps, _non_smooth(program))


Line = tuple[sp.Basic, sp.Basic, str, str]  # (u, its expression, kind, program name)


def _vector_second_order(bp: BackpropDerivation) -> SecondOrderDerivation:
    """The tangent program of a vector backprop by the matrix rules of vector_tangents."""
    from .vector_tangents import jvp

    program = bp.program
    needed = program.needed_by_loss()
    lines = [(a.symbol, a.expr, "forward", a.name) for a in program.assignments if a.name in needed]
    for s in bp.steps:
        if s.role != "loss":
            lines.append(
                (s.signal, s.expression, "gradient" if s.role == "param" else "backward", s.node)
            )
    directions = {v.name: tangent_like(v.symbol, v.name) for v in program.params}
    dots: dict[sp.Basic, sp.Basic] = {program.symbol(k): t for k, t in directions.items()}
    steps = []
    for of, expr, kind, node in lines:
        d = jvp(expr, dots)
        if d is None:
            continue
        t = tangent_like(of, str(of.name))  # type: ignore[attr-defined]
        dots[of] = t
        steps.append(TangentStep(of, t, d, kind, node))
    return SecondOrderDerivation(bp, directions, _needed_by_gradients(steps), _non_smooth(program))


def tangent_steps(lines: list[Line], directions: dict[sp.Basic, Tangent]) -> list[TangentStep]:
    """Forward mode over straight-line code: one tangent line per line that varies.

    ``directions`` maps each parameter symbol to its direction ṗ; lines whose value
    does not vary along any direction get no tangent.
    """
    known: dict[sp.Basic, Tangent] = dict(directions)
    steps: list[TangentStep] = []
    for of, expr, kind, node in lines:
        _add(steps, known, of, expr, kind, node)
    return _needed_by_gradients(steps)


def _needed_by_gradients(steps: list[TangentStep]) -> list[TangentStep]:
    """Drop tangents no gradient tangent reads (e.g. L̇, the loss's own tangent)."""
    used: set[sp.Basic] = set()
    kept = []
    for s in reversed(steps):
        if s.kind == "gradient" or s.tangent in used:
            kept.append(s)
            used |= s.expression.free_symbols
    return kept[::-1]


def _add(
    steps: list[TangentStep],
    known: dict[sp.Basic, Tangent],
    of: sp.Basic,
    expr: sp.Basic,
    kind: str,
    node: str,
) -> None:
    """u̇ = Σ_a ∂expr/∂a ȧ over the arguments that have a tangent (zero terms dropped)."""
    terms = []
    for a in sorted(expr.free_symbols & set(known), key=str):
        d = _almost_everywhere(local_derivative(expr, a))
        if d != 0:
            terms.append(d * known[a])
    if not terms and kind != "gradient":
        return  # a constant along every direction: no line, no tangent
    t = tangent(str(of))
    known[of] = t
    steps.append(TangentStep(of, t, sp.Add(*terms), kind, node))


def _almost_everywhere(expr: sp.Basic) -> sp.Basic:
    """Derivatives of kinks are 0 away from the kink (DiracDelta → 0)."""
    if expr.has(sp.DiracDelta):
        expr = expr.replace(sp.DiracDelta, lambda *args: sp.S.Zero)
    return expr


def _non_smooth(program: Program) -> list[str]:
    """Names of the non-smooth functions the loss depends on (relu, step, abs, max, …)."""
    needed = program.needed_by_loss()
    found: set[str] = set()
    for a in program.assignments:
        if a.name in needed:
            found |= {
                type(e).__name__
                for e in sp.preorder_traversal(a.expr)
                if isinstance(e, sp.Heaviside | sp.Piecewise)
                or (isinstance(e, sp.Basic) and not getattr(REGISTRY.for_node(e), "smooth", True))
            }
    return sorted(found)
