"""The operator registry: one :class:`Op` record per primitive, everything about it in it.

Why this shape. A JAX primitive registers its implementation, shape rule, JVP/transpose
and lowering beside its definition; PyTorch's ``derivatives.yaml`` keeps one declarative
entry per op and generates the rest; a SymPy ``Function`` subclass carries ``fdiff`` and
its printer methods on one class. chainrule needs all three views of an operation — the
SymPy node that *is* the operation in a derivation, the math about it (local derivative
or vector–Jacobian product, entrywise expansion, cost), its NumPy form, and its
renderings — so an :class:`Op` is a frozen record (the ``derivatives.yaml`` idea: data,
readable top to bottom) whose ``node`` is the SymPy class (the ``Function`` idea: the
printers find ``_lecture_unicode``/``_lecture_latex`` on it), registered in a
:class:`Registry` keyed by spelling and by node class (the JAX idea: everything about a
primitive reachable from one entry). Every other module asks the registry; none lists
operation names.

>>> from chainrule.ops import REGISTRY
>>> op = REGISTRY.by_name("sigmoid")
>>> op.name, op.unicode, op.latex
('sigma', 'σ', '\\\\sigma')
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import sympy as sp

#: ``vjp(g, ans, i)``: the cotangent of argument ``i`` of the node ``ans`` given the
#: cotangent ``g`` of its value.
VJP = Callable[[sp.Basic, sp.Basic, int], sp.Basic]


@dataclass(frozen=True)
class Fusion:
    """An operation and its only reader written as one backprop step (softmax followed
    by cross-entropy: ``z̄ = c̄ (y − t)``), valid under a stated condition."""

    node: str  # the node whose error signal is written in one step (z)
    skipped: str  # the node the step passes over (y)
    reader: str  # the reader whose error signal the step uses (c)
    expression: sp.Basic  # z̄ in terms of the reader's error signal
    note: str  # what the step is and when it is valid
    conditioned_inputs: tuple[str, ...] = ()  # inputs the condition is about (t)


@dataclass(frozen=True)
class Op:
    """Everything chainrule knows about one operation.

    Scalar functions (``kind="scalar"``) apply to numbers and, componentwise, to
    tensors; tensor operations (``kind="tensor"``) take whole vectors and matrices.
    Callables receive the consumer's own context object where they need one (an
    expander, a cost counter, an evaluator), so the registry depends on nothing above it.
    """

    name: str  # canonical name, as the model language writes it
    node: type  # the SymPy class of an application of the operation
    kind: Literal["scalar", "tensor"] = "scalar"
    doc: str = ""  # one line for --help and reports

    # -- names and arity
    spellings: tuple[str, ...] = ()  # further model-language names ("sigmoid" for sigma)
    in_language: bool = True  # written in models under its name (σ' is written sigma')
    operator: str = ""  # the infix token that writes it in models ("@")
    answer_spellings: tuple[str, ...] = ()  # further names accepted in students' answers
    latex_commands: tuple[str, ...] = ()  # LaTeX commands (no backslash) read in answers
    arity: tuple[int, ...] = (1,)
    defaults: tuple[sp.Basic, ...] = ()  # values of optional trailing arguments

    # -- building (model text → SymPy)
    build: Callable[..., Any] | None = None  # scalar: SymPy args → expression
    build_tensor: Callable[..., Any] | None = None  # tensor: (builder, call, vals) → Val

    # -- calculus
    partials: tuple[Callable[..., sp.Basic], ...] = ()  # ∂f/∂argᵢ, one per argument
    vjp: VJP | None = None
    smooth: bool = True  # False: derivative only almost everywhere (kinks)
    analytic: bool = True  # holomorphic (complex-step differentiation is exact)
    expand: Callable[..., sp.Basic] | None = None  # the calculus-class form (exp, log, Max)
    expand_derivative: Callable[..., sp.Basic] | None = None  # σ'(z) → σ(z)(1 − σ(z))
    jacobian: Callable[[sp.Basic, sp.Basic], sp.Basic | None] | None = None  # for teaching
    #: forward mode: ``jvp(node, tangent)``, ``tangent(arg)`` an argument's tangent or None
    jvp: Callable[[Any, Callable[[sp.Basic], sp.Basic | None]], sp.Basic | None] | None = None
    #: a stable form of ``log`` of the operation's value (log σ(u) = −softplus(−u))
    log_form: Callable[..., sp.Basic] | None = None
    #: ``log`` of one minus its value (log(1 − σ(u)) = −softplus(u))
    log_complement: Callable[..., sp.Basic] | None = None
    #: ``fuse(program, assignment, signal)``: a :class:`Fusion` of this node with its reader
    fuse: Callable[[Any, Any, Callable[[str], sp.Basic]], Fusion | None] | None = None

    # -- entrywise (unit-form) expansion, costs
    unit_form: Callable[[Any, sp.Basic], Any] | None = None  # (expander, node) → entries
    #: (converter, node, row index, column index) → the entry in index notation, at
    #: symbolic sizes: ``(AB)_rc = Σ_s A_rs B_sc`` (see :mod:`chainrule.ops.index_rules`)
    index_form: Callable[[Any, sp.Basic, Any, Any], sp.Basic] | None = None
    cost: Callable[[Any, sp.Basic], Any] | None = None  # (counter, node) → Cost

    # -- numbers
    numpy: Callable[..., Any] | None = None  # array implementation (evaluators)
    evaluate: Callable[[Any, sp.Basic, Callable[[sp.Basic], Any]], Any] | None = None
    numpy_call: str = ""  # the callable generated code names ("np.tanh", "sigma")
    numpy_source: str = ""  # helper definition copied into generated code (stable form)
    numpy_source_analytic: str = ""  # holomorphic helper (complex-step checks)
    needs: tuple[str, ...] = ()  # helpers that numpy_source calls
    numpy_print: Callable[[Any, sp.Basic], str] | None = None  # (printer, node) → code
    batched: Callable[[Any, sp.Basic], tuple[str, str]] | None = None  # vector programs' code

    # -- renderings
    unicode: str = ""  # "σ"
    latex: str = ""  # r"\sigma"
    mathml: str = ""  # "σ" (the <mi> text in MathML)

    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the operation goes by in models and answers."""
        return (self.name, *self.spellings, *self.answer_spellings)

    def partial(self, args: tuple[sp.Basic, ...], i: int) -> sp.Basic:
        """∂f(args)/∂argᵢ by the entry's rule (or SymPy's ``fdiff`` when it has none)."""
        if i < len(self.partials):
            return self.partials[i](*args)
        return self.node(*args).fdiff(i + 1)


