r"""Names a student gives to values: matched to the model's nodes by their definitions.

A line ``a = W^{(1)}x + b^{(1)}`` whose target is not a model name *defines* ``a``. Its
right-hand side is built in the model's symbols and compared with

* every node of the model (``a`` is then another name for that node), and
* every value the model computes inline as a function's argument (``h = tanh(W1 @ x
  + b1)`` computes the pre-activation ``W1 @ x + b1`` without naming it); ``a`` then
  becomes a node of its own, inserted before its parent, and ``\bar{a}`` is its signal.

``\bar{a}`` with no definition names the inline pre-activation when the model has
exactly one (or the one of the layer its number gives: ``\bar{a}^{(1)}``).

>>> import chainrule
>>> p = chainrule.load("residual")
>>> [str(sub) for _, sub in inline_values(p)]
['W1*x + b1', 'W*h1']
"""

from __future__ import annotations

import re

import sympy as sp

from ..ops import ColumnwiseOp, Elementwise, is_matrix
from ..symbolic.program import Assignment, Program, Shape, make_symbol


def inline_values(program: Program) -> list[tuple[str, sp.Basic]]:
    """(parent node, sub-expression) for each unnamed function argument, in order."""
    out: list[tuple[str, sp.Basic]] = []
    seen: set[sp.Basic] = set()
    for a in program.assignments:
        for e in sp.preorder_traversal(a.expr):
            args: tuple[sp.Basic, ...] = ()
            if isinstance(e, Elementwise):
                args = (e.arg,)
            elif isinstance(e, ColumnwiseOp):  # softmax(z), log_softmax(z)
                args = (e.args[0],)
            elif isinstance(e, sp.Function) and not is_matrix(e):
                args = e.args
            for arg in args:
                if (
                    arg in seen
                    or arg.is_Symbol
                    or arg.is_Number
                    or isinstance(arg, sp.MatrixSymbol)
                ):
                    continue
                if arg.free_symbols or arg.has(sp.MatrixSymbol):
                    seen.add(arg)
                    out.append((a.name, arg))
    return out


def same_value(a: sp.Basic, b: sp.Basic) -> bool:
    """Structural equality up to SymPy's canonical order (and expansion for scalars)."""
    if is_matrix(a) != is_matrix(b):
        return False
    if is_matrix(a):
        from ..ops.algebra import canonical as _canon

        return bool(a.shape == b.shape and _canon(a) == _canon(b))
    try:
        return bool(sp.expand(a - b) == 0)
    except (TypeError, ValueError, RecursionError):
        return False


def match_definition(program: Program, value: sp.Basic) -> tuple[str, sp.Basic | None] | None:
    """What a student's definition names: (node, None) for a model node, (parent,
    sub-expression) for an inline value, or None."""
    for a in program.assignments:
        if value == a.symbol or same_value(value, a.expr):
            return a.name, None
    for parent, sub in inline_values(program):
        if same_value(value, sub):
            return parent, sub
    return None


def guess_inline(program: Program, name: str) -> sp.Basic | None:
    """The inline pre-activation an undefined ``\\bar{a}`` / ``\\bar{a}^{(l)}`` means."""
    subs = [sub for _, sub in inline_values(program) if not _is_output(program, sub)]
    m = re.match(r"^[A-Za-z]+_?(\d)$", name)
    if m:
        layer = m.group(1)
        params = {p.symbol for p in program.params}
        hits = [s for s in subs if any(_layer_of(str(w)) == layer for w in _atoms(s) & params)]
        return hits[0] if len(hits) == 1 else None
    return subs[0] if len(subs) == 1 else None


def _is_output(program: Program, sub: sp.Basic) -> bool:
    """An argument of the loss's own reduction (``sum((y − t)²)``) is no pre-activation."""
    params = [p.symbol for p in program.params]
    return not sub.has(*params)


def _layer_of(name: str) -> str | None:
    m = re.match(r"^[A-Za-z]+_?(\d)$", name)
    return m.group(1) if m else None


def _atoms(e: sp.Basic) -> set[sp.Basic]:
    out = set(e.free_symbols)
    if e.has(sp.MatrixSymbol):
        out |= set(e.atoms(sp.MatrixSymbol))
    return out


def _shape_of(sub: sp.Basic) -> Shape:
    if not is_matrix(sub):
        return ()
    dims = tuple(int(d) if sp.sympify(d).is_Integer else str(d) for d in sub.shape)
    return (dims[0],) if dims[1] == 1 and dims[0] != 1 else dims  # type: ignore[return-value]


def extend_program(program: Program, named: dict[str, sp.Basic]) -> Program:
    """The program with each named inline value made a node of its own."""
    assignments = list(program.assignments)
    for name, sub in named.items():
        if name in program:
            continue
        sym = make_symbol(name, _shape_of(sub))
        idx = next(i for i, a in enumerate(assignments) if a.expr.has(sub))
        new = Assignment(name, sym, sub, _shape_of(sub))
        rest = [
            Assignment(a.name, a.symbol, a.expr.xreplace({sub: sym}), a.shape, a.span, a.display)
            for a in assignments[idx:]
        ]
        assignments = assignments[:idx] + [new] + rest
    return Program(
        program.title,
        list(program.variables),
        assignments,
        program.loss,
        program.filename,
        program.source,
        dict(program.sizes),
    )
