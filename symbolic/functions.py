"""Activation functions as SymPy functions that keep their lecture names.

The derivative of ``sigma(z)`` is ``sigma_prime(z)`` (printed ``σ'(z)``), not an
exponential soup; :func:`expand_derivatives` rewrites it to ``σ(z)(1 − σ(z))`` and
:func:`expand_fully` to exponentials when a user asks for it.

>>> from sympy import Symbol, diff
>>> z = Symbol("z", real=True)
>>> diff(sigma(z), z)
sigma_prime(z)

Non-smooth functions (``relu``, ``step``, ``abs``, ``max``) use the almost-everywhere
derivative that gradient descent uses: ``relu'(z) = step(z)`` with ``step(0) = 0`` and
``step'(z) = 0``. No ``DiracDelta`` or ``Heaviside`` ever appears in a derivation.
"""

from __future__ import annotations

import sympy as sp
from sympy import Function, S


class _Activation(Function):
    """Base class: real-valued, printed with its lecture symbol."""

    symbol: str = ""  # unicode symbol for reports, e.g. "σ"
    latex_name: str = ""

    is_real = True

    def _sympystr(self, printer) -> str:  # noqa: ANN001 - SymPy printer protocol
        args = ", ".join(printer._print(a) for a in self.args)
        return f"{self.func.__name__}({args})"

    def _latex(self, printer) -> str:  # noqa: ANN001
        args = ", ".join(printer._print(a) for a in self.args)
        return rf"{self.latex_name}\left({args}\right)"


class step(_Activation):
    """Hard threshold: 1 if z > 0 else 0. Its derivative is 0 almost everywhere."""

    nargs = 1
    symbol = "step"
    latex_name = r"\operatorname{step}"

    @classmethod
    def eval(cls, z):  # noqa: ANN001, ANN206
        if z.is_Number:
            return S.One if z > 0 else S.Zero
        return None

    def fdiff(self, argindex: int = 1):  # noqa: ANN201
        return S.Zero

    def _eval_rewrite_as_Piecewise(self, z, **kwargs):  # noqa: ANN001, ANN003, ANN202
        return sp.Piecewise((1, z > 0), (0, True))


class sigma_prime(_Activation):
    """σ'(z) = σ(z)(1 − σ(z)), kept by name in derivations."""

    nargs = 1
    symbol = "σ'"
    latex_name = r"\sigma'"

    @classmethod
    def eval(cls, z):  # noqa: ANN001, ANN206
        if z is S.Zero:  # a literal only: no assumption queries on big arguments
            return S.One / 4
        return None

    def fdiff(self, argindex: int = 1):  # noqa: ANN201
        z = self.args[0]
        return sigma_prime(z) * (1 - 2 * sigma(z))

    def _eval_rewrite_as_sigma(self, z, **kwargs):  # noqa: ANN001, ANN003, ANN202
        return sigma(z) * (1 - sigma(z))

    def _eval_rewrite_as_exp(self, z, **kwargs):  # noqa: ANN001, ANN003, ANN202
        return sp.exp(-z) / (1 + sp.exp(-z)) ** 2

    def _eval_evalf(self, prec: int):  # noqa: ANN202
        return self.rewrite(sp.exp)._eval_evalf(prec)


class sigma(_Activation):
    """Logistic sigmoid σ(z) = 1 / (1 + e^(−z))."""

    nargs = 1
    symbol = "σ"
    latex_name = r"\sigma"

    @classmethod
    def eval(cls, z):  # noqa: ANN001, ANN206
        if z is S.Zero:  # a literal only: no assumption queries on big arguments
            return S.Half
        return None

    def fdiff(self, argindex: int = 1):  # noqa: ANN201
        return sigma_prime(self.args[0])

    def _eval_rewrite_as_exp(self, z, **kwargs):  # noqa: ANN001, ANN003, ANN202
        return 1 / (1 + sp.exp(-z))

    def _eval_evalf(self, prec: int):  # noqa: ANN202
        return self.rewrite(sp.exp)._eval_evalf(prec)


