"""Matrix-expression classes SymPy lacks (or gets wrong) for neural-network programs.

Vectors are columns ``(n, 1)``; reductions return scalars. Every class prints readably
(``str``), in LaTeX, and through the lecture-notation hooks ``_lecture_unicode`` /
``_lecture_latex`` that :mod:`chainrule.reports.notation` calls.

>>> import sympy as sp
>>> from chainrule.symbolic.functions import sigma
>>> z = sp.MatrixSymbol("z", 3, 1)
>>> h = elementwise(sigma, z)
>>> h, h.shape, MatSum(h)
(sigma(z), (3, 1), sum(sigma(z)))
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixExpr

#: The bound variable of every elementwise function (one fixed symbol, so two
#: ``Elementwise`` nodes built separately compare equal).
U = sp.Dummy("u", real=True)


class Verbatim(sp.Symbol):
    """A symbol that prints as its name in every printer (used to print φ(arg))."""

    def _sympystr(self, printer) -> str:  # noqa: ANN001
        return self.name

    def _latex(self, printer) -> str:  # noqa: ANN001
        return self.name

    def _lecture_unicode(self, printer) -> str:  # noqa: ANN001
        return self.name

    def _lecture_latex(self, printer) -> str:  # noqa: ANN001
        return self.name


def _print_body(fn: sp.Lambda, arg: sp.Basic, printer, wrap: bool = True) -> str:  # noqa: ANN001
    """φ(arg) printed with ``printer``: ``sigma(z)``, or ``(1 - tanh(z)**2)``."""
    body = fn.expr
    text = printer._print(arg)
    out = printer._print(body.xreplace({U: Verbatim(text)}))
    simple = isinstance(body, sp.Function) and body.args and body.args[0] == U
    return out if simple or not wrap else f"({out})"


class Elementwise(MatrixExpr):
    """φ applied to every entry: ``Elementwise(Lambda(u, sigma(u)), z)`` is σ(z).

    The function is a :class:`sympy.Lambda` of the fixed variable :data:`U`; its body
    may hold scalar constants (``leaky_relu(u, a)``).
    """

    def __new__(cls, fn: sp.Lambda, arg: sp.Basic) -> Elementwise:
        return MatrixExpr.__new__(cls, fn, arg)

    @property
    def fn(self) -> sp.Lambda:
        return self.args[0]

    @property
    def arg(self) -> sp.Basic:
        return self.args[1]

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return self.arg.shape

    def derivative_fn(self) -> sp.Lambda:
        """φ' as a Lambda, by the local rules table (σ → σ', relu → step, …)."""
        from ..derive.rules import partial  # derive depends on symbolic, not the reverse

        body = self.fn.expr
        if (
            isinstance(body, sp.Function)
            and body.args
            and body.args[0] == U
            and not any(a.has(U) for a in body.args[1:])
        ):
            return sp.Lambda(U, partial(body, 0))
        return sp.Lambda(U, sp.diff(body, U))

    def _entry(self, i, j, **kwargs):  # noqa: ANN001, ANN003, ANN202
        return self.fn(self.arg._entry(i, j, **kwargs))

    def _sympystr(self, printer) -> str:  # noqa: ANN001
        return _print_body(self.fn, self.arg, printer)

    def _latex(self, printer) -> str:  # noqa: ANN001
        return _print_body(self.fn, self.arg, printer)

    def _lecture_unicode(self, printer) -> str:  # noqa: ANN001
        return _print_body(self.fn, self.arg, printer)

    def _lecture_latex(self, printer) -> str:  # noqa: ANN001
        return _print_body(self.fn, self.arg, printer)


def elementwise(func: Callable[..., sp.Basic], arg: sp.Basic, *extra: sp.Basic) -> Elementwise:
    """``func`` applied entrywise, e.g. ``elementwise(sigma, z)``, ``elementwise(leaky_relu,
    z, a)`` (extra scalar arguments stay fixed)."""
    return Elementwise(sp.Lambda(U, func(U, *extra)), arg)


class _Reduction(sp.Expr):
    """A scalar computed from matrices (``sum``, ``mean``, ``dot``, ``norm2``)."""

    is_commutative = True
    is_real = True
    name = ""
    latex_name = ""

    def __new__(cls, *args: sp.Basic) -> _Reduction:
        return sp.Expr.__new__(cls, *args)

    def _args_text(self, printer) -> str:  # noqa: ANN001
        return ", ".join(printer._print(a) for a in self.args)

    def _sympystr(self, printer) -> str:  # noqa: ANN001
        return f"{self.name}({self._args_text(printer)})"

    def _latex(self, printer) -> str:  # noqa: ANN001
        return rf"\operatorname{{{self.name}}}\left({self._args_text(printer)}\right)"

    def _lecture_unicode(self, printer) -> str:  # noqa: ANN001
        return f"{self.name}({self._args_text(printer)})"

    def _lecture_latex(self, printer) -> str:  # noqa: ANN001
        return self._latex(printer)


class MatSum(_Reduction):
    """Σᵢⱼ Xᵢⱼ, the sum of all entries (``sum(v)``)."""

    name = "sum"


class Mean(_Reduction):
    """The mean of all entries (``mean(v)``)."""

    name = "mean"


class Dot(_Reduction):
    """⟨u, v⟩ = Σ uᵢ vᵢ (Frobenius inner product for matrices; ``dot(u, v)``)."""

    name = "dot"

    def _lecture_unicode(self, printer) -> str:  # noqa: ANN001
        u, v = (printer._print(a) for a in self.args)
        return f"{u}ᵀ{v}" if self.args[0].shape[1] == 1 else f"⟨{u}, {v}⟩"

    def _lecture_latex(self, printer) -> str:  # noqa: ANN001
        u, v = (printer._print(a) for a in self.args)
        return rf"{u}^\top {v}" if self.args[0].shape[1] == 1 else rf"\langle {u}, {v}\rangle"


class Norm2(_Reduction):
    """‖v‖², the squared Euclidean (Frobenius) norm (``norm2(v)``)."""

    name = "norm2"

    def _lecture_unicode(self, printer) -> str:  # noqa: ANN001
        return f"‖{self._args_text(printer)}‖²"

    def _lecture_latex(self, printer) -> str:  # noqa: ANN001
        return rf"\left\lVert {self._args_text(printer)} \right\rVert^2"


class _ColumnwiseOp(MatrixExpr):
    """An operation applied to each column (each example) of its argument."""

    name = ""

    def __new__(cls, arg: sp.Basic) -> _ColumnwiseOp:
        return MatrixExpr.__new__(cls, arg)

    @property
    def arg(self) -> sp.Basic:
        return self.args[0]

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return self.arg.shape

    def _sympystr(self, printer) -> str:  # noqa: ANN001
        return f"{self.name}({printer._print(self.arg)})"

    def _latex(self, printer) -> str:  # noqa: ANN001
        return rf"\operatorname{{{self.name}}}\left({printer._print(self.arg)}\right)"

    def _lecture_unicode(self, printer) -> str:  # noqa: ANN001
        return self._sympystr(printer)

    def _lecture_latex(self, printer) -> str:  # noqa: ANN001
        return self._latex(printer)


class Softmax(_ColumnwiseOp):
    """softmax(z)ᵢ = exp(zᵢ) / Σⱼ exp(zⱼ), per column."""

    name = "softmax"


class LogSoftmax(_ColumnwiseOp):
    """log_softmax(z)ᵢ = zᵢ − log Σⱼ exp(zⱼ), per column."""

    name = "log_softmax"


class SumCols(_ColumnwiseOp):
    """Row sums ``(m, B) → (m, 1)``: the gradient of a bias broadcast over columns."""

    name = "sum_cols"

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return (self.arg.shape[0], sp.S.One)

    def _lecture_unicode(self, printer) -> str:  # noqa: ANN001
        return f"{printer._print(self.arg)} 𝟙"

    def _lecture_latex(self, printer) -> str:  # noqa: ANN001
        return rf"{printer._print(self.arg)} \mathbf{{1}}"


class SumRows(_ColumnwiseOp):
    """Column sums ``(m, n) → (1, n)``: the gradient of a row broadcast over rows."""

    name = "sum_rows"

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return (sp.S.One, self.arg.shape[1])

    def _lecture_unicode(self, printer) -> str:  # noqa: ANN001
        return f"𝟙ᵀ{printer._print(self.arg)}"

    def _lecture_latex(self, printer) -> str:  # noqa: ANN001
        return rf"\mathbf{{1}}^\top {printer._print(self.arg)}"


class Diag(_ColumnwiseOp):
    """diag(v): the diagonal matrix of a vector (Jacobians of elementwise ops)."""

    name = "diag"

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return (self.arg.shape[0], self.arg.shape[0])


class Broadcast(MatrixExpr):
    """A scalar, column ``(m, 1)`` or row ``(1, n)`` repeated to ``(rows, cols)``.

    It prints as its argument (NumPy broadcasting); its VJP sums the cotangent back
    over the broadcast axes (``sum``, ``sum_cols``, ``sum_rows``).
    """

    def __new__(cls, arg: sp.Basic, rows: sp.Expr, cols: sp.Expr) -> Broadcast:
        return MatrixExpr.__new__(cls, sp.sympify(arg), sp.sympify(rows), sp.sympify(cols))

    @property
    def arg(self) -> sp.Basic:
        return self.args[0]

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return (self.args[1], self.args[2])

    def _entry(self, i, j, **kwargs):  # noqa: ANN001, ANN003, ANN202
        a = self.arg
        if not getattr(a, "is_Matrix", False):
            return a
        return a._entry(0 if a.shape[0] == 1 else i, 0 if a.shape[1] == 1 else j, **kwargs)

    def _sympystr(self, printer) -> str:  # noqa: ANN001
        return printer._print(self.arg)

    def _latex(self, printer) -> str:  # noqa: ANN001
        return printer._print(self.arg)

    def _lecture_unicode(self, printer) -> str:  # noqa: ANN001
        return printer._print(self.arg)

    def _lecture_latex(self, printer) -> str:  # noqa: ANN001
        return printer._print(self.arg)


def is_matrix(e: sp.Basic) -> bool:
    return bool(getattr(e, "is_Matrix", False))


# ------------------------------------------------------- order-keeping builders
# ``A*B`` and ``A + B`` on matrix expressions run a deep ``doit`` that reorders the
# factors of Hadamard products (h̄ ∘ σ'(z) would print as σ'(z) ∘ h̄); these keep the
# order as written and never distribute a number over a sum.
def mat_mul(*factors: sp.Basic) -> sp.Basic:
    """A·B·… flattened, scalar factors collected in front, matrix order kept."""
    coeff: sp.Basic = sp.S.One
    mats: list[sp.Basic] = []
    for f in factors:
        for a in f.args if isinstance(f, sp.MatMul) else (f,):
            if is_matrix(a):
                mats.append(a)
            else:
                coeff = coeff * a
    if not mats:
        return coeff
    if coeff == 1:
        return mats[0] if len(mats) == 1 else sp.MatMul(*mats)
    return sp.MatMul(coeff, *mats)


def mat_add(*terms: sp.Basic) -> sp.Basic:
    """A + B + … flattened, like terms collected (``c₁M + c₂M = (c₁ + c₂)M``), in
    SymPy's canonical order; nothing inside the terms is rewritten."""
    flat: list[sp.Basic] = []
    for t in terms:
        flat.extend(t.args if isinstance(t, sp.MatAdd) else (t,))
    coeffs: dict[sp.Basic, sp.Basic] = {}
    kept: list[sp.Basic] = []  # broadcast scalars and c·𝟙 stay as written
    for t in flat:
        if isinstance(t, sp.ZeroMatrix):
            continue
        c, body = split_scalar(t)
        if body is None:
            kept.append(t)
        else:
            coeffs[body] = coeffs.get(body, sp.S.Zero) + c
    out = [scale(c, body) for body, c in coeffs.items() if c != 0] + kept
    if not out:
        return sp.ZeroMatrix(*terms[0].shape)
    if len(out) == 1:
        return out[0]
    return sp.MatAdd(*sorted(out, key=sp.default_sort_key))


