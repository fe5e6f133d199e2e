"""Check a student's gradients and backward pass line by line.

Each answer line ``v̄ = expression`` is compared with backprop's v̄ for the model:

* **numerically** at several seeded random points (float64), with the lectures'
  relative error ``|a − b| / (|a| + |b|)`` ≤ ``RTOL``;
* **symbolically**: the difference is expanded (σ' rewritten as σ(1 − σ)), then, if
  needed, simplified in exponential form, under a time bound (``symbolic_seconds``).

A line that uses earlier error signals is evaluated twice: given the *true* signals and
given the student's *own* earlier lines. A wrong line is reported once, where the error
starts; a later line that is right given the student's own (wrong) earlier values is
marked correct and says which line the error came from.

Wrong lines get a diagnosis when they match a known mistake: a sign error, a factor of 2
(the ½ of the loss), a missing local derivative (e.g. no σ'(z)), a fan-out contribution
left out (the missing child is named); and always a counterexample point.

>>> from chainrule.symbolic import parse_program
>>> from chainrule.homework.answers import parse_answer_text
>>> prog = parse_program("param w, b\\ninput x, t\\nz = w*x + b\\ny = sigma(z)\\n"
...                      "L = (y - t)^2/2\\nloss L")
>>> truth = Truth(prog)
>>> res = check_answer(truth, parse_answer_text("ybar = y - t\\nzbar = ybar", "a", prog))
>>> [(r.status, r.message[:34]) for r in res.lines]
[('correct', 'correct'), ('incorrect', "missing local derivative sigma'(z)")]
"""

from __future__ import annotations

import math
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from ..derive.backprop import backprop
from ..derive.records import BackpropStep
from ..ops import REGISTRY, U, Verbatim
from ..reports.notation import to_unicode
from ..symbolic import expand_derivatives, expand_fully
from ..symbolic.errors import ChainruleError, ModelError
from ..symbolic.program import Program
from .answer_matrix import MatrixAnswerBuilder, ShapeMismatch
from .answers import Answer, AnswerBuilder, AnswerLine
from .evaluate import EvalError, evaluate
from .notation import rename, tree_names

RTOL = 1e-6  #: the lectures' "relative error should be very small, e.g. 1e-6"
ATOL = 1e-12  #: values this close are equal even when both are ~0
N_POINTS = 5
SEED = 0
SYMBOLIC_SECONDS = 2.0


# ------------------------------------------------------------------ records
@dataclass
class LineResult:
    """The verdict on one answer line."""

    line: int
    target: str
    status: str  # correct | incorrect | unparseable | timeout
    message: str
    counterexample: dict[str, Any] | None = None
    column: int | None = None
    symbolic: str = "skipped"  # proved | not proved … | skipped
    carried_from: list[int] = field(default_factory=list)
    source: str = ""  # the line as the student wrote it (for feedback pages)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CheckResult:
    """All lines of one answer, the overall verdict and a score in [0, 1]."""

    answer: str
    verdict: str  # correct | incorrect | error
    lines: list[LineResult]
    missing: list[str] = field(default_factory=list)  # parameters with no line
    error: str | None = None

    @property
    def score(self) -> float:
        """Correct lines / (answered lines + parameters left out)."""
        total = len(self.lines) + len(self.missing)
        ok = sum(1 for r in self.lines if r.status == "correct")
        return round(ok / total, 4) if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "verdict": self.verdict,
            "score": self.score,
            "error": self.error,
            "missing": self.missing,
            "lines": [r.to_dict() for r in self.lines],
        }


def verdict_of(lines: list[LineResult], error: str | None) -> str:
    if error is not None:
        return "error"
    if lines and all(r.status == "correct" for r in lines):
        return "correct"
    return "incorrect"


@dataclass
class Variant:
    """A common mistake made at one backprop step, and the signal values it leads to."""

    node: str
    message: str
    values: dict[str, np.ndarray]


