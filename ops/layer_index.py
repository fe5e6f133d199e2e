"""Index notation of the lectures' layers: one rule per layer operation, and the few
index-level objects those rules need (a range indicator, a max over an index range and
the "first maximum" indicator its derivative routes through).

Every rule is the ``index_form`` of its entry in :mod:`chainrule.ops.layers` and follows
:mod:`chainrule.ops.index_rules` (1-based indices; ``r`` or ``c`` is None where that size
is 1). The rules read the nodes through their attributes only (``operands``,
``settings``, ``shape``, ``is_max``), so this module does not import the layers.

Conventions the lines rely on (the README states them):

* **zero padding**: an entry read outside its range is 0 (``x_{t−τ+1}`` past the end of x);
  where an operand is padded, the rule writes the padding as ``𝟙[1 ≤ t−τ+1 ≤ n]``;
* ``max_{j=2i−1…2i} z_j`` is the max over an index range (a pooling group), and its
  derivative is ``Σ_j 𝟙[j = argmax …] ∂z_j`` (ties go to the first maximum, row-major).

=================  ==============================================================
operation          entry in index notation (1-based)
=================  ==============================================================
conv (full)        y_t = Σ_τ 𝟙[1 ≤ t−τ+1 ≤ n] x_{t−τ+1} w_τ
conv (valid)       y_t = Σ_τ x_{t+k−τ} w_τ   (sizes bound by const print as numbers)
correlate (valid)  y_i = Σ_s a_{i+s−1} k_s   (full: a_{i+s−k}, padded)
flip               y_ij = a_{R+1−i, C+1−j}
maxpool            y_i = max_{j=s(i−1)+1…si} z_j      (2-D: over the s×s group)
avgpool            y_i = (1/s) Σ_{j=s(i−1)+1…si} z_j
maxpool_route      z̄_j = Σ_i ȳ_i 𝟙[j = argmax_{s(i−1)+1…si} z]
avgpool_route      z̄_j = (1/s) Σ_i ȳ_i 𝟙[s(i−1)+1 ≤ j ≤ si]
flatten            v_r = Σ_a Σ_b δ_{r, C(a−1)+b} Z_ab
unflatten          Z_ab = v_{C(a−1)+b}
max(a, b, …)       y_i = max(a_i, b_i, …)    (first_extreme: 𝟙[argmax(a_i, b_i) = 1])
max(v)             y = max_j v_j             (first_extreme_entry: 𝟙[j = argmax v])
layernorm          y_i = (z_i − μ(z))/√(σ²(z) + ε),  μ(z) = Σ_j z_j/n,
                   σ²(z) = Σ_j (z_j − μ(z))²/n
batchnorm          Y_bi = (Z_bi − μ_i(Z))/√(σ²_i(Z) + ε),  μ_i(Z) = Σ_b Z_bi/B, σ²_i likewise
dropout            y_i = h_i m_i/(1 − p)
=================  ==============================================================

>>> import sympy as sp
>>> from chainrule.derive.index_form import Converter, index
>>> t, tau = index("t"), index("τ")
>>> InRange(t - tau + 1, 1, 3)
InRange(t - τ + 1, 1, 3)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import sympy as sp
from sympy.core.symbol import Str

from .index_rules import all_entries

Ix = Any  # an index (or None where the size is 1)
Limit = tuple[sp.Basic, sp.Basic, sp.Basic]

#: The lectures' letters for a kernel's offsets: Σ_τ in 1-D, Σ_s Σ_t in 2-D.
KERNEL_1D = "τ"
KERNEL_2D = ("s", "t")


# ================================================================ index-level objects
def _text(p: Any, e: sp.Basic) -> str:
    """An index expression as a subscript: letters before the number, no spaces (t−τ+1)."""
    if not isinstance(e, sp.Add):
        return str(p._print(e)).replace(" ", "")
    minus = "-" if getattr(p, "printmethod", "") == "_lecture_latex" else "−"
    out = ""
    for k, t in enumerate(
        sorted(e.args, key=lambda t: (t.is_Number, t.could_extract_minus_sign()))
    ):
        negative = t.could_extract_minus_sign()
        text = str(p._print(-t if negative else t)).replace(" ", "")
        out += (minus if negative else ("+" if k else "")) + text
    return out


def _star(j: sp.Symbol) -> sp.Symbol:
    """The index bound inside an argmax for j: ``j*`` (printed j′), of j's own class so
    the evaluator binds it like any index, and never equal to a line's own index."""
    return type(j)(j.name + "*", integer=True, positive=True)


