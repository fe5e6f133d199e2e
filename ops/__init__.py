"""The operator registry (``chainrule.ops``): every primitive defined once.

Scalar functions live in :mod:`.scalar`, tensor operations in :mod:`.tensor`,
user-defined functions (``def swish(z) = z*sigma(z)`` in a model, or
:func:`primitive` in Python) in :mod:`.user`. Every other part of chainrule — the model
grammar, both derivation routes, the cost model, NumPy evaluation and code generation,
the printers and the homework grammars — asks :data:`REGISTRY` (or a program's own
child registry) and lists no operation itself. A new operation is one :class:`Op`
entry: see the README's "Adding an operation".

>>> REGISTRY.by_name("relu").smooth
False
"""

from __future__ import annotations

import sympy as sp

from .algebra import U, Verbatim, is_matrix, mat_add, mat_mul, scale, split_scalar
from .conv import conv_entries
from .layers import layer_entries
from .registry import Op, OpError, Registry, UnknownOperation
from .scalar import ScalarFunction, register_scalar, scalar_entries
from .tensor import (
    ColumnwiseOp,
    Elementwise,
    Reduction,
    TensorNode,
    elementwise,
    local_partial,
    operands,
    tensor_entries,
)


def default_registry() -> Registry:
    """A registry holding every shipped operation."""
    registry = Registry()
    for op in scalar_entries():
        register_scalar(registry, op)
    for op in (*tensor_entries(), *layer_entries(), *conv_entries()):
        if op.build_tensor is None or op.operator:
            from dataclasses import replace

            op = replace(op, in_language=False)
        register_tensor(registry, op)
    return registry


def register_tensor(registry: Registry, op: Op) -> Op:
    """Register a tensor entry and let its node class find it (for printing)."""
    if isinstance(op.node, type) and issubclass(op.node, TensorNode):
        op.node.op = op
    return registry.register(op)


#: The shipped operations. :func:`primitive` and :func:`register` add to it at run time
#: (as JAX's primitive table); a model's own ``def`` functions go into a child registry.
REGISTRY = default_registry()


def register(op: Op) -> Op:
    """Add an operation (scalar or tensor) to :data:`REGISTRY`."""
    if op.kind == "tensor":
        return register_tensor(REGISTRY, op)
    return register_scalar(REGISTRY, op)


from .user import primitive  # noqa: E402  (uses REGISTRY)


def in_forward_values(expr: sp.Basic, forward: dict[sp.Basic, sp.Basic]) -> sp.Basic:
    """Named derivatives in forward values where their entries have a closed form in
    the function (σ'(z) = σ(z)(1 − σ(z)) → y(1 − y) where the forward pass has y = σ(z)),
    then every forward function application by its node."""
    for op in REGISTRY:
        if op.expand_derivative is None:
            continue

        def closed(*args: sp.Basic, op: object = op) -> sp.Basic:
            full = op.expand_derivative(*args)  # type: ignore[attr-defined]
            if all(f in forward for f in full.atoms(sp.Function)):
                return full
            return op.node(*args)  # type: ignore[attr-defined]

        expr = expr.replace(op.node, closed)
    return expr.xreplace(forward)


__all__ = [
    "REGISTRY",
    "ColumnwiseOp",
    "Elementwise",
    "Op",
    "OpError",
    "Reduction",
    "Registry",
    "ScalarFunction",
    "TensorNode",
    "U",
    "UnknownOperation",
    "Verbatim",
    "elementwise",
    "in_forward_values",
    "is_matrix",
    "local_partial",
    "mat_add",
    "mat_mul",
    "operands",
    "primitive",
    "register",
    "scale",
    "split_scalar",
]
