"""The NumPy implementations evaluators and generated code call by name, from the registry.

Each scalar function's numerically safe implementation lives in its
:class:`~chainrule.ops.Op` entry (``numpy``, called in code as ``numpy_call``); this
module only collects the ones that are not NumPy's own (``np.tanh`` needs no entry in
a namespace) into the name → implementation mapping ``lambdify`` and ``eval`` use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sympy as sp

from ..ops import REGISTRY, Registry


def numpy_functions(registry: Registry = REGISTRY, kind: str = "scalar") -> dict[str, Any]:
    """``numpy_call`` → ``numpy`` for every entry of ``kind`` whose code names a helper
    of its own (not ``np.…``)."""
    out: dict[str, Callable[..., Any]] = {}
    for op in registry:
        if op.kind == kind and op.numpy is not None and op.numpy_call:
            if not op.numpy_call.startswith("np."):
                out[op.numpy_call] = op.numpy
    return out


#: Name → implementation of the shipped scalar functions, for evaluators and
#: ``lambdify`` namespaces.
NUMPY_FUNCTIONS = numpy_functions()


def namespace_for(expr: sp.Basic, registry: Registry = REGISTRY) -> dict[str, Any]:
    """Name → implementation of every registered function applied in ``expr``, for
    ``lambdify`` (a model's own ``def`` functions too: their classes know their entries)."""
    out: dict[str, Any] = dict(NUMPY_FUNCTIONS)
    for f in expr.atoms(sp.Function):
        op = registry.for_node(f)
        if op is not None and op.numpy is not None and isinstance(op.node, type):
            out[type(f).__name__] = op.numpy
    return out