class InRange(sp.Function):
    """``𝟙[lo ≤ a ≤ hi]`` for an index expression a: zero padding made explicit, and the
    range condition of a contracted Kronecker delta (``Σ_{j=lo…hi} δ_ja f(j)``)."""

    nargs = 3

    @classmethod
    def eval(cls, a: sp.Basic, lo: sp.Basic, hi: sp.Basic) -> sp.Basic | None:
        if a.is_Number and lo.is_Number and hi.is_Number:
            return sp.S.One if lo <= a <= hi else sp.S.Zero
        return None

    def index_diff(self, d: Callable[..., Any], note: Callable[[str], None]) -> sp.Basic:
        """Constant in every entry (it depends on indices only)."""
        return sp.S.Zero

    def index_value(self, ev: Callable[..., Any], env: dict[Any, int]) -> float:
        a, lo, hi = (ev(x, env) for x in self.args)
        return 1.0 if lo <= a <= hi else 0.0

    def counted_as(self) -> sp.Basic:
        """No arithmetic on values (index bookkeeping, like a subscript)."""
        return sp.S.Zero

    def _lecture_unicode(self, p: Any) -> str:
        a, lo, hi = (_text(p, x) for x in self.args)
        return f"𝟙[{lo} ≤ {a} ≤ {hi}]"

    def _lecture_latex(self, p: Any) -> str:
        a, lo, hi = (p._print(x) for x in self.args)
        return rf"\mathbf{{1}}\left[{lo} \le {a} \le {hi}\right]"


class EntryMax(sp.Function):
    """``EntryMax(is_max, a, b, …)``: max (min) of entries, ∂/∂aₖ = 𝟙[aₖ is the first max]."""

    def fdiff(self, argindex: int = 1) -> sp.Basic:
        if argindex == 1:
            return sp.S.Zero
        return FirstAmong(argindex - 2, *self.args)

    def index_diff(self, d: Callable[..., Any], note: Callable[[str], None]) -> sp.Basic:
        """Σ_k 𝟙[argument k is the first max] ∂aₖ (the chain rule through max)."""
        terms = []
        for k, a in enumerate(self.args[1:]):
            da = d(a)
            if da != 0:
                terms.append(FirstAmong(k, *self.args) * da)
        if terms:
            note(f"max rule: ∂ {self._word()}(a, b, …)/∂a = 1[a is the first {self._word()}]")
        return sp.Add(*terms)

    def index_value(self, ev: Callable[..., Any], env: dict[Any, int]) -> float:
        values = [float(ev(a, env)) for a in self.args[1:]]
        return max(values) if self.args[0] else min(values)

    def _word(self) -> str:
        return "max" if self.args[0] else "min"

    def _lecture_unicode(self, p: Any) -> str:
        return f"{self._word()}({', '.join(p._print(a) for a in self.args[1:])})"

    def _lecture_latex(self, p: Any) -> str:
        args = ", ".join(p._print(a) for a in self.args[1:])
        return rf"\{self._word()}\left({args}\right)"


class FirstAmong(sp.Function):
    """``FirstAmong(k, is_max, a, b, …)``: 1 where argument k (0-based) is the first
    maximum (minimum) of a, b, …, else 0."""

    def index_diff(self, d: Callable[..., Any], note: Callable[[str], None]) -> sp.Basic:
        return sp.S.Zero

    def index_value(self, ev: Callable[..., Any], env: dict[Any, int]) -> float:
        k, is_max = int(self.args[0]), bool(self.args[1])
        values = [float(ev(a, env)) for a in self.args[2:]]
        best = values.index(max(values) if is_max else min(values))
        return 1.0 if best == k else 0.0

    def _lecture_unicode(self, p: Any) -> str:
        which = "argmax" if self.args[1] else "argmin"
        args = ", ".join(p._print(a) for a in self.args[2:])
        return f"𝟙[{which}({args}) = {int(self.args[0]) + 1}]"

    def _lecture_latex(self, p: Any) -> str:
        which = "argmax" if self.args[1] else "argmin"
        args = ", ".join(p._print(a) for a in self.args[2:])
        return (
            rf"\mathbf{{1}}\left[\operatorname{{{which}}}({args}) = {int(self.args[0]) + 1}\right]"
        )


