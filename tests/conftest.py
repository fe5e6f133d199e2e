"""Shared test helpers: relative error as the lectures define it, finite differences."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pytest


def rel_err(a: object, b: object, floor: float = 1e-300) -> float:
    """max |a − b| / (|a| + |b|) over entries; two zeros count as agreement."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    num = np.abs(a - b)
    den = np.abs(a) + np.abs(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > floor, num / np.maximum(den, floor), 0.0)
    return float(np.max(r)) if r.size else 0.0


def central_difference(
    f: Callable[[dict[str, float]], float], point: Mapping[str, float], name: str
) -> float:
    """Two-sided difference of f in one scalar coordinate, float64, h = ε^(1/3)·max(1, |x|)."""
    x = float(point[name])
    h = np.finfo(float).eps ** (1 / 3) * max(1.0, abs(x))
    h = (x + h) - x  # exactly representable step
    up, down = dict(point), dict(point)
    up[name], down[name] = x + h, x - h
    return (f(up) - f(down)) / (2 * h)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
