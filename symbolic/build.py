"""Parse ``.chain`` text and build its program: scalar or vector, by its declarations.

>>> p = parse_program("param w\\ninput x\\ny = w*x\\nloss y")
>>> p.loss
'y'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sympy as sp

from . import grammar as g
from .errors import ModelError, SourceSpan
from .expr import CONSTANTS, ExprBuilder  # noqa: F401  (re-exported for homework answers)
from .program import Program
from .scalar import build_scalar_program
from .vector import build_vector_program


def _is_vector_text(parsed: g.ParsedText) -> bool:
    for st in parsed.statements:
        if isinstance(st, g.Declaration) and any(d.dims for d in st.names):
            return True
    return False


def build_program(parsed: g.ParsedText, limits: g.Limits = g.DEFAULT_LIMITS) -> Program:
    """Give meaning to parsed statements: resolve names, build SymPy, check the loss."""
    if _is_vector_text(parsed):
        return build_vector_program(parsed, limits)
    return build_scalar_program(parsed, limits)


def parse_program(
    text: str, filename: str = "<input>", limits: g.Limits = g.DEFAULT_LIMITS
) -> Program:
    """Parse and build a program from ``.chain`` text.

    >>> p = parse_program("param w\\ninput x\\ny = sigma(w*x)\\nloss y")
    >>> p.loss, [v.name for v in p.params]
    ('y', ['w'])
    """
    return build_program(g.parse_text(text, filename, limits), limits)


def load_program(path: str | Path, limits: g.Limits = g.DEFAULT_LIMITS) -> Program:
    """Read a ``.chain`` file (UTF-8) and build its program."""
    path = Path(path)
    text = g.read_source(path, "model", limits)
    if not text.strip():
        raise ModelError("the model file is empty", SourceSpan(str(path), 1, 1))
    return parse_program(text, str(path), limits)


def load_model(model: Any) -> Program:
    """A program from a Program, a path, ``.chain`` text, an example name or a SymPy expr."""
    from .program import program_from_expr

    if isinstance(model, Program):
        return model
    if isinstance(model, sp.Basic):
        return program_from_expr(model)
    if isinstance(model, Path):
        return load_program(model)
    text = str(model)
    if "\n" in text or "=" in text:
        return parse_program(text)
    from ..examples import example_path

    path = example_path(text)
    return load_program(path if path is not None else text)
