"""Errors that point at the user's text: file, line, column, the line and a caret."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SourceSpan:
    """Where something is in the user's text (1-based line and column)."""

    file: str = "<input>"
    line: int = 1
    column: int = 1
    text: str = ""  # the whole source line, for the caret display

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class ChainruleError(Exception):
    """Base class of every error chainrule reports to a user (CLI exit status 2)."""


class ModelError(ChainruleError):
    """A problem in a model or answer text, located at a span.

    >>> err = ModelError("unknown name 'q'", SourceSpan("m.chain", 3, 5, "y = q + 1"))
    >>> print(err)
    m.chain:3:5: error: unknown name 'q'
        y = q + 1
            ^
    """

    def __init__(self, message: str, span: SourceSpan | None = None, hint: str = "") -> None:
        self.message = message
        self.span = span or SourceSpan()
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        s = self.span
        text = s.text.rstrip("\n")
        if len(text) > 200:  # keep the caret display readable for very long lines
            start = max(0, s.column - 100)
            text = text[start : start + 200]
            caret_col = s.column - start
        else:
            caret_col = s.column
        out = f"{s}: error: {self.message}"
        if text:
            # keep tabs under tabs so the caret lines up however the terminal expands them
            pad = "".join(ch if ch == "\t" else " " for ch in text[: caret_col - 1])
            out += f"\n    {text}\n    {pad}^"
        if self.hint:
            out += f"\n    hint: {self.hint}"
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "error": self.message,
            "file": self.span.file,
            "line": self.span.line,
            "column": self.span.column,
            "hint": self.hint,
        }


class LimitError(ModelError):
    """Input exceeded a size, nesting, exponent or literal limit."""


class BudgetExceeded(ChainruleError):
    """A derivation ran past its time or size budget (the naive route on big nets)."""
