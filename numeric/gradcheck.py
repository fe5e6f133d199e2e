"""Gradient checking the way the lectures teach it, and better.

The analytic gradient (the generated backprop code) is compared entry by entry with
a numerical estimate, in float64:

* two-sided finite differences ``(f(x+h) − f(x−h)) / 2h`` with a per-entry step
  ``h = ε^(1/3)·max(1, |x|)`` made exactly representable (``h = (x + h) − x``);
* complex-step differentiation ``Im f(x + ih) / h`` (≈1e-15 relative, no
  cancellation) — chosen automatically only when the model has no non-analytic atom
  (abs, max/min, sign, step, relu, Piecewise…), on which it is silently wrong;
* Richardson extrapolation of two central differences as a second estimate, with an
  error estimate.

The relative error ``|a − b| / (|a| + |b|)`` (with an absolute floor, so two zeros
pass) is reported per entry with the worst entries in a table, and a verdict against
a stated threshold (the lectures' ~1e-6) with its band: ≤1e-7 good, >1e-2 wrong.

Near a kink of a non-smooth function (a ReLU argument changing sign inside
``[x − h, x + h]``), a finite difference is meaningless (0.5 for a true slope 1); such
points are detected and re-sampled instead of failing falsely. Every error signal is
checked too (perturb the node's value, watch the loss), so a report shows which node
first disagrees.

>>> import numpy as np
>>> f = lambda p: float(np.sum(p["w"] ** 3))
>>> g = lambda p: {"w": 3 * p["w"] ** 2}
>>> r = check_gradient(f, g, {"w": np.array([0.5, -1.0])})
>>> r.passed, r.band
(True, 'good')
>>> r = check_gradient(f, lambda p: {"w": 2 * p["w"] ** 2}, {"w": np.array([0.5, -1.0])})
>>> r.passed, r.band
(False, 'wrong')
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..symbolic.errors import ChainruleError
from .declared import DeclaredCheck, check_declared

EPS = float(np.finfo(np.float64).eps)
#: The lectures' pass threshold on the relative error.
THRESHOLD = 1e-6
#: Relative errors of entries with |a| + |b| below this are measured against it.
ABS_FLOOR = 1e-8
#: (upper bound, band name, meaning) from good to wrong.
BANDS = [
    (1e-7, "good", "the gradient is right"),
    (1e-4, "acceptable", "fine for kinked or float32 objectives; suspicious for smooth ones"),
    (1e-2, "suspicious", "probably a bug, unless the objective has kinks"),
    (float("inf"), "wrong", "the gradient is wrong"),
]


class GradCheckWarning(UserWarning):
    """Something that weakens a check (float32 input upcast, kinks left)."""


# ------------------------------------------------------------------- records
@dataclass
class EntryCheck:
    """One parameter entry: numerical vs analytical derivative."""

    param: str
    index: tuple[int, ...]
    numerical: float
    analytical: float
    rel_error: float
    h: float
    method: str  # "complex-step", "central", "richardson"
    second: float | None = None  # Richardson estimate
    error_estimate: float | None = None  # of the Richardson estimate
    kink: bool = False
    point: int = 0

    @property
    def label(self) -> str:
        idx = ",".join(str(i) for i in self.index)
        return f"{self.param}[{idx}]" if idx else self.param


@dataclass
class SignalCheck:
    """One node's error signal: v̄ from backprop vs the loss change under a perturbation."""

    node: str
    rel_error: float
    passed: bool
    entries: int
    numerical: float = 0.0
    analytical: float = 0.0
    kink: bool = False


