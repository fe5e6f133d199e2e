"""NumPy code for matrix expressions: ``@``, ``.T``, ``*`` for Hadamard, ``np.tanh``.

A SymPy-style printer for the generic algebra; every operation prints by its registry
entry (scalar functions as ``op.numpy_call(args)``, tensor nodes through their
``_numpycode`` method, which calls ``op.numpy_print``). The code it writes assumes the
layout of :mod:`chainrule.numeric.vector_eval`: vectors are ``(n, 1)`` columns (so
``z_bar @ x.T`` is an outer product and biases broadcast over a batch's columns),
scalars are floats, and the names of
:data:`~chainrule.numeric.vector_eval.NUMPY_NAMESPACE` are in scope (``np`` and every
entry's ``numpy_call`` helper).
Size names (``m``, ``n``) are printed as names unless ``sizes`` binds them.

>>> import sympy as sp
>>> from chainrule.ops import REGISTRY, elementwise
>>> sigma_prime = REGISTRY.by_name("sigma_prime").node
>>> W, x = sp.MatrixSymbol("W1", 3, 2), sp.MatrixSymbol("x", 2, 1)
>>> h_bar, z = sp.MatrixSymbol("h_bar", 3, 1), sp.MatrixSymbol("z", 3, 1)
>>> numpy_code(sp.HadamardProduct(h_bar, elementwise(sigma_prime, z)))
'h_bar * sigma_prime(z)'
>>> numpy_code(sp.MatMul(h_bar, x.T)), numpy_code(W.T * h_bar)
('h_bar @ x.T', 'W1.T @ h_bar')
>>> numpy_code(elementwise(sp.tanh, W * x))
'np.tanh(W1 @ x)'
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import reduce
from typing import Any

import sympy as sp
from sympy.printing.str import StrPrinter

from ..ops import REGISTRY, Op, Verbatim
from ..symbolic.grammar import is_safe_identifier


def _is_primary(code: str) -> bool:
    """``x``, ``W1.T``, ``sigma(z)``, ``np.sum(a, axis=1)``, ``(W @ x).T``: code with no
    operator outside brackets, so it needs no parentheses as an operand."""
    depth = 0
    for ch in code:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and not (ch.isalnum() or ch in "_."):
            return False
    return bool(code) and depth == 0


class NumPyMatrixPrinter(StrPrinter):
    """Prints matrix and scalar expressions as NumPy code (see the module docstring)."""

    printmethod = "_numpycode"

    def __init__(self, sizes: Mapping[str, int] | None = None) -> None:
        super().__init__()
        self.sizes = dict(sizes or {})

    # -- helpers
    def wrap(self, e: sp.Basic) -> str:
        code = self._print(e)
        if (e.is_Number and e >= 0) or isinstance(e, Verbatim):
            return code
        return code if _is_primary(code) else f"({code})"

    def parenthesize(self, item: Any, level: int, strict: bool = False) -> str:
        """An entrywise body's argument (already code) is bracketed unless it is a primary:
        ``1/(W @ x)``, ``(a + b)**(1/2)``."""
        if isinstance(item, Verbatim):
            return item.name if _is_primary(item.name) else f"({item.name})"
        return str(super().parenthesize(item, level, strict))

    def dim(self, d: sp.Basic) -> str:
        value = sp.sympify(d).xreplace(
            {sp.Symbol(k, integer=True, positive=True): v for k, v in self.sizes.items()}
        )
        return self._print(value)

    def shape(self, e: sp.Basic) -> str:
        return f"({self.dim(e.shape[0])}, {self.dim(e.shape[1])})"

    # -- leaves
    def _print_Symbol(self, e: sp.Symbol) -> str:
        if not is_safe_identifier(e.name):
            raise ValueError(f"unsafe name {e.name!r} cannot reach generated code")
        return e.name

    def _print_Dummy(self, e: sp.Dummy) -> str:
        return f"_{e.name}_{e.dummy_index}"

    def _print_MatrixSymbol(self, e: sp.MatrixSymbol) -> str:
        return self._print_Symbol(sp.Symbol(str(e.name)))

    def _print_Verbatim(self, e: Verbatim) -> str:
        return e.name

    def _print_Rational(self, e: sp.Rational) -> str:
        return f"{e.p}/{e.q}"

    def _print_Float(self, e: sp.Float) -> str:
        return repr(float(e))

    def _print_Exp1(self, e: sp.Basic) -> str:
        return "np.e"

    def _print_Pi(self, e: sp.Basic) -> str:
        return "np.pi"

    # -- scalar algebra
    def _print(self, expr: Any, **kwargs: Any) -> str:
        op = REGISTRY.for_node(expr) if isinstance(expr, sp.Basic) else None
        if op is not None and op.kind == "scalar":
            return self._print_call(op, expr)
        if op is not None and op.numpy_print is not None:
            return op.numpy_print(self, expr)
        return super()._print(expr, **kwargs)

    def _print_call(self, op: Op, e: sp.Basic) -> str:
        """``op.numpy_call(args)``; a binary ufunc (``np.maximum``) is folded over more
        arguments."""
        if not op.numpy_call:
            raise ValueError(f"no NumPy name for {op.name}")
        args = [self._print(a) for a in e.args]
        if len(args) > 2 and getattr(op.numpy, "nin", None) == 2:
            return reduce(lambda a, b: f"{op.numpy_call}({a}, {b})", args[1:], args[0])
        return f"{op.numpy_call}({', '.join(args)})"

    def _print_Pow(self, e: sp.Pow, rational: bool = False) -> str:
        """``x**(1/2)``, never a bare ``sqrt(x)`` (no such name in NumPy code)."""
        return str(super()._print_Pow(e, rational=True))

    def _print_Function(self, e: sp.Function) -> str:
        raise ValueError(f"no NumPy name for {type(e).__name__}")

    # -- generic matrices (operations print by their registry entries)
    def _print_OneMatrix(self, e: sp.OneMatrix) -> str:
        return f"np.ones({self.shape(e)})"

    def _print_ZeroMatrix(self, e: sp.ZeroMatrix) -> str:
        return f"np.zeros({self.shape(e)})"

    def _print_Identity(self, e: sp.Identity) -> str:
        return f"np.eye({self.dim(e.shape[0])})"

    def _print_MatrixElement(self, e: sp.Basic) -> str:
        return f"{self.wrap(e.parent)}[{self._print(e.i)}, {self._print(e.j)}]"


def numpy_code(expr: sp.Basic, sizes: Mapping[str, int] | None = None) -> str:
    """One NumPy expression computing ``expr`` (vectors as ``(n, 1)`` columns).

    ``sizes`` binds size names (``{"m": 3}``) for ``np.ones``/``np.broadcast_to``
    shapes; unbound ones are printed as names the caller must define.
    """
    return NumPyMatrixPrinter(sizes).doprint(expr)
