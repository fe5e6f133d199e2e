"""Turn parsed ``.chain`` statements into a :class:`Program` (scalar programs)."""

from __future__ import annotations

import sympy as sp

from . import grammar as g
from .defs import define_function
from .errors import ModelError, SourceSpan
from .expr import DisplayBuilder, ExprBuilder
from .program import Assignment, Program, Variable, make_symbol
from .scope import Scope, check_new_name, finish_program


def build_scalar_program(parsed: g.ParsedText, limits: g.Limits = g.DEFAULT_LIMITS) -> Program:
    """Give meaning to parsed statements: resolve names, build SymPy, check the loss."""
    scope = Scope(parsed.filename)
    for st in parsed.statements:
        if isinstance(st, g.Assign):
            scope.defined_later.setdefault(st.target, st.span.line)
            scope.reserved.add(st.target)
        elif isinstance(st, g.Declaration):
            scope.reserved.update(d.name for d in st.names)
    build = ExprBuilder(scope.resolve, limits, scope.functions)
    show = DisplayBuilder(scope.resolve, limits, scope.functions)
    variables: list[Variable] = []
    assignments: list[Assignment] = []
    loss: tuple[str, SourceSpan] | None = None
    for st in parsed.statements:
        if isinstance(st, g.Declaration):
            for d in st.names:
                check_new_name(d.name, d.span, scope)
                value = None
                if st.kind == "const":
                    assert d.value is not None
                    value = build(d.value)
                    if value.free_symbols:
                        raise ModelError("a const value must be a number", d.value.span)
                elif d.value is not None:
                    raise ModelError(
                        f"only consts take a value; '{d.name}' is a {st.kind}", d.value.span
                    )
                var = Variable(d.name, st.kind, make_symbol(d.name), (), value, d.span)  # type: ignore[arg-type]
                variables.append(var)
                scope.items[d.name] = var
        elif isinstance(st, g.Assign):
            existing = scope.items.get(st.target)
            if isinstance(existing, Variable):
                raise ModelError(
                    f"'{st.target}' is a {existing.role}; it cannot be assigned",
                    st.span,
                    "choose another name for the new node",
                )
            if scope.functions.is_function(st.target):
                raise ModelError(f"'{st.target}' is a function name", st.span)
            value = build(st.value)
            if st.op != "=":
                if existing is None:
                    raise ModelError(f"'{st.target}' has no value to update with {st.op}", st.span)
                value = {
                    "+=": sp.Add,
                    "-=": lambda a, b: a - b,
                    "*=": sp.Mul,
                    "/=": lambda a, b: a / b,
                }[st.op](existing.symbol, value)
            scope.defined_later.pop(st.target, None)
            name = scope.new_version(st.target)
            a = Assignment(name, make_symbol(name), value, (), st.span, display=st.target)
            a.as_written = _as_written(show, st, existing)
            assignments.append(a)
            scope.items[st.target] = a
            scope.items.setdefault(name, a)
        elif isinstance(st, g.FuncDef):
            define_function(st, scope, limits)
        elif isinstance(st, g.BatchDecl):
            raise ModelError(
                "'batch' declares the example axis of a program with shapes",
                st.span,
                f"e.g. 'batch {st.name}' with 'input X[{st.name}, n]'",
            )
        elif isinstance(st, g.LossDecl):
            if loss is not None:
                raise ModelError(
                    f"a second loss line (the first, line {loss[1].line}, names '{loss[0]}')",
                    st.span,
                    "a model has one loss; add the terms into one node, e.g. L = L1 + L2",
                )
            loss = (st.name, st.span)
    return finish_program(parsed, variables, assignments, loss, scope)


def _as_written(
    show: DisplayBuilder, st: g.Assign, existing: Variable | Assignment | None
) -> sp.Basic | None:
    """The right-hand side as typed (for printing); None if it cannot be shown so."""
    try:
        value = show(st.value)
    except (ModelError, RecursionError, TypeError, ValueError):
        return None
    if st.op == "=" or existing is None:
        return value
    op = {"+=": "+", "-=": "-", "*=": "*", "/=": "/"}[st.op]
    rhs = sp.Mul(sp.S.NegativeOne, value, evaluate=False) if op == "-" else value
    if op in "+-":
        return sp.Add(existing.symbol, rhs, evaluate=False)
    if op == "/":
        rhs = sp.Pow(value, -1, evaluate=False)
    return sp.Mul(existing.symbol, rhs, evaluate=False)
