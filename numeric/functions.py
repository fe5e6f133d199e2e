"""The NumPy implementations evaluators and generated code call by name, from the registry.

Each scalar function's numerically safe implementation lives in its
:class:`~chainrule.ops.Op` entry (``numpy``, called in code as ``numpy_call``); this
module only collects the ones that are not NumPy's own (``np.tanh`` needs no entry in
a namespace) into the name → implementation mapping ``lambdify`` and ``eval`` use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
