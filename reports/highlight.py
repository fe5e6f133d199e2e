"""Python syntax highlighting for the HTML report, with the standard library only.

Tokens from :mod:`tokenize` become ``<span class="…">`` (``kw`` keyword, ``bi`` builtin,
``num`` number, ``str`` string, ``com`` comment, ``op`` operator); all text is escaped.
Code that does not tokenize is shown escaped without colors.

>>> highlight_python("x = 1  # one")
'x <span class="op">=</span> <span class="num">1</span>  <span class="com"># one</span>'
"""

from __future__ import annotations

import builtins
import io
import keyword
import tokenize
from html import escape

BUILTINS = frozenset(dir(builtins)) | {"np"}


def _class(tok: tokenize.TokenInfo) -> str:
    if tok.type == tokenize.NAME:
        if keyword.iskeyword(tok.string) or keyword.issoftkeyword(tok.string):
            return "kw"
        return "bi" if tok.string in BUILTINS else ""
    return {
        tokenize.NUMBER: "num",
        tokenize.STRING: "str",
        tokenize.COMMENT: "com",
        tokenize.OP: "op",
    }.get(tok.type, "")


def highlight_python(code: str) -> str:
    """HTML for ``code`` with spans around tokens; line structure and spacing kept."""
    lines = code.splitlines(keepends=True)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return escape(code)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    out: list[str] = []
    pos = 0
    for tok in tokens:
        if (
            tok.type
            in (tokenize.ENDMARKER, tokenize.DEDENT, tokenize.INDENT, tokenize.NEWLINE, tokenize.NL)
            or not tok.string
        ):
            continue
        start = offsets[tok.start[0] - 1] + tok.start[1]
        end = offsets[tok.end[0] - 1] + tok.end[1]
        out.append(escape(code[pos:start]))
        cls = _class(tok)
        text = escape(code[start:end])
        out.append(f'<span class="{cls}">{text}</span>' if cls else text)
        pos = end
    out.append(escape(code[pos:]))
    return "".join(out)