@dataclass
class GradCheckReport:
    """All entries checked at every point, the verdict and the per-node signal checks."""

    model: str
    threshold: float
    method: str
    points: int
    entries: list[EntryCheck]
    signals: list[SignalCheck] = field(default_factory=list)
    resampled: int = 0
    warnings: list[str] = field(default_factory=list)
    floor: float = ABS_FLOOR
    declared: list[DeclaredCheck] = field(default_factory=list)  # declared derivatives

    @property
    def checked(self) -> list[EntryCheck]:
        """Entries that count for the verdict (kinked ones excluded)."""
        return [e for e in self.entries if not e.kink]

    @property
    def kinks(self) -> int:
        return sum(e.kink for e in self.entries)

    @property
    def max_rel_error(self) -> float:
        return max((e.rel_error for e in self.checked), default=0.0)

    @property
    def passed(self) -> bool:
        signals_ok = all(s.passed for s in self.signals)
        declared_ok = all(d.passed for d in self.declared)
        return (
            self.max_rel_error <= self.threshold
            and signals_ok
            and declared_ok
            and bool(self.checked)
        )

    @property
    def band(self) -> str:
        return band_of(self.max_rel_error)

    def worst(self, n: int = 5) -> list[EntryCheck]:
        return sorted(self.checked, key=lambda e: -e.rel_error)[:n]

    @property
    def first_bad_signal(self) -> str | None:
        """The node nearest the loss whose error signal disagrees (backward order)."""
        return next((s.node for s in self.signals if not s.passed), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "passed": self.passed,
            "threshold": self.threshold,
            "band": self.band,
            "max_rel_error": self.max_rel_error,
            "method": self.method,
            "points": self.points,
            "entries_checked": len(self.checked),
            "kinks": self.kinks,
            "resampled": self.resampled,
            "first_bad_signal": self.first_bad_signal,
            "worst": [asdict(e) for e in self.worst()],
            "signals": [asdict(s) for s in self.signals],
            "declared_derivatives": [asdict(d) for d in self.declared],
            "warnings": self.warnings,
        }

    def table(self, n: int = 5) -> str:
        """The worst entries as a text table, then the verdict."""
        head = (
            f"{'entry':<14} {'numerical':>14} {'analytical':>14} {'rel. error':>10} "
            f"{'h':>9}  method"
        )
        rows = [head, "-" * len(head)]
        for e in self.worst(n):
            rows.append(
                f"{e.label:<14} {e.numerical:>14.7g} {e.analytical:>14.7g} "
                f"{e.rel_error:>10.2e} {e.h:>9.2e}  {e.method}"
            )
        return "\n".join(rows)

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        meaning = next(m for b, name, m in BANDS if name == self.band)
        lines = [
            f"{verdict}: max relative error {self.max_rel_error:.2e} over "
            f"{len(self.checked)} entries at {self.points} point(s), threshold "
            f"{self.threshold:.0e} — band '{self.band}' ({meaning})"
        ]
        if self.kinks or self.resampled:
            lines.append(
                f"kinks: {self.resampled} point(s) re-sampled; {self.kinks} "
                "entr(y/ies) still at a kink were left out of the verdict"
            )
        lines += [d.line() for d in self.declared]
        bad = self.first_bad_signal
        if bad is not None:
            lines.append(f"first error signal that disagrees (from the loss down): {bad}_bar")
        elif self.signals:
            lines.append(f"all {len(self.signals)} error signals agree")
        return "\n".join(lines)


def band_of(rel_error: float) -> str:
    """The lecture band of a relative error.

    >>> band_of(3e-9), band_of(5e-6), band_of(0.3)
    ('good', 'acceptable', 'wrong')
    """
    return next(name for bound, name, _ in BANDS if rel_error <= bound)


# --------------------------------------------------------------- estimators
def relative_error(a: float, b: float, floor: float = ABS_FLOOR) -> float:
    """``|a − b| / (|a| + |b|)``, measured against ``floor`` when both are tiny.

    >>> relative_error(0.0, 0.0), relative_error(1.0, 1.0 + 1e-9) < 1e-9
    (0.0, True)
    """
    return abs(a - b) / max(abs(a) + abs(b), floor)


def representable_step(x: float, h: float) -> float:
    """``(x + h) − x``: a step that makes ``x + h`` exact in float64."""
    return float((np.float64(x) + np.float64(h)) - np.float64(x))


