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
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..ops import REGISTRY, is_matrix, mat_add
from ..ops.registry import Fusion
from ..symbolic.program import Assignment, Program
from .records import (
    BackpropDerivation,
    BackpropStep,
    Contribution,
    NaiveDerivation,
    NaiveGradient,
    RuleStep,
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


# --------------------------------------------------------------------- sizes
#: Sizes given to unbound size names for unit-form expansion and random points
#: (distinct small numbers, so a transposed matrix cannot pass a check by accident).
DEFAULT_SIZES = (3, 2, 4, 5)


def size_names(program: Program) -> list[str]:
    """Size names in order of first appearance in the declarations."""
    names: list[str] = []
    for v in program.variables:
        for d in v.shape:
            if isinstance(d, str) and d not in names:
                names.append(d)
    return names


def concrete_sizes(program: Program, sizes: Mapping[str, int] | None = None) -> dict[str, int]:
    """Every size name → a number: bound (``const n = 3``), given, or a small default."""
    out: dict[str, int] = {}
    free = 0
    for name in size_names(program):
        if sizes and name in sizes:
            out[name] = int(sizes[name])
        elif name in program.sizes:
            out[name] = program.sizes[name]
        else:
            out[name] = DEFAULT_SIZES[free % len(DEFAULT_SIZES)]
            free += 1
    return out


def size_symbols(sizes: dict[str, int]) -> dict[sp.Basic, int]:
    return {sp.Symbol(k, integer=True, positive=True): v for k, v in sizes.items()}


def unbound_sizes(program: Program) -> list[str]:
    return [n for n in size_names(program) if n not in program.sizes]


# ------------------------------------------------------------------ naive route
#: The fully expanded naive route is attempted up to this many scalar leaf entries.
MAX_NAIVE_ENTRIES = 400


def _entry_count(shape: tuple, dims: Mapping[str, int]) -> int:
    n = 1
    for d in shape:
        n *= d if isinstance(d, int) else dims.get(str(d), 1)
    return n


def scalar_entries(program: Program, sizes: Mapping[str, int] | None = None) -> int:
    """How many scalars the program's leaves hold on concrete sizes (its unit-form size)."""
    dims = concrete_sizes(program, sizes)
    return sum(_entry_count(v.shape, dims) for v in program.variables if v.role != "const")


def vector_naive(
    program: Program,
    steps: bool = True,
    budget: float | None = 60.0,
    sizes: dict[str, int] | None = None,
    max_steps: int = 2_000,
) -> NaiveDerivation:
    """The calculus-class route for matrices: the fully expanded elementwise derivative.

    The program is expanded to unit form on concrete sizes (bound, given or small
    defaults), the substituted scalar loss is differentiated with respect to every
    entry, and each parameter's gradient is the matrix of those derivatives, written
    with the original names (``W1[0, 1]``). ``budget`` bounds the time.
    """
    from .naive import naive
    from .unit_form import unit_form

    start = time.perf_counter()
    entries = scalar_entries(program, sizes)
    if entries > MAX_NAIVE_ENTRIES:
        note = (
            f"not expanded: {entries:,} scalar entries in the unit form (the naive route "
            f"expands at most {MAX_NAIVE_ENTRIES:,}; it would swell far beyond backprop)"
        )
        return NaiveDerivation(
            program,
            program.loss_assignment.symbol,
            {},
            complete=False,
            note=note,
            seconds=time.perf_counter() - start,
        )
    uf = unit_form(program, sizes)
    back = _entry_map(program, uf.entries)
    nd = naive(uf.program, steps=steps, budget=budget, max_steps=max_steps)
    gradients: dict[str, NaiveGradient] = {}
    for p in program.params:
        if p.name not in uf.entries:
            if p.name in nd.gradients:
                g = nd.gradients[p.name]
                gradients[p.name] = NaiveGradient(
                    p.name, g.gradient.xreplace(back), _map_steps(g.steps, back), g.steps_truncated
                )
            continue
        names = uf.entries[p.name]
        if not all(str(n) in nd.gradients for n in names.flat):
            continue
        grid = names.reshape(-1, 1) if names.ndim == 1 else names
        rows = [[nd.gradients[str(n)].gradient.xreplace(back) for n in row] for row in grid]
        matrix = sp.ImmutableMatrix(rows)
        trace = [s for n in names.flat for s in nd.gradients[str(n)].steps][:max_steps]
        truncated = any(nd.gradients[str(n)].steps_truncated for n in names.flat)
        gradients[p.name] = NaiveGradient(p.name, matrix, _map_steps(trace, back), truncated)
    shown = ", ".join(f"{k}={v}" for k, v in uf.sizes.items())
    note = (
        "fully expanded elementwise derivative (unit form"
        + (f" on sizes {shown}" if shown else "")
        + ")"
    )
    if not nd.complete:
        note += "; " + nd.note
    return NaiveDerivation(
        program,
        nd.substituted_loss.xreplace(back),
        gradients,
        complete=nd.complete,
        note=note,
        seconds=time.perf_counter() - start,
    )


def _entry_map(program: Program, entries: dict) -> dict[sp.Basic, sp.Basic]:
    """Unit symbol → the matrix element it stands for (``W1_1_2`` → ``W1[0, 1]``)."""
    from ..symbolic.program import make_symbol

    out: dict[sp.Basic, sp.Basic] = {}
    for name, names in entries.items():
        sym = program.symbol(name)
        for idx in np.ndindex(*names.shape):
            i, j = (idx[0], 0) if len(idx) == 1 else idx
            out[make_symbol(str(names[idx]))] = sym[i, j]
    return out


def _map_steps(trace: list[RuleStep], back: dict[sp.Basic, sp.Basic]) -> list[RuleStep]:
    return [
        RuleStep(
            s.rule,
            s.expr.xreplace(back),
            back.get(s.wrt, s.wrt),
            s.result.xreplace(back),
            s.depth,
            s.function,
        )
        for s in trace
    ]