def _limits(args: Sequence[sp.Basic]) -> list[Limit]:
    return [(a[0], a[1], a[2]) for a in args]


def _positions(limits: list[Limit], ev: Callable[..., Any], env: dict[Any, int]) -> Any:
    """Every value of the limits' indices, row-major (the first index varies slowest)."""
    ranges = [range(int(ev(lo, env)), int(ev(hi, env)) + 1) for _, lo, hi in limits]
    return itertools.product(*ranges)


def _first_extreme(
    body: sp.Basic,
    is_max: bool,
    limits: list[Limit],
    ev: Callable[..., Any],
    env: dict[Any, int],
) -> tuple[float, tuple[int, ...]]:
    """(the max or min of body over the limits, where it is first reached)."""
    best, where = None, ()
    for pos in _positions(limits, ev, env):
        v = float(ev(body, {**env, **dict(zip([j for j, _, _ in limits], pos, strict=True))}))
        if best is None or (v > best if is_max else v < best):
            best, where = v, pos
    return (best if best is not None else 0.0), where


def _range_text(p: Any, limits: list[Limit], latex: bool = False) -> str:
    sep = r"\ldots " if latex else "…"
    return ",".join(f"{_text(p, j)}={_text(p, lo)}{sep}{_text(p, hi)}" for j, lo, hi in limits)


class MaxOver(sp.Expr):
    """``MaxOver(body, is_max, (j, lo, hi), …)``: max_{j=lo…hi} body (min when not
    is_max). Its derivative routes through the first maximum:
    ``∂ max_j b_j = Σ_j 𝟙[j = argmax b] ∂b_j``."""

    is_commutative = True

    def __new__(cls, body: sp.Basic, is_max: Any, *limits: Sequence[sp.Basic]) -> MaxOver:
        return sp.Expr.__new__(
            cls, body, sp.Integer(int(bool(is_max))), *[sp.Tuple(*lim) for lim in limits]
        )

    @property
    def body(self) -> sp.Basic:
        return self.args[0]

    @property
    def is_max(self) -> bool:
        return bool(self.args[1])

    @property
    def limits(self) -> list[Limit]:
        return _limits(self.args[2:])

    def index_diff(self, d: Callable[..., Any], note: Callable[[str], None]) -> sp.Basic:
        db = d(self.body)
        if db == 0:
            return sp.S.Zero
        note("max rule: ∂ max_j b_j = Σ_j 1[j is the first max] ∂b_j")
        bound = {j: _star(j) for j, _, _ in self.limits}
        first = FirstAt(
            sp.Tuple(*[j for j, _, _ in self.limits]),
            self.body.xreplace(bound),
            self.is_max,
            *[(bound[j], lo, hi) for j, lo, hi in self.limits],
        )
        return sp.Sum(first * db, *self.limits)

    def index_value(self, ev: Callable[..., Any], env: dict[Any, int]) -> float:
        return _first_extreme(self.body, self.is_max, self.limits, ev, env)[0]

    def counted_as(self) -> sp.Basic:
        """Its op count: a max over n entries is n − 1 comparisons, counted as a sum."""
        return sp.Sum(self.body, *self.limits)

    def _lecture_unicode(self, p: Any) -> str:
        word = "max" if self.is_max else "min"
        body = p._print(self.body)
        if isinstance(self.body, sp.Add):
            body = f"({body})"
        return f"{word}_{{{_range_text(p, self.limits)}}} {body}"

    def _lecture_latex(self, p: Any) -> str:
        word = "max" if self.is_max else "min"
        return rf"\{word}_{{{_range_text(p, self.limits, True)}}} {p._print(self.body)}"


