"""User-defined functions: ``def swish(z) = z*sigma(z)`` in a model, or
:func:`primitive` in Python.

A defined function is differentiated through its body, but derivations, reports and
code keep its name: d swish(z)/dz prints as ``swish'(z)``, a function of its own whose
defining line (``swish'(z) = σ(z) + z σ'(z)``) the reports show. A primitive may declare
its derivative instead (``phi'(z) = 2*z/(1 + z^2)``), as a ``torch.autograd.Function``
pairs forward and backward; ``check-grad`` then checks the declaration.

>>> import sympy as sp
>>> z = sp.Symbol("z", real=True)
>>> op = primitive("cube", z, z**3, registry=Registry())
>>> sp.diff(op.node(z), z), op.extra["derivative"][0].extra["body"]
(cube_prime(z), 3*z**2)
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from typing import Any

import sympy as sp

from .registry import Op, Registry
from .scalar import ScalarFunction, register_scalar

_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class UserFunction(ScalarFunction):
    """A function defined by a body expression (see the module docstring)."""

    def fdiff(self, argindex: int = 1):  # noqa: ANN201
        assert self.op is not None
        return self.op.partials[argindex - 1](*self.args)

    def _eval_evalf(self, prec: int):  # noqa: ANN202
        assert self.op is not None and self.op.expand is not None
        return self.op.expand(*self.args)._eval_evalf(prec)


def _substitute(body: sp.Expr, params: Sequence[sp.Symbol], args: Sequence[sp.Basic]) -> Any:
    return body.xreplace(dict(zip(params, args, strict=True)))


def _smooth(body: sp.Expr, registry: Registry) -> tuple[bool, bool]:
    ops = [registry.for_node(f) for f in body.atoms(sp.Function)]
    return all(op is None or op.smooth for op in ops), all(op is None or op.analytic for op in ops)


def _numpy_impl(params: tuple[sp.Symbol, ...], body: sp.Expr, registry: Registry) -> Any:
    """The body as a NumPy function (compiled on first use; the names in it are the
    grammar's checked identifiers and the registry's functions)."""
    compiled: list[Any] = []

    def impl(*args: Any) -> Any:
        if not compiled:
            compiled.append(
                sp.lambdify(
                    params, body, modules=[registry.numpy_namespace(), "numpy"], dummify=True
                )
            )
        return compiled[0](*args)

    return impl


def _function_op(
    name: str,
    params: tuple[sp.Symbol, ...],
    body: sp.Expr,
    partials: tuple[Any, ...],
    registry: Registry,
    in_language: bool,
    unicode: str,
    latex: str,
    doc: str,
    declared: bool = False,
) -> Op:
    node = type(name, (UserFunction,), {"nargs": len(params), "__module__": __name__})
    smooth, analytic = _smooth(body, registry)
    return Op(
        name,
        node,
        doc=doc,
        in_language=in_language,
        arity=(len(params),),
        partials=partials,
        expand=lambda *args: _substitute(body, params, args),
        smooth=smooth,
        analytic=analytic,
        numpy=_numpy_impl(params, body, registry),
        numpy_call=name,
        unicode=unicode,
        latex=latex,
        mathml=unicode,
        extra={"body": body, "params": params, "declared": declared},
    )


def _applier(d: Op) -> Any:
    return lambda *a: d.node(*a)


def primitive(
    name: str,
    params: sp.Symbol | Sequence[sp.Symbol],
    body: sp.Expr,
    derivative: sp.Expr | None = None,
    *,
    registry: Registry | None = None,
    unicode: str | None = None,
    latex: str | None = None,
) -> Op:
    """Define ``name(params) = body`` (and, for one argument, optionally its declared
    derivative) and register it; returns the entry. Names reach generated code, so
    they must be plain identifiers, new to the registry.
    """
    from . import REGISTRY

    registry = REGISTRY if registry is None else registry
    params = (params,) if isinstance(params, sp.Symbol) else tuple(params)
    if not _IDENT.match(name) or keyword.iskeyword(name) or name.startswith("np"):
        raise ValueError(f"{name!r} cannot name a function (letters, digits, _)")
    if name in registry or f"{name}_prime" in registry:
        raise ValueError(f"a function named {name!r} already exists")
    if derivative is not None and len(params) != 1:
        raise ValueError("a declared derivative needs a function of one argument")
    if len(set(params)) != len(params):
        raise ValueError(f"{name}: parameter names must differ")
    unicode = unicode or name
    latex = latex or rf"\operatorname{{{name}}}"
    derivs: list[Op] = []
    for p in params:
        d_body = sp.diff(body, p) if derivative is None else sp.sympify(derivative)
        suffix = "_prime" if len(params) == 1 else f"_prime_{p}"
        mark = "'" if len(params) == 1 else f"'_{p}"
        d_op = _function_op(
            f"{name}{suffix}",
            params,
            d_body,
            tuple(
                (lambda q: lambda *a, b=d_body, q=q: _substitute(sp.diff(b, q), params, a))(q)
                for q in params
            ),
            registry,
            in_language=False,
            unicode=unicode + mark,
            latex=latex + mark,
            doc=f"d{name}/d{p}, " + ("as declared" if derivative is not None else "from the body"),
            declared=derivative is not None,
        )
        derivs.append(register_scalar(registry, d_op))
    op = _function_op(
        name,
        params,
        body,
        tuple(_applier(d) for d in derivs),
        registry,
        in_language=True,
        unicode=unicode,
        latex=latex,
        doc=f"{name}({', '.join(map(str, params))}) = {body}",
    )
    op.extra["derivative"] = tuple(derivs)
    return register_scalar(registry, op)