def scale_of_ones(g: sp.Basic) -> sp.Basic | None:
    """``c`` when ``g`` is ``c·𝟙`` (the cotangent of a sum), else None."""
    if isinstance(g, sp.OneMatrix):
        return sp.S.One
    if isinstance(g, sp.MatMul):
        mats = [a for a in g.args if is_matrix(a)]
        if len(mats) == 1 and isinstance(mats[0], sp.OneMatrix):
            return sp.Mul(*[a for a in g.args if not is_matrix(a)])
    if isinstance(g, Broadcast) and not is_matrix(g.arg):
        return g.arg
    return None


def split_scalar(m: sp.Basic) -> tuple[sp.Basic, sp.Basic | None]:
    """(c, M) with ``m = c·M`` and no scalar factor left in M (M is None for c·𝟙)."""
    ones = scale_of_ones(m)
    if ones is not None:
        return ones, None
    if isinstance(m, sp.MatMul):
        scalars = [a for a in m.args if not is_matrix(a)]
        mats = [a for a in m.args if is_matrix(a)]
        return sp.Mul(*scalars), mats[0] if len(mats) == 1 else sp.MatMul(*mats)
    return sp.S.One, m


def scale(c: sp.Basic, m: sp.Basic) -> sp.Basic:
    """c·M without distributing a number over a sum (``2*(y - t)``, not ``2*y - 2*t``)."""
    c0, body = split_scalar(m)
    c = c * c0
    if c == 0:
        return sp.ZeroMatrix(*m.shape)
    if body is None:
        return sp.MatMul(c, sp.OneMatrix(*m.shape)) if c != 1 else sp.OneMatrix(*m.shape)
    if c == 1:
        return body
    if isinstance(body, sp.MatMul):
        return sp.MatMul(c, *body.args)
    return sp.MatMul(c, body)


#: Classes of this module, for printers and evaluators that dispatch by type.
MATRIX_OPS = (
    Elementwise,
    MatSum,
    Mean,
    Dot,
    Norm2,
    Softmax,
    LogSoftmax,
    SumCols,
    SumRows,
    Diag,
    Broadcast,
)
