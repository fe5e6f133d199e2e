"""The numeric question of an exercise: a point, the gradient there, and grading it.

Every student gets their own point: each parameter and input entry is a multiple of 0.1
in ±[0.1, 1.5], drawn from SHA-256 of (seed, student id, name, entry) — the same on any
machine, with no random-number generator involved. A target that softmax–cross-entropy
needs on the simplex is one-hot. Points where the gradient is not finite, or where a
node is within 1e-9 of zero (a kink of relu, step, abs…), or where a gradient entry is
below 1e-4 without being 0 (a saturated unit), are redrawn.

Answers follow a ``numeric:`` line of the answer file, one per parameter::

    numeric:
    dL/dw1 = 0.1234
    W1_bar = [[0.1, -0.2], [0.3, 0.4]]

Numbers are read by the model grammar (no ``eval``); a value is correct when every entry
satisfies |a − b| ≤ RTOL·(|a| + |b|) or |a − b| ≤ ATOL.

>>> close_enough(0.1234, 0.12344), close_enough(0.1234, 0.1244)
(True, False)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..derive.records import BackpropDerivation
from ..symbolic import grammar as g
from ..symbolic.errors import ChainruleError, ModelError, SourceSpan
from ..symbolic.program import Program
from .answers import (
    AnswerNames,
    _canonical_target,
    _content,
    _split_target,
    is_numeric_header,
    normalize_answer_text,
)
from .key import numeric_text

#: Tolerances of the numeric question (stated in every handout).
RTOL = 5e-4
ATOL = 1e-8
TOLERANCE_TEXT = (
    f"an entry is correct when |a − b| ≤ {RTOL:g}·(|a| + |b|), or |a − b| ≤ {ATOL:g} "
    "(a the key, b your number)"
)
_GRID = [k / 10 for k in range(-15, 16) if k != 0]
_POSITIVE_GRID = [k / 10 for k in range(1, 11)]
_TRIES = 40


# ------------------------------------------------------------------ the point
def _pick(grid: list[float], *key: object) -> int:
    digest = hashlib.sha256(":".join(str(k) for k in key).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % len(grid)


def _shape(program: Program, shape: tuple) -> tuple[int, ...]:
    if not shape:
        return ()
    from ..derive.vector import concrete_sizes

    sizes = concrete_sizes(program)
    return tuple(d if isinstance(d, int) else sizes[d] for d in shape)


def draw_point(program: Program, seed: int, student: str, attempt: int = 0) -> dict[str, Any]:
    """Values of every parameter and input (nested lists for vectors), deterministic."""
    simplex: set[str] = set()
    if program.is_vector:
        from ..derive.vector import simplex_inputs

        simplex = simplex_inputs(program)
    grid = _GRID if attempt < _TRIES // 2 else _POSITIVE_GRID
    point: dict[str, Any] = {}
    for v in program.variables:
        if v.role == "const":
            continue
        shape = _shape(program, v.shape)
        n = int(np.prod(shape)) if shape else 1
        if v.name in simplex:
            values = np.zeros(n)
            values[_pick(list(range(n)), seed, student, attempt, v.name)] = 1.0
        else:
            values = np.array(
                [grid[_pick(grid, seed, student, attempt, v.name, i)] for i in range(n)]
            )
        point[v.name] = values.reshape(shape).tolist() if shape else float(values[0])
    return point


def exercise_point(
    program: Program, derivation: BackpropDerivation, seed: int, student: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(point, gradient there) for ``student``: the first draw where every value is finite
    and no node sits on a kink."""
    for attempt in range(_TRIES):
        point = draw_point(program, seed, student, attempt)
        try:
            with np.errstate(all="ignore"):
                grads = _gradient(derivation, point)
        except (ArithmeticError, ValueError, ChainruleError):
            continue
        except Exception as exc:  # noqa: BLE001 - the evaluator cannot run this model at all
            raise ChainruleError(
                f"cannot evaluate the model numerically ({type(exc).__name__}: {exc})"
            ) from None
        if grads is not None and _well_posed(grads):
            return point, grads
    raise ChainruleError(
        f"no point with a finite gradient found for '{student}' (check the model's domain)"
    )


def _well_posed(grads: dict[str, Any]) -> bool:
    """No gradient entry so small (yet not exactly 0) that a hand computation cannot give
    it to 4 significant digits: a saturated unit makes a poor question."""
    entries = np.concatenate([np.ravel(g) for g in grads.values()]) if grads else np.zeros(0)
    return not np.any((entries != 0) & (np.abs(entries) < 1e-4))


def _gradient(derivation: BackpropDerivation, point: dict[str, Any]) -> dict[str, Any] | None:
    program = derivation.program
    if program.is_vector:
        from ..numeric.vector_eval import backward_values

        fwd, signals, _ = backward_values(derivation, point)
        values = list(fwd.values()) + list(signals.values())
    else:
        from ..numeric.evaluate import backward, forward

        env = forward(program, point)
        nodes = [env[a.symbol] for a in program.assignments]
        signals = backward(derivation, env)
        values = nodes + list(signals.values())
        fwd = {a.name: env[a.symbol] for a in program.assignments}
    if not all(np.all(np.isfinite(np.asarray(v, dtype=float))) for v in values):
        return None
    for a in program.assignments:  # a node on a kink: floating-point noise decides
        if a.name != program.loss and np.any(np.abs(np.asarray(fwd[a.name], dtype=float)) < 1e-9):
            return None
    return {
        p.name: np.asarray(signals.get(p.name, np.zeros(_shape(program, p.shape))), dtype=float)
        for p in program.params
    }


