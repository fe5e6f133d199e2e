"""Stable unit-form softmax in generated code: exponents shifted by their maximum.

A softmax written unit by unit, ``S = exp(z1) + exp(z2) + exp(z3)`` and
``y1 = exp(z1) / S``, overflows at z ≈ 710 in float64 (≈ 89 in float32). The
vector ``softmax`` subtracts the column maximum; the same is done here when it is
provably harmless: the backprop program must be invariant under the scaling

    exp(z_k) → c·exp(z_k),   S → c·S,   S̄ → S̄ / c

(every other node and error signal unchanged, checked symbolically). Then generated
code computes ``S_max = max(z1, z2, z3)`` and writes every ``exp(z_k)`` as
``exp(z_k - S_max)``, which is exactly that scaling with c = e^(−S_max): no exponent is
positive, so nothing overflows, and every result is the same number.

What remains is underflow: a class whose probability is below the smallest positive
number (a margin past ~745 in float64, ~103 in float32) has y_k = 0 exactly, and
``log(y_k)`` of that class is −inf, as the model's own formula says.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..derive.records import BackpropDerivation


@dataclass
class SoftmaxShift:
    """One unit-form softmax denominator ``S = Σ exp(u_k)`` and its shift ``m = max u_k``."""

    node: sp.Basic  # S
    shift: sp.Symbol  # m, a new forward value (named S_max)
    arguments: list[sp.Basic]  # u_k

    @property
    def replacements(self) -> dict[sp.Basic, sp.Basic]:
        """exp(u_k) → exp(u_k − m)."""
        return {sp.exp(u): sp.exp(u - self.shift) for u in self.arguments}


def softmax_shifts(derivation: BackpropDerivation, taken: set[str]) -> list[SoftmaxShift]:
    """The softmax denominators whose exponents can be shifted (see the module doc)."""
    program = derivation.program
    needed = program.needed_by_loss()
    out = []
    for a in program.assignments:
        if a.name not in needed or not _sum_of_exps(a.expr):
            continue
        args = [t.args[0] for t in a.expr.args]
        if _invariant(derivation, a.symbol, args):
            name = f"{a.name}_max"
            while name in taken:
                name += "_"
            taken.add(name)
            out.append(SoftmaxShift(a.symbol, sp.Symbol(name, real=True), args))
    return out


def _sum_of_exps(expr: sp.Basic) -> bool:
    return isinstance(expr, sp.Add) and all(isinstance(t, sp.exp) for t in expr.args)


def _invariant(derivation: BackpropDerivation, s: sp.Basic, args: list[sp.Basic]) -> bool:
    """Every node and signal keeps its value under exp(u) → c exp(u), S → cS, S̄ → S̄/c."""
    c = sp.Dummy("c", positive=True)
    scale: dict[sp.Basic, sp.Basic] = {sp.exp(u): c * sp.exp(u) for u in args}
    scale[s] = c * s
    signal = next((st.signal for st in derivation.steps if st.node == str(s)), None)
    expected: dict[sp.Basic, sp.Basic] = {}
    if signal is not None:
        scale[signal] = signal / c
        expected[signal] = 1 / c
    program = derivation.program
    lines = [(a.symbol, a.expr) for a in program.assignments if a.symbol != s]
    lines += [(st.signal, st.expression) for st in derivation.steps]
    for target, expr in lines:
        if not expr.has(s, *scale):
            continue
        k = expected.get(target, sp.S.One)
        try:
            if sp.cancel(sp.expand_log(expr.xreplace(scale) - k * expr, force=True)) != 0:
                return False
        except (sp.PolynomialError, TypeError, ValueError):
            return False
    return True
