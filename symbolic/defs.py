"""``def`` lines: functions a model defines for itself.

``def swish(z) = z*sigma(z)`` defines a function by an expression of its parameters
(and constants); ``def phi(z) = log(1 + z^2), phi'(z) = 2*z/(1 + z^2)`` also declares
its derivative. The body is built by the same grammar and limits as every other line,
then registered in the program's own registry (:func:`chainrule.ops.primitive`).

>>> from chainrule.symbolic import parse_program
>>> p = parse_program("def swish(z) = z*sigma(z)\\nparam w\\ninput x\\nL = swish(w*x)\\nloss L")
>>> p.functions.by_name("swish").extra["body"]
z*sigma(z)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from ..ops import primitive
from . import grammar as g
from .errors import ModelError
from .expr import CONSTANTS, ExprBuilder

if TYPE_CHECKING:
    from .scope import Scope


def define_function(st: g.FuncDef, scope: Scope, limits: g.Limits) -> None:
    """Build the body (and declared derivative) of ``st`` and register the function."""
    if scope.functions.is_function(st.name) or st.name in scope.items or st.name in CONSTANTS:
        raise ModelError(f"'{st.name}' is already a name; choose another", st.span)
    if len(set(st.params)) != len(st.params):
        raise ModelError(f"the parameters of {st.name} must differ", st.span)
    params = {p: sp.Symbol(p, real=True) for p in st.params}
    consts = {n: v.symbol for n, v in scope.items.items() if getattr(v, "role", "") == "const"}

    def resolve(node: g.Name) -> sp.Basic:
        if node.id in params:
            return params[node.id]
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if node.id in consts:
            return consts[node.id]
        raise ModelError(
            f"'{node.id}' is not a parameter of {st.name}",
            node.span,
            f"a function sees only its parameters ({', '.join(st.params)}) and consts",
        )

    build = ExprBuilder(resolve, limits, scope.functions)
    body = build(st.body)
    derivative = None
    if st.derivative is not None:
        if len(st.params) != 1:
            raise ModelError("a declared derivative needs a function of one parameter", st.span)
        if st.derivative_params != st.params:
            raise ModelError(
                f"write the derivative with the same parameter: {st.name}'({st.params[0]})",
                st.derivative_span or st.span,
            )
        derivative = build(st.derivative)
    try:
        primitive(
            st.name,
            tuple(params.values()),
            body,
            derivative,
            registry=scope.functions,
        )
    except ValueError as exc:
        raise ModelError(str(exc), st.span) from None
    scope.reserved.add(st.name)
