"""Derivations as data: records of every step, for the reports to print.

Nothing here prints; :mod:`chainrule.reports` renders these records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from ..symbolic.program import Program


class ErrorSignal(sp.Symbol):
    """The error signal v̄ = ∂L/∂v of node ``v``, a symbol named ``v_bar``.

    >>> error_signal("y")
    y_bar
    >>> error_signal("y").node
    'y'
    """

    @property
    def node(self) -> str:
        return self.name[: -len("_bar")]


def error_signal(name: str, shape_symbol: sp.Basic | None = None) -> sp.Basic:
    """v̄ for a scalar node (an :class:`ErrorSignal`), or a matrix symbol for a shaped one."""
    if shape_symbol is not None and getattr(shape_symbol, "is_Matrix", False):
        return ErrorSignalMatrix(f"{name}_bar", *shape_symbol.shape)
    return ErrorSignal(f"{name}_bar", real=True)


class ErrorSignalMatrix(sp.MatrixSymbol):
    """Error signal of a vector or matrix node, e.g. W̄⁽¹⁾ (named ``W1_bar``)."""

    @property
    def node(self) -> str:
        return str(self.name)[: -len("_bar")]


# ------------------------------------------------------------------ naive route
@dataclass
class RuleStep:
    """One application of a differentiation rule: d/dx ``expr`` = ``result``.

    ``rule`` is one of: constant, variable, sum, constant multiple, product, power,
    exponential, quotient, chain (``function`` names the outer function), general.
    ``depth`` is the nesting level (0 for the whole expression).
    """

    rule: str
    expr: sp.Basic
    wrt: sp.Symbol
    result: sp.Basic
    depth: int
    function: str = ""


@dataclass
class NaiveGradient:
    """∂L/∂p obtained by differentiating the fully substituted loss."""

    param: str
    gradient: sp.Basic
    steps: list[RuleStep] = field(default_factory=list)
    steps_truncated: bool = False


@dataclass
class NaiveDerivation:
    """The calculus-class route: substitute, then differentiate per parameter."""

    program: Program
    substituted_loss: sp.Basic
    gradients: dict[str, NaiveGradient]
    complete: bool = True
    note: str = ""  # why it stopped early (time budget), shown in reports
    seconds: float = 0.0


# --------------------------------------------------------------- backprop route
@dataclass
class Contribution:
    """One child's share of v̄: ``child_bar · ∂child/∂v``."""

    child: str
    local_derivative: sp.Basic
    term: sp.Basic


@dataclass
class BackpropStep:
    """v̄ = Σ_children c̄ ∂c/∂v for one node (fan-out > 1 gives several contributions)."""

    node: str
    signal: sp.Basic  # v̄, the error-signal symbol
    contributions: list[Contribution]
    expression: sp.Basic  # in terms of error signals and forward values
    role: str = "node"  # "loss" for the seed v̄_N = 1, else the node's role
    note: str = ""  # e.g. the softmax–cross-entropy simplification and its condition

    @property
    def fan_out(self) -> int:
        return len(self.contributions)


@dataclass
class BackpropDerivation:
    """Error-signal backprop on the DAG: steps in reverse topological order."""

    program: Program
    steps: list[BackpropStep]
    seconds: float = 0.0

    def step(self, node: str) -> BackpropStep:
        for s in self.steps:
            if s.node == node:
                return s
        raise KeyError(node)

    @property
    def signals(self) -> dict[str, sp.Basic]:
        """node name → its error-signal symbol."""
        return {s.node: s.signal for s in self.steps}

    def gradient(self, param: str) -> sp.Basic:
        """p̄ in terms of error signals and forward values (e.g. ``z_bar*x + R_bar*w``)."""
        try:
            return self.step(param).expression
        except KeyError:
            return sp.S.Zero  # parameter not used by the loss

    def expanded_signals(self) -> dict[str, sp.Basic]:
        """Every error signal with the earlier signals substituted (forward values kept)."""
        out: dict[sp.Basic, sp.Basic] = {}
        for s in self.steps:
            out[s.signal] = s.expression.xreplace(out)
        return {s.node: out[s.signal] for s in self.steps}

    def substituted_gradient(self, param: str) -> sp.Basic:
        """p̄ in terms of leaves only (signals and forward nodes substituted)."""
        expr = self.expanded_signals().get(param, sp.S.Zero)
        full: dict[sp.Basic, sp.Basic] = {}
        for a in self.program.assignments:
            full[a.symbol] = a.expr.xreplace(full)
        return expr.xreplace(full)


@dataclass(frozen=True)
class FunctionDefinition:
    """A defined function a derivation uses, and how its derivative is known.

    ``swish(z) = z σ(z)`` with ``swish'(z) = z σ'(z) + σ(z)`` (derived from the body), or
    ``phi'(u) = 2u/(1 + u²)`` (declared with the function).
    """

    name: str
    node: type  # the function's SymPy class
    params: tuple[sp.Symbol, ...]
    body: sp.Basic
    role: str  # "definition", "derived" (derivative from the body) or "declared"
    of: str = ""  # for a derivative: the function it is the derivative of

    @property
    def application(self) -> sp.Basic:
        """The function applied to its parameters, e.g. ``swish_prime(z)``."""
        return self.node(*self.params)


def function_definitions(program: Program, *exprs: sp.Basic) -> list[FunctionDefinition]:
    """Every defined (``def`` or :func:`~chainrule.ops.primitive`) function the program
    and ``exprs`` use, each followed by its derivative(s), in order of first use."""
    out: list[FunctionDefinition] = []
    seen: set[str] = set()
    todo = [a.expr for a in program.assignments] + list(exprs)
    written = {op.name: k for k, op in enumerate(program.functions.own())}

    def order(f: sp.Basic) -> tuple[int, str]:
        name = type(f).__name__
        return written.get(name, len(written)), name

    while todo:
        e = todo.pop(0)
        for f in sorted(e.atoms(sp.Function), key=order):
            op = getattr(type(f), "op", None)
            if op is None or op.extra.get("body") is None or op.name in seen:
                continue
            seen.add(op.name)
            if op.extra.get("derivative"):  # a function: itself, then its derivatives
                out.append(
                    FunctionDefinition(
                        op.name, op.node, op.extra["params"], op.extra["body"], "definition"
                    )
                )
                for d in op.extra["derivative"]:
                    if d.name not in seen:
                        seen.add(d.name)
                        role = "declared" if d.extra.get("declared") else "derived"
                        out.append(
                            FunctionDefinition(
                                d.name, d.node, d.extra["params"], d.extra["body"], role, op.name
                            )
                        )
                        todo.append(d.extra["body"])
            todo.append(op.extra["body"])
    return out


@dataclass
class Derivation:
    """Both routes for one program, and their operation counts side by side."""

    program: Program
    backprop: BackpropDerivation | None
    naive: NaiveDerivation | None
    costs: list = field(default_factory=list)  # list[CostRow]
    agreement: Any = None  # vector programs: unit-form agreement (numeric.agreement.Agreement)

    @property
    def definitions(self) -> list[FunctionDefinition]:
        """The defined functions this derivation uses, with their derivatives' lines."""
        exprs = [s.expression for s in self.backprop.steps] if self.backprop else []
        return function_definitions(self.program, *exprs)

    def gradient(self, param: str) -> sp.Basic:
        """∂L/∂param in terms of the leaves (from backprop when derived, else naive)."""
        if self.backprop is not None:
            return self.backprop.substituted_gradient(param)
        assert self.naive is not None
        return self.naive.gradients[param].gradient
