"""Local derivative rules: ∂f(u₁, …)/∂uᵢ, read from each function's registry entry.

>>> from sympy import Symbol
>>> from chainrule.ops import REGISTRY
>>> z = Symbol("z")
>>> partial(REGISTRY.by_name("sigma").node(z), 0)
sigma_prime(z)
"""

from __future__ import annotations

import sympy as sp

from ..ops import local_partial


def partial(f: sp.Basic, i: int) -> sp.Basic:
    """∂f/∂(argument i) for a function application ``f``, by its entry (or SymPy's
    ``fdiff`` for a function chainrule does not know)."""
    return local_partial(f, i)


def function_name(f: sp.Basic) -> str:
    return getattr(f.func, "__name__", str(f.func))
