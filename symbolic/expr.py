"""SymPy expressions from syntax trees: numbers, names, operators, function calls.

SymPy objects are built directly from the syntax tree: no string ever reaches
``sympify``. Powers of literals are checked before SymPy evaluates them, so
``9^9^9^9`` is a clear error rather than a hung process.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import sympy as sp

from ..ops import REGISTRY, Op, Registry
from . import grammar as g
from .errors import LimitError, ModelError, SourceSpan

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


def find_function(functions: Registry, node: g.Call, kind: str | None = None) -> Op:
    """The registry entry a call names, or a located error with the closest name."""
    names = functions.spellings(kind)
    op = names.get(node.func)
    if op is None:
        close = difflib.get_close_matches(node.func, names, n=1)
        hint = (
            f"did you mean '{close[0]}'?"
            if close
            else ("known functions: " + ", ".join(sorted(names)))
        )
        raise ModelError(f"unknown function '{node.func}'", node.span, hint)
    allowed = tuple(op.extra.get("keywords", ()))
    for name, value in node.keywords:
        if name not in allowed:
            takes = ", ".join(f"{k}=" for k in allowed)
            raise ModelError(
                f"{node.func}() has no keyword argument '{name}'",
                value.span,
                f"it takes {takes}" if takes else "it takes positional arguments only",
            )
    return op


def call_arguments(op: Op, args: list[Any], node: g.Call) -> list[Any]:
    """``args`` with optional trailing arguments filled in; arity and ``f'`` checked."""
    arity = op.arity
    if len(args) < arity[0] and len(args) + len(op.defaults) >= arity[0]:
        args = [*args, *op.defaults[len(op.defaults) - (arity[0] - len(args)) :]]
    if len(args) not in arity:
        want = " or ".join(str(a) for a in arity[:2]) + (" or more" if len(arity) > 2 else "")
        raise ModelError(f"{node.func}() takes {want} argument(s), got {len(node.args)}", node.span)
    if node.prime and len(args) != 1:
        raise ModelError(f"{node.func}' is defined for one argument", node.span)
    return args


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
        op = find_function(self.functions, node, "scalar")
        args = call_arguments(op, [self(a) for a in node.args], node)
        build = op.build or op.node
        if node.prime:
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

    def build_Word(self, node: g.Word) -> sp.Basic:
        raise ModelError(
            f'"{node.text}" is an option word; it is only an argument of a tensor operation',
            node.span,
            'e.g. conv(x, w, "valid") in a program with shapes',
        )


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
