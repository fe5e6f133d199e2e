"""Scalar functions: σ, tanh, relu, softplus, step, leaky_relu, elu, exp, log, sqrt, abs,
max, min, sin, cos — one :class:`~chainrule.ops.registry.Op` entry each.

An entry holds the function's names, its local derivative in lecture form (d σ(z)/dz is
σ'(z), a function of its own, not an exponential soup), its calculus-class expansion, its
numerically stable NumPy form and the helper generated code copies, and its symbols.
Non-smooth functions use the derivative gradient descent uses: relu'(z) = step(z) with
step(0) = 0 and step'(z) = 0; no ``DiracDelta`` or ``Heaviside`` ever appears.

>>> from sympy import Symbol, diff
>>> z = Symbol("z", real=True)
>>> diff(sigma(z), z)
sigma_prime(z)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp
from sympy import S

from .layers import build_extremum
from .registry import Op, Registry


class ScalarFunction(sp.Function):
    """A real function that prints with its lecture symbol (from its registry entry)."""

    is_real = True
    op: Op | None = None  # set when the entry is registered

    def _sympystr(self, printer: Any) -> str:
        args = ", ".join(printer._print(a) for a in self.args)
        return f"{self.func.__name__}({args})"

    def _latex(self, printer: Any, exp: str | None = None) -> str:
        """``\\sigma\\left(z\\right)``; ``exp`` is the power LaTeX printers pass for f(z)²."""
        args = ", ".join(printer._print(a) for a in self.args)
        name = self.op.latex if self.op else rf"\operatorname{{{self.func.__name__}}}"
        out = rf"{name}\left({args}\right)"
        return f"{out}^{{{exp}}}" if exp else out

    def _lecture_unicode(self, printer: Any) -> str:
        name = self.op.unicode if self.op else self.func.__name__
        return f"{name}({', '.join(printer._print(a) for a in self.args)})"

    def _lecture_latex(self, printer: Any, exp: str | None = None) -> str:
        return self._latex(printer, exp)


def register_scalar(registry: Registry, op: Op) -> Op:
    """Register a scalar entry and let its node class find it (for printing)."""
    if isinstance(op.node, type) and issubclass(op.node, ScalarFunction):
        op.node.op = op
    return registry.register(op)


# ------------------------------------------------------------------ the classes
class step(ScalarFunction):
    """Hard threshold: 1 if z > 0 else 0. Its derivative is 0 almost everywhere."""

    nargs = 1

    @classmethod
    def eval(cls, z):  # noqa: ANN001, ANN206
        if z.is_Number:
            return S.One if z > 0 else S.Zero
        return None

    def fdiff(self, argindex: int = 1):  # noqa: ANN201
        return S.Zero

    def _eval_rewrite_as_Piecewise(self, z, **kwargs):  # noqa: ANN001, ANN003, ANN202
        return sp.Piecewise((1, z > 0), (0, True))


class sigma_prime(ScalarFunction):
    """σ'(z) = σ(z)(1 − σ(z)), kept by name in derivations."""

    nargs = 1

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


class sigma(ScalarFunction):
    """Logistic sigmoid σ(z) = 1 / (1 + e^(−z))."""

    nargs = 1

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


class relu(ScalarFunction):
    """Rectified linear unit max(0, z); relu'(z) = step(z)."""

    nargs = 1

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


class softplus(ScalarFunction):
    """Soft ReLU log(1 + e^z); softplus'(z) = σ(z)."""

    nargs = 1

    def fdiff(self, argindex: int = 1):  # noqa: ANN201
        return sigma(self.args[0])

    def _eval_rewrite_as_exp(self, z, **kwargs):  # noqa: ANN001, ANN003, ANN202
        return sp.log(1 + sp.exp(z))

    def _eval_evalf(self, prec: int):  # noqa: ANN202
        return self.rewrite(sp.exp)._eval_evalf(prec)


class leaky_relu_prime(ScalarFunction):
    """∂ leaky_relu(z, a)/∂z: 1 if z > 0 else a."""

    nargs = 2

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


class elu_prime(ScalarFunction):
    """∂ elu(z, a)/∂z: 1 if z > 0 else a e^z (computed without overflow)."""

    nargs = 2

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


class leaky_relu(ScalarFunction):
    """leaky_relu(z, a) = z if z > 0 else a z."""

    nargs = 2

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


