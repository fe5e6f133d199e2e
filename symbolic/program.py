"""The model program: named assignments over SymPy expressions.

A :class:`Program` is what every other part of chainrule reads. It is built by the
text parser (:func:`chainrule.symbolic.parse_program`), by hand through
:class:`ProgramBuilder`, or from one SymPy expression (:func:`program_from_expr`).

>>> from sympy import symbols
>>> b = ProgramBuilder("logistic least squares")
>>> w, bias = b.param("w", "b"); x, t = b.input("x", "t")
>>> z = b.assign("z", w*x + bias)
>>> L = b.assign("L", (z - t)**2 / 2)
>>> prog = b.build(loss="L")
>>> [n.name for n in prog.assignments]
['z', 'L']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import sympy as sp

from ..ops import REGISTRY, Registry
from .errors import ModelError, SourceSpan
from .grammar import is_safe_identifier

Role = Literal["param", "input", "const", "node"]
Shape = tuple[int | str, ...]  # () scalar, (n,) vector, (m, n) matrix; sizes may be names
# A tensor with 3 or 4 axes, X[C, H, W], is carried by the matrix X of shape (C·H, W):
# its entries in row-major order, the last axis as columns (see ``carrier``).


@dataclass
class Variable:
    """A leaf of the graph: a parameter, a data input or a named constant."""

    name: str
    role: Role
    symbol: sp.Basic
    shape: Shape = ()
    value: object = None  # consts: a number (SymPy) or nested list
    span: SourceSpan | None = None


@dataclass
class Assignment:
    """One line ``name = expr`` of the forward pass (an interior node of the DAG).

    ``name`` is unique (SSA): re-assigning ``c`` makes ``c_2``; ``display`` keeps ``c``.
    """

    name: str
    symbol: sp.Basic
    expr: sp.Basic
    shape: Shape = ()
    span: SourceSpan | None = None
    display: str = ""
    as_written: sp.Basic | None = None  # the right-hand side unevaluated, for printing

    def __post_init__(self) -> None:
        if not self.display:
            self.display = self.name


@dataclass
class Program:
    """An ordered list of assignments plus leaf declarations and the loss."""

    title: str
    variables: list[Variable]
    assignments: list[Assignment]
    loss: str
    filename: str = "<program>"
    source: str = ""
    sizes: dict[str, int] = field(default_factory=dict)  # symbolic sizes bound to numbers
    batch: str | None = None  # ``batch B``: the size that counts examples (whole minibatch)
    functions: Registry = field(default=REGISTRY, compare=False, repr=False)  # incl. its defs

    # -- lookup
    def __post_init__(self) -> None:
        self._by_name: dict[str, Variable | Assignment] = {}
        for v in self.variables:
            self._by_name[v.name] = v
        for a in self.assignments:
            self._by_name[a.name] = a
        self._by_symbol = {item.symbol: item for item in self._by_name.values()}
        if self.loss not in self._by_name:
            raise ModelError(f"loss '{self.loss}' is not defined")

    def __getitem__(self, name: str) -> Variable | Assignment:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def item_of(self, symbol: sp.Basic) -> Variable | Assignment | None:
        return self._by_symbol.get(symbol)

    def symbol(self, name: str) -> sp.Basic:
        return self._by_name[name].symbol

    def _role(self, role: Role) -> list[Variable]:
        return [v for v in self.variables if v.role == role]

    @property
    def params(self) -> list[Variable]:
        return self._role("param")

    @property
    def inputs(self) -> list[Variable]:
        return self._role("input")

    @property
    def consts(self) -> list[Variable]:
        return self._role("const")

    @property
    def loss_assignment(self) -> Assignment:
        item = self._by_name[self.loss]
        assert isinstance(item, Assignment)
        return item

    @property
    def is_vector(self) -> bool:
        return any(item.shape for item in self._by_name.values())

    def const_values(self) -> dict[sp.Basic, object]:
        return {c.symbol: c.value for c in self.consts}

    # -- graph structure
    def parents(self, name: str) -> list[str]:
        """Names the node's own assignment reads (its inputs in the DAG), in program order."""
        item = self._by_name[name]
        if not isinstance(item, Assignment):
            return []
        used = _symbols_in(item.expr)
        return [n for n in self.topological_order() if self._by_name[n].symbol in used]

    def children(self, name: str) -> list[str]:
        """Assignments that read ``name`` directly, in program order."""
        return self._children_map().get(name, [])

    def fan_out(self, name: str) -> int:
        return len(self.children(name))

    def _children_map(self) -> dict[str, list[str]]:
        cached = getattr(self, "_children_cache", None)
        if cached is None:
            cached = {n: [] for n in self._by_name}
            for a in self.assignments:
                for s in _symbols_in(a.expr):
                    item = self._by_symbol.get(s)
                    if item is not None:
                        cached[item.name].append(a.name)
            self._children_cache = cached
        return cached

    def topological_order(self) -> list[str]:
        """Leaves first (params, inputs, consts), then assignments in program order.

        Assignments are stored in definition order, which is topological because a
        name must be defined before it is used.
        """
        return [v.name for v in self.variables] + [a.name for a in self.assignments]

    def needed_by_loss(self) -> set[str]:
        """Names on some path to the loss (others get no error signal)."""
        needed = {self.loss}
        for a in reversed(self.assignments):
            if a.name in needed:
                for s in _symbols_in(a.expr):
                    item = self._by_symbol.get(s)
                    if item is not None:
                        needed.add(item.name)
        return needed

    def substituted(self, name: str | None = None) -> sp.Basic:
        """The node's expression with every assignment substituted (leaves only).

        This is the "calculus class" form the naive derivation differentiates.
        """
        target = self._by_name[name or self.loss]
        if not isinstance(target, Assignment):
            return target.symbol
        full: dict[sp.Basic, sp.Basic] = {}
        for a in self.assignments:
            full[a.symbol] = a.expr.xreplace(full)
            if a.name == target.name:
                break
        return full[target.symbol]

    def forward_lines(self) -> Iterator[Assignment]:
        yield from self.assignments

    def __repr__(self) -> str:
        return (
            f"Program({self.title!r}, params={[p.name for p in self.params]}, "
            f"nodes={len(self.assignments)}, loss={self.loss!r})"
        )


