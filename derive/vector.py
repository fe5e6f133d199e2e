"""Backprop for vector programs, in the lectures' matrix notation.

The loop is the scalar one with vector–Jacobian products (:mod:`.vjp`) in place of
partial derivatives::

    L̄ = 1;  for v in reversed(order):  v̄ = Σ_{c ∈ children(v)} VJP_c(c̄)

Parameters are emitted as soon as all their children are done, so the 2-layer MLP
prints exactly as on the slide (L̄, ȳ, W̄⁽²⁾, b̄⁽²⁾, h̄, z̄, W̄⁽¹⁾, b̄⁽¹⁾).

>>> from chainrule.symbolic import parse_program
>>> p = parse_program('''param W1[m, n], b1[m], W2[k, m], b2[k]
... input x[n], t[k]
... z = W1 @ x + b1
... h = sigma(z)
... y = W2 @ h + b2
... L = sum((y - t)^2) / 2
... loss L''')
>>> [(s.node, str(s.expression)) for s in vector_backprop(p).steps]
... # doctest: +NORMALIZE_WHITESPACE
[('L', '1'), ('y', 'L_bar*(-t + y)'), ('W2', 'y_bar*h.T'), ('b2', 'y_bar'),
 ('h', 'W2.T*y_bar'), ('z', 'HadamardProduct(h_bar, sigma_prime(z))'),
 ('W1', 'z_bar*x.T'), ('b1', 'z_bar')]
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import sympy as sp

from ..ops import REGISTRY, is_matrix, mat_add
from ..ops.registry import Fusion
from ..symbolic.program import Assignment, Program
from .records import (
    BackpropDerivation,
    BackpropStep,
    Contribution,
    error_signal,
)
from .vjp import pullback


# --------------------------------------------------------------- fused steps
def find_fusions(program: Program) -> dict[str, Fusion]:
    """Nodes whose error signal one registry rule writes in one step, by node name
    (softmax followed by cross-entropy: ``z̄ = c̄ (y − t)``)."""
    found: dict[str, Fusion] = {}
    for a in program.assignments:
        op = REGISTRY.for_node(a.expr)
        if op is None or op.fuse is None:
            continue
        fusion = op.fuse(program, a, lambda name: error_signal(name, program[name].symbol))
        if fusion is not None:
            found[fusion.node] = fusion
    return found


def simplex_inputs(program: Program) -> set[str]:
    """Inputs that a fused step's condition is about (targets that must sum to 1)."""
    return {t for f in find_fusions(program).values() for t in f.conditioned_inputs}


# ---------------------------------------------------------------------- backprop
def vector_backprop(
    program: Program, wrt_inputs: bool = False, simplify_softmax: bool = True
) -> BackpropDerivation:
    """Error signals of every node and parameter of a vector program (see module doc).

    ``simplify_softmax`` writes softmax followed by cross-entropy as one step
    ``z̄ = c̄ (y − t)`` (its note states the condition: t sums to 1).
    """
    start = time.perf_counter()
    needed = program.needed_by_loss()
    roles = {"param"} | ({"input"} if wrt_inputs else set())
    signals = {n: error_signal(n, program[n].symbol) for n in needed}
    sce = find_fusions(program) if simplify_softmax else {}
    skipped = {p.skipped for p in sce.values()}
    contribs: dict[str, list[Contribution]] = defaultdict(list)
    leaves = [v for v in program.variables if v.role in roles and v.name in needed]
    done: set[str] = set()
    steps: list[BackpropStep] = []
    for a in reversed(program.assignments):
        if a.name not in needed:
            continue
        if a.name == program.loss:
            steps.append(BackpropStep(a.name, signals[a.name], [], sp.S.One, role="loss"))
        elif a.name in sce:
            steps.append(_fused_step(sce[a.name], signals))
        elif a.name not in skipped:
            steps.append(_step(a.name, signals[a.name], contribs[a.name], "node"))
        if a.name not in skipped:
            _push(program, a, signals, needed, contribs)
        done.add(a.name)
        for v in list(leaves):
            if all(c in done for c in program.children(v.name) if c in needed):
                steps.append(_step(v.name, signals[v.name], contribs[v.name], v.role))
                leaves.remove(v)
    return BackpropDerivation(program, steps, time.perf_counter() - start)


