"""Reports: rendering derivations and reports (text, JSON, HTML, Markdown, LaTeX).

Rendering is dispatched by format; the math is never recomputed here.
"""

from __future__ import annotations

from typing import Any


def render_derivation(derivation: Any, fmt: str = "text", **options: Any) -> str:
    """Render a :class:`~chainrule.derive.Derivation` as ``text``, ``json``, ``html``,
    ``md`` or ``tex``. ``fragment=True`` gives an embeddable piece (Jupyter)."""
    if fmt == "text":
        from .text import render_text

        return render_text(derivation, **options)
    if fmt == "json":
        from .text import render_json

        return render_json(derivation, **options)
    from .document import render_document

    return render_document(derivation, fmt, **options)


__all__ = ["render_derivation"]