class relu(_Activation):
    """Rectified linear unit max(0, z); relu'(z) = step(z)."""

    nargs = 1
    symbol = "ReLU"
    latex_name = r"\operatorname{ReLU}"

    @classmethod
    def eval(cls, z):  # noqa: ANN001, ANN206
        if z.is_Number:
            return z if z > 0 else S.Zero
        return None

    def fdiff(self, argindex: int = 1):  # noqa: ANN201
        return step(self.args[0])

    def _eval_rewrite_as_Max(self, z, **kwargs):  # noqa: ANN001, ANN003, ANN202
        return sp.Max(0, z)

    def _eval_rewrite_as_Piecewise(self, z, **kwargs):  # noqa: ANN001, ANN003, ANN202
        return sp.Piecewise((z, z > 0), (0, True))


class softplus(_Activation):
    """Soft ReLU log(1 + e^z); softplus'(z) = σ(z)."""

    nargs = 1
    symbol = "softplus"
    latex_name = r"\operatorname{softplus}"

    def fdiff(self, argindex: int = 1):  # noqa: ANN201
        return sigma(self.args[0])

    def _eval_rewrite_as_exp(self, z, **kwargs):  # noqa: ANN001, ANN003, ANN202
        return sp.log(1 + sp.exp(z))

    def _eval_evalf(self, prec: int):  # noqa: ANN202
        return self.rewrite(sp.exp)._eval_evalf(prec)


class leaky_relu_prime(_Activation):
    """∂ leaky_relu(z, a)/∂z: 1 if z > 0 else a."""

    nargs = 2
    symbol = "LeakyReLU'"
    latex_name = r"\operatorname{LeakyReLU}'"

    @classmethod
    def eval(cls, z, a):  # noqa: ANN001, ANN206
        if z.is_Number and a.is_Number:
            return S.One if z > 0 else a
        return None

    def fdiff(self, argindex: int = 1):  # noqa: ANN201
        z, a = self.args
        return S.Zero if argindex == 1 else 1 - step(z)

    def _eval_rewrite_as_Piecewise(self, z, a, **kwargs):  # noqa: ANN001, ANN003, ANN202
        return sp.Piecewise((1, z > 0), (a, True))


class elu_prime(_Activation):
    """∂ elu(z, a)/∂z: 1 if z > 0 else a e^z (computed without overflow)."""

    nargs = 2
    symbol = "ELU'"
    latex_name = r"\operatorname{ELU}'"

    @classmethod
    def eval(cls, z, a):  # noqa: ANN001, ANN206
        if z.is_Number and a.is_Number:
            return S.One if z > 0 else a * sp.exp(z)
        return None

    def fdiff(self, argindex: int = 1):  # noqa: ANN201
        z, a = self.args
        if argindex == 1:
            return (1 - step(z)) * a * sp.exp(-relu(-z))
        return (1 - step(z)) * sp.exp(-relu(-z))

    def _eval_rewrite_as_Piecewise(self, z, a, **kwargs):  # noqa: ANN001, ANN003, ANN202
        return sp.Piecewise((1, z > 0), (a * sp.exp(z), True))


class leaky_relu(_Activation):
    """leaky_relu(z, a) = z if z > 0 else a z."""

    nargs = 2
    symbol = "LeakyReLU"
    latex_name = r"\operatorname{LeakyReLU}"

    @classmethod
    def eval(cls, z, a):  # noqa: ANN001, ANN206
        if z.is_Number and a.is_Number:
            return z if z > 0 else a * z
        return None

    def fdiff(self, argindex: int = 1):  # noqa: ANN201
        z, a = self.args
        if argindex == 1:
            return leaky_relu_prime(z, a)
        return z - relu(z)

    def _eval_rewrite_as_Piecewise(self, z, a, **kwargs):  # noqa: ANN001, ANN003, ANN202
        return sp.Piecewise((z, z > 0), (a * z, True))


