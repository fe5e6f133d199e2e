"""Local derivative rules, one line per function: ∂f(u₁, …)/∂uᵢ.

Read top to bottom like a table in a calculus book. Each entry maps a function to a
tuple with one rule per argument; a rule takes the function's arguments and returns
the partial derivative with respect to that argument.

>>> from sympy import Symbol
>>> z = Symbol("z")
>>> LOCAL_RULES[sigma][0](z)
sigma_prime(z)
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp

from ..symbolic.functions import (
    elu,
    elu_prime,
    leaky_relu,
    leaky_relu_prime,
    relu,
    sigma,
    sigma_prime,
    softplus,
    step,
)

Rule = Callable[..., sp.Basic]

# fmt: off
LOCAL_RULES: dict[type, tuple[Rule, ...]] = {
    sigma:       (lambda z: sigma_prime(z),),
    sigma_prime: (lambda z: sigma_prime(z) * (1 - 2 * sigma(z)),),
    sp.tanh:     (lambda z: 1 - sp.tanh(z) ** 2,),
    relu:        (lambda z: step(z),),
    step:        (lambda z: sp.S.Zero,),  # almost everywhere
    softplus:    (lambda z: sigma(z),),
    leaky_relu:  (lambda z, a: leaky_relu_prime(z, a),
                  lambda z, a: z - relu(z)),
    elu:         (lambda z, a: elu_prime(z, a),
                  lambda z, a: elu(z, 1) - relu(z)),
    leaky_relu_prime: (lambda z, a: sp.S.Zero,  # almost everywhere
                       lambda z, a: 1 - step(z)),
    elu_prime:   (lambda z, a: (1 - step(z)) * a * sp.exp(-relu(-z)),
                  lambda z, a: (1 - step(z)) * sp.exp(-relu(-z))),
    sp.exp:      (lambda z: sp.exp(z),),
    sp.log:      (lambda z: 1 / z,),
    sp.sin:      (lambda z: sp.cos(z),),
    sp.cos:      (lambda z: -sp.sin(z),),
    sp.Abs:      (lambda z: sp.sign(z),),
    sp.sign:     (lambda z: sp.S.Zero,),  # almost everywhere
}
# fmt: on


def _extremum_rule(args: tuple[sp.Basic, ...], i: int, is_max: bool) -> sp.Basic:
    """∂max(a, b, …)/∂aᵢ = 1 where aᵢ is the largest.

    Ties go to the last of the tied arguments (for two: ∂/∂a = step(a − b),
    ∂/∂b = 1 − step(a − b)), so the partials always sum to 1, as for max's value.
    """
    if len(args) == 2 and i == 1:
        first = step(args[0] - args[1]) if is_max else step(args[1] - args[0])
        return 1 - first
    others = args[:i] + args[i + 1 :]
    rest = others[0] if len(others) == 1 else (sp.Max(*others) if is_max else sp.Min(*others))
    return step(args[i] - rest) if is_max else step(rest - args[i])


def partial(f: sp.Basic, i: int) -> sp.Basic:
    """∂f/∂(argument i) for a function application ``f``, by the table above."""
    if isinstance(f, sp.Max):
        return _extremum_rule(f.args, i, True)
    if isinstance(f, sp.Min):
        return _extremum_rule(f.args, i, False)
    rules = LOCAL_RULES.get(f.func)
    if rules is not None:
        return rules[i](*f.args)
    return f.fdiff(i + 1)  # SymPy's own rule for anything else (user-supplied functions)


def function_name(f: sp.Basic) -> str:
    return getattr(f.func, "__name__", str(f.func))
