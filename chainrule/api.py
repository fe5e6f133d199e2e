"""The Python API: load a model, derive it both ways, evaluate its gradient.

>>> import chainrule
>>> prog = chainrule.parse("param x1, x2, x3, x4\\nf = (x1 + x2)*x3 - x4\\nloss f")
>>> loss, grad = chainrule.gradient_at(prog, {"x1": 5, "x2": 4, "x3": 3, "x4": 2})
>>> float(loss), [float(grad[k]) for k in ("x1", "x2", "x3", "x4")]
(25.0, [3.0, 3.0, 9.0, -1.0])
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, overload

import sympy as sp

from .derive.backprop import backprop
from .derive.records import Derivation
from .pipeline import derive_model
from .symbolic import Program
from .symbolic.build import load_model, parse_program

if TYPE_CHECKING:
    from .reports.index_notation import IndexView

ModelLike: TypeAlias = Program | str | Path | sp.Basic


def parse(text: str, filename: str = "<input>") -> Program:
    """A program from ``.chain`` text."""
    return parse_program(text, filename)


def load(model: ModelLike) -> Program:
    """A program from a Program, a path, ``.chain`` text, an example name or a SymPy expr."""
    return load_model(model)


class ShownDerivation(Derivation):
    """A :class:`Derivation` that Jupyter displays typeset (via the reports)."""

    def _repr_html_(self) -> str:
        from .reports import render_derivation

        return render_derivation(self, "html", fragment=True)

    def _repr_markdown_(self) -> str:
        from .reports import render_derivation

        return render_derivation(self, "md", fragment=True)

    def _repr_latex_(self) -> str:
        from .reports.document import latex_math

        return latex_math(self)

    def __str__(self) -> str:
        from .reports import render_derivation

        return render_derivation(self, "text")


@overload
def derivation(
    model: ModelLike,
    method: str = ...,
    steps: bool = ...,
    naive_budget: float | None = ...,
    cse: bool = ...,
    agreement_check: bool = ...,
    notation: Literal["matrix"] = ...,
) -> ShownDerivation: ...


@overload
def derivation(
    model: ModelLike,
    method: str = ...,
    steps: bool = ...,
    naive_budget: float | None = ...,
    cse: bool = ...,
    agreement_check: bool = ...,
    *,
    notation: Literal["index"],
) -> IndexView: ...


def derivation(
    model: ModelLike,
    method: str = "both",
    steps: bool = True,
    naive_budget: float | None = 30.0,
    cse: bool = True,
    agreement_check: bool = True,
    notation: str = "matrix",
) -> ShownDerivation | IndexView:
    """Derive ``model`` naively and/or by backprop, with the op-count table (see
    :func:`chainrule.pipeline.derive_model`); Jupyter displays the result typeset.

    ``notation="index"`` (vector programs) gives the derivation in index notation at
    symbolic sizes instead (:class:`chainrule.reports.index_notation.IndexView`).
    """
    if notation == "index":
        from .reports.index_notation import index_view

        if method not in ("naive", "backprop", "both"):
            raise ValueError(f"method must be naive, backprop or both, not {method!r}")
        return index_view(load(model), method, budget=naive_budget or 10.0, check=agreement_check)
    if notation != "matrix":
        raise ValueError(f"notation must be matrix or index, not {notation!r}")
    d = derive_model(model, method, steps, naive_budget, cse, agreement_check)
    return ShownDerivation(d.program, d.backprop, d.naive, d.costs, d.agreement)


def gradient_at(model: ModelLike, point: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(loss, {param: gradient}) at a point of inputs, params and consts."""
    from .numeric.evaluate import gradient_at as _gradient_at

    program = load(model)
    return _gradient_at(backprop(program), point)
