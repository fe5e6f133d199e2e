"""Answer keys: a model's backward pass written as an answer that ``check`` accepts.

The error signals print in the answer grammar (``z_bar = y_bar*sigma_prime(z)``,
``W2_bar = y_bar @ h.T``); numbers print rounded to 4 significant digits, matrices as
nested lists, rows first (``[[0.1, 0.2], [0.3, 0.4]]``).

>>> from chainrule.symbolic import parse_program
>>> from chainrule.derive.backprop import backprop
>>> prog = parse_program("param w\\ninput x\\nz = w*x\\ny = sigma(z)\\nloss y")
>>> backward_pass_lines(backprop(prog))
['y_bar = 1', 'z_bar = y_bar*sigma_prime(z)', 'w_bar = x*z_bar']
>>> numeric_text(-0.000012344)
'-1.234e-05'
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp
from sympy.printing.str import StrPrinter

from ..derive.records import BackpropDerivation

#: Significant digits of the numeric answers.
DIGITS = 4


class AnswerTextPrinter(StrPrinter):
    """SymPy to the answer grammar: ``@`` for matrix products, ``*`` elementwise, ``.T``."""

    def _print_MatMul(self, expr: sp.Basic) -> str:
        scalars = [a for a in expr.args if not getattr(a, "is_Matrix", False)]
        matrices = [a for a in expr.args if getattr(a, "is_Matrix", False)]
        sign = ""
        if scalars and scalars[0] == -1:
            sign, scalars = "-", scalars[1:]
        parts = [self.parenthesize(a, 50) for a in scalars]
        mats = f" {_matmul_operator()} ".join(self._factor(m) for m in matrices)
        if parts and len(matrices) > 1:
            mats = f"({mats})"
        return sign + "*".join([*parts, mats] if mats else parts)

    def _print_HadamardProduct(self, expr: sp.Basic) -> str:
        return "*".join(self._factor(a) for a in expr.args)

    def _print_MatAdd(self, expr: sp.Basic) -> str:
        terms = [self._print(a) for a in expr.args]
        terms = [t for t in terms if not t.startswith("-")] + [
            t for t in terms if t.startswith("-")
        ]
        return " + ".join(terms).replace("+ -", "- ").lstrip()

    def _print_Transpose(self, expr: sp.Basic) -> str:
        return f"{self._factor(expr.arg)}.T"

    def _print_HadamardPower(self, expr: sp.Basic) -> str:
        return f"{self._factor(expr.base)}^{self._factor(expr.exp)}"

    def _factor(self, e: sp.Basic) -> str:
        text = self._print(e)
        simple = isinstance(e, (sp.Symbol, sp.MatrixSymbol, sp.Function)) or e.is_Number
        simple = simple or isinstance(e, sp.Transpose) and isinstance(e.arg, sp.MatrixSymbol)
        return text if simple or _wrapped(text) else f"({text})"


def _matmul_operator() -> str:
    """How answers write a matrix product (the registry's infix token, ``@``)."""
    from ..ops import REGISTRY

    op = REGISTRY.for_node(sp.MatMul)
    return op.operator if op is not None and op.operator else "@"


def _wrapped(text: str) -> bool:
    """``(…)`` or ``name(…)`` spanning the whole text."""
    if not text.endswith(")"):
        return False
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and ch == ")":
            head = text[: text.index("(")]
            return i == len(text) - 1 and (head == "" or head.replace("_", "").isalnum())
    return False


def answer_text(expr: sp.Basic) -> str:
    """An expression in the answer grammar."""
    return AnswerTextPrinter({"order": "none"}).doprint(expr)


def backward_pass_lines(derivation: BackpropDerivation) -> list[str]:
    """``v_bar = …`` for every error signal, in the derivation's (reverse topological) order."""
    return [f"{s.node}_bar = {answer_text(s.expression)}" for s in derivation.steps]


# ------------------------------------------------------------------ numbers
def round_sig(value: float, digits: int = DIGITS) -> float:
    """``value`` rounded to ``digits`` significant digits (exact zero stays 0)."""
    return float(f"{value:.{digits}g}") + 0.0  # + 0.0: no negative zero


def numeric_text(value: Any, digits: int = DIGITS) -> str:
    """A number (or nested list, rows first) to ``digits`` significant digits."""
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        v = round_sig(float(arr), digits)
        return "0" if v == 0 else f"{v:.{digits}g}"
    return "[" + ", ".join(numeric_text(x, digits) for x in arr) + "]"