class OpError(ValueError):
    """A registry rule refuses its arguments (the caller adds the source location)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class UnknownOperation(KeyError):
    """No operation is registered under that name or node class."""


class Registry:
    """Operations by spelling and by node class; :meth:`extend` makes a child registry
    that sees its parent's entries (a model's own ``def`` functions live in one)."""

    def __init__(self, parent: Registry | None = None) -> None:
        self.parent = parent
        self._by_name: dict[str, Op] = {}
        self._by_node: dict[type, Op] = {}
        self._order: list[Op] = []

    # -- registration
    def register(self, op: Op) -> Op:
        """Add ``op``; its spellings must be new (a name means one thing)."""
        for name in {op.name, *op.spellings}:
            if name in self._by_name and self._by_name[name] is not op:
                raise ValueError(f"an operation named {name!r} is already registered")
        for name in {op.name, *op.spellings}:
            self._by_name[name] = op
        self._by_node[op.node] = op
        self._order.append(op)
        return op

    def replace(self, op: Op, **changes: Any) -> Op:
        """Update fields of a registered entry in place (e.g. a NumPy form)."""
        new = replace(op, **changes)
        for name, o in list(self._by_name.items()):
            if o is op:
                self._by_name[name] = new
        self._by_node[new.node] = new
        self._order[self._order.index(op)] = new
        return new

    def extend(self) -> Registry:
        return Registry(parent=self)

    def own(self) -> list[Op]:
        """The entries registered here (a model's own ``def`` functions), in order."""
        return list(self._order)

    # -- lookup
    def by_name(self, name: str) -> Op:
        op = self.get(name)
        if op is None:
            raise UnknownOperation(name)
        return op

    def get(self, name: str) -> Op | None:
        op = self._by_name.get(name)
        if op is None and self.parent is not None:
            return self.parent.get(name)
        return op

    def for_node(self, node: sp.Basic | type) -> Op | None:
        """The entry of a node (or node class), looking through base classes."""
        cls = node if isinstance(node, type) else type(node)
        for klass in cls.__mro__:
            op = self._by_node.get(klass)
            if op is not None:
                return op
        if self.parent is not None:
            return self.parent.for_node(cls)
        own = getattr(cls, "op", None)  # a node registered elsewhere (a model's def)
        return own if isinstance(own, Op) else None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[Op]:
        seen: set[int] = set()
        for op in [*(self.parent or ()), *self._order]:
            current = self.get(op.name) if op.spellings or op.name else op
            if current is not None and id(current) not in seen:
                seen.add(id(current))
                yield current

    def spellings(self, kind: str | None = None) -> dict[str, Op]:
        """Every model-language spelling → entry (``kind`` filters scalar/tensor)."""
        out: dict[str, Op] = {}
        for op in self:
            if kind is None or op.kind == kind:
                for s in (op.name, *op.spellings) if op.in_language else ():
                    out[s] = op
        return out

    def is_function(self, name: str) -> bool:
        """True when models write ``name`` as a function (or tensor operation)."""
        op = self.get(name)
        return op is not None and op.in_language

    def answer_names(self) -> dict[str, Op]:
        """Every spelling accepted in answers (model spellings and answer-only ones)."""
        out = self.spellings()
        for op in self:
            for s in op.answer_spellings:
                out.setdefault(s, op)
        return out

    def operator(self, token: str) -> Op | None:
        """The entry written by an infix ``token`` in models."""
        return next((op for op in self if op.operator == token), None)

    def latex_commands(self) -> dict[str, Op]:
        return {c: op for op in self for c in op.latex_commands}

    def numpy_namespace(self) -> dict[str, Any]:
        """Function class name → NumPy implementation (for ``lambdify`` namespaces)."""
        return {
            op.node.__name__: op.numpy
            for op in self
            if op.kind == "scalar" and op.numpy is not None and isinstance(op.node, type)
        }

    def non_smooth(self) -> tuple[type, ...]:
        return tuple(op.node for op in self if not op.smooth)

    def non_analytic(self) -> tuple[type, ...]:
        return tuple(op.node for op in self if not op.analytic)
