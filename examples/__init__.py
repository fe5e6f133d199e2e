"""The shipped example models (``.chain`` files), found by name."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def example_names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.chain"))


def example_path(name: str) -> Path | None:
    """The path of a shipped example given its name (``xor``), or None."""
    if "/" in name or name.endswith(".chain"):
        return None
    p = HERE / f"{name}.chain"
    return p if p.is_file() else None


def _directive(name: str, key: str) -> dict[str, float]:
    path = example_path(name)
    if path is None:
        raise KeyError(name)
    for line in path.read_text().splitlines():
        if line.startswith(f"# {key}:"):
            pairs = line.split(":", 1)[1].split(",")
            return {k.strip(): float(v) for k, v in (p.split("=") for p in pairs)}
    return {}


def example_point(name: str) -> dict[str, float]:
    """The lecture's values for an example (its ``# at:`` line), or {}."""
    return _directive(name, "at")


def example_expected_gradient(name: str) -> dict[str, float]:
    """The gradient the lecture states (its ``# expect:`` line), or {}."""
    return _directive(name, "expect")