def step_for(x: float, power: float = 1 / 3) -> float:
    """``h = ε^power · max(1, |x|)``, exactly representable at ``x``."""
    return representable_step(x, EPS**power * max(1.0, abs(x)))


Loss = Callable[[dict[str, np.ndarray]], Any]


@dataclass
class _Probe:
    """f at a perturbed point, and whether a kink argument changed sign there."""

    value: float
    kink: bool = False


class Estimator:
    """Perturbs one entry of one parameter in place, evaluates, restores.

    ``f(params)`` returns the loss, or ``(loss, probes)`` when ``kinks`` is set (probes:
    arrays whose sign change means a kink was crossed).
    """

    def __init__(
        self,
        f: Loss,
        params: dict[str, np.ndarray],
        kinks: bool = False,
        complex_f: Loss | None = None,
    ) -> None:
        self.f = f
        self.params = params
        self.kinks = kinks
        self.complex_f = complex_f
        self.base_signs = self._signs(self._call(f, params)[1]) if kinks else None

    def _call(self, f: Loss, params: dict[str, np.ndarray]) -> tuple[Any, list]:
        out = f(params)
        return out if self.kinks else (out, [])

    @staticmethod
    def _signs(probes: list) -> list[np.ndarray]:
        return [np.sign(np.real(np.asarray(p))) for p in probes]

    def at(self, name: str, i: int, h: float) -> _Probe:
        x = self.params[name]
        orig = x.flat[i]
        try:
            x.flat[i] = orig + h
            value, probes = self._call(self.f, self.params)
        finally:
            x.flat[i] = orig  # inputs restored after every perturbation
        kink = False
        if self.kinks:
            now = self._signs(probes)
            base = self.base_signs or []
            # a probe changing sign crossed a kink (one that stays 0, a tie of max-pooled
            # zeros the parameter does not move, is not crossed)
            kink = any(np.any(a != b) for a, b in zip(now, base, strict=False))
        return _Probe(float(np.real(value)), kink)

    def central(self, name: str, i: int, h: float) -> tuple[float, bool]:
        up, down = self.at(name, i, h), self.at(name, i, -h)
        return (up.value - down.value) / (2 * h), up.kink or down.kink

    def richardson(self, name: str, i: int) -> tuple[float, float, float, bool]:
        """(estimate, error estimate, h, kink) from central differences at h and h/2."""
        x = float(self.params[name].flat[i])
        h = step_for(x, 1 / 5)
        d1, k1 = self.central(name, i, h)
        d2, k2 = self.central(name, i, h / 2)
        r = (4 * d2 - d1) / 3
        return r, abs(r - d2), h, k1 or k2

    def complex_step(self, name: str, i: int) -> tuple[float, float]:
        assert self.complex_f is not None
        x = self.params[name]
        z = {k: v.astype(np.complex128) for k, v in self.params.items()}
        h = 1e-20 * max(1.0, abs(float(x.flat[i])))
        z[name].flat[i] += 1j * h
        value = self.complex_f(z)
        return float(np.imag(value)) / h, h


# ------------------------------------------------------------- the generic check
def check_gradient(
    loss: Loss,
    grad: Callable[[dict[str, np.ndarray]], Mapping[str, Any]],
    params: Mapping[str, Any],
    *,
    threshold: float = THRESHOLD,
    method: str = "auto",
    complex_loss: Loss | None = None,
    kinks: bool = False,
    max_entries: int | None = 20,
    seed: int = 0,
    floor: float = ABS_FLOOR,
    point: int = 0,
    name: str = "function",
) -> GradCheckReport:
    """Check ``grad(params)`` against numerical derivatives of ``loss(params)``.

    ``method`` is ``"auto"`` (complex step when ``complex_loss`` is given, else central
    differences), ``"central"``, ``"complex-step"`` or ``"richardson"``. Richardson is
    always computed as the second estimate. ``max_entries`` samples that many entries
    per parameter (None: all). With ``kinks``, ``loss`` returns ``(loss, probes)``.
    """
    p64, notes = as_float64(params)
    analytic = {k: np.asarray(v, dtype=np.float64) for k, v in grad(p64).items()}
    entries = _check_entries(
        loss, analytic, p64, method, complex_loss, kinks, max_entries, seed, floor, point
    )
    used = entries[0].method if entries else method
    return GradCheckReport(name, threshold, used, 1, entries, warnings=notes, floor=floor)


