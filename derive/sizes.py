"""Sizes of vector programs: the names in shapes, their numbers (bound, inferred or
small distinct defaults) and how many scalars a program holds.

>>> from chainrule.symbolic import parse_program
>>> p = parse_program("param W[m, n]\\ninput x[n]\\nL = sum(W @ x)\\nloss L")
>>> size_names(p), concrete_sizes(p)
(['m', 'n'], {'m': 3, 'n': 2})
"""

from __future__ import annotations

from collections.abc import Mapping

import sympy as sp

from ..symbolic.program import Program

#: Sizes given to unbound size names for unit-form expansion and random points
#: (distinct small numbers, so a transposed matrix cannot pass a check by accident).
DEFAULT_SIZES = (3, 2, 4, 5)


def size_names(program: Program) -> list[str]:
    """Size names in order of first appearance in the declarations."""
    names: list[str] = []
    for v in program.variables:
        for d in v.shape:
            if isinstance(d, str) and d not in names:
                names.append(d)
    return names


def concrete_sizes(program: Program, sizes: Mapping[str, int] | None = None) -> dict[str, int]:
    """Every size name → a number: bound (``const n = 3``), given, or a small default."""
    out: dict[str, int] = {}
    free = 0
    for name in size_names(program):
        if sizes and name in sizes:
            out[name] = int(sizes[name])
        elif name in program.sizes:
            out[name] = program.sizes[name]
        else:
            out[name] = DEFAULT_SIZES[free % len(DEFAULT_SIZES)]
            free += 1
    return out


def size_symbols(sizes: dict[str, int]) -> dict[sp.Basic, int]:
    return {sp.Symbol(k, integer=True, positive=True): v for k, v in sizes.items()}


def unbound_sizes(program: Program) -> list[str]:
    return [n for n in size_names(program) if n not in program.sizes]


def _entry_count(shape: tuple, dims: Mapping[str, int]) -> int:
    n = 1
    for d in shape:
        n *= d if isinstance(d, int) else dims.get(str(d), 1)
    return n


def scalar_entries(program: Program, sizes: Mapping[str, int] | None = None) -> int:
    """How many scalars the program's leaves hold on concrete sizes (its unit-form size)."""
    dims = concrete_sizes(program, sizes)
    return sum(_entry_count(v.shape, dims) for v in program.variables if v.role != "const")