class FirstAt(sp.Expr):
    """``FirstAt((j, …), body, is_max, (j*, lo, hi), …)``: 1 where the positions j, … are
    the first maximum (row-major) of body over its own indices j*, …, else 0."""

    is_commutative = True

    def __new__(
        cls, positions: Any, body: sp.Basic, is_max: Any, *limits: Sequence[sp.Basic]
    ) -> FirstAt:
        return sp.Expr.__new__(
            cls,
            sp.Tuple(*positions),
            body,
            sp.Integer(int(bool(is_max))),
            *[sp.Tuple(*lim) for lim in limits],
        )

    @property
    def positions(self) -> tuple[sp.Basic, ...]:
        return tuple(self.args[0])

    @property
    def limits(self) -> list[Limit]:
        return _limits(self.args[3:])

    def covers(self, value: sp.Basic, lo: sp.Basic, hi: sp.Basic) -> bool:
        """True when this indicator is 0 unless ``lo ≤ value ≤ hi`` (a position of it
        ranges over exactly lo…hi), so a range indicator beside it says nothing more."""
        return any(
            pos == value and (a, b) == (lo, hi)
            for pos, (_, a, b) in zip(self.positions, self.limits, strict=True)
        )

    def index_diff(self, d: Callable[..., Any], note: Callable[[str], None]) -> sp.Basic:
        return sp.S.Zero

    def index_value(self, ev: Callable[..., Any], env: dict[Any, int]) -> float:
        _, where = _first_extreme(self.args[1], bool(self.args[2]), self.limits, ev, env)
        here = tuple(int(ev(pos, env)) for pos in self.positions)
        return 1.0 if here == where else 0.0

    def counted_as(self) -> sp.Basic:
        return sp.Sum(self.args[1], *self.limits)

    def _parts(self, p: Any, latex: bool) -> tuple[str, str]:
        """(positions, 'argmax_{ranges} z') — the ranges alone where the body is the
        entry at the own indices (``argmax_{2r−1…2r} z``), else with the indices named."""
        pos = ",".join(_text(p, x) for x in self.positions)
        pos = f"({pos})" if len(self.positions) > 1 else pos
        which = (
            ("argmax" if self.args[2] else "argmin")
            if not latex
            else (r"\operatorname{argmax}" if self.args[2] else r"\operatorname{argmin}")
        )
        sep = r"\ldots " if latex else "…"
        body = self.args[1]
        own = tuple(j for j, _, _ in self.limits)
        if isinstance(body, sp.Indexed) and tuple(body.indices) == own:
            ranges = ",".join(f"{_text(p, lo)}{sep}{_text(p, hi)}" for _, lo, hi in self.limits)
            name = p._print(sp.Symbol(str(body.base), real=True))
            return pos, f"{which}_{{{ranges}}} {name}"
        ren = _display_names(self)
        limits = [(ren[j], lo, hi) for j, lo, hi in self.limits]
        shown = body.xreplace(ren)
        return pos, f"{which}_{{{_range_text(p, limits, latex)}}} {p._print(shown)}"

    def _lecture_unicode(self, p: Any) -> str:
        pos, arg = self._parts(p, False)
        return f"𝟙[{pos} = {arg}]"

    def _lecture_latex(self, p: Any) -> str:
        pos, arg = self._parts(p, True)
        return rf"\mathbf{{1}}\left[{pos} = {arg}\right]"


def _display_names(first: FirstAt) -> dict[sp.Basic, sp.Basic]:
    """Printable names for an indicator's own indices (j* → j′, or j″ where j′ is in use)."""
    own = [j for j, _, _ in first.limits]
    used = {s.name for s in first.atoms(sp.Symbol) if s not in own}
    out: dict[sp.Basic, sp.Basic] = {}
    for j in own:
        base = j.name.rstrip("*′″‴")
        name = next(
            (base + pr for pr in ("′", "″", "‴") if base + pr not in used), j.name.rstrip("*")
        )
        used.add(name)
        out[j] = type(j)(name, integer=True, positive=True)
    return out


# ================================================================ helpers
def _number(conv: Any, size: sp.Basic) -> sp.Basic:
    """A size as its number where a const binds it (so a kernel's k inside x_{t+k−τ}
    cannot be read as an index k), else the size itself."""
    number = getattr(conv, "number", None)
    return number(size) if number is not None else size


def _entry(conv: Any, e: sp.Basic, idx: list[Ix]) -> sp.Basic:
    """``e``'s entry at (row, col) from a list of the non-trivial axes' indices."""
    rows, cols = e.shape
    it = iter(idx)
    r = next(it) if rows != 1 else None
    c = next(it) if cols != 1 else None
    return conv(e, r, c)


