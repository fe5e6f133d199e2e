"""Checking matrix answers for vector programs (``W2bar = ybar @ h.T``).

:class:`VectorTruth` is the :class:`~chainrule.homework.check.Truth` of a vector
program: the matrix-form backprop (:func:`~chainrule.derive.vector.vector_backprop`)
evaluated with :mod:`chainrule.numeric.vector_eval` at seeded random points on small,
distinct sizes (m=3, n=2, k=4 … unless the model binds them, so that a transposed
matrix never has the right shape by accident). Values are stacks ``(points, rows,
cols)``; student lines are evaluated on those stacks by the tree walker of
:mod:`chainrule.homework.evaluate` (no generated code).

Shapes are checked before values: a line of the wrong shape (``W2bar = h @ ybar.T``)
is ``incorrect`` with both shapes in words; an expression whose own shapes do not fit
(``ybar @ h``) is ``incorrect`` with the located shape error (see
:class:`~chainrule.homework.answer_matrix.ShapeMismatch`).

>>> import chainrule
>>> from chainrule.homework.answers import parse_answer_text
>>> from chainrule.homework.check import Truth, check_answer
>>> p = chainrule.load("vector_mlp")
>>> truth = Truth(p)
>>> type(truth).__name__
'VectorTruth'
>>> text = "ybar = y - t\\nW2bar = h @ ybar.T\\nhbar = W2.T @ ybar\\nzbar = hbar"
>>> [(r.target, r.status) for r in check_answer(truth, parse_answer_text(text, "a", p)).lines]
[('y_bar', 'correct'), ('W2_bar', 'incorrect'), ('h_bar', 'correct'), ('z_bar', 'incorrect')]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import sympy as sp

from ..derive.records import BackpropStep
from ..derive.vector import concrete_sizes, size_symbols, vector_backprop
from ..numeric.vector_eval import backward_values, random_point
from ..ops import is_matrix, mat_add
from ..ops.algebra import canonical as _canon
from ..symbolic.errors import ChainruleError
from ..symbolic.program import Program, Shape
from .answer_matrix import MatrixAnswerBuilder, shape_words
from .check import (
    ATOL,
    N_POINTS,
    SEED,
    Truth,
    Variant,
    _expands_to_zero,
    _show,
    _Timeout,
    close,
    diagnose,
    fan_out_groups,
    sum_terms,
    time_limit,
)
from .evaluate import EvalError, evaluate


class VectorTruth(Truth):
    """The truth for a vector program: matrix signals at seeded points (see module doc)."""

    @staticmethod
    def reads(program: Program) -> bool:
        return bool(program.is_vector)

    def __init__(self, program: Program, n_points: int = N_POINTS, seed: int = SEED) -> None:
        self._start(program, vector_backprop(program, wrt_inputs=True), n_points, seed)
        self.sizes = concrete_sizes(program)
        self.size_env = size_symbols(self.sizes)
        self.points: list[dict[str, Any]] = []
        self.env = self._sample_points()
        self._variants: list[Variant] | None = None
        self._leaf_forms: dict[sp.Basic, sp.Basic] | None = None
        self._node_forms: dict[sp.Basic, sp.Basic] | None = None

    # -- points (truth values from numeric.vector_eval, one point at a time)
    def _sample_points(self) -> dict[sp.Basic, Any]:
        per_point: list[dict[sp.Basic, np.ndarray]] = []
        for j in range(self.n_points):
            point, values = self._finite_point(j)
            self.points.append(point)
            per_point.append(values)
        env: dict[sp.Basic, Any] = {
            sym: np.stack([v[sym] for v in per_point]) for sym in per_point[0]
        }
        env.update({s: float(n) for s, n in self.size_env.items()})
        return env

    def _finite_point(self, j: int) -> tuple[dict[str, Any], dict[sp.Basic, np.ndarray]]:
        for attempt in range(30):
            scale = 0.5 if attempt < 10 else 0.2
            point = random_point(
                self.program, seed=self.seed * 7919 + j * 101 + attempt, scale=scale
            )
            try:
                _, _, ev = backward_values(self.derivation, point)
            except (ChainruleError, FloatingPointError, ValueError):
                continue
            values = {
                sym: np.asarray(v, dtype=float).reshape(_rows_cols(sym, self.size_env))
                for sym, v in ev.values.items()
                if sym not in self.size_env
            }
            if all(np.all(np.isfinite(v)) for v in values.values()):
                return point, values
        raise ChainruleError(
            "could not find points where the model and its gradient are "
            "finite (check the model's domain)"
        )

    def point(self, j: int) -> dict[str, Any]:
        """The leaves (params and inputs) at point ``j``, by name, as nested lists."""
        out: dict[str, Any] = {}
        for v in self._leaves():
            value = self.points[j].get(v.name)
            if value is not None:
                out[v.name] = np.asarray(value, dtype=float).round(12).tolist()
        return out

    # -- evaluation on stacks
    def eval(
        self, expr: sp.Basic, env: dict[sp.Basic, Any], memo: dict[sp.Basic, Any] | None = None
    ) -> np.ndarray:
        rows, cols = self.concrete_shape(expr)
        value = np.asarray(evaluate(expr, env, memo), dtype=float)
        return np.broadcast_to(value, (self.n_points, rows, cols)).copy()

    def concrete_shape(self, expr: sp.Basic) -> tuple[int, int]:
        if not is_matrix(expr):
            return (1, 1)
        return _rows_cols_of(expr.shape, self.size_env)

    def answer_builder(self) -> MatrixAnswerBuilder:
        return MatrixAnswerBuilder(self.program, signals=self.signal_symbols, sizes=self.sizes)

    def show(self, value: Any) -> Any:
        """One point's value in the node's declared form: a number or nested lists."""
        arr = np.asarray(value, dtype=float)
        if arr.size == 1:
            v = float(arr.reshape(-1)[0])
            return v if np.isfinite(v) else str(v)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr.reshape(-1)  # a column vector as the model declares it, (n,)
        return [_cell(x) for x in arr.tolist()]

    def rel_error_at(self, expected: Any, student: Any) -> Any:
        """The largest entrywise relative error |a − b| / (|a| + |b|)."""
        a, b = np.asarray(expected, dtype=float), np.asarray(student, dtype=float)
        if a.shape != b.shape:
            return None
        with np.errstate(all="ignore"):
            d = np.abs(a - b)
            s = np.abs(a) + np.abs(b)
            rel = np.where(d == 0, 0.0, np.where(s > 0, d / np.where(s > 0, s, 1), np.inf))
        worst = float(np.max(rel))
        return worst if np.isfinite(worst) else str(worst)

    def points_close(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        k = self.n_points
        return np.asarray(np.asarray(close(a, b)).reshape(k, -1).all(axis=1), dtype=bool)

    # -- shapes
    def node_shape(self, node: str) -> Shape:
        return self.program[node].shape

    def shape_problem(self, node: str, expr: sp.Basic, written: str | None = None) -> str | None:
        want = self.concrete_shape(self.signal_symbols[node])
        got = self.concrete_shape(expr)
        if want == got:
            return None
        name = f"{_pretty(node)} ({self.target_name(node)})"
        want_text = shape_words(self.node_shape(node), self.sizes)
        got_text = "a scalar" if got == (1, 1) else shape_words(_text_shape(expr), self.sizes)
        if written:
            got_text = got_text if got == (1, 1) else f"a {got_text} matrix"
            msg = f"wrong shape: you wrote {written}, {got_text}; {name} is {want_text}"
        else:
            msg = f"wrong shape: {name} has shape {want_text} but your expression is {got_text}"
        if got == want[::-1]:
            factors = _product_factors(expr)
            msg += ": a missing transpose" + (
                f" (check the order of {' and '.join(factors)})" if len(factors) > 1 else ""
            )
        elif _sums(expr):
            msg += (
                ": a sum over the wrong axis? (sum(…) adds every entry; only the batch "
                "axis, the columns, is summed)"
                if got == (1, 1)
                else ": a sum over the wrong axis?"
            )
        elif got == (1, 1) and min(want) > 1:
            msg += ": an inner product uᵀv where an outer product u vᵀ belongs?"
        return msg

    # -- diagnoses
    def diagnose(self, node: str, student: np.ndarray, uses_signals: bool) -> str:
        expected = self.value(node)
        if (
            expected.shape[1] == expected.shape[2] > 1
            and np.any(np.abs(expected) > ATOL)
            and close(student, np.swapaxes(expected, 1, 2)).all()
        ):
            return "transposed: your matrix is the transpose of the correct one"
        return diagnose(self, node, student, uses_signals)

    def _step_variants(self, i: int, step: BackpropStep) -> Iterator[Variant]:
        node, contribs = step.node, step.contributions
        for child, rest_terms, left_out in fan_out_groups(contribs):
            message = self.fan_out_message(step, child, left_out)
            yield self._variant(i, sum_terms(rest_terms), message)
        for c in contribs:
            if isinstance(c.term, sp.HadamardProduct):
                for f in c.term.args:
                    if f.has(*self.signal_set):
                        continue
                    kept = [a for a in c.term.args if a is not f]
                    term = kept[0] if len(kept) == 1 else sp.HadamardProduct(*kept)
                    yield self._variant(
                        i,
                        mat_add(*[o.term for o in contribs if o is not c], term),
                        f"missing local derivative {_show(f)} in {node}_bar: the elementwise "
                        f"(Hadamard) factor ∘ {_unicode(f)} of d{c.child}/d{node} is left out",
                    )

    def _swapped_indices(self, i: int, step: BackpropStep) -> Iterator[Variant]:
        return iter(())  # transposes are caught by shape (and the square-matrix check)

    # -- symbolic
    def prove(
        self, student: sp.Basic, expected: sp.Basic, seconds: float | None, to_leaves: bool = True
    ) -> str:
        """'proved' when equal as matrix expressions, or entry by entry on the sizes used."""
        loss_signal = {self.signal_symbols[self.program.loss]: sp.S.One}
        forms: list[dict[sp.Basic, sp.Basic]] = [{}, self.node_forms()]
        if to_leaves:
            forms.append(self.leaf_forms())
        try:
            with time_limit(seconds):
                pairs = [
                    (
                        _canon(student.xreplace(form).xreplace(loss_signal)),
                        _canon(expected.xreplace(form).xreplace(loss_signal)),
                    )
                    for form in forms
                ]
                if any(a == b for a, b in pairs):  # cheap: the same matrix expression
                    return "proved"
                for a, b in pairs:  # entry by entry on the sizes in use
                    if self._entrywise_equal(a, b):
                        return "proved"
                return "not proved (numerically equal)"
        except _Timeout:
            return f"not proved within {seconds:g} s (numerically equal)"
        except (RecursionError, MemoryError, ValueError, TypeError, AttributeError, EvalError):
            return "not proved (numerically equal)"
        except NotImplementedError:
            return "not proved (numerically equal)"

    def _entrywise_equal(self, a: sp.Basic, b: sp.Basic) -> bool:
        sizes = {s: sp.Integer(n) for s, n in self.size_env.items()}
        a, b = a.xreplace(sizes), b.xreplace(sizes)
        if not (is_matrix(a) and is_matrix(b)) or a.shape != b.shape:
            return False
        ea, eb = sp.Matrix(a.as_explicit()), sp.Matrix(b.as_explicit())
        return all(_expands_to_zero((x - y).doit()) for x, y in zip(ea, eb, strict=True))


def _sums(expr: sp.Basic) -> bool:
    """Whether an expression sums entries (sum, mean, or a sum over rows or columns)."""
    from ..ops import REGISTRY

    return bool(expr.has(*[op.node for op in REGISTRY if op.extra.get("sums_entries")]))


def _cell(x: Any) -> Any:
    if isinstance(x, list):
        return [_cell(y) for y in x]
    return float(x) if np.isfinite(x) else str(x)


def _rows_cols_of(shape: tuple, size_env: dict[sp.Basic, int]) -> tuple[int, int]:
    rows, cols = (sp.sympify(sp.sympify(d).xreplace(size_env)) for d in shape)
    if not (rows.is_Integer and cols.is_Integer):
        raise ChainruleError(f"shape {shape} is not known")
    return int(rows), int(cols)


def _rows_cols(sym: sp.Basic, size_env: dict[sp.Basic, int]) -> tuple[int, int]:
    return _rows_cols_of(sym.shape, size_env) if is_matrix(sym) else (1, 1)


def _text_shape(expr: sp.Basic) -> Shape:
    """A matrix expression's shape in the model's words (``('m', 'k')``)."""
    rows, cols = expr.shape
    words = tuple(int(d) if sp.sympify(d).is_Integer else str(d) for d in (rows, cols))
    return words  # type: ignore[return-value]


def _product_factors(expr: sp.Basic) -> list[str]:
    """The matrix factors of a product as written (``['h', 'y_bar.T']``)."""
    if isinstance(expr, sp.MatMul):
        return [_unicode(a) for a in expr.args if is_matrix(a)]
    return []


def _unicode(expr: sp.Basic) -> str:
    """Lecture notation (ȳ hᵀ, σ'(z)) for messages."""
    from ..reports.notation import to_unicode

    try:
        return to_unicode(expr, vector=True)
    except Exception:  # noqa: BLE001 - a message must never fail
        return _show(expr)


def _pretty(node: str) -> str:
    from ..reports.notation import pretty_name

    try:
        return pretty_name(node, vector=True, bar=True)
    except Exception:  # noqa: BLE001
        return f"{node}_bar"
