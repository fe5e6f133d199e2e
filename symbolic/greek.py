"""The Greek alphabet, from Unicode's own names (no table to keep in step).

>>> LETTERS["lambda"], LETTERS["omega"], CAPITALS["Sigma"], NAMES["λ"]
('λ', 'ω', 'Σ', 'lambda')
"""

from __future__ import annotations

import unicodedata


def _name(ch: str) -> str:
    word = unicodedata.name(ch).split()[-1].lower()
    return "lambda" if word == "lamda" else word  # Unicode spells it without the b


#: name → small letter (α … ω; the final-sigma form ς left out)
LETTERS = {_name(chr(c)): chr(c) for c in range(0x3B1, 0x3CA) if c != 0x3C2}
#: Name → capital letter (Α … Ω)
CAPITALS = {_name(chr(c)).capitalize(): chr(c) for c in range(0x391, 0x3AA) if c != 0x3A2}
#: letter → name, small and capital (σ → sigma, Σ → Sigma)
NAMES = {**{v: k for k, v in LETTERS.items()}, **{v: k for k, v in CAPITALS.items()}}