def _bound(conv_: Any, size: sp.Basic) -> sp.Basic:
    """An index bound inside an indicator (``j*``, printed j′): never a line's own index."""
    return _star(conv_.fresh(size))


# ================================================================ convolution
def _shifted(
    conv: Any,
    e: sp.Basic,
    r: Ix,
    c: Ix,
    shift: Callable[[sp.Basic, sp.Basic, Any, Any], sp.Basic],
    padded: bool,
) -> sp.Basic:
    """Σ over the kernel's offsets of a[shift(out, off)] k[off] (``e.operands`` = (a, k)),
    with 𝟙[in range] factors where ``padded`` (the zeros outside a)."""
    a, k = e.operands
    two_d = a.shape[1] != 1 or k.shape[1] != 1
    letters = KERNEL_2D if two_d else (KERNEL_1D, KERNEL_1D)
    outs = (r, c)

    def at_offsets(offs: tuple[Ix, Ix]) -> sp.Basic:
        idx, guards = [], sp.S.One
        for axis in range(2):
            n, kk = _number(conv, a.shape[axis]), _number(conv, k.shape[axis])
            if n == 1 and kk == 1:
                continue
            out, off = outs[axis], offs[axis] if offs[axis] is not None else sp.S.One
            pos = sp.expand(shift(out if out is not None else sp.S.One, off, n, kk))
            if n != 1:
                idx.append(pos)
            if padded and kk != 1:
                guards *= InRange(pos, 1, n)
        kidx = [o for o, d in zip(offs, k.shape, strict=True) if d != 1]
        return guards * _entry(conv, a, idx) * _entry(conv, k, kidx)

    return conv.sum(
        lambda s: conv.sum(lambda t: at_offsets((s, t)), k.shape[1], letters[1]),
        k.shape[0],
        letters[0],
    )


