"""What building a program keeps track of: the names in scope, their versions, the
model's own functions, and the final checks (a loss, a parameter)."""

from __future__ import annotations

import difflib
from pathlib import Path

import sympy as sp

from ..ops import REGISTRY
from . import grammar as g
from .errors import ModelError, SourceSpan
from .expr import CONSTANTS
from .program import Assignment, Program, Variable


class Scope:
    """Names visible while building: declarations and the latest version of each node."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.items: dict[str, Variable | Assignment] = {}
        self.versions: dict[str, int] = {}
        self.defined_later: dict[str, int] = {}
        self.reserved: set[str] = set()  # every name the text writes anywhere
        self.functions = REGISTRY.extend()  # the shipped functions and the model's defs

    def resolve(self, node: g.Name) -> sp.Basic:
        item = self.items.get(node.id)
        if item is not None:
            return item.symbol
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if self.functions.is_function(node.id):
            raise ModelError(f"'{node.id}' is a function; call it like {node.id}(z)", node.span)
        if node.id in self.defined_later:
            raise ModelError(
                f"'{node.id}' is used before it is defined (line {self.defined_later[node.id]})",
                node.span,
            )
        close = difflib.get_close_matches(node.id, list(self.items), n=1)
        hint = f"did you mean '{close[0]}'?" if close else "declare it with 'param' or 'input'"
        raise ModelError(f"unknown name '{node.id}'", node.span, hint)

    def new_version(self, name: str) -> str:
        n = self.versions.get(name, 0) + 1
        self.versions[name] = n
        if n == 1:
            return name
        candidate = f"{name}_{n}"
        while candidate in self.items or candidate in self.reserved:
            candidate += "_"
        self.reserved.add(candidate)
        return candidate


def check_new_name(name: str, span: SourceSpan, scope: Scope) -> None:
    if name in scope.items:
        raise ModelError(f"'{name}' is declared twice", span)
    if scope.functions.is_function(name):
        raise ModelError(f"'{name}' is a function name and cannot be declared", span)
    if name in g.KEYWORDS:
        raise ModelError(f"'{name}' is a keyword", span)


def finish_program(
    parsed: g.ParsedText,
    variables: list[Variable],
    assignments: list[Assignment],
    loss: tuple[str, SourceSpan] | None,
    scope: Scope,
) -> Program:
    end = SourceSpan(parsed.filename, parsed.source.count("\n") + 1, 1, "")
    if not assignments:
        raise ModelError("the model has no assignments (e.g. 'z = w*x + b')", end)
    if loss is None:
        raise ModelError(
            "no loss: add a line 'loss NAME' naming the output to differentiate",
            end,
            f"e.g. 'loss {assignments[-1].display}'",
        )
    item = scope.items.get(loss[0])
    if item is None:
        raise ModelError(f"loss '{loss[0]}' is not defined", loss[1])
    if not isinstance(item, Assignment):
        raise ModelError(f"loss '{loss[0]}' is a {item.role}, not a computed node", loss[1])
    if not any(v.role == "param" for v in variables):
        raise ModelError(
            "no parameters: declare what to differentiate with 'param'",
            SourceSpan(parsed.filename, 1, 1, ""),
        )
    return Program(
        parsed.title or Path(parsed.filename).stem,
        variables,
        assignments,
        item.name,
        parsed.filename,
        parsed.source,
        functions=scope.functions,
    )