def _symbols_in(expr: sp.Basic) -> set[sp.Basic]:
    return expr.free_symbols if hasattr(expr, "free_symbols") else set()


def make_symbol(name: str, shape: Shape = ()) -> sp.Basic:
    """The SymPy symbol for a program name (real scalars; matrices are MatrixSymbols)."""
    if not is_safe_identifier(name):
        raise ModelError(f"'{name}' is not a valid name ([A-Za-z_][A-Za-z0-9_]*)")
    if not shape:
        return sp.Symbol(name, real=True)
    return sp.MatrixSymbol(name, *carrier(shape))


def carrier(shape: Shape) -> tuple[sp.Expr, sp.Expr]:
    """(rows, cols) of the SymPy matrix that carries a value of ``shape``: a vector is
    a column, a matrix itself, a tensor ``[C, H, W]`` the matrix (C·H, W) of its entries
    in row-major order.

    >>> carrier((3,)), carrier((2, 5)), carrier((1, 8, 8)), carrier((8, 1, 3, 3))
    ((3, 1), (2, 5), (8, 8), (24, 3))
    """
    if len(shape) == 1:
        return _size(shape[0]), sp.Integer(1)
    return sp.Mul(*[_size(d) for d in shape[:-1]]), _size(shape[-1])


def _size(d: int | str) -> sp.Expr:
    return sp.Integer(d) if isinstance(d, int) else sp.Symbol(d, integer=True, positive=True)


class ProgramBuilder:
    """Build a :class:`Program` name by name from Python."""

    def __init__(self, title: str = "") -> None:
        self.title = title
        self.variables: list[Variable] = []
        self.assignments: list[Assignment] = []
        self._names: set[str] = set()

    def _claim(self, name: str) -> None:
        if name in self._names:
            raise ModelError(f"'{name}' is defined twice")
        self._names.add(name)

    def _leaves(self, role: Role, names: Iterable[str], shape: Shape = ()) -> list[sp.Basic]:
        out = []
        for name in names:
            self._claim(name)
            sym = make_symbol(name, shape)
            self.variables.append(Variable(name, role, sym, shape))
            out.append(sym)
        return out

    def param(self, *names: str, shape: Shape = ()) -> list[sp.Basic]:
        return self._leaves("param", names, shape)

    def input(self, *names: str, shape: Shape = ()) -> list[sp.Basic]:
        return self._leaves("input", names, shape)

    def const(self, name: str, value: object) -> sp.Basic:
        (sym,) = self._leaves("const", [name])
        self.variables[-1].value = sp.nsimplify(value) if isinstance(value, float) else value
        return sym

    def assign(self, name: str, expr: sp.Basic, shape: Shape = ()) -> sp.Basic:
        self._claim(name)
        sym = make_symbol(name, shape)
        self.assignments.append(Assignment(name, sym, sp.sympify(expr), shape))
        return sym

    def build(self, loss: str | None = None) -> Program:
        if not self.assignments:
            raise ModelError("a program needs at least one assignment")
        return Program(
            self.title, self.variables, self.assignments, loss or self.assignments[-1].name
        )


def program_from_expr(
    expr: sp.Expr, params: Iterable[sp.Symbol] | None = None, title: str = "", loss_name: str = "f"
) -> Program:
    """Build the DAG of a single SymPy expression.

    Each distinct non-leaf subexpression becomes a node ``v1, v2, …`` (a subexpression
    used twice is one node with fan-out 2). Free symbols are parameters unless
    ``params`` names a subset, in which case the rest are inputs.

    >>> from sympy import symbols, exp
    >>> x, y = symbols("x y", real=True)
    >>> p = program_from_expr(x*y + exp(x*y))
    >>> [(a.name, str(a.expr)) for a in p.assignments]
    [('v1', 'x*y'), ('v2', 'exp(v1)'), ('f', 'v1 + v2')]
    """
    expr = sp.sympify(expr)
    leaves = sorted(expr.free_symbols, key=lambda s: s.name)
    wanted = set(params) if params is not None else set(leaves)
    b = ProgramBuilder(title)
    replace: dict[sp.Basic, sp.Basic] = {}
    for s in leaves:
        name = s.name
        (new,) = b.param(name) if s in wanted else b.input(name)
        replace[s] = new
    nodes: dict[sp.Basic, sp.Basic] = {}

    def visit(e: sp.Basic) -> sp.Basic:
        if e.is_Atom:
            return replace.get(e, e)
        if e in nodes:
            return nodes[e]
        if _is_signed_coefficient(e):  # keep -x and 2*x inside their parent
            return e.func(*[visit(a) for a in e.args], evaluate=False)
        rebuilt = e.func(*[visit(a) for a in e.args])
        if e is expr:
            return rebuilt
        name = f"v{len(nodes) + 1}"
        while name in b._names:
            name += "_"
        sym = b.assign(name, rebuilt)
        nodes[e] = sym
        return sym

    body = visit(expr)
    b.assign(loss_name if loss_name not in b._names else "f_out", body)
    return b.build()


def _is_signed_coefficient(e: sp.Basic) -> bool:
    return bool(e.is_Mul and len(e.args) == 2 and e.args[0].is_Number and e.args[1].is_Atom)
