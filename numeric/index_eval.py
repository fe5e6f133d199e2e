"""Numbers for index notation: evaluate indexed lines, and prove the bridge numerically.

Each index line is evaluated entry by entry (1-based indices, sums as loops) at
random points of random sizes, and compared with its matrix form evaluated by NumPy:
the forward values, every error signal, and the naive route's ∂L/∂θ_ij against the
backprop gradient. An *index-only* backward pass (forward and backward index lines
alone, no matrix at all) gives a gradient that tests compare with finite differences.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from ..derive.index_form import Index, IndexDerivation, IndexLine
from ..ops import REGISTRY


def _function(e: sp.Function) -> Any:
    """The NumPy form of a function application, from its registry entry."""
    op = REGISTRY.for_node(e)
    if op is not None and op.numpy is not None:
        return op.numpy
    return getattr(np, type(e).__name__.lower())


@dataclass
class IndexEvaluator:
    """Values of names (declared shapes), size values, and index values in scope."""

    values: dict[str, Any]
    sizes: dict[str, int]

    def __call__(self, e: sp.Basic, env: Mapping[sp.Basic, int] | None = None) -> float:
        return float(self._ev(e, dict(env or {})))

    def _ev(self, e: sp.Basic, env: dict[sp.Basic, int]) -> Any:
        if isinstance(e, Index):
            return env[e]
        own = getattr(e, "index_value", None)  # a layer's index object (max over a range, 𝟙[…])
        if own is not None:
            return own(self._ev, env)
        if e.is_Number:
            return float(e)
        if isinstance(e, sp.NumberSymbol):
            return float(e)
        if isinstance(e, sp.Symbol):
            if e.name in self.sizes:
                return self.sizes[e.name]
            value = self.values[e.name]
            return np.reshape(value, ()) if np.size(value) == 1 else value  # a 1×1 node
        if isinstance(e, sp.Indexed):
            arr = np.asarray(self.values[str(e.base)])
            idx = tuple(int(self._ev(i, env)) - 1 for i in e.indices)
            dims = arr.shape if arr.ndim <= len(idx) else [d for d in arr.shape if d != 1]
            if any(not 0 <= k < n for k, n in zip(idx, dims, strict=False)):
                return 0.0  # zero padding: an entry outside its range is 0
            return arr[idx]
        if isinstance(e, sp.KroneckerDelta):
            a, b = (int(self._ev(x, env)) for x in e.args)
            return 1.0 if a == b else 0.0
        if isinstance(e, sp.Sum):
            (j, lo, hi), *more = e.limits
            body = sp.Sum(e.function, *more) if more else e.function
            total = 0.0
            for v in range(int(self._ev(lo, env)), int(self._ev(hi, env)) + 1):
                total += self._ev(body, {**env, j: v})
            return total
        if isinstance(e, sp.Add):
            return sum(self._ev(a, env) for a in e.args)
        if isinstance(e, sp.Mul):
            out = 1.0
            for a in e.args:
                out *= self._ev(a, env)
            return out
        if isinstance(e, sp.Pow):
            return self._ev(e.base, env) ** self._ev(e.exp, env)
        if isinstance(e, sp.Function):
            return _function(e)(*[self._ev(a, env) for a in e.args])
        raise TypeError(f"cannot evaluate {type(e).__name__} in index form")

    def line(self, line: IndexLine, shape: tuple[int, ...]) -> Any:
        """The line's right-hand side at every value of its free indices (declared shape)."""
        if not line.free:
            return self(line.rhs)
        out = np.zeros(shape)
        for pos in itertools.product(*(range(1, n + 1) for n in shape)):
            out[tuple(p - 1 for p in pos)] = self(line.rhs, dict(zip(line.free, pos, strict=True)))
        return out


def rel_err(a: Any, b: Any) -> float:
    """max |a − b| / (|a| + |b|) over entries (0 where both are 0)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    den = np.abs(a) + np.abs(b)
    num = np.abs(a - b)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
    return float(np.max(r)) if r.size else 0.0


def _dims(program: Any, sizes: Mapping[str, int], name: str) -> tuple[int, ...]:
    from ..derive.sizes import concrete_sizes

    dims = concrete_sizes(program, sizes)
    return tuple(d if isinstance(d, int) else dims[d] for d in program[name].shape)


def index_forward_backward(
    d: IndexDerivation, point: Mapping[str, Any], sizes: Mapping[str, int]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(node values, error signals) from the index lines alone, at ``point``."""
    from ..derive.sizes import concrete_sizes

    program = d.program
    dims = concrete_sizes(program, sizes)
    values = {k: np.asarray(v, dtype=float) for k, v in point.items()}
    for name, value in _const_values(program).items():
        values.setdefault(name, value)
    ev = IndexEvaluator(values, dims)
    for line in d.forward:
        values[line.name] = ev.line(line, _dims(program, sizes, line.name))
    signals = {}
    for line in d.backprop:
        signals[line.name] = ev.line(line, _dims(program, sizes, line.name))
        values[f"{line.name}_bar"] = signals[line.name]
    return values, signals