def _check_entries(
    loss: Loss,
    analytic: Mapping[str, np.ndarray],
    params: dict[str, np.ndarray],
    method: str,
    complex_loss: Loss | None,
    kinks: bool,
    max_entries: int | None,
    seed: int,
    floor: float,
    point: int,
) -> list[EntryCheck]:
    if method == "complex-step" and complex_loss is None:
        raise ChainruleError("complex-step needs a complex-safe loss")
    use_complex = method == "complex-step" or (method == "auto" and complex_loss is not None)
    est = Estimator(loss, params, kinks=kinks, complex_f=complex_loss)
    rng = np.random.default_rng(seed)
    loss_scale = max(1.0, abs(float(np.real(est._call(loss, params)[0]))))
    out = []
    for name, x in params.items():
        a = analytic.get(name, np.zeros_like(x)).reshape(x.shape)
        for i in _sample(x.size, max_entries, rng):
            r, r_err, hr, kink_r = est.richardson(name, i)
            if use_complex:
                num, h = est.complex_step(name, i)
                label, kink = "complex-step", False
            elif method == "richardson":
                num, h, label, kink = r, hr, "richardson", kink_r
            else:
                h = step_for(float(x.flat[i]))
                num, kink = est.central(name, i, h)
                label = "central"
            ana = float(a.flat[i])
            # a central difference carries round-off of about ε·|L|/h (as in the signal
            # check): below that level it cannot tell two values apart
            noise = 10 * np.finfo(np.float64).eps * loss_scale / h if label == "central" else 0
            out.append(
                EntryCheck(
                    name,
                    tuple(int(j) for j in np.unravel_index(i, x.shape)),
                    num,
                    ana,
                    relative_error(num, ana, max(floor, noise / THRESHOLD)),
                    h,
                    label,
                    r,
                    r_err,
                    kink or kink_r,
                    point,
                )
            )
    return out


def _sample(size: int, k: int | None, rng: np.random.Generator) -> list[int]:
    if k is None or size <= k:
        return list(range(size))
    return sorted(rng.choice(size, size=k, replace=False).tolist())


