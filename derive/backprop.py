"""Error-signal backpropagation on the program's DAG (scalar programs).

The whole idea in one loop, as the lectures write it::

    v̄_N = 1
    for v in reversed(topological_order):
        v̄ = Σ_{c ∈ children(v)} c̄ · ∂c/∂v

>>> from chainrule.symbolic import parse_program
>>> p = parse_program("param w, b\\ninput x, t\\nz = w*x + b\\ny = sigma(z)\\n"
...                   "L = (y - t)^2/2\\nloss L")
>>> d = backprop(p)
>>> [(s.node, str(s.expression)) for s in d.steps]  # doctest: +NORMALIZE_WHITESPACE
[('L', '1'), ('y', 'L_bar*(-t + y)'), ('z', 'y_bar*sigma_prime(z)'),
 ('b', 'z_bar'), ('w', 'z_bar*x')]
"""

from __future__ import annotations

import time

import sympy as sp

from ..symbolic.program import Program
from .differentiate import local_derivative
from .records import BackpropDerivation, BackpropStep, Contribution, error_signal


def backprop(program: Program, wrt_inputs: bool = False) -> BackpropDerivation:
    """Derive every error signal the loss needs, in reverse topological order.

    Error signals are computed for the nodes and the parameters (and the inputs when
    ``wrt_inputs``); constants get none.
    """
    if program.is_vector:
        from .vector import vector_backprop

        return vector_backprop(program)
    start = time.perf_counter()
    needed = program.needed_by_loss()
    wanted_roles = {"node", "param"} | ({"input"} if wrt_inputs else set())
    signals = {name: error_signal(name) for name in needed}
    steps: list[BackpropStep] = []
    for name in reversed(program.topological_order()):
        if name not in needed:
            continue
        item = program[name]
        role = getattr(item, "role", "node")
        if name == program.loss:
            steps.append(BackpropStep(name, signals[name], [], sp.S.One, role="loss"))
            continue
        if role not in wanted_roles:
            continue
        contributions = [
            _contribution(program, child, item.symbol, signals[child])
            for child in program.children(name)
            if child in needed
        ]
        expression = sp.Add(*[c.term for c in contributions])
        steps.append(BackpropStep(name, signals[name], contributions, expression, role=role))
    return BackpropDerivation(program, steps, time.perf_counter() - start)


def _contribution(
    program: Program, child: str, v: sp.Symbol, child_signal: sp.Basic
) -> Contribution:
    local = local_derivative(program[child].expr, v)  # type: ignore[union-attr]
    return Contribution(child, local, child_signal * local)