def conv(conv_: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """Full: y_t = Σ_τ x_{t−τ+1} w_τ (x zero-padded); valid: y_t = Σ_τ x_{t+k−τ} w_τ."""
    if e.settings[0] == 1:
        return _shifted(conv_, e, r, c, lambda out, off, n, k: out + k - off, False)
    return _shifted(conv_, e, r, c, lambda out, off, n, k: out - off + 1, True)


def correlate(conv_: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """Valid: y_i = Σ_s a_{i+s−1} k_s; full: y_i = Σ_s a_{i+s−k} k_s (a zero-padded)."""
    if e.settings[0] == 1:
        return _shifted(conv_, e, r, c, lambda out, off, n, k: out + off - 1, False)
    return _shifted(conv_, e, r, c, lambda out, off, n, k: out + off - k, True)


def flip(conv_: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """flip(a)_ij = a_{R+1−i, C+1−j}."""
    (a,) = e.operands
    rows, cols = (_number(conv_, d) for d in a.shape)
    return conv_(
        a,
        rows + 1 - r if r is not None else None,
        cols + 1 - c if c is not None else None,
    )


# ================================================================ pooling
def _window(e: Any, axis: int, out: Ix, s: int, rows: sp.Basic) -> tuple[sp.Basic, sp.Basic]:
    """(first, last) entry of output index ``out``'s window along ``axis``: s(i−1)+1 … si;
    rows of a carried tensor pool per channel (C blocks of H rows, leftovers dropped in
    each), which differs only where s does not divide H."""
    at = out if out is not None else sp.S.One
    channels = e.settings[2] if len(e.settings) > 2 else 1
    height = int(rows) // channels if axis == 0 and channels > 1 else 0
    if height and height % s:
        block = sp.floor((at - 1) / (height // s))  # the channel of output row i
        first = height * block + s * (at - 1 - (height // s) * block) + 1
        return first, first + s - 1
    return s * (at - 1) + 1, s * at


def _group(
    e: Any, r: Ix, c: Ix, conv_: Any, for_sum: bool = False
) -> tuple[list[Ix], list[Limit], sp.Basic]:
    """The indices of operand z in output (r, c)'s pooling group: a bound index over
    s(i−1)+1 … si on each axis whose window is longer than 1, the index itself where the
    window is 1 (a 1-D pool's columns); and a factor 𝟙[…] that a sum needs (``for_sum``)
    where one window leaves entries out (a Σ from 1 means over the whole axis)."""
    z = e.operands[0]
    idx: list[Ix] = []
    limits: list[Limit] = []
    guard: sp.Basic = sp.S.One
    for axis, (out, size, s) in enumerate(zip((r, c), z.shape, e.settings[:2], strict=True)):
        if size == 1:
            continue
        if s == 1:
            idx.append(out if out is not None else sp.S.One)
            continue
        j = conv_.fresh(size)
        idx.append(j)
        if out is not None:
            limits.append((j, *_window(e, axis, out, s, z.shape[0])))
        elif for_sum and s != size:  # the only window: Σ_j 𝟙[1 ≤ j ≤ s] over the axis
            limits.append((j, sp.S.One, size))
            guard *= InRange(j, 1, s)
        else:
            limits.append((j, sp.S.One, sp.Integer(s)))
    return idx, limits, guard


def maxpool(conv_: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """y_i = max_{j=s(i−1)+1…si} z_j (2-D: the max over the s×s group)."""
    idx, limits, _ = _group(e, r, c, conv_)
    body = _entry(conv_, e.operands[0], idx)
    return MaxOver(body, True, *limits) if limits else body


def avgpool(conv_: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """y_i = (1/s) Σ_{j=s(i−1)+1…si} z_j (2-D: the mean over the s×s group)."""
    idx, limits, guard = _group(e, r, c, conv_, for_sum=True)
    body = guard * _entry(conv_, e.operands[0], idx)
    sr, sc = e.settings[:2]
    return (sp.Sum(body, *limits) if limits else body) / (sr * sc)


def _groups_of(e: Any, conv_: Any) -> tuple[list[tuple[Ix, sp.Basic]], list[Limit]]:
    """(index, pooled size) of each axis of the pooled output, and the Σ over them."""
    g = e.operands[0]
    outs: list[tuple[Ix, sp.Basic]] = []
    for size in g.shape:
        outs.append((conv_.fresh(size) if size != 1 else None, size))
    return outs, [(i, sp.S.One, n) for i, n in outs if i is not None]


def maxpool_route(conv_: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """z̄_j = Σ_i ȳ_i 𝟙[j = argmax_{j′ in group i} z_j′]: ȳ routed to each group's first max."""
    g, z = e.operands
    sr, sc = e.settings[:2]
    outs, sums = _groups_of(e, conv_)
    positions, limits, body_idx = [], [], []
    for axis, (here, (i, _), size, s) in enumerate(
        zip((r, c), outs, z.shape, (sr, sc), strict=True)
    ):
        if size == 1:
            continue
        b = _bound(conv_, size)
        positions.append(here)
        limits.append((b, *_window(e, axis, i, s, z.shape[0])))
        body_idx.append(b)
    first = FirstAt(positions, _entry(conv_, z, body_idx), True, *limits)
    signal = _entry(conv_, g, [i for i, _ in outs if i is not None])
    return sp.Sum(signal * first, *sums) if sums else signal * first


def avgpool_route(conv_: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """z̄_j = (1/s) Σ_i ȳ_i 𝟙[s(i−1)+1 ≤ j ≤ si]: ȳ shared equally by each group."""
    (g,) = e.operands
    sr, sc = e.settings[:2]
    outs, sums = _groups_of(e, conv_)
    inside = sp.S.One
    for axis, (here, (i, _), s) in enumerate(zip((r, c), outs, (sr, sc), strict=True)):
        if here is None:
            continue
        inside *= InRange(here, *_window(e, axis, i, s, e.shape[0]))
    signal = _entry(conv_, g, [i for i, _ in outs if i is not None])
    body = signal * inside
    return (sp.Sum(body, *sums) if sums else body) / (sr * sc)


# ================================================================ flatten
def flatten(conv_: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """v_r = Σ_a Σ_b δ_{r, C(a−1)+b} Z_ab: entry (a, b) of Z goes to place C(a−1)+b."""
    (z,) = e.operands
    cols = _number(conv_, z.shape[1])

    def place(a: Ix, b: Ix) -> sp.Basic:
        at = sp.expand(cols * ((a if a is not None else 1) - 1) + (b if b is not None else 1))
        return sp.KroneckerDelta(r if r is not None else 1, at) * conv_(z, a, b)

    return all_entries(conv_, z, place)


def unflatten(conv_: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """Z_ab = v_{C(a−1)+b}."""
    (v,) = e.operands
    cols = _number(conv_, e.shape[1])
    at = sp.expand(cols * ((r if r is not None else 1) - 1) + (c if c is not None else 1))
    return _entry(conv_, v, [at])


# ================================================================ max and min
def extremum(conv_: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """max(a, b, …)_i = max(a_i, b_i, …) (min likewise)."""
    return EntryMax(int(e.is_max), *[conv_(a, r, c) for a in e.args])


def first_extreme(conv_: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """𝟙[argmax(a_i, b_i, …) = k]: 1 where argument k is the first max."""
    return FirstAmong(int(e.args[0]), int(e.args[1]), *[conv_(a, r, c) for a in e.operands])


def _all_limits(conv_: Any, v: sp.Basic) -> tuple[list[Ix], list[Limit]]:
    idx, limits = [], []
    for size in v.shape:
        if size == 1:
            continue
        j = conv_.fresh(size)
        idx.append(j)
        limits.append((j, sp.S.One, size))
    return idx, limits


def extreme_of(conv_: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """max(v) = max_{j=1…n} v_j (over every entry; min likewise)."""
    v = e.args[0]
    idx, limits = _all_limits(conv_, v)
    body = _entry(conv_, v, idx)
    return MaxOver(body, e.is_max, *limits) if limits else body


def first_extreme_entry(conv_: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """𝟙[j = argmax_{j′} v_j′]: one-hot at v's first max entry (row-major)."""
    (v,) = e.operands
    positions = [i for i in (r, c) if i is not None]
    idx, limits = [], []
    for size in v.shape:
        if size == 1:
            continue
        b = _bound(conv_, size)
        idx.append(b)
        limits.append((b, sp.S.One, size))
    if not limits:
        return sp.S.One
    return FirstAt(positions, _entry(conv_, v, idx), bool(e.settings[0]), *limits)


# ================================================================ normalization
class Statistic(sp.Expr):
    """``Statistic(kind, operand name, (i,), definition)``: a normalization's mean
    (kind 0, μ(z) = Σ_j z_j/n) or population variance (kind 1, σ²(z) = Σ_j (z_j − μ(z))²/n),
    over every entry (layernorm) or over column i (batchnorm, μ_i(Z)). It prints by its
    name, its definition is listed once beside the lines, and it differentiates as its
    definition, using Σ_j (z_j − μ) = 0 for the variance: ∂σ² = (2/n) Σ_j (z_j − μ) ∂z_j."""

    is_commutative = True

    def __new__(cls, kind: int, operand: str, position: Any, definition: sp.Basic) -> Statistic:
        name = operand if isinstance(operand, Str) else Str(operand)
        return sp.Expr.__new__(cls, sp.Integer(kind), name, sp.Tuple(*position), definition)

    @property
    def definition(self) -> sp.Basic:
        return self.args[3]

    def index_diff(self, d: Callable[..., Any], note: Callable[[str], None]) -> sp.Basic:
        body = self.definition
        if int(self.args[0]) == 0:
            return d(body)  # type: ignore[no-any-return]
        means = {m for m in sp.preorder_traversal(body) if isinstance(m, Statistic)}
        held = {m: sp.Symbol(f"_held{k}", real=True) for k, m in enumerate(means)}
        out = d(body.xreplace(held))
        if out == 0:
            return sp.S.Zero
        note("Σ_j (z_j - μ) = 0")
        once = {j: type(j)(j.name[:-1], integer=True, positive=True) for j in _stars(out)}
        return out.xreplace(once).xreplace({v: k for k, v in held.items()})

    def index_value(self, ev: Callable[..., Any], env: dict[Any, int]) -> float:
        return float(ev(self.definition, env))

    def counted_as(self) -> sp.Basic:
        return self.definition

    def shown(self) -> tuple[sp.Basic, sp.Basic]:
        """(this statistic, its definition with plain bound indices) for a 'where' line."""
        nested = [m for m in sp.preorder_traversal(self.definition) if isinstance(m, Statistic)]
        inner = set().union(*[_stars(m) for m in nested]) if nested else set()
        stars = sorted(_stars(self.definition) - inner, key=lambda j: j.name)
        used = {a.name for a in self.atoms(sp.Symbol)} - {j.name for j in stars}
        plain = {}
        for j in stars:
            base = j.name.rstrip("*′″‴")
            name = next((base + pr for pr in ("", "′", "″", "‴") if base + pr not in used), j.name)
            used.add(name)
            plain[j] = type(j)(name, integer=True, positive=True)
        return self, self.definition.xreplace(plain)

    def _parts(self, p: Any) -> tuple[str, str, str]:
        word = "μ" if int(self.args[0]) == 0 else "σ²"
        operand = p._print(sp.Symbol(str(self.args[1]), real=True))
        at = ",".join(_text(p, i) for i in self.args[2])
        return word, at, operand

    def _lecture_unicode(self, p: Any) -> str:
        word, at, operand = self._parts(p)
        return f"{word}{'_' + at if at else ''}({operand})"

    def _lecture_latex(self, p: Any) -> str:
        _, at, operand = self._parts(p)
        word = r"\mu" if int(self.args[0]) == 0 else r"\sigma^2"
        return f"{word}{'_{' + at + '}' if at else ''}({operand})"


def _stars(e: sp.Basic) -> set[sp.Basic]:
    """The indices bound inside a statistic (named ``j**``)."""
    return {s for s in e.atoms(sp.Symbol) if s.name.endswith("**")}


def _operand_name(z: sp.Basic) -> str:
    return str(z.name) if isinstance(z, sp.MatrixSymbol) else str(z).replace("*", " ")


def _stat_sum(conv_: Any, z: sp.Basic, body: Callable[..., sp.Basic], axes: tuple[bool, bool]):  # noqa: ANN202
    """Σ over the axes of z marked True (indices ``j**``), body(row, col); the others None."""
    idx: list[Ix] = []
    limits = []
    for size, summed in zip(z.shape, axes, strict=True):
        if not summed or size == 1:
            idx.append(None)
            continue
        j = conv_.fresh(size)
        star = type(j)(j.name + "**", integer=True, positive=True)
        idx.append(star)
        limits.append((star, sp.S.One, size))
    out = body(*idx)
    return sp.Sum(out, *limits) if limits else out


def _stats(conv_: Any, z: sp.Basic, c: Ix, per_column: bool) -> tuple[sp.Basic, sp.Basic]:
    """(μ, σ²) of every entry of z, or of column c (``per_column``)."""
    rows, cols = z.shape
    n = rows if per_column else rows * cols
    axes = (True, not per_column)
    at = (c,) if per_column and c is not None else ()
    name = _operand_name(z)

    def entry(a: Ix, b: Ix) -> sp.Basic:
        return conv_(z, a, c if per_column else b)

    mu = Statistic(0, name, at, _stat_sum(conv_, z, entry, axes) / n)
    var = _stat_sum(conv_, z, lambda a, b: (entry(a, b) - mu) ** 2, axes) / n
    return mu, Statistic(1, name, at, var)


def layernorm(conv_: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """y_i = (z_i − μ(z))/√(σ²(z) + ε), μ(z) = Σ_j z_j/n, σ²(z) = Σ_j (z_j − μ(z))²/n."""
    z, eps = e.args
    mu, var = _stats(conv_, z, None, False)
    return (conv_(z, r, c) - mu) / sp.sqrt(var + eps)


def layer_std(conv_: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """σ̂ = √(σ²(z) + ε)."""
    z, eps = e.args
    return sp.sqrt(_stats(conv_, z, None, False)[1] + eps)


def batchnorm(conv_: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """Y_bi = (Z_bi − μ_i(Z))/√(σ²_i(Z) + ε), column i's mean and variance over the examples."""
    z, eps = e.args
    mu, var = _stats(conv_, z, c, True)
    return (conv_(z, r, c) - mu) / sp.sqrt(var + eps)


def batch_inv_std(conv_: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """1/σ̂_i = 1/√(σ²_i(Z) + ε) of column i."""
    z, eps = e.args
    return 1 / sp.sqrt(_stats(conv_, z, c, True)[1] + eps)


# ================================================================ dropout
def dropout(conv_: Any, e: Any, r: Ix, c: Ix) -> sp.Basic:
    """y_i = h_i m_i / (1 − p) (inverted dropout, the mask m given)."""
    h, m, p = e.args
    return conv_(h, r, c) * conv_(m, r, c) / (1 - p)
