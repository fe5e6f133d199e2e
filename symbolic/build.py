"""Turn parsed ``.chain`` statements into a :class:`Program` (scalar programs).

SymPy objects are built directly from the syntax tree: no string ever reaches
``sympify``. Powers of literals are checked before SymPy evaluates them, so
``9^9^9^9`` is a clear error rather than a hung process.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path

import sympy as sp

from ..ops import REGISTRY, Registry
from . import grammar as g
from .defs import define_function
from .errors import LimitError, ModelError, SourceSpan
from .program import Assignment, Program, Variable, make_symbol

#: Names that mean SymPy constants unless the model declares them (documented policy:
#: every other name, ``E``, ``I``, ``N``, ``S``, ``lambda`` included, is an ordinary
#: symbol).
CONSTANTS: dict[str, sp.Basic] = {"e": sp.E, "pi": sp.pi}


def number(text: str, span: SourceSpan, limits: g.Limits = g.DEFAULT_LIMITS) -> sp.Rational:
    """An exact SymPy number from a literal (``0.01`` → 1/100)."""
    mantissa, _, exponent = text.lower().partition("e")
    if exponent and abs(int(exponent)) > 300:
        raise LimitError(f"number {text} is out of range", span)
    if "." in mantissa or exponent:
        return sp.Rational(text)
    return sp.Integer(text)


#: A power of literals is evaluated only when the result fits in this many bits.
MAX_LITERAL_BITS = 4096


def _result_bits(base: sp.Number, exponent: sp.Number) -> float:
    """Bits of ``base**exponent`` (estimated before anything is computed)."""
    p, q = sp.fraction(sp.Rational(base)) if base.is_Rational else (abs(base), 1)
    size = max(int(abs(p)).bit_length(), int(abs(q)).bit_length(), 1)
    return float(abs(exponent)) * size


class ExprBuilder:
    """Builds SymPy scalar expressions from syntax trees, resolving names in ``env``."""

    def __init__(
        self,
        env: Callable[[g.Name], sp.Basic],
        limits: g.Limits = g.DEFAULT_LIMITS,
        functions: Registry = REGISTRY,
    ):
        self.resolve = env
        self.limits = limits
        self.functions = functions

    def __call__(self, node: g.Expr) -> sp.Basic:
        method = getattr(self, "build_" + type(node).__name__)
        result = method(node)
        if result.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            raise ModelError("expression is not finite (division by zero?)", node.span)
        return result

    def build_Num(self, node: g.Num) -> sp.Basic:
        return number(node.text, node.span, self.limits)

    def build_Name(self, node: g.Name) -> sp.Basic:
        return self.resolve(node)

    def build_Neg(self, node: g.Neg) -> sp.Basic:
        return -self(node.operand)

    def build_BinOp(self, node: g.BinOp) -> sp.Basic:
        if node.op in ("+", "-", "*"):
            return self.chain(node)
        left, right = self(node.left), self(node.right)
        if node.op == "+":
            return left + right
        if node.op == "-":
            return left - right
        if node.op == "*":
            return left * right
        if node.op == "/":
            if right.is_zero:
                raise ModelError("division by zero", node.span)
            return left / right
        if node.op == "^":
            return self.power(left, right, node.span)
        raise ModelError(
            f"'{node.op}' needs vectors or matrices; in a scalar model use '*'",
            node.span,
            "declare shapes, e.g. 'param W[2, 3]', for matrix programs",
        )

    def chain(self, node: g.BinOp) -> sp.Basic:
        """A left-deep run of ``+``/``-`` (or ``*``) built in one step, without recursion:
        a 500-term sum on one line is ordinary in a wide unit-form layer."""
        group = ("+", "-") if node.op in ("+", "-") else ("*",)
        operands: list[tuple[str, g.Expr]] = []
        cur: g.Expr = node
        while isinstance(cur, g.BinOp) and cur.op in group:
            operands.append((cur.op, cur.right))
            cur = cur.left
        terms = [self(cur)]
        for op, operand in reversed(operands):
            value = self(operand)
            terms.append(self.negate(value) if op == "-" else value)
        return self.combine(group[0] == "+", terms)

    #: Whether SymPy may evaluate (canonicalize) what this builder makes.
    evaluate = True

    def negate(self, value: sp.Basic) -> sp.Basic:
        return sp.Mul(sp.S.NegativeOne, value, evaluate=self.evaluate)

    def combine(self, is_sum: bool, terms: list[sp.Basic]) -> sp.Basic:
        return (sp.Add if is_sum else sp.Mul)(*terms, evaluate=self.evaluate)

    def power(self, base: sp.Basic, exponent: sp.Basic, span: SourceSpan) -> sp.Basic:
        if exponent.is_Number:
            if exponent.is_Integer and abs(int(exponent)) > self.limits.max_exponent:
                raise LimitError(
                    f"exponent {exponent} is larger than the limit {self.limits.max_exponent}", span
                )
            if not exponent.is_Integer and abs(exponent) > self.limits.max_exponent:
                raise LimitError("exponent too large", span)
            if base.is_Number and base.is_zero and exponent.is_negative:
                raise ModelError("zero to a negative power", span)
            if base.is_Number and _result_bits(base, exponent) > MAX_LITERAL_BITS:
                raise LimitError("this power of a number is too large to compute", span)
        return sp.Pow(base, exponent)

    def build_Call(self, node: g.Call) -> sp.Basic:
        names = self.functions.spellings("scalar")
        op = names.get(node.func)
        if op is None:
            close = difflib.get_close_matches(node.func, names, n=1)
            hint = (
                f"did you mean '{close[0]}'?"
                if close
                else ("known functions: " + ", ".join(sorted(names)))
            )
            raise ModelError(f"unknown function '{node.func}'", node.span, hint)
        args = [self(a) for a in node.args]
        if len(args) < op.arity[0] and len(args) + len(op.defaults) >= op.arity[0]:
            args.extend(op.defaults[len(op.defaults) - (op.arity[0] - len(args)) :])
        if len(args) not in op.arity:
            want = " or ".join(str(a) for a in op.arity[:2]) + (
                " or more" if len(op.arity) > 2 else ""
            )
            raise ModelError(
                f"{node.func}() takes {want} argument(s), got {len(node.args)}", node.span
            )
        build = op.build or op.node
        if node.prime:
            if len(args) != 1:
                raise ModelError(f"{node.func}' is defined for one argument", node.span)
            u = sp.Dummy("u", real=True)
            return sp.diff(build(u), u).xreplace({u: args[0]})
        return build(*args)

    def build_Transpose(self, node: g.Transpose) -> sp.Basic:
        raise ModelError(
            "transpose needs a vector or matrix",
            node.span,
            "declare shapes, e.g. 'param W[2, 3]', for matrix programs",
        )

    def build_ArrayLit(self, node: g.ArrayLit) -> sp.Basic:
        raise ModelError("array literals need a vector program", node.span)


class DisplayBuilder(ExprBuilder):
    """The same expression as written, unevaluated, only for printing forward lines
    (``z = w x + b`` in the order of the text, not SymPy's ``b + w x``)."""

    def __call__(self, node: g.Expr) -> sp.Basic:
        return getattr(self, "build_" + type(node).__name__)(node)

    evaluate = False

    def build_Neg(self, node: g.Neg) -> sp.Basic:
        return self.negate(self(node.operand))

    def build_BinOp(self, node: g.BinOp) -> sp.Basic:
        if node.op == "/":
            den = sp.Pow(self(node.right), -1, evaluate=False)
            return sp.Mul(self(node.left), den, evaluate=False)
        if node.op == "^":
            return sp.Pow(self(node.left), self(node.right), evaluate=False)
        return super().build_BinOp(node)


def _is_vector_text(parsed: g.ParsedText) -> bool:
    for st in parsed.statements:
        if isinstance(st, g.Declaration) and any(d.dims for d in st.names):
            return True
    return False


class _Scope:
    """Names visible while building: declarations and the latest version of each node."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.items: dict[str, Variable | Assignment] = {}
        self.versions: dict[str, int] = {}
        self.defined_later: dict[str, int] = {}
        self.reserved: set[str] = set()  # every name the text writes anywhere
        self.functions = REGISTRY.extend()  # the shipped functions and the model's defs

    def resolve(self, node: g.Name) -> sp.Basic:
        item = self.items.get(node.id)
        if item is not None:
            return item.symbol
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if self.functions.is_function(node.id):
            raise ModelError(f"'{node.id}' is a function; call it like {node.id}(z)", node.span)
        if node.id in self.defined_later:
            raise ModelError(
                f"'{node.id}' is used before it is defined (line {self.defined_later[node.id]})",
                node.span,
            )
        close = difflib.get_close_matches(node.id, list(self.items), n=1)
        hint = f"did you mean '{close[0]}'?" if close else "declare it with 'param' or 'input'"
        raise ModelError(f"unknown name '{node.id}'", node.span, hint)

    def new_version(self, name: str) -> str:
        n = self.versions.get(name, 0) + 1
        self.versions[name] = n
        if n == 1:
            return name
        candidate = f"{name}_{n}"
        while candidate in self.items or candidate in self.reserved:
            candidate += "_"
        self.reserved.add(candidate)
        return candidate


def build_program(parsed: g.ParsedText, limits: g.Limits = g.DEFAULT_LIMITS) -> Program:
    """Give meaning to parsed statements: resolve names, build SymPy, check the loss."""
    if _is_vector_text(parsed):
        from .vector import build_vector_program  # matrix programs

        return build_vector_program(parsed, limits)
    scope = _Scope(parsed.filename)
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
                _check_new_name(d.name, d.span, scope)
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
        elif isinstance(st, g.LossDecl):
            if loss is not None:
                raise ModelError(
                    f"a second loss line (the first, line {loss[1].line}, names '{loss[0]}')",
                    st.span,
                    "a model has one loss; add the terms into one node, e.g. L = L1 + L2",
                )
            loss = (st.name, st.span)
    return _finish(parsed, variables, assignments, loss, scope)


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


def _check_new_name(name: str, span: SourceSpan, scope: _Scope) -> None:
    if name in scope.items:
        raise ModelError(f"'{name}' is declared twice", span)
    if scope.functions.is_function(name):
        raise ModelError(f"'{name}' is a function name and cannot be declared", span)
    if name in g.KEYWORDS:
        raise ModelError(f"'{name}' is a keyword", span)


def _finish(
    parsed: g.ParsedText,
    variables: list[Variable],
    assignments: list[Assignment],
    loss: tuple[str, SourceSpan] | None,
    scope: _Scope,
) -> Program:
    end = SourceSpan(parsed.filename, parsed.source.count("\n") + 1, 1, "")
    if not assignments:
        raise ModelError("the model has no assignments (e.g. 'z = w*x + b')", end)
    if loss is None:
        raise ModelError(
            "no loss: add a line 'loss NAME' naming the output to differentiate",
            end,
            f"e.g. 'loss {assignments[-1].display}'",
        )
    item = scope.items.get(loss[0])
    if item is None:
        raise ModelError(f"loss '{loss[0]}' is not defined", loss[1])
    if not isinstance(item, Assignment):
        raise ModelError(f"loss '{loss[0]}' is a {item.role}, not a computed node", loss[1])
    if not any(v.role == "param" for v in variables):
        raise ModelError(
            "no parameters: declare what to differentiate with 'param'",
            SourceSpan(parsed.filename, 1, 1, ""),
        )
    return Program(
        parsed.title or Path(parsed.filename).stem,
        variables,
        assignments,
        item.name,
        parsed.filename,
        parsed.source,
        functions=scope.functions,
    )


def parse_program(
    text: str, filename: str = "<input>", limits: g.Limits = g.DEFAULT_LIMITS
) -> Program:
    """Parse and build a program from ``.chain`` text.

    >>> p = parse_program("param w\\ninput x\\ny = sigma(w*x)\\nloss y")
    >>> p.loss, [v.name for v in p.params]
    ('y', ['w'])
    """
    return build_program(g.parse_text(text, filename, limits), limits)


def load_program(path: str | Path, limits: g.Limits = g.DEFAULT_LIMITS) -> Program:
    """Read a ``.chain`` file (UTF-8) and build its program."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(
            f"cannot read model: {exc.strerror}", SourceSpan(str(path), 1, 1)
        ) from None
    if len(data) > limits.max_chars * 4:
        raise LimitError(
            f"file is {len(data):,} bytes; the limit is {limits.max_chars:,} characters",
            SourceSpan(str(path), 1, 1),
        )
    text = g.decode_source(data, str(path))
    if not text.strip():
        raise ModelError("the model file is empty", SourceSpan(str(path), 1, 1))
    return parse_program(text, str(path), limits)