def as_float64(values: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Copies in float64; a float32 input is upcast with a warning (FD needs float64)."""
    out, notes = {}, []
    for k, v in values.items():
        arr = np.asarray(v)
        if arr.dtype == np.float32 or arr.dtype == np.float16:
            msg = (
                f"'{k}' is {arr.dtype}; upcast to float64 for the check (finite "
                "differences in float32 are accurate to 1e-3 at best)"
            )
            warnings.warn(msg, GradCheckWarning, stacklevel=3)
            notes.append(msg)
        out[k] = np.array(arr, dtype=np.float64)
    return out, notes


# ----------------------------------------------------------- model-level check
def is_analytic(program: Any) -> bool:
    """True when no forward expression has a non-analytic atom (complex step is safe):
    a function its registry entry marks non-analytic (relu, abs, …), or a piecewise form."""
    import sympy as sp

    non_analytic = (*program.functions.non_analytic(), sp.Heaviside, sp.Piecewise)
    for a in program.assignments:
        if a.expr.has(*non_analytic):
            return False
    return True


def random_point(
    program: Any, rng: np.random.Generator, batch: int = 3
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Small random parameters and a random batch of inputs (targets one-hot / 0-1)."""
    from .data import example_shape, leaf_shape, target_groups

    params = {
        v.name: np.asarray(0.5 * rng.standard_normal(leaf_shape(program, v)))
        for v in program.params
    }
    data: dict[str, np.ndarray] = {}
    groups = target_groups(program)
    for v in program.inputs:
        data[v.name] = rng.standard_normal((batch, *example_shape(program, v)))
    for names in groups:
        if len(names) == 1:
            shape = data[names[0]].shape
            if len(shape) > 2:  # a target with axes of its own (a map): as drawn
                continue
            if len(shape) > 1 and shape[1] > 1:  # a vector target: one-hot rows
                data[names[0]] = np.eye(shape[1])[rng.integers(0, shape[1], batch)]
            else:
                data[names[0]] = rng.integers(0, 2, shape).astype(float)
        else:
            hot = np.eye(len(names))[rng.integers(0, len(names), batch)]
            for j, n in enumerate(names):
                data[n] = hot[:, j]
    return params, data


def gradcheck(
    model: Any,
    *,
    points: int = 3,
    seed: int = 0,
    batch: int = 3,
    threshold: float = THRESHOLD,
    method: str = "auto",
    signals: bool = True,
    max_entries: int | None = 20,
    resample: int = 3,
    params: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
) -> GradCheckReport:
    """Check a model's generated gradient at ``points`` seeded random points.

    The derivation is refused before any code is generated if it contains a
    ``DiracDelta`` or an unevaluated ``Derivative``. ``params``/``data`` fix the point
    instead (float32 values are upcast with a warning).
    """
    from .codegen import _derivation, compiled

    derivation = _derivation(model)
    program = derivation.program
    code = compiled(derivation, instrument=True)
    smooth = is_analytic(program)
    if method == "auto":
        method = "complex-step" if smooth else "central"
    elif method == "complex-step" and not smooth:
        raise ChainruleError(
            "complex-step differentiation is wrong on non-analytic functions "
            "(abs, max, relu, step…); use --method central"
        )
    complex_code = (
        compiled(derivation, dtype="complex128", analytic=True, instrument=True)
        if method == "complex-step"
        else None
    )
    report = GradCheckReport(program.title or program.filename, threshold, method, 0, [])
    report.declared = check_declared(program, threshold)
    rng = np.random.default_rng(seed)
    for k in range(points):
        if params is not None or data is not None:
            p0, d0 = random_point(program, rng, batch)
            p0.update(params or {})
            d0.update(data or {})
            p0, notes = as_float64(p0)
            d0, notes2 = as_float64(d0)
            report.warnings += notes + notes2
        else:
            p0, d0 = random_point(program, rng, batch)

        def check(p0: dict, d0: dict, k: int = k) -> tuple[list, list]:
            return _check_point(
                code,
                complex_code,
                p0,
                d0,
                method,
                max_entries,
                seed + k,
                threshold,
                report.floor,
                k,
                signals,
            )

        entries, sig = check(p0, d0)
        tries = 0
        while any(e.kink for e in entries) and tries < resample and params is None:
            tries += 1
            report.resampled += 1
            p0, d0 = random_point(program, rng, batch)
            entries, sig = check(p0, d0)
        report.entries += entries
        report.signals = _merge_signals(report.signals, sig)
        report.points += 1
        if params is not None and data is not None:
            break
    if report.kinks:
        report.warnings.append(
            f"{report.kinks} entries stayed at a kink after re-sampling "
            "and were left out of the verdict"
        )
    return report


def _check_point(
    code: Any,
    complex_code: Any,
    params: dict[str, np.ndarray],
    data: dict[str, np.ndarray],
    method: str,
    max_entries: int | None,
    seed: int,
    threshold: float,
    floor: float,
    k: int,
    signals: bool,
) -> tuple[list[EntryCheck], list[SignalCheck]]:
    fn = code.function

    def loss(p: dict[str, np.ndarray]) -> tuple[Any, list]:
        probes: list = []
        value, _ = fn(p, data, "mean", probes=probes)
        return value, probes

    complex_loss = None
    if complex_code is not None:
        cdata = {n: v.astype(np.complex128) for n, v in data.items()}

        def complex_loss(p: dict[str, np.ndarray]) -> Any:
            return complex_code.function(p, cdata, "mean")[0]

    _, analytic = fn(params, data, "mean")
    entries = _check_entries(
        loss, analytic, params, method, complex_loss, True, max_entries, seed, floor, k
    )
    sig = check_signals(fn, params, data, threshold, floor) if signals else []
    return entries, sig


def check_signals(
    fn: Callable[..., Any],
    params: dict[str, np.ndarray],
    data: dict[str, np.ndarray],
    threshold: float = THRESHOLD,
    floor: float = ABS_FLOOR,
) -> list[SignalCheck]:
    """Perturb each node's value (every entry) and compare the loss change with v̄.

    Listed from the loss down (backprop order), so the first failing one is the node
    where the derivation first goes wrong.
    """
    base_signals: dict[str, Any] = {}
    base_loss, _ = fn(params, data, "mean", signals=base_signals)
    loss_scale = max(1.0, abs(float(np.real(base_loss))))
    values = code_forward_values(fn, params, data, base_signals)
    out = []
    for node, sig in base_signals.items():
        value = np.asarray(values[node], dtype=np.float64)
        target = np.broadcast_to(np.asarray(sig, dtype=np.float64), value.shape)
        worst, num_w, ana_w, kink_any = 0.0, 0.0, 0.0, False
        for i in range(value.size):
            h = _node_step(float(value.flat[i]))
            num, kink = _node_difference(fn, params, data, node, value, i, h)
            if kink:
                kink_any = True
                continue
            # a central difference of the loss carries round-off of about ε·|L|/h: below
            # that level two values agree as well as float64 can tell
            noise = 10 * np.finfo(np.float64).eps * loss_scale / h
            err = relative_error(num, float(target.flat[i]), max(floor, noise / threshold))
            if err >= worst:
                worst, num_w, ana_w = err, num, float(target.flat[i])
        out.append(
            SignalCheck(
                node, worst, worst <= max(threshold, 1e-6), value.size, num_w, ana_w, kink_any
            )
        )
    return out


def _node_step(x: float) -> float:
    """The step for perturbing a node's value: ``step_for(x)``, but at most 10⁻⁴·|x| for
    a small nonzero x (a probability of 10⁻⁵ under log: a step near its size would
    measure the curvature, not the slope)."""
    h = step_for(x)
    return representable_step(x, min(h, 1e-4 * abs(x))) if x else h


def code_forward_values(
    fn: Callable[..., Any],
    params: dict[str, np.ndarray],
    data: dict[str, np.ndarray],
    signals: Mapping[str, Any],
) -> dict[str, Any]:
    forward = fn.__globals__["forward"]
    values = forward(params, data)
    return {k: values[k] for k in signals if k in values}


def _node_difference(
    fn: Callable[..., Any],
    params: dict[str, np.ndarray],
    data: dict[str, np.ndarray],
    node: str,
    value: np.ndarray,
    i: int,
    h: float,
) -> tuple[float, bool]:
    def at(step: float) -> tuple[float, list]:
        d = np.zeros_like(value)
        d.flat[i] = step
        probes: list = []
        loss, _ = fn(params, data, "mean", delta={node: d}, probes=probes)
        return float(loss), probes

    base: list = []
    fn(params, data, "mean", probes=base)
    (up, pu), (down, pd) = at(h), at(-h)
    kink = any(
        np.any(np.sign(a) != np.sign(b)) or np.any(np.sign(c) != np.sign(b))
        for a, b, c in zip(pu, base, pd, strict=False)
    )
    return (up - down) / (2 * h), kink


def _merge_signals(old: list[SignalCheck], new: list[SignalCheck]) -> list[SignalCheck]:
    if not old:
        return new
    by = {s.node: s for s in old}
    out = []
    for s in new:
        o = by.get(s.node)
        if o is None or s.rel_error > o.rel_error:
            out.append(s)
        else:
            out.append(o)
    return out