@dataclass
class BridgeCheck:
    """Index form vs matrix form at random sizes: the worst relative error per route."""

    sizes: list[dict[str, int]]
    forward: float = 0.0
    backprop: float = 0.0
    naive: float = 0.0
    worst: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return max(self.forward, self.backprop, self.naive) < 1e-9

    def text(self) -> str:
        shown = "; ".join(", ".join(f"{k}={v}" for k, v in s.items()) for s in self.sizes)
        verdict = "agrees" if self.ok else "DISAGREES"
        return (
            f"check: index form {verdict} with the matrix form at random sizes ({shown}): "
            f"max relative error forward {self.forward:.1e}, backprop {self.backprop:.1e}, "
            f"naive {self.naive:.1e}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "sizes": self.sizes,
            "forward": self.forward,
            "backprop": self.backprop,
            "naive": self.naive,
            "ok": self.ok,
        }


def random_sizes(d: IndexDerivation, seed: int, low: int = 2, high: int = 5) -> dict[str, int]:
    """Random values for the unbound sizes (distinct where possible)."""
    from ..derive.sizes import unbound_sizes

    rng = np.random.default_rng(seed)
    names = unbound_sizes(d.program)
    pool = list(range(low, high + 1))
    rng.shuffle(pool)
    return {n: int(pool[k % len(pool)]) for k, n in enumerate(names)}


def bridge_check(d: IndexDerivation, seeds: tuple[int, ...] = (0, 1)) -> BridgeCheck:
    """Every index line against its matrix form at random points of random sizes."""
    from ..derive.vector import vector_backprop
    from .vector_eval import backward_values, random_point

    program = d.program
    matrix = vector_backprop(program)
    check = BridgeCheck([])
    for seed in seeds:
        sizes = random_sizes(d, seed)
        check.sizes.append(sizes)
        point = random_point(program, sizes, seed=seed)
        fwd, signals, _ = backward_values(matrix, point)
        values, isignals = index_forward_backward(d, point, sizes)
        for line in d.forward:
            e = rel_err(values[line.name], fwd[line.name])
            check.forward = max(check.forward, e)
            if e > 1e-9:
                check.worst.append(f"forward {line.name}: {e:.1e}")
        consts = _const_values(program)
        ev = IndexEvaluator(
            {
                **consts,
                **_as_arrays(point),
                **_as_arrays(fwd),
                **{f"{k}_bar": v for k, v in _as_arrays(signals).items()},
            },
            _all_sizes(program, sizes),
        )
        for line in d.backprop:  # each line given the matrix route's signals
            got = ev.line(line, _dims(program, sizes, line.name))
            e = max(
                rel_err(got, signals[line.name]), rel_err(isignals[line.name], signals[line.name])
            )
            check.backprop = max(check.backprop, e)
            if e > 1e-9:
                check.worst.append(f"backprop {line.name}: {e:.1e}")
        for g in d.naive:
            line = IndexLine(
                g.param,
                g.steps[-1].lhs,
                g.result,
                sp.S.Zero,
                sp.S.Zero,
                tuple(g.wrt.indices) if isinstance(g.wrt, sp.Indexed) else (),
            )
            got = ev.line(line, _dims(program, sizes, g.param))
            e = rel_err(got, signals[g.param])
            check.naive = max(check.naive, e)
            if e > 1e-9:
                check.worst.append(f"naive {g.param}: {e:.1e}")
    return check


def _const_values(program: Any) -> dict[str, Any]:
    """Scalar consts by name (matrix consts are not indexed; they keep their symbol)."""
    return {
        c.name: np.asarray(float(c.value), dtype=float)  # type: ignore[arg-type]
        for c in program.consts
        if not isinstance(c.value, list)
    }


def _as_arrays(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: np.asarray(v, dtype=float) for k, v in values.items()}


def _all_sizes(program: Any, sizes: Mapping[str, int]) -> dict[str, int]:
    from ..derive.sizes import concrete_sizes

    return concrete_sizes(program, sizes)
