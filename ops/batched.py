"""Batched code rules of the tensor operations (generated code for vector programs,
where a vector is an ``(n, B)`` array of B examples' columns), one per operation,
referenced from each entry's ``batched`` field.

A rule gets the batch printer ``p`` and the node: ``p(a)`` is an argument's
``(code, state)`` — the state says whether a value is per example (``batch``), its
transpose (``batchT``), the same for all examples (``const``) or summed over them
(``sum``) — ``p.reduce(fn, code, state)`` reduces each example's entries,
``p.wrap(code)`` brackets, ``p.combine(states, what)`` joins states and
``p.use_helper(name)`` copies a helper (``softmax``) into the module.
"""

from __future__ import annotations

from typing import Any


def reduction(fn: str) -> Any:
    """A reduction of all entries of each example (``sum``, ``mean``)."""
    return lambda p, e: p.reduce(fn, *p(e.args[0]))


def helper(name: str) -> Any:
    """A helper applied to each example's column (``softmax``, ``log_softmax``)."""

    def rule(p: Any, e: Any) -> tuple[str, str]:
        code, state = p(e.args[0])
        p.use_helper(name)
        return f"{name}({code})", state

    return rule


def dot(p: Any, e: Any) -> tuple[str, str]:
    (a, sa), (b, sb) = p(e.args[0]), p(e.args[1])
    return p.reduce("sum", f"{p.wrap(a)}*{p.wrap(b)}", p.combine([sa, sb], "a dot product"))


def norm2(p: Any, e: Any) -> tuple[str, str]:
    a, state = p(e.args[0])
    return p.reduce("sum", f"{p.wrap(a)}**2", state)


def broadcast(p: Any, e: Any) -> tuple[str, str]:
    return p(e.args[0])  # NumPy broadcasting does it


def column_sums(p: Any, e: Any) -> tuple[str, str]:
    """𝟙ᵀA: each column's sum; per example for batched columns."""
    code, state = p(e.args[0])
    if state == "const":  # a whole matrix (a minibatch program's (B, m) values)
        return f"xp.sum({code}, axis=0, keepdims=True)", "const"
    return p.reduce("sum", code, state)


def row_sums(p: Any, e: Any) -> tuple[str, str]:
    """A 𝟙: each row's sum; over the examples for batched columns."""
    code, state = p(e.args[0])
    return f"xp.sum({code}, axis=1, keepdims=True)", ("const" if state == "const" else "sum")