# ------------------------------------------------------------------ the truth
class Truth:
    """A model's backprop derivation, evaluated once at seeded random points.

    Build it once per model and reuse it for every submission (grading forks workers
    after building it, so they share it). A vector program gets a
    :class:`~chainrule.homework.check_vector.VectorTruth` (matrix answers): ``Truth(p)``
    is the subclass that :meth:`reads` ``p`` (the package imports them all).
    """

    def __new__(cls, program: Program, *args: Any, **kwargs: Any) -> Truth:
        if cls is Truth:
            cls = next((sub for sub in cls.__subclasses__() if sub.reads(program)), cls)
        return object.__new__(cls)

    @staticmethod
    def reads(program: Program) -> bool:
        """True when this kind of truth checks ``program``: scalar (unit-form) programs."""
        return not program.is_vector

    def _start(self, program: Program, derivation: Any, n_points: int, seed: int) -> None:
        """What every truth keeps: the derivation, its steps in order, its signals."""
        self.program = program
        self.derivation = derivation
        self.steps: dict[str, BackpropStep] = {s.node: s for s in derivation.steps}
        self.order = [s.node for s in derivation.steps]
        self.signal_symbols = {s.node: s.signal for s in derivation.steps}
        self.signal_set = set(self.signal_symbols.values())
        self.n_points = n_points
        self.seed = seed

    def __init__(self, program: Program, n_points: int = N_POINTS, seed: int = SEED) -> None:
        self._start(program, backprop(program, wrt_inputs=True), n_points, seed)
        self.env = self._sample(np.random.default_rng(seed))
        self._variants: list[Variant] | None = None
        self._leaf_forms: dict[sp.Basic, sp.Basic] | None = None
        self._node_forms: dict[sp.Basic, sp.Basic] | None = None

    # -- points
    def _leaves(self) -> list:
        return [v for v in self.program.variables if v.role in ("param", "input")]

    def _sample(self, rng: np.random.Generator) -> dict[sp.Basic, Any]:
        k = self.n_points
        values = {v.symbol: _draw(rng, k, wide=True) for v in self._leaves()}
        for attempt in range(30):
            env = self._evaluate_all(values)
            bad = ~np.all([np.isfinite(np.broadcast_to(a, (k,))) for a in env.values()], axis=0)
            if not bad.any():
                return env
            for v in self._leaves():  # redraw bad points, closer to (0, 1] as tries go on
                values[v.symbol] = np.where(bad, _draw(rng, k, wide=attempt < 10), values[v.symbol])
        raise ChainruleError(
            "could not find points where the model and its gradient are "
            "finite (check the model's domain)"
        )

    def _evaluate_all(self, leaves: dict[sp.Basic, Any]) -> dict[sp.Basic, Any]:
        env: dict[sp.Basic, Any] = dict(leaves)
        for c in self.program.consts:
            env[c.symbol] = np.full(self.n_points, float(c.value))  # type: ignore[arg-type]
        memo: dict[sp.Basic, Any] = {}
        for a in self.program.assignments:
            env[a.symbol] = _full(evaluate(a.expr, env, memo), self.n_points)
        for s in self.derivation.steps:
            env[s.signal] = _full(evaluate(s.expression, env, memo), self.n_points)
        return env

    def value(self, node: str) -> np.ndarray:
        return self.env[self.signal_symbols[node]]

    # -- what the checker asks (vector programs answer differently)
    def eval(
        self, expr: sp.Basic, env: dict[sp.Basic, Any], memo: dict[sp.Basic, Any] | None = None
    ) -> np.ndarray:
        """``expr`` at every point: an array with the points along axis 0."""
        return _full(evaluate(expr, env, memo), self.n_points)

    def answer_builder(self) -> AnswerBuilder | MatrixAnswerBuilder:
        return AnswerBuilder(self.program, signals=self.signal_symbols)

    def shape_problem(self, node: str, expr: sp.Basic, written: str | None = None) -> str | None:
        """Words when ``expr`` cannot be ``node``'s signal by its shape (None: fine)."""
        return None

    def points_close(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Per point: every entry of ``a`` close to ``b``."""
        return close(a, b)

    def show(self, value: Any) -> Any:
        """One point's value for a report (a number, or nested lists)."""
        return _num(value)

    def rel_error_at(self, expected: Any, student: Any) -> Any:
        return _num(rel_error(float(expected), float(student)))

    def diagnose(self, node: str, student: np.ndarray, uses_signals: bool) -> str:
        return diagnose(self, node, student, uses_signals)

    def prove(
        self, student: sp.Basic, expected: sp.Basic, seconds: float | None, to_leaves: bool = True
    ) -> str:
        return symbolic_check(self, student, expected, seconds, to_leaves)

    def point(self, j: int) -> dict[str, float]:
        """The leaves (params and inputs) at point ``j``, by name."""
        return {v.name: float(self.env[v.symbol][j]) for v in self._leaves()}

    def pretty(self, node: str) -> str:
        """v̄ in lecture notation (W̄⁽²⁾)."""
        from ..reports.notation import pretty_name

        try:
            return pretty_name(node, vector=self.program.is_vector, bar=True)
        except Exception:  # noqa: BLE001 - a message must never fail
            return f"{node}_bar"

    def pretty_written(self, name: str) -> str:
        """A written answer name in lecture notation (``W1`` → W⁽¹⁾, ``z1_bar`` → z̄⁽¹⁾)."""
        from ..reports.notation import pretty_name

        bar = name.endswith("_bar")
        base = name.removesuffix("_bar")
        try:
            return pretty_name(base, vector=self.program.is_vector, bar=bar)
        except Exception:  # noqa: BLE001
            return name

    def for_answer(self, answer: Answer) -> Truth:
        """This truth, or one for the model with the answer's named inline values as nodes
        of their own (cached per set of names)."""
        if not answer.intermediates:
            return self
        from .intermediates import extend_program

        key = tuple(sorted((k, sp.srepr(v)) for k, v in answer.intermediates.items()))
        cache: dict[tuple, Truth] = self.__dict__.setdefault("_extended", {})
        if key not in cache:
            program = extend_program(self.program, answer.intermediates)
            cache[key] = type(self)(program, self.n_points, self.seed)
        return cache[key]

    def target_name(self, node: str) -> str:
        if node not in self.program:
            return f"{node}_bar"
        item = self.program[node]
        return f"{getattr(item, 'display', node) or node}_bar"

    # -- common mistakes (computed once, before grading forks)
    def prepare(self) -> Truth:
        """Compute the lazy parts now (before grading forks its workers)."""
        self.variants()
        self.leaf_forms()
        warm_up(self)
        return self

    def variants(self) -> list[Variant]:
        if self._variants is None:
            steps = list(enumerate(self.derivation.steps))
            self._variants = [v for i, s in steps for v in self._step_variants(i, s)]
            self._variants += [v for i, s in steps for v in self._swapped_indices(i, s)]
            self._variants += [v for i, s in steps for v in self._activation_swaps(i, s)]
        return self._variants

    def _step_variants(self, i: int, step: BackpropStep) -> Iterator[Variant]:
        node, contribs = step.node, step.contributions
        for child, rest_terms, left_out in fan_out_groups(contribs):
            message = self.fan_out_message(step, child, left_out)
            yield self._variant(i, sp.Add(*rest_terms), message)
        for c in contribs:
            if c.local_derivative != 1:
                missing = _show(c.local_derivative)
                term = step.expression - c.term + c.term / c.local_derivative
                yield self._variant(
                    i,
                    term,
                    f"missing local derivative {missing} (d{c.child}/d{node}) in {node}_bar",
                )
                factors = [f for f in sp.Mul.make_args(c.local_derivative) if not f.is_Number]
                if len(factors) > 1:
                    for f in factors:
                        yield self._variant(
                            i,
                            step.expression - c.term + c.term / f,
                            f"missing factor {_show(f)} of the local derivative "
                            f"d{c.child}/d{node} = {missing} in {node}_bar",
                        )

    def _activation_swaps(self, i: int, step: BackpropStep) -> Iterator[Variant]:
        """f(z) where f'(z) belongs (σ for σ', tanh for 1 − tanh², ReLU for step): each
        one-argument function's derivative, from its registry entry, replaced by f."""
        expr = step.expression
        seen: set[sp.Basic] = set()
        for op in REGISTRY:
            if op.kind != "scalar" or op.arity != (1,) or not op.partials:
                continue
            derivative = op.partial((U,), 0)
            new = expr
            if isinstance(derivative, sp.Function) and derivative.args == (U,):
                if expr.has(derivative.func):  # σ'(z) → σ(z)
                    new = expr.replace(derivative.func, op.node)
                detail = ""
            else:  # 1 − tanh(z)² → tanh(z)
                subs = {}
                for f in expr.atoms(op.node):
                    d = derivative.xreplace({U: f.args[0]})
                    if d.free_symbols and expr.has(d):
                        subs[d] = f
                new = expr.xreplace(subs) if subs else expr
                shown = to_unicode(derivative.xreplace({U: Verbatim("")})).replace("()", "")
                detail = f" = {shown}"
            if new != expr and new not in seen:
                seen.add(new)
                yield self._variant(
                    i,
                    new,
                    f"{op.unicode} where {op.unicode}'{detail} belongs: {step.node}_bar "
                    "multiplies by the activation itself instead of its derivative",
                )

    def fan_out_message(self, step: BackpropStep, child: str, left_out: list[sp.Basic]) -> str:
        """Words for a left-out fan-out term, naming it (a regularizer's term by name)."""
        node = step.node
        children = list(dict.fromkeys(c.child for c in step.contributions))
        others = ", ".join(c for c in children if c != child)
        shown = self.show_term(sum_terms(left_out))
        paths = sum(1 for c in step.contributions if c.child == child)
        if paths > len(left_out):
            return (
                f"fan-out contribution left out: {node} reaches {child} along {paths} paths, "
                f"but the term {shown} of one of them is missing"
            )
        if self.is_regularizer(child):
            return (
                f"fan-out contribution left out: {node} also feeds the regularizer {child}; "
                f"the regularization term {shown} (through {child}) is missing "
                f"(only {others} counted)"
            )
        return (
            f"fan-out contribution left out: {node} feeds {', '.join(children)}, but the "
            f"term through {child} ({shown}) is missing (only {others} counted)"
        )

    def is_regularizer(self, node: str) -> bool:
        """A node computed from parameters only (no data): a penalty such as ‖W‖²/2."""
        item = self.program[node]
        expr = self.node_forms().get(item.symbol, getattr(item, "expr", None))
        inputs = [v.symbol for v in self.program.inputs]
        return expr is not None and not expr.has(*inputs) if inputs else False

    def show_term(self, term: sp.Basic) -> str:
        """A backprop term in lecture notation, signals of constants' paths resolved
        (R̄ W⁽¹⁾ with R̄ = λ shows as λ W⁽¹⁾)."""
        loss = self.signal_symbols.get(self.program.loss)
        forms = {
            s.signal: s.expression
            for s in self.derivation.steps
            if not (
                s.expression.free_symbols
                - self.signal_set
                - {c.symbol for c in self.program.consts}
            )
        }
        try:
            value = term
            for _ in range(len(forms) + 1):
                nxt = value.xreplace(forms)
                if nxt == value:
                    break
                value = nxt
            if loss is not None:
                value = value.xreplace({loss: sp.S.One})
            return _lecture(value, self.program.is_vector)
        except Exception:  # noqa: BLE001 - a message must never fail
            return _show(term)

    def _swapped_indices(self, i: int, step: BackpropStep) -> Iterator[Variant]:
        """Unit-form weights indexed the wrong way round (``v12`` for ``v21``): the
        scalar face of a missing transpose."""
        swap = {}
        for sym in step.expression.free_symbols:
            m = re.match(r"^(.*?)(\d)(\d)$", str(sym))
            other = f"{m.group(1)}{m.group(3)}{m.group(2)}" if m else ""
            if m and m.group(2) != m.group(3) and other in self.program:
                swap[sym] = self.program.symbol(other)
        if swap:
            pairs = ", ".join(
                f"{b} where {a} belongs"
                for a, b in sorted(((str(a), str(b)) for a, b in swap.items()))
            )
            yield self._variant(
                i,
                step.expression.xreplace(swap),
                f"weights indexed the wrong way round ({pairs}): the unit-"
                "form version of a missing transpose",
            )

    def _variant(self, i: int, expression: sp.Basic, message: str) -> Variant:
        env = dict(self.env)
        steps = self.derivation.steps
        env[steps[i].signal] = self.eval(expression, env)
        memo: dict[sp.Basic, Any] = {}
        for s in steps[i + 1 :]:
            env[s.signal] = self.eval(s.expression, env, memo)
        values = {s.node: env[s.signal] for s in steps[i:]}
        return Variant(steps[i].node, message, values)

    # -- symbolic forms
    def node_forms(self) -> dict[sp.Basic, sp.Basic]:
        """Node symbols → their values in terms of the leaves."""
        if self._node_forms is None:
            nodes: dict[sp.Basic, sp.Basic] = {}
            for a in self.program.assignments:
                nodes[a.symbol] = a.expr.xreplace(nodes)
            self._node_forms = nodes
        return self._node_forms

    def leaf_forms(self) -> dict[sp.Basic, sp.Basic]:
        """Signal and node symbols → their values in terms of the leaves."""
        if self._leaf_forms is None:
            forms = dict(self.node_forms())
            for s in self.derivation.steps:
                forms[s.signal] = s.expression.xreplace(forms)
            self._leaf_forms = forms
        return self._leaf_forms


def _draw(rng: np.random.Generator, k: int, wide: bool) -> np.ndarray:
    """Values away from 0 (kinks) and of moderate size; ``wide=False`` stays in (0.1, 1]."""
    mag = rng.uniform(0.1, 1.5 if wide else 1.0, size=k)
    sign = np.where(rng.random(k) < 0.5, -1.0, 1.0) if wide else 1.0
    return mag * sign


def _full(v: Any, k: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(v, dtype=float), (k,)).copy()


def _show(expr: sp.Basic) -> str:
    return str(expr).replace("sigma_prime(", "sigma'(").replace("**", "^")


def _lecture(expr: sp.Basic, vector: bool) -> str:
    """Lecture notation (ȳ hᵀ, σ'(z), λ W⁽¹⁾) for messages."""
    from ..reports.notation import to_unicode

    try:
        return to_unicode(expr, vector=vector)
    except Exception:  # noqa: BLE001 - a message must never fail
        return _show(expr)


def fan_out_groups(contribs: list) -> Iterator[tuple[str, list[sp.Basic], list[sp.Basic]]]:
    """Fan-out mistakes: (child, terms kept, terms left out). Each child's terms are left
    out as a whole (R in ``W*W``), and, for a child reached along several paths (``h2 =
    h1 + relu(W h1)``), each path's term on its own."""
    children = list(dict.fromkeys(c.child for c in contribs))
    for child in children:
        mine = [c for c in contribs if c.child == child]
        if len(children) > 1:
            yield child, [c.term for c in contribs if c.child != child], [c.term for c in mine]
        if len(mine) > 1:
            for c in mine:
                yield child, [o.term for o in contribs if o is not c], [c.term]


def sum_terms(terms: list[sp.Basic]) -> sp.Basic:
    from ..ops import is_matrix, mat_add

    return mat_add(*terms) if terms and is_matrix(terms[0]) else sp.Add(*terms)


# ------------------------------------------------------------------ comparing
def close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pointwise: relative error |a − b| / (|a| + |b|) ≤ RTOL (or both ≈ 0)."""
    with np.errstate(all="ignore"):
        diff = np.abs(a - b)
        return (
            np.isfinite(a)
            & np.isfinite(b)
            & ((diff <= RTOL * (np.abs(a) + np.abs(b))) | (diff <= ATOL))
        )


def rel_error(a: float, b: float) -> float:
    d = abs(a - b)
    s = abs(a) + abs(b)
    return 0.0 if d == 0 else (d / s if s else math.inf)


def diagnose(truth: Truth, node: str, student: np.ndarray, uses_signals: bool) -> str:
    """Words for a wrong value: a known mistake it matches, or a plain mismatch."""
    expected = truth.value(node)
    if not np.all(np.isfinite(student)):
        return "not finite at some points (division by zero, or log of a non-positive value?)"
    if np.any(np.abs(expected) > ATOL):
        if close(student, -expected).all():
            return "sign error: the value is the negative of the correct one"
        if close(student, 2 * expected).all():
            return (
                "factor of 2: twice the correct value (the 1/2 in the loss cancels the 2 "
                "from differentiating the square)"
            )
        if close(student, expected / 2).all():
            return "factor of 2: half the correct value (the 2 from the square is missing?)"
    candidates = [v for v in truth.variants() if node in v.values]
    candidates.sort(key=lambda v: v.node != node)  # this step's own mistakes first
    for v in candidates:
        if close(student, v.values[node]).all():
            return v.message
    return "does not match the correct value"


# ------------------------------------------------------------------ symbolic
class _Timeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`_Timeout` after ``seconds`` (main thread only; else unbounded).

    The sandbox's process limits are the hard bound; this keeps one slow ``simplify``
    from using up a whole answer's budget.
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise _Timeout

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _expands_to_zero(diff: sp.Basic) -> bool:
    return sp.expand(expand_derivatives(diff)) == 0


def _exp_form_is_zero(diff: sp.Basic) -> bool:
    """σ and σ' rewritten with exponentials, then one rational normalization."""
    full = expand_fully(diff)
    if full.has(sp.Max, sp.Min, sp.Abs):
        return False
    return sp.cancel(sp.together(sp.powsimp(sp.expand(full)))) == 0


def warm_up(truth: Truth) -> None:
    """Import and cache what checking needs, once (forked workers then start warm)."""
    from . import intermediates  # noqa: F401 - imported here, not in every worker
    from .latex import parse_latex
    from .text_answer import parse_text_answer

    parse_latex(r"\bar{y}\,\sigma'(z) + \frac{1}{2}e^{-z}")
    parse_text_answer("ȳ σ'(z) (1 - tanh^2(z))")
    z = sp.Symbol("z", real=True)
    symbolic_check(
        truth,
        sp.exp(-z) / (1 + sp.exp(-z)) ** 2,
        sp.diff(sp.exp(z), z) * 0 + expand_fully(sp.exp(-z) / (1 + sp.exp(-z)) ** 2),
        2.0,
        to_leaves=False,
    )
    sp.simplify(sp.sin(z) ** 2 + sp.cos(z) ** 2)


def symbolic_check(
    truth: Truth,
    student: sp.Basic,
    expected: sp.Basic,
    seconds: float | None,
    to_leaves: bool = True,
) -> str:
    """'proved' when the difference simplifies to 0 within ``seconds``."""
    try:
        with time_limit(seconds):
            diff = student - expected
            if _expands_to_zero(diff):  # same algebra, nodes and signals as atoms
                return "proved"
            in_leaves = diff.xreplace(truth.node_forms())  # h2 written as σ(z2) …
            if _expands_to_zero(in_leaves):
                return "proved"
            if _exp_form_is_zero(diff):  # σ written with exponentials
                return "proved"
            if to_leaves:  # signals replaced by their values (closed forms vs backprop)
                in_leaves = diff.xreplace(truth.leaf_forms())
                if _expands_to_zero(in_leaves):
                    return "proved"
            if sp.simplify(expand_fully(in_leaves)) == 0:
                return "proved"
            return "not proved (numerically equal)"
    except _Timeout:
        return f"not proved within {seconds:g} s (numerically equal)"
    except (RecursionError, MemoryError, ValueError, TypeError):
        return "not proved (numerically equal)"


# ------------------------------------------------------------------ checking
class _Checker:
    """Checks one answer's lines in order, keeping the student's own signal values."""

    def __init__(self, truth: Truth, symbolic_seconds: float | None) -> None:
        self.truth = truth
        self.seconds = symbolic_seconds
        self.builder = truth.answer_builder()
        self.own = dict(truth.env)
        self.wrong: dict[str, list[int]] = {}  # node → lines where its wrong value began

    def check(self, al: AnswerLine) -> LineResult:
        result = self._check(al)
        text = " ".join(al.source.split())
        result.source = text if len(text) <= 300 else text[:299] + "…"
        return result

    def _check(self, al: AnswerLine) -> LineResult:
        target = self.truth.target_name(al.node) if al.node else (al.target_text or "?")
        if al.error is not None:
            return _unparseable(al, target, al.error)
        assert al.tree is not None and al.node is not None
        if al.node not in self.truth.steps:
            return LineResult(
                al.line,
                target,
                "unparseable",
                f"'{al.node}' has no error signal (a constant, or not used by the loss)",
                column=1,
            )
        try:
            if isinstance(self.builder, MatrixAnswerBuilder):
                item = self.truth.program[al.node]
                self.builder.set_line(al.source, al.tree, (self.truth.pretty(al.node), item.shape))
            expr = self.builder.build(al.tree)
            written = (
                self.builder.written(al.tree)
                if isinstance(self.builder, MatrixAnswerBuilder)
                else None
            )
            problem = self.truth.shape_problem(al.node, expr, written)
            if problem is not None:
                result = self._wrong_shape(al, target, expr, problem)
            else:
                result = self._judge(al, target, expr)
        except ShapeMismatch as exc:  # read fine, but the shapes in it do not fit
            self.wrong[al.node] = [al.line]
            msg = "shape error: " + exc.message + (f" (hint: {exc.hint})" if exc.hint else "")
            result = LineResult(al.line, target, "incorrect", msg, column=exc.span.column)
        except ModelError as exc:
            return _unparseable(al, target, exc)
        except (
            ChainruleError,  # EvalError among them
            RecursionError,
            OverflowError,
            ZeroDivisionError,
            TypeError,
            ValueError,
            AttributeError,
        ) as exc:
            return LineResult(
                al.line,
                target,
                "unparseable",
                f"cannot evaluate this expression ({exc.__class__.__name__})",
            )
        if result.status == "incorrect" and (
            result.message.startswith(("shape error", "wrong shape", "does not match"))
        ):
            mixup = self._layer_mixup(al)
            if mixup is not None:
                result.message = f"{mixup} ({result.message})"
        return result

    def _layer_mixup(self, al: AnswerLine) -> str | None:
        """A name of the wrong layer (W⁽¹⁾ where W⁽²⁾ belongs; in unit form, the wrong
        unit: x₂ where x₁ belongs): the first single rename that makes the line right."""
        assert al.tree is not None and al.node is not None
        for name, this, other in self._numbered_alternatives(al.tree):
            try:
                expr = self.builder.build(rename(al.tree, {name: other}))
                if self.truth.shape_problem(al.node, expr) is not None:
                    continue
                value = self.truth.eval(expr, self.truth.env)
            except (ChainruleError, ValueError, TypeError, ArithmeticError, RecursionError):
                continue
            if self.truth.points_close(value, self.truth.value(al.node)).all():
                kind = "layer" if self.truth.program.is_vector else "index"
                return (
                    f"{kind} mix-up: you wrote {self.truth.pretty_written(this)} where "
                    f"{self.truth.pretty_written(other)} belongs"
                )
        return None

    def _numbered_alternatives(self, tree: Any) -> Iterator[tuple[str, str, str]]:
        """(written name, its canonical form, the same with another number) for names of
        numbered nodes (``W1`` → ``W2``, ``h2bar`` → ``h1_bar``), however they were written."""
        names = self.builder.names
        for name in sorted(set(tree_names(tree))):
            signal = names.signal_node(name)
            node = signal or names.items.get(name)
            m = _LAYERED_NAME.match(node or "")
            if m is None:
                continue
            for d in "123456789":
                other = f"{m.group(1)}{d}"
                if d != m.group(2) and other in self.truth.program:
                    this = f"{node}_bar" if signal else str(node)
                    yield name, this, f"{other}_bar" if signal else other

    def _wrong_shape(self, al: AnswerLine, target: str, expr: sp.Basic, problem: str) -> LineResult:
        """A well-formed expression of the wrong shape: incorrect, values shown."""
        assert al.node is not None
        self.wrong[al.node] = [al.line]
        truth = self.truth
        cx: dict[str, Any] = {
            "point": truth.point(0),
            "expected": truth.show(truth.value(al.node)[0]),
        }
        try:
            cx["student"] = truth.show(truth.eval(expr, self.own)[0])
        except (EvalError, ValueError, RecursionError, OverflowError):
            cx["student"] = None
        cx["relative_error"] = None
        return LineResult(al.line, target, "incorrect", problem, cx)

    def _judge(self, al: AnswerLine, target: str, expr: sp.Basic) -> LineResult:
        truth, node = self.truth, al.node
        assert node is not None
        used = _signals_in(expr) & truth.signal_set
        expected = truth.value(node)
        s_true = truth.eval(expr, truth.env)
        s_own = truth.eval(expr, self.own) if used else s_true
        e_own = truth.eval(truth.steps[node].expression, self.own)
        self.own[truth.signal_symbols[node]] = s_own
        if close(s_own, expected).all():
            self.wrong.pop(node, None)
            sym = truth.prove(expr, truth.steps[node].expression, self.seconds)
            return LineResult(al.line, target, "correct", "correct", symbolic=sym)
        upstream = sorted(
            {
                line
                for s in used
                for line in self.wrong.get(getattr(s, "node", ""), [])
                if getattr(s, "node", None) != node
            }
        )
        self.wrong[node] = [al.line]
        if used and close(s_own, e_own).all() and upstream:
            self.wrong[node] = upstream
            sym = truth.prove(expr, truth.steps[node].expression, self.seconds, to_leaves=False)
            lines = ", ".join(str(n) for n in upstream)
            return LineResult(
                al.line,
                target,
                "correct",
                f"correct given your earlier line(s) {lines}; the error there "
                "is carried forward and counted once, at its origin",
                symbolic=sym,
                carried_from=upstream,
            )
        compare = e_own if used else expected
        bad = np.flatnonzero(~truth.points_close(s_own, compare))
        j = int(bad[0]) if bad.size else 0
        message = truth.diagnose(node, s_true if used else s_own, bool(used))
        return LineResult(
            al.line,
            target,
            "incorrect",
            message,
            self._counterexample(j, expected, s_own, e_own if used else None),
        )

    def _counterexample(
        self, j: int, expected: np.ndarray, student: np.ndarray, given_own: np.ndarray | None
    ) -> dict[str, Any]:
        t = self.truth
        out: dict[str, Any] = {
            "point": t.point(j),
            "expected": t.show(expected[j]),
            "student": t.show(student[j]),
            "relative_error": t.rel_error_at(expected[j], student[j]),
        }
        if given_own is not None and not close(given_own[j : j + 1], expected[j : j + 1]).all():
            out["expected_given_your_earlier_lines"] = t.show(given_own[j])
        return out


_LAYERED_NAME = re.compile(r"^([A-Za-z]+_?)(\d)(_bar)?$")


def _signals_in(expr: sp.Basic) -> set[sp.Basic]:
    """Symbols and matrix symbols (error signals of vector programs) in ``expr``."""
    out = set(expr.free_symbols)
    out |= (
        set(expr.atoms(sp.MatrixSymbol))
        if getattr(expr, "is_Matrix", False) or expr.has(sp.MatrixSymbol)
        else set()
    )
    return out


def _num(v: float) -> float | str:
    v = float(v)
    return v if math.isfinite(v) else str(v)


def first_line(err: Exception | None) -> str | None:
    """``file:line:col: error: message`` without the caret display."""
    return None if err is None else (str(err).splitlines() or [""])[0]


def _unparseable(al: AnswerLine, target: str, exc: ModelError) -> LineResult:
    msg = exc.message + (f" (hint: {exc.hint})" if exc.hint else "")
    return LineResult(al.line, target, "unparseable", msg, column=exc.span.column)


def iter_check(
    truth: Truth, answer: Answer, symbolic_seconds: float | None = SYMBOLIC_SECONDS
) -> Iterator[LineResult]:
    """Line results one by one (the sandbox streams them to the parent)."""
    own = getattr(answer, "check_lines", None)  # another notation checks its own lines
    if own is not None:
        yield from own(truth)
        return
    truth = truth.for_answer(answer)
    checker = _Checker(truth, symbolic_seconds)
    checker.builder.names.items.update(answer.aliases)
    for al in answer.lines:
        yield checker.check(al)


def missing_params(truth: Truth, answered: list[LineResult] | list[AnswerLine]) -> list[str]:
    targets = {r.target for r in answered if isinstance(r, LineResult)}
    return [
        truth.target_name(p.name)
        for p in truth.program.params
        if p.name in truth.steps and truth.target_name(p.name) not in targets
    ]


def check_answer(
    truth: Truth, answer: Answer, symbolic_seconds: float | None = SYMBOLIC_SECONDS
) -> CheckResult:
    """Check every line of a parsed answer (in this process; see the sandbox)."""
    if answer.error is not None and not answer.lines:
        return CheckResult(answer.filename, "error", [], error=first_line(answer.error))
    lines = list(iter_check(truth, answer, symbolic_seconds))
    error = first_line(answer.error)
    return CheckResult(
        answer.filename,
        verdict_of(lines, error),
        lines,
        missing_params(truth.for_answer(answer), lines),
        error,
    )