def _push(
    program: Program,
    a: Assignment,
    signals: dict[str, sp.Basic],
    needed: set[str],
    contribs: dict[str, list[Contribution]],
) -> None:
    """Send ``a``'s error signal to each parent it reads (one entry per occurrence)."""
    parents = {program[n].symbol: n for n in program.parents(a.name) if n in needed}
    for sym, cot in pullback(a.expr, signals[a.name], set(parents)):
        contribs[parents[sym]].append(Contribution(a.name, local_jacobian(a.expr, sym), cot))


def _step(
    name: str, signal: sp.Basic, contributions: list[Contribution], role: str
) -> BackpropStep:
    terms = [c.term for c in contributions]
    if not terms:
        expression: sp.Basic = sp.S.Zero
    elif is_matrix(terms[0]):
        expression = mat_add(*terms)
    else:
        expression = sp.Add(*terms)
    return BackpropStep(name, signal, list(contributions), expression, role=role)


def _fused_step(p: Fusion, signals: dict[str, sp.Basic]) -> BackpropStep:
    return BackpropStep(
        p.node,
        signals[p.node],
        [Contribution(p.skipped, None, p.expression)],  # type: ignore[arg-type]
        p.expression,
        role="node",
        note=p.note,
    )


# --------------------------------------------------------------------- Jacobians
def local_jacobian(child: sp.Basic, v: sp.Basic) -> sp.Basic | None:
    """∂child/∂v as a matrix when both are column vectors and it is a simple one.

    Elementwise ops give diagonal Jacobians (never built by the VJPs; shown for
    teaching): ``∂σ(z)/∂z = diag(σ'(z))``; ``∂(Wx + b)/∂x = W``; ``∂(Wx + b)/∂b = I``.
    """
    if not (is_matrix(child) and is_matrix(v) and child.shape[1] == 1 and v.shape[1] == 1):
        return None
    if isinstance(child, sp.MatAdd):
        parts = [local_jacobian(a, v) for a in child.args if a.has(v)]
        if len(parts) != 1 or parts[0] is None:
            return None
        return parts[0]
    if child == v:
        return sp.Identity(v.shape[0])
    op = REGISTRY.for_node(child)
    return op.jacobian(child, v) if op is not None and op.jacobian is not None else None


@dataclass(frozen=True)
class JacobianView:
    """One edge's Jacobian for the ``--show-jacobians`` teaching display."""

    child: str
    parent: str
    jacobian: sp.Basic
    form: str  # "diagonal", "identity" or "matrix"
    vjp: sp.Basic  # the product actually used: parent_bar contribution

    def text(self) -> str:
        return (
            f"d{self.child}/d{self.parent} = {self.jacobian}   ({self.form}); "
            f"{self.parent}_bar += (d{self.child}/d{self.parent}).T*{self.child}_bar "
            f"= {self.vjp}"
        )


def jacobians(derivation: BackpropDerivation) -> list[JacobianView]:
    """The Jacobians of the derivation's vector→vector edges, in step order."""
    out = []
    for s in derivation.steps:
        for c in s.contributions:
            if c.local_derivative is None:
                continue
            j = c.local_derivative
            form = (
                "diagonal"
                if getattr(j, "is_diagonal", False)
                else "identity"
                if isinstance(j, sp.Identity)
                else "matrix"
            )
            out.append(JacobianView(c.child, s.node, j, form, c.term))
    return out


from .sizes import (  # noqa: E402, F401  (sizes were defined here; kept importable)
    DEFAULT_SIZES,
    concrete_sizes,
    scalar_entries,
    size_names,
    size_symbols,
    unbound_sizes,
)