class elu(ScalarFunction):
    """elu(z, a) = z if z > 0 else a (e^z − 1)."""

    nargs = 2

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


# ---------------------------------------------------------- NumPy implementations
def _np_sigma(z: Any) -> Any:
    """1/(1 + e^-z): for z far below 0, e^-z overflows to inf and 1/(1 + inf) is exactly
    the limit 0, so only the overflow warning is muted."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-np.asarray(z)))


def _np_sigma_prime(z: Any) -> Any:
    s = _np_sigma(z)
    return s * (1.0 - s)


def _np_step(z: Any) -> Any:
    """step(0) = 0 (the convention relu'(0) = 0)."""
    return (np.asarray(z) > 0).astype(
        np.result_type(z, np.float64) if not np.iscomplexobj(z) else np.float64
    )


def _np_leaky_relu(z: Any, a: Any) -> Any:
    return np.where(np.asarray(z) > 0, z, a * np.asarray(z))


def _np_elu(z: Any, a: Any) -> Any:
    z = np.asarray(z)
    return np.where(z > 0, z, a * np.expm1(np.minimum(z, 0.0)))


def _np_leaky_relu_prime(z: Any, a: Any) -> Any:
    return np.where(np.asarray(z) > 0, 1.0, a * np.ones_like(np.asarray(z, dtype=float)))


def _np_elu_prime(z: Any, a: Any) -> Any:
    """1 for z > 0, else a·e^z; e^z is taken of min(z, 0) only, so it never overflows."""
    z = np.asarray(z)
    return np.where(z > 0, 1.0, a * np.exp(np.minimum(z, 0.0)))


def _extremum_partial(args: tuple[sp.Basic, ...], i: int, is_max: bool) -> sp.Basic:
    """∂max(a, b, …)/∂aᵢ = 1 where aᵢ is the largest.

    Ties go to the last of the tied arguments (for two: ∂/∂a = step(a − b),
    ∂/∂b = 1 − step(a − b)), so the partials always sum to 1, as for max's value.
    """
    if len(args) == 2 and i == 1:
        first = step(args[0] - args[1]) if is_max else step(args[1] - args[0])
        return 1 - first
    others = args[:i] + args[i + 1 :]
    many = sp.Max if is_max else sp.Min  # unevaluated: comparing big arguments is slow
    rest = others[0] if len(others) == 1 else many(*others, evaluate=False)
    return step(args[i] - rest) if is_max else step(rest - args[i])


def _extremum(is_max: bool, n: int = 1024) -> tuple:
    """∂/∂aₖ of max (min) for k < n: the model language takes up to 8 arguments, but a
    unit form's max has one per entry of a pooling window or of ``max(v)``."""

    def rule(k: int) -> Callable[..., sp.Basic]:
        return lambda *a: _extremum_partial(a, k, is_max)

    return tuple(rule(k) for k in range(n))


_MANY = (2, 3, 4, 5, 6, 7, 8)


def _pairwise_kinks(*args: sp.Basic) -> list[sp.Basic]:
    """max/min change branch where two arguments are equal."""
    return [args[i] - args[j] for i in range(len(args)) for j in range(i + 1, len(args))]


def kinks(op: Op, args: tuple[sp.Basic, ...]) -> list[sp.Basic]:
    """Expressions whose sign change crosses a kink of a non-smooth function (the first
    argument of relu, step, abs, …; pairwise differences for max and min)."""
    if op.smooth:
        return []
    rule = op.extra.get("kinks")
    return list(rule(*args)) if rule else [args[0]]


# ------------------------------------------------------------------ the entries
# fmt: off
def scalar_entries() -> list[Op]:
    """The shipped scalar functions, one record each (read like a calculus table)."""
    return [
        Op("sigma", sigma, doc="logistic sigmoid 1/(1 + e^-z)",
           spellings=("sigmoid", "logistic"), answer_spellings=("σ", "sigm"),
           latex_commands=("sigma",),
           partials=(lambda z: sigma_prime(z),),
           expand=lambda z: 1 / (1 + sp.exp(-z)),
           log_form=lambda z: -softplus(-z),  # log σ(z), no log 0 for large |z|
           log_complement=lambda z: -softplus(z),  # log(1 − σ(z))
           extra={"cancel_in_reader": True,  # σ'(u) cancels against cross-entropy's 1/y
                  "output": True},  # its value is a prediction (ŷ)
           numpy=_np_sigma, numpy_call="sigma",
           numpy_source='''def sigma(z):
    """Logistic sigmoid 1/(1 + e^-z). For z far below 0, e^-z overflows to inf and
    1/(1 + inf) is exactly the limit 0, in every dtype: only NumPy's warning is muted."""
    xp = array_namespace(z)
    with np.errstate(over="ignore"):
        return 1 / (1 + xp.exp(-z))
''',
           numpy_source_analytic="""def sigma(z):
    xp = array_namespace(z)
    return 1 / (1 + xp.exp(-z))
""",
           unicode="σ", latex=r"\sigma", mathml="σ"),
        Op("sigma_prime", sigma_prime, doc="σ'(z) = σ(z)(1 − σ(z))", in_language=False,
           partials=(lambda z: sigma_prime(z) * (1 - 2 * sigma(z)),),
           expand=lambda z: sp.exp(-z) / (1 + sp.exp(-z)) ** 2,
           expand_derivative=lambda z: sigma(z) * (1 - sigma(z)),
           extra={"expand_mode": "sigma"},  # --expand sigma
           numpy=_np_sigma_prime, numpy_call="sigma_prime", needs=("sigma",),
           numpy_source='''def sigma_prime(z):
    """σ'(z) = σ(z)(1 - σ(z))."""
    s = sigma(z)
    return s * (1 - s)
''',
           unicode="σ'", latex=r"\sigma'", mathml="σ′"),
        Op("tanh", sp.tanh, doc="hyperbolic tangent",
           latex_commands=("tanh",),
           partials=(lambda z: 1 - sp.tanh(z) ** 2,),
           numpy=np.tanh, numpy_call="np.tanh", unicode="tanh", latex=r"\tanh", mathml="tanh"),
        Op("relu", relu, doc="rectified linear unit max(0, z)",
           answer_spellings=("ReLU",),
           partials=(lambda z: step(z),), smooth=False, analytic=False,
           expand=lambda z: sp.Max(0, z),
           numpy=lambda z: np.maximum(z, 0.0), numpy_call="relu",
           numpy_source="""def relu(z):
    xp = array_namespace(z)
    return xp.maximum(z, 0.0)
""",
           unicode="ReLU", latex=r"\operatorname{ReLU}", mathml="ReLU"),
        Op("step", step, doc="threshold: 1 if z > 0 else 0",
           answer_spellings=("H", "heaviside", "indicator"),
           partials=(lambda z: S.Zero,), smooth=False, analytic=False,  # almost everywhere
           numpy=_np_step, numpy_call="step",
           numpy_source='''def step(z):
    """Hard threshold; step(0) = 0, the convention relu'(0) = 0."""
    xp = array_namespace(z)
    return xp.astype(z > 0, z.dtype)
''',
           unicode="step", latex=r"\operatorname{step}", mathml="step"),
        Op("softplus", softplus, doc="soft ReLU log(1 + e^z)",
           partials=(lambda z: sigma(z),),
           expand=lambda z: sp.log(1 + sp.exp(z)),
           numpy=lambda z: np.logaddexp(0.0, z), numpy_call="softplus",
           numpy_source='''def softplus(z):
    """log(1 + e^z) = max(z, 0) + log(1 + e^-|z|): no overflow in any dtype."""
    xp = array_namespace(z)
    return xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))
''',
           numpy_source_analytic="""def softplus(z):
    xp = array_namespace(z)
    return xp.log(1 + xp.exp(z))
""",
           unicode="softplus", latex=r"\operatorname{softplus}", mathml="softplus"),
        Op("leaky_relu", leaky_relu, doc="z if z > 0 else a z (a = 0.01 by default)",
           arity=(2,), defaults=(sp.Rational(1, 100),),
           partials=(lambda z, a: leaky_relu_prime(z, a), lambda z, a: z - relu(z)),
           smooth=False, analytic=False,
           numpy=_np_leaky_relu, numpy_call="leaky_relu",
           numpy_source="""def leaky_relu(z, a):
    xp = array_namespace(z)
    return xp.where(z > 0, z, a * z)
""",
           unicode="LeakyReLU", latex=r"\operatorname{LeakyReLU}", mathml="LeakyReLU"),
        Op("elu", elu, doc="z if z > 0 else a (e^z − 1) (a = 1 by default)",
           arity=(2,), defaults=(S.One,),
           partials=(lambda z, a: elu_prime(z, a), lambda z, a: elu(z, 1) - relu(z)),
           smooth=False, analytic=False,
           numpy=_np_elu, numpy_call="elu",
           numpy_source="""def elu(z, a):
    xp = array_namespace(z)
    return xp.where(z > 0, z, a * xp.expm1(xp.minimum(z, 0.0)))
""",
           unicode="ELU", latex=r"\operatorname{ELU}", mathml="ELU"),
        Op("leaky_relu_prime", leaky_relu_prime, arity=(2,), in_language=False,
           partials=(lambda z, a: S.Zero, lambda z, a: 1 - step(z)),  # almost everywhere
           smooth=False, analytic=False,
           numpy=_np_leaky_relu_prime, numpy_call="leaky_relu_prime",
           numpy_source="""def leaky_relu_prime(z, a):
    xp = array_namespace(z)
    return xp.where(z > 0, 1.0, a * xp.ones_like(z))
""",
           unicode="LeakyReLU'", latex=r"\operatorname{LeakyReLU}'", mathml="LeakyReLU′"),
        Op("elu_prime", elu_prime, arity=(2,), in_language=False,
           partials=(lambda z, a: (1 - step(z)) * a * sp.exp(-relu(-z)),
                     lambda z, a: (1 - step(z)) * sp.exp(-relu(-z))),
           smooth=False, analytic=False,
           numpy=_np_elu_prime, numpy_call="elu_prime",
           numpy_source="""def elu_prime(z, a):
    xp = array_namespace(z)
    return xp.where(z > 0, 1.0, a * xp.exp(xp.minimum(z, 0.0)))
""",
           unicode="ELU'", latex=r"\operatorname{ELU}'", mathml="ELU′"),
        Op("exp", sp.exp, latex_commands=("exp",), partials=(lambda z: sp.exp(z),),
           numpy=np.exp, numpy_call="np.exp", unicode="exp", latex=r"\exp", mathml="exp"),
        Op("log", sp.log, spellings=("ln",), latex_commands=("log", "ln"),
           partials=(lambda z: 1 / z,),
           numpy=np.log, numpy_call="np.log", unicode="log", latex=r"\log", mathml="log"),
        Op("sqrt", sp.sqrt, latex_commands=("sqrt",),
           partials=(lambda z: 1 / (2 * sp.sqrt(z)),),
           numpy=np.sqrt, numpy_call="np.sqrt", unicode="√", latex=r"\sqrt", mathml="√",
           extra={"latex_group": True}),  # LaTeX writes its argument as a group: \sqrt{x}
        Op("abs", sp.Abs, partials=(lambda z: sp.sign(z),), smooth=False, analytic=False,
           numpy=np.abs, numpy_call="np.abs", unicode="|·|", latex=r"\left|\cdot\right|"),
        Op("sign", sp.sign, in_language=False, answer_spellings=("sgn",), latex_commands=("sgn",),
           partials=(lambda z: S.Zero,), smooth=False, analytic=False,  # almost everywhere
           numpy=np.sign, numpy_call="np.sign", unicode="sign", latex=r"\operatorname{sign}"),
        Op("max", sp.Max, arity=_MANY,
           extra={"kinks": _pairwise_kinks, "tensor_arity": (1, *_MANY)},
           build_tensor=build_extremum,  # max(a, b) of tensors (maxout), max(v): ops.layers
           answer_spellings=("maximum",),
           latex_commands=("max",), partials=_extremum(True),
           smooth=False, analytic=False, numpy=np.maximum, numpy_call="np.maximum",
           unicode="max", latex=r"\max", mathml="max"),
        Op("min", sp.Min, arity=_MANY,
           extra={"kinks": _pairwise_kinks, "tensor_arity": (1, *_MANY)},
           build_tensor=build_extremum,
           answer_spellings=("minimum",),
           latex_commands=("min",), partials=_extremum(False),
           smooth=False, analytic=False, numpy=np.minimum, numpy_call="np.minimum",
           unicode="min", latex=r"\min", mathml="min"),
        Op("sin", sp.sin, latex_commands=("sin",), partials=(lambda z: sp.cos(z),),
           numpy=np.sin, numpy_call="np.sin", unicode="sin", latex=r"\sin", mathml="sin"),
        Op("cos", sp.cos, latex_commands=("cos",), partials=(lambda z: -sp.sin(z),),
           numpy=np.cos, numpy_call="np.cos", unicode="cos", latex=r"\cos", mathml="cos"),
    ]
# fmt: on