class elu(_Activation):
    """elu(z, a) = z if z > 0 else a (e^z − 1)."""

    nargs = 2
    symbol = "ELU"
    latex_name = r"\operatorname{ELU}"

    @classmethod
    def eval(cls, z, a):  # noqa: ANN001, ANN206
        if z.is_Number and a.is_Number:
            return z if z > 0 else a * (sp.exp(z) - 1)
        return None

    def fdiff(self, argindex: int = 1):  # noqa: ANN201
        z, a = self.args
        if argindex == 1:
            return elu_prime(z, a)
        return elu(z, 1) - relu(z)  # e^z − 1 below 0, else 0 (no overflow)

    def _eval_rewrite_as_Piecewise(self, z, a, **kwargs):  # noqa: ANN001, ANN003, ANN202
        return sp.Piecewise((z, z > 0), (a * (sp.exp(z) - 1), True))


def _max(*args: sp.Expr) -> sp.Expr:
    return sp.Max(*args)


def _min(*args: sp.Expr) -> sp.Expr:
    return sp.Min(*args)


#: Functions the text grammar knows, by the names users write.  Each value builds
#: the SymPy expression from its (already built) arguments; ``arity`` is checked by
#: the parser.
FUNCTIONS: dict[str, tuple[object, tuple[int, ...]]] = {
    "sigma": (sigma, (1,)),
    "sigmoid": (sigma, (1,)),
    "logistic": (sigma, (1,)),
    "tanh": (sp.tanh, (1,)),
    "relu": (relu, (1,)),
    "softplus": (softplus, (1,)),
    "step": (step, (1,)),
    "leaky_relu": (leaky_relu, (2,)),
    "elu": (elu, (2,)),
    "exp": (sp.exp, (1,)),
    "log": (sp.log, (1,)),
    "ln": (sp.log, (1,)),
    "sqrt": (sp.sqrt, (1,)),
    "abs": (sp.Abs, (1,)),
    "max": (_max, (2, 3, 4, 5, 6, 7, 8)),
    "min": (_min, (2, 3, 4, 5, 6, 7, 8)),
    "sin": (sp.sin, (1,)),
    "cos": (sp.cos, (1,)),
}

#: Default values for optional second arguments (``leaky_relu(z)`` means slope 0.01).
DEFAULT_SECOND_ARG = {"leaky_relu": sp.Rational(1, 100), "elu": S.One}


def expand_derivatives(expr: sp.Expr) -> sp.Expr:
    """Rewrite σ'(z) as σ(z)(1 − σ(z)).

    >>> from sympy import Symbol
    >>> z = Symbol("z")
    >>> expand_derivatives(sigma_prime(z))
    (1 - sigma(z))*sigma(z)
    """
    return expr.replace(sigma_prime, lambda z: sigma(z) * (1 - sigma(z)))


def expand_fully(expr: sp.Expr) -> sp.Expr:
    """Rewrite every activation in terms of exp/log/Max (the calculus-class form)."""
    expr = expand_derivatives(expr)
    expr = expr.replace(sigma, lambda z: 1 / (1 + sp.exp(-z)))
    expr = expr.replace(softplus, lambda z: sp.log(1 + sp.exp(z)))
    expr = expr.replace(relu, lambda z: sp.Max(0, z))
    return expr


#: Atoms whose derivative is defined only almost everywhere (complex step is wrong on
#: them; finite differences must avoid their kinks).
NON_SMOOTH = (
    step,
    leaky_relu_prime,
    elu_prime,
    relu,
    leaky_relu,
    elu,
    sp.Abs,
    sp.Max,
    sp.Min,
    sp.sign,
    sp.Heaviside,
    sp.Piecewise,
)