# ------------------------------------------------------------------ answers
@dataclass
class NumericResult:
    """One parameter's numeric answer, judged."""

    param: str  # "" for a line that names no parameter or cannot be read
    status: str  # correct | incorrect | missing | unparseable
    message: str
    line: int = 0
    expected: str = ""  # the key, 4 significant digits
    given: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def close_enough(expected: Any, given: Any) -> bool:
    a, b = np.asarray(expected, dtype=float), np.asarray(given, dtype=float)
    diff = np.abs(a - b)
    return bool(np.all((diff <= RTOL * (np.abs(a) + np.abs(b))) | (diff <= ATOL)))


def read_numbers(
    text: str, filename: str, program: Program, fmt: str = "text"
) -> dict[str, tuple[int, Any]]:
    """``{param: (line, value or ModelError)}`` from the lines after ``numeric:``."""
    lines = text.splitlines()
    start = next((i for i, raw in enumerate(lines) if is_numeric_header(_content(raw, fmt))), None)
    if start is None:
        return {}
    names = AnswerNames(program)
    params = {p.name for p in program.params}
    out: dict[str, tuple[int, Any]] = {}
    for i in range(start + 1, min(len(lines), start + 1 + 10_000)):
        raw = lines[i]
        code = _content(raw, fmt)
        if not code:
            continue
        span = SourceSpan(filename, i + 1, 1, raw[:1000])
        try:
            target, rhs, col = _split_target(code, raw, span)
            node = names.target_node(_canonical_target(target, fmt, names), span)
            if node not in params:
                raise ModelError(f"'{target}': the numeric question asks for parameters only", span)
            value: Any = _number_value(rhs, filename, i + 1, col, raw)
        except ModelError as exc:
            out[f"?{i + 1}"] = (i + 1, exc)
            continue
        out[node] = (i + 1, value)
    return out


def _number_value(rhs: str, filename: str, line: int, col: int, raw: str) -> Any:
    text = normalize_answer_text(rhs.strip())
    for latex, plain in _LATEX_NUMBER.items():
        text = text.replace(latex, plain)
    tree = g.parse_expression(" " * (col - 1) + text, filename, line)
    return _tree_value(tree, raw)


#: LaTeX in a number (``-6.7 \times 10^{-2}``) as the model grammar writes it; the
#: replacements keep the length, so columns still point into the line.
_LATEX_NUMBER = {
    "\\times": "     *",
    "\\cdot": "    *",
    "\\left": "     ",
    "\\right": "      ",
    "{": "(",
    "}": ")",
}


def _tree_value(tree: g.Expr, raw: str) -> Any:
    if isinstance(tree, g.Num):
        return float(tree.text)  # a literal the tokenizer accepted: digits, '.', exponent
    if isinstance(tree, g.Neg):
        inner = _tree_value(tree.operand, raw)
        if isinstance(inner, float):
            return -inner
    if isinstance(tree, g.ArrayLit):
        return [_tree_value(item, raw) for item in tree.items]
    if isinstance(tree, g.BinOp) and tree.op == "*" and _power_of_ten(tree.right) is not None:
        mantissa = _tree_value(tree.left, raw)
        if isinstance(mantissa, float):
            return mantissa * 10.0 ** _power_of_ten(tree.right)  # type: ignore[operator]
    span = SourceSpan(tree.span.file, tree.span.line, tree.span.column, raw)
    raise ModelError(
        "expected a number (0.1234, -1.234e-05) or a list of numbers ([[0.1, 0.2], [0.3, 0.4]])",
        span,
    )


def _power_of_ten(tree: g.Expr) -> int | None:
    """k for ``10^k`` (|k| ≤ 300), else None."""
    if not (isinstance(tree, g.BinOp) and tree.op == "^" and tree.left == g.Num(tree.span, "10")):
        return None
    exp, sign = tree.right, 1
    if isinstance(exp, g.Neg):
        exp, sign = exp.operand, -1
    if isinstance(exp, g.Num) and exp.text.isdigit() and int(exp.text) <= 300:
        return sign * int(exp.text)
    return None


def grade_numbers(
    text: str, filename: str, program: Program, expected: Mapping[str, Any], fmt: str = "text"
) -> list[NumericResult]:
    """Judge the numeric answers in ``text`` against ``expected`` (param → gradient)."""
    given = read_numbers(text, filename, program, fmt)
    out: list[NumericResult] = []
    for line, value in given.values():
        if isinstance(value, ModelError):  # a line not read: no parameter to name
            out.append(NumericResult("", "unparseable", value.message, line))
    for p in program.params:
        key_text = numeric_text(expected[p.name])
        if p.name not in given:
            out.append(NumericResult(p.name, "missing", "no numeric answer", 0, key_text))
            continue
        line, value = given[p.name]
        out.append(_judge(p.name, np.asarray(expected[p.name], dtype=float), value, line, key_text))
    return out


def _judge(name: str, want: np.ndarray, value: Any, line: int, key_text: str) -> NumericResult:
    try:
        got = np.asarray(value, dtype=float)
    except ValueError:
        return NumericResult(name, "unparseable", "rows of different lengths", line, key_text)
    given = numeric_text(got) if got.size else "[]"
    if got.shape != want.shape:
        vectors = (
            got.size == want.size
            and max(got.ndim, want.ndim) <= 2
            and (1 in got.shape or got.ndim <= 1)
            and (1 in want.shape or want.ndim <= 1)
        )
        if not vectors:
            msg = f"shape {got.shape} given, {want.shape} expected"
            return NumericResult(name, "incorrect", msg, line, key_text, given)
        got = got.reshape(want.shape)
    if close_enough(want, got):
        return NumericResult(name, "correct", "correct", line, key_text, given)
    return NumericResult(name, "incorrect", f"expected {key_text}", line, key_text, given)
