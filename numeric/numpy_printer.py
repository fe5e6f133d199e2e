"""NumPy code for matrix expressions: ``@``, ``.T``, ``*`` for Hadamard, ``np.tanh``.

A SymPy-style printer (one ``_print_<Class>`` method per node type). The code it
writes assumes the layout of :mod:`chainrule.numeric.vector_eval`: vectors are
``(n, 1)`` columns (so ``z_bar @ x.T`` is an outer product and biases broadcast over
a batch's columns), scalars are floats, and the names of
:data:`~chainrule.numeric.vector_eval.NUMPY_NAMESPACE` are in scope (``np``,
``sigma``, ``sigma_prime``, ``relu``, ``step``, ``softplus``, ``softmax``, …).
Size names (``m``, ``n``) are printed as names unless ``sizes`` binds them.

>>> import sympy as sp
>>> from chainrule.symbolic.functions import sigma_prime
>>> from chainrule.symbolic.matrix_ops import elementwise
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

import sympy as sp
from sympy.printing.str import StrPrinter

from ..symbolic.grammar import is_safe_identifier
from ..symbolic.matrix_ops import U, Verbatim, is_matrix

#: SymPy functions → NumPy names (the activation functions keep their own names).
NUMPY_NAMES = {
    "exp": "np.exp",
    "log": "np.log",
    "tanh": "np.tanh",
    "sin": "np.sin",
    "cos": "np.cos",
    "sqrt": "np.sqrt",
    "Abs": "np.abs",
    "sign": "np.sign",
    "Max": "np.maximum",
    "Min": "np.minimum",
    "sigma": "sigma",
    "sigma_prime": "sigma_prime",
    "relu": "relu",
    "step": "step",
    "softplus": "softplus",
    "leaky_relu": "leaky_relu",
    "elu": "elu",
    "leaky_relu_prime": "leaky_relu_prime",
    "elu_prime": "elu_prime",
}

#: Node types printed without parentheses when they are an operand.
_ATOMIC = (sp.Symbol, sp.MatrixSymbol, sp.Function, sp.Transpose)


class NumPyMatrixPrinter(StrPrinter):
    """Prints matrix and scalar expressions as NumPy code (see the module docstring)."""

    printmethod = "_numpycode"

    def __init__(self, sizes: Mapping[str, int] | None = None) -> None:
        super().__init__()
        self.sizes = dict(sizes or {})

    # -- helpers
    def wrap(self, e: sp.Basic) -> str:
        code = self._print(e)
        if isinstance(e, _ATOMIC) or (e.is_Number and e >= 0) or isinstance(e, Verbatim):
            return code
        if type(e).__name__ == "Elementwise" and isinstance(e.fn.expr, sp.Function):
            return code
        if type(e).__name__ in (
            "Softmax",
            "LogSoftmax",
            "MatSum",
            "Mean",
            "Dot",
            "Norm2",
            "SumCols",
            "SumRows",
            "Diag",
            "OneMatrix",
        ):
            return code
        return f"({code})"

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
    def _print_Function(self, e: sp.Function) -> str:
        name = NUMPY_NAMES.get(type(e).__name__)
        if name is None:
            raise ValueError(f"no NumPy name for {type(e).__name__}")
        args = [self._print(a) for a in e.args]
        if name in ("np.maximum", "np.minimum") and len(args) > 2:
            out = args[0]
            for a in args[1:]:
                out = f"{name}({out}, {a})"
            return out
        return f"{name}({', '.join(args)})"

    _print_Max = _print_Function
    _print_Min = _print_Function

    # -- matrix algebra
    def _print_MatMul(self, e: sp.MatMul) -> str:
        scalars = [a for a in e.args if not is_matrix(a)]
        mats = " @ ".join(self.wrap(a) for a in e.args if is_matrix(a))
        coeff = sp.Mul(*scalars)
        if coeff == 1:
            return mats
        if coeff == -1:
            return f"-{mats}"
        return f"{self.wrap(coeff)} * {mats}"

    def _print_MatAdd(self, e: sp.MatAdd) -> str:
        codes = [self._print(a) for a in e.args]
        codes = [c for c in codes if not c.startswith("-")] + [
            c for c in codes if c.startswith("-")
        ]
        out = codes[0]
        for code in codes[1:]:
            out += f" - {code[1:]}" if code.startswith("-") else f" + {code}"
        return out

    def _print_Transpose(self, e: sp.Transpose) -> str:
        return f"{self.wrap(e.arg)}.T"

    def _print_HadamardProduct(self, e: sp.HadamardProduct) -> str:
        return " * ".join(self.wrap(a) for a in e.args)

    def _print_HadamardPower(self, e: sp.HadamardPower) -> str:
        return f"{self.wrap(e.args[0])}**{self.wrap(e.args[1])}"

    def _print_Elementwise(self, e: sp.Basic) -> str:
        body = e.fn.expr.xreplace({U: Verbatim(self._print(e.arg))})
        return self._print(body)

    def _print_MatSum(self, e: sp.Basic) -> str:
        return f"np.sum({self._print(e.args[0])})"

    def _print_Mean(self, e: sp.Basic) -> str:
        return f"np.mean({self._print(e.args[0])})"

    def _print_Dot(self, e: sp.Basic) -> str:
        return f"np.sum({self.wrap(e.args[0])} * {self.wrap(e.args[1])})"

    def _print_Norm2(self, e: sp.Basic) -> str:
        return f"np.sum({self.wrap(e.args[0])}**2)"

    def _print_Softmax(self, e: sp.Basic) -> str:
        return f"softmax({self._print(e.arg)})"

    def _print_LogSoftmax(self, e: sp.Basic) -> str:
        return f"log_softmax({self._print(e.arg)})"

    def _print_SumCols(self, e: sp.Basic) -> str:
        return f"np.sum({self._print(e.arg)}, axis=1, keepdims=True)"

    def _print_SumRows(self, e: sp.Basic) -> str:
        return f"np.sum({self._print(e.arg)}, axis=0, keepdims=True)"

    def _print_Diag(self, e: sp.Basic) -> str:
        return f"np.diagflat({self._print(e.arg)})"

    def _print_Broadcast(self, e: sp.Basic) -> str:
        return f"np.broadcast_to({self._print(e.arg)}, {self.shape(e)})"

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
