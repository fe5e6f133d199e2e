"""Index notation: a vector program unit by unit, with sums over named indices.

The lectures derive a layer three ways; this module gives the third, index form::

    z_i = Σ_j w⁽¹⁾_ij x_j + b⁽¹⁾_i        ȳ_k = y_k − t_k
    h̄_i = Σ_k ȳ_k w⁽²⁾_ki                 w̄⁽¹⁾_ij = z̄_i x_j

at **symbolic sizes**: nothing is expanded, so the size of a line does not grow with
m, n or k. Every line is *derived*: a matrix expression becomes an indexed scalar
expression by each operation's ``index_form`` in the registry
(:mod:`chainrule.ops.index_rules`), and derivatives are taken entry by entry,
``∂w⁽¹⁾_i'j'/∂w⁽¹⁾_ij = δ_i'i δ_j'j``, then the Kronecker deltas are contracted
(``Σ_i' δ_i'i f(i') = f(i)``).

Representation: SymPy's ``Indexed``/``IndexedBase`` for entries, ``Sum`` (one index
per ``Sum``, 1-based limits ``(j, 1, n)``) and ``KroneckerDelta``, with our own
differentiation (:func:`diff_entry`) and delta contraction (:func:`contract`).
Reason: SymPy's ``Sum.diff`` + ``doit`` answers with ``Piecewise`` over the index
ranges and is slow; here every index is in range by construction (shapes were checked
at parse time), so ``Σ_j δ_ja f(j) = f(a)`` holds unconditionally and stays readable.

Index names follow the lectures: j over inputs, k over outputs (targets), i over the
first hidden size, ℓ inside a softmax sum; primes (i′) where one size needs two
indices in one line.

>>> from chainrule.symbolic import parse_program
>>> p = parse_program('''param W1[m, n], b1[m], W2[k, m], b2[k]
... input x[n], t[k]
... z = W1 @ x + b1
... h = sigma(z)
... y = W2 @ h + b2
... L = sum((y - t)^2) / 2
... loss L''')
>>> d = index_derivation(p)
>>> [str(line.rhs) for line in d.forward][:1]
['b1[i] + Sum(W1[i, j]*x[j], (j, 1, n))']
>>> [(line.name, str(line.rhs)) for line in d.backprop][4:5]
[('h', 'Sum(W2[k, i]*y_bar[k], (k, 1, k))')]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import sympy as sp

from ..ops import REGISTRY, Registry, is_matrix
from ..symbolic.errors import ChainruleError
from ..symbolic.program import Assignment, Program
from .records import error_signal
from .rules import function_name, partial


class IndexFormError(ChainruleError):
    """An expression the index rules do not cover (reported, never a traceback)."""


PRIMES = ("", "′", "″", "‴")
#: Index letters for sizes that are neither the input's, the target's nor the first hidden one.
POOL = "pqrsuvabcdefgh"


class Index(sp.Symbol):
    """A summation or free index (1-based). Its own class, so the index k never equals
    the size k (``Σ_k`` runs over ``k = 1 … k``)."""


def index(name: str) -> Index:
    """An index symbol (a positive integer, 1-based)."""
    return Index(name, integer=True, positive=True)


# ------------------------------------------------------------------ index letters
def lecture_letters(program: Program) -> dict[str, str]:
    """Size name (or number, as text) → index letter, in the lectures' convention.

    The first input's sizes get j, the other inputs' (targets) k, the first
    remaining (hidden) size i; further sizes their own one-letter name or p, q, r, ….
    """
    letters: dict[str, str] = {}
    taken: set[str] = set()
    shapes = [v.shape for v in program.variables] + [a.shape for a in program.assignments]
    named = {str(d) for shape in shapes for d in shape}  # sizes with a name (k: a kernel's)
    named |= {v.name for v in program.variables} | {a.name for a in program.assignments}
    named |= {n[0].lower() + n[1:] for n in lowercase_entries(program)}  # K prints as k_st

    def give(size: str, letter: str) -> bool:
        if letter in named and letter != size:
            return False  # an index k over 1…2 beside a size or node k reads as one thing
        if size not in letters and letter not in taken:
            letters[size] = letter
            taken.add(letter)
        return letters.get(size) == letter

    inputs = [v for v in program.inputs if v.shape]
    for n, v in enumerate(inputs):
        for d in v.shape:
            give(str(d), "j" if n == 0 and "j" not in taken else "k")
    for shape in shapes:
        for d in shape:
            size = str(d)
            if size in letters:
                continue
            own = size if len(size) == 1 and size.islower() and size != "l" else ""
            first = ["i"] if "i" not in taken else [own] if own else []
            any(give(size, c) for c in [*first, *POOL])
    return letters


# ------------------------------------------------------------------ conversion
@dataclass
class Converter:
    """Matrix expressions → indexed scalar expressions, one line's index names at a time."""

    letters: dict[str, str]
    used: set[str] = field(default_factory=set)
    bases: dict[str, sp.IndexedBase] = field(default_factory=dict)
    registry: Registry = REGISTRY
    sizes: dict[str, int] = field(default_factory=dict)  # sizes bound by const (k = 3)

    def number(self, size: sp.Basic) -> sp.Basic:
        """A size as its number where a const binds it (a kernel's k inside x_{t+k−τ},
        where the letter k may be an index), else the size itself."""
        value = self.sizes.get(str(size))
        return sp.Integer(value) if value is not None else size

    def fresh(self, size: sp.Basic, letter: str | None = None) -> sp.Symbol:
        """A new index over ``1..size`` not used yet in this line (i, i′, i″, …)."""
        base = letter or self.letters.get(str(size)) or next(c for c in POOL)
        n = 0
        while True:
            name = base + (PRIMES[n] if n < len(PRIMES) else str(n))
            if name not in self.used:
                self.used.add(name)
                return index(name)
            n += 1

    def free_indices(self, shape: tuple) -> tuple[sp.Basic | None, sp.Basic | None]:
        """Free indices (row, column) of an entry; None where the size is 1."""
        r, c = shape
        return (
            self.fresh(r) if r != 1 else None,
            self.fresh(c) if c != 1 else None,
        )

    def base(self, name: str) -> sp.IndexedBase:
        if name not in self.bases:
            self.bases[name] = sp.IndexedBase(name, real=True)
        return self.bases[name]

    def entry(self, name: str, shape: tuple, r: sp.Basic | None, c: sp.Basic | None) -> sp.Basic:
        """``X[r, c]``, ``x[r]`` for a column, ``x[c]`` for a row, ``x`` for a 1×1."""
        idx = [e for e, d in zip((r, c), shape, strict=True) if d != 1]
        if not idx:
            return sp.Symbol(name, real=True)
        return self.base(name)[tuple(idx)]

    def limits(self, i: sp.Symbol, size: sp.Basic) -> tuple:
        return (i, sp.S.One, size)

    def __call__(
        self, e: sp.Basic, r: sp.Basic | None = None, c: sp.Basic | None = None
    ) -> sp.Basic:
        """The (r, c) entry of ``e`` (a matrix expression) or ``e`` itself indexed (a scalar)."""
        if is_matrix(e):
            return self.rule(e)(self, e, r, c)
        op = self.registry.for_node(e)
        if op is not None and op.kind == "tensor" and op.index_form is not None:
            return op.index_form(self, e, None, None)  # a reduction: a scalar of matrices
        if not e.args or isinstance(e, sp.Symbol):
            return e
        if isinstance(e, sp.Lambda):
            return e
        return e.func(*[self(a) for a in e.args])

    def rule(self, e: sp.Basic) -> Callable[..., sp.Basic]:
        """The operation's index rule from its registry entry (``index_form``)."""
        op = self.registry.for_node(e)
        if op is not None and op.index_form is not None:
            return op.index_form
        return _leaf_entry

    def sum(
        self, body: Callable[[sp.Basic | None], sp.Basic], size: sp.Basic, letter: str | None = None
    ) -> sp.Basic:
        """Σ_s body(s) over a fresh index s (no sum when the size is 1)."""
        if size == 1:
            return body(None)
        s = self.fresh(size, letter)
        return sp.Sum(body(s), self.limits(s, size))


def _converter(program: Program, letters: dict[str, str]) -> Converter:
    """A converter for one line of ``program`` (its functions, its const-bound sizes)."""
    return Converter(letters, registry=program.functions, sizes=program.sizes)


def _leaf_entry(conv: Converter, e: sp.Basic, r: sp.Basic | None, c: sp.Basic | None) -> sp.Basic:
    """A matrix leaf or constant: ``X_rc`` (``x_r`` for a column), 𝟙_rc = 1, I_rc = δ_rc."""
    if isinstance(e, sp.MatrixSymbol):
        return conv.entry(str(e.name), e.shape, r, c)
    if isinstance(e, sp.OneMatrix):
        return sp.S.One
    if isinstance(e, sp.ZeroMatrix):
        return sp.S.Zero
    if isinstance(e, sp.Identity):
        return sp.KroneckerDelta(r, c)
    op = conv.registry.for_node(e)
    name = op.name if op is not None else type(e).__name__
    why = (op.extra.get("no_index_form") if op is not None else None) or (
        "its registry entry has no index_form (index notation writes one entry of a vector "
        "or matrix at a time, with one index per axis)"
    )
    raise IndexFormError(f"--notation index: no index form for {name} ({e}): {why}")


# ------------------------------------------------------------ differentiation
class EntryDerivative(sp.Expr):
    """∂v_e/∂w_ij left unexpanded (a step of the naive route); args (entry, wrt)."""

    is_commutative = True

    @property
    def of(self) -> sp.Basic:
        return self.args[0]

    @property
    def wrt(self) -> sp.Basic:
        return self.args[1]


def _delta(a: sp.Basic, b: sp.Basic) -> sp.Basic:
    return sp.KroneckerDelta(a, b)


def diff_entry(
    expr: sp.Basic,
    wrt: sp.Basic,
    rules: list[str],
    through: Callable[[sp.Basic], sp.Basic | None] | None = None,
) -> sp.Basic:
    """∂expr/∂wrt for one entry ``wrt`` (an ``Indexed`` or a scalar symbol).

    ``through(v)`` (optional) gives the derivative of a node entry ``v`` the expression
    reads (the naive route's chain rule through a substituted assignment); the rule
    names used are appended to ``rules``.
    """

    def d(e: sp.Basic) -> sp.Basic:
        if e.is_Number or isinstance(e, (sp.KroneckerDelta, sp.NumberSymbol)):
            return sp.S.Zero
        own = getattr(e, "index_diff", None)  # a layer's index object (max over a range, 𝟙[…])
        if own is not None:
            return own(d, _note)  # type: ignore[no-any-return]
        if isinstance(e, sp.Indexed):
            if isinstance(wrt, sp.Indexed) and e.base == wrt.base:
                _note("∂w_ab/∂w_ij = δ_ai δ_bj")
                return sp.Mul(*[_delta(a, b) for a, b in zip(e.indices, wrt.indices, strict=True)])
            return _through(e)
        if isinstance(e, sp.Symbol):
            if e == wrt:
                return sp.S.One
            return _through(e)
        if isinstance(e, sp.Add):
            _note("sum rule")
            return sp.Add(*[d(a) for a in e.args])
        if isinstance(e, sp.Mul):
            terms = []
            for k, f in enumerate(e.args):
                df = d(f)
                if df != 0:
                    terms.append(sp.Mul(*e.args[:k], df, *e.args[k + 1 :]))
            if len(terms) > 1:
                _note("product rule")
            return sp.Add(*terms)
        if isinstance(e, sp.Pow):
            b, p = e.args
            db = d(b)
            if not p.free_symbols - _index_symbols(p):
                if db == 0:
                    return sp.S.Zero
                _note("power rule")
                return p * b ** (p - 1) * db
            _note("exponential rule")
            return e * (sp.log(b) * d(p) + p * db / b)
        if isinstance(e, sp.Sum):
            body = d(e.function)
            if body == 0:
                return sp.S.Zero
            _note("linearity of Σ")
            return sp.Sum(body, *e.limits)
        if isinstance(e, sp.Function):
            terms = []
            for k, a in enumerate(e.args):
                da = d(a)
                if da != 0:
                    _note(f"chain rule ({_function_label(e)})")
                    terms.append(partial(e, k) * da)
            return sp.Add(*terms)
        if isinstance(e, EntryDerivative):
            raise IndexFormError("cannot differentiate an unexpanded derivative")
        raise IndexFormError(f"cannot differentiate {type(e).__name__} in index form")

    def _through(e: sp.Basic) -> sp.Basic:
        if through is None:
            return sp.S.Zero
        out = through(e)
        return sp.S.Zero if out is None else out

    def _note(rule: str) -> None:
        if rule not in rules:
            rules.append(rule)

    return d(expr)


def _function_label(f: sp.Basic) -> str:
    """σ, tanh, σ', … as the function's registry entry writes it."""
    op = REGISTRY.for_node(f)
    return (op.unicode or op.name) if op is not None else function_name(f)


def _index_symbols(e: sp.Basic) -> set[sp.Basic]:
    return {s for s in e.free_symbols if isinstance(s, Index)}


# --------------------------------------------------------------- contraction
def _terms(e: sp.Basic) -> list[sp.Basic]:
    """Additive terms of ``e``, distributing only over sums that hold a Kronecker delta."""
    if isinstance(e, sp.Add):
        return [t for a in e.args for t in _terms(a)]
    if isinstance(e, sp.Mul):
        out: list[sp.Basic] = [sp.S.One]
        for f in e.args:
            parts = _terms(f) if isinstance(f, sp.Add) and f.has(sp.KroneckerDelta) else [f]
            out = [a * p for a in out for p in parts]
        return out
    return [e]


def _delta_on(term: sp.Basic, j: sp.Basic) -> tuple[sp.Basic, sp.Basic] | None:
    """(δ factor, what j equals) when ``term`` has a factor δ_{j,e} with e free of j, or
    δ_{a,b} with a − b = ±j + (terms free of j) (a shifted index: δ_{t−τ+1, j})."""
    deltas = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.KroneckerDelta) and f.has(j)]
    for f in deltas:  # δ_ja first: it needs no range condition
        if j in f.args:
            other = f.args[1] if f.args[0] == j else f.args[0]
            if not other.has(j):
                return f, other
    for f in deltas:
        gap = sp.expand(f.args[0] - f.args[1])
        slope = gap.coeff(j)
        rest = sp.expand(gap - slope * j)
        if slope in (1, -1) and not rest.has(j):
            return f, sp.expand(-rest / slope)
    return None


def _range_guard(rest: sp.Basic, value: sp.Basic, lo: sp.Basic, hi: sp.Basic) -> sp.Basic:
    """What Σ_{j=lo…hi} δ_{j,value} f(j) = f(value) needs besides: 1 where value is
    surely in range, else 𝟙[lo ≤ value ≤ hi]. Surely in range: a plain index over a
    whole size (every index is in range by construction), a factor that is 0 outside
    (a first-maximum indicator over the same range), or, over a whole size, an entry
    read at ``value`` (zero padding: an entry outside its range is 0)."""
    from ..ops.layer_index import InRange

    whole = lo == 1 and not _index_symbols(hi)
    if whole and value.is_Atom:
        return sp.S.One
    for f in sp.Mul.make_args(rest):
        covers = getattr(f, "covers", None)
        if covers is not None and covers(value, lo, hi):
            return sp.S.One
        base = f.base if isinstance(f, sp.Pow) and f.exp.is_positive else f
        if whole and isinstance(base, sp.Indexed) and value in base.indices:
            return sp.S.One
    return InRange(value, lo, hi)


def contract(e: sp.Basic) -> sp.Basic:
    """Σ_j δ_ja f(j) = f(a) everywhere, factors free of j pulled out of Σ_j."""
    if isinstance(e, sp.Sum):
        e = _outer_first(e)
        out = contract(e.function)
        for limit in reversed(e.limits):
            out = _contract_one(out, limit)
        return out
    if isinstance(e, (sp.Add, sp.Mul, sp.Pow)) or (isinstance(e, sp.Function) and e.args):
        return e.func(*[contract(a) for a in e.args])
    return e


def _outer_first(e: sp.Sum) -> sp.Sum:
    """Σ_t a_t Σ_τ δ_{t−τ+1, i} b_τ → Σ_t Σ_τ a_t δ_{t−τ+1, i} b_τ, so the outer index is
    solved first: the sum left runs over the kernel (x̄_i = Σ_τ ȳ_{i+τ−1} w_τ, the
    lectures' flip-and-filter) rather than over every output."""
    (j, _, _), *more = e.limits
    factors = sp.Mul.make_args(e.function)
    inner = [f for f in factors if isinstance(f, sp.Sum)]
    if more or len(inner) != 1:
        return e
    ties = [
        d
        for d in inner[0].function.atoms(sp.KroneckerDelta)
        if j in d.free_symbols and not any(j == a for a in d.args)
    ]
    if not ties:
        return e
    rest = sp.Mul(*[f for f in factors if f is not inner[0]])
    return sp.Sum(rest * inner[0].function, *inner[0].limits, *e.limits)


def _contract_one(body: sp.Basic, limit: tuple) -> sp.Basic:
    j, lo, hi = limit
    if not body.has(j):
        return (hi - lo + 1) * body
    out = []
    for t in _terms(body):
        hit = _delta_on(t, j)
        if hit is not None:
            rest = sp.Mul(*[f for f in sp.Mul.make_args(t) if f is not hit[0]])
            rest = rest.xreplace({j: hit[1]})
            out.append(contract(rest) * _range_guard(rest, hit[1], lo, hi))
            continue
        if not t.has(j):
            out.append((hi - lo + 1) * t)
            continue
        outside = [f for f in sp.Mul.make_args(t) if not f.has(j)]
        inside = [f for f in sp.Mul.make_args(t) if f.has(j)]
        out.append(sp.Mul(*outside) * sp.Sum(sp.Mul(*inside), limit))
    return _collect_sums(sp.Add(*out))


def _collect_sums(e: sp.Basic) -> sp.Basic:
    """c·Σ_j a + c·Σ_j b → c·Σ_j (a + b) for sums over the same index (one Σ per child)."""
    if not isinstance(e, sp.Add):
        return e
    groups: dict[tuple, list[sp.Basic]] = {}
    rest = []
    for t in e.args:
        factors = sp.Mul.make_args(t)
        sums = [f for f in factors if isinstance(f, sp.Sum)]
        if len(sums) != 1:
            rest.append(t)
            continue
        outside = sp.Mul(*[f for f in factors if f is not sums[0]])
        groups.setdefault((sums[0].limits, outside), []).append(sums[0].function)
    for (limits, outside), bodies in groups.items():
        rest.append(outside * sp.Sum(sp.Add(*bodies), *limits))
    return sp.Add(*rest)


# --------------------------------------------------------------- refolding
@dataclass(frozen=True)
class SoftmaxNode:
    """``y = softmax(z)`` with z a named node: e^{z_k}/Σ_ℓ e^{z_ℓ} is written y_k again."""

    z: str
    y: str


def refold_softmax(e: sp.Basic, nodes: list[SoftmaxNode], conv: Converter) -> sp.Basic:
    """Write e^{z_a}·(Σ_ℓ e^{z_ℓ})^{-p} as y_a (up to p times) in every product."""
    if not nodes or not e.args:
        return e
    e = (
        e.func(*[refold_softmax(a, nodes, conv) for a in e.args])
        if not isinstance(e, (sp.Indexed, sp.Sum))
        else (
            sp.Sum(refold_softmax(e.function, nodes, conv), *e.limits)
            if isinstance(e, sp.Sum)
            else e
        )
    )
    if not isinstance(e, sp.Mul):
        return e
    factors = list(sp.Mul.make_args(e))
    for node in nodes:
        for k, f in enumerate(factors):
            p = _softmax_denominator(f, node.z)
            if p is None:
                continue
            rest = factors[:k] + factors[k + 1 :]
            made, left = [], []
            for g in rest:
                arg = g.args[0] if isinstance(g, sp.exp) else None
                if p > 0 and isinstance(arg, sp.Indexed) and str(arg.base) == node.z:
                    made.append(conv.base(node.y)[arg.indices])
                    p -= 1
                else:
                    left.append(g)
            if made:
                sums = f.base ** (-p) if p else sp.S.One
                return sp.Mul(*left, *made, sums)
            pushed = _into_sum(rest, f, nodes, conv)
            if pushed is not None:
                return pushed
    return e


def _into_sum(
    rest: list[sp.Basic], denominator: sp.Basic, nodes: list[SoftmaxNode], conv: Converter
) -> sp.Basic | None:
    """(Σ_ℓ′ e^{z_ℓ′} a_ℓ′)/Σ_ℓ e^{z_ℓ} → Σ_ℓ′ y_ℓ′ a_ℓ′ (the denominator moved inside)."""
    for k, g in enumerate(rest):
        if not isinstance(g, sp.Sum):
            continue
        inner = refold_softmax(g.function * denominator, nodes, conv)
        if not inner.has(denominator):
            return sp.Mul(*rest[:k], *rest[k + 1 :], sp.Sum(inner, *g.limits))
    return None


def _softmax_denominator(f: sp.Basic, z: str) -> int | None:
    """p when ``f`` is (Σ_ℓ e^{z_ℓ})^{-p}."""
    if not (isinstance(f, sp.Pow) and isinstance(f.base, sp.Sum) and f.exp.is_Integer):
        return None
    body = f.base.function
    if not (isinstance(body, sp.exp) and isinstance(body.args[0], sp.Indexed)):
        return None
    if str(body.args[0].base) != z or int(f.exp) >= 0:
        return None
    return -int(f.exp)


def softmax_nodes(program: Program, letters: dict[str, str]) -> list[SoftmaxNode]:
    """Nodes ``y`` whose index form is e^{z_k}/Σ_ℓ e^{z_ℓ} of a named node z (found from
    the index form itself, so any operation written that way is refolded)."""
    out = []
    for a in program.assignments:
        args = [x for x in a.expr.args if isinstance(x, sp.MatrixSymbol)]
        z = program.item_of(args[0]) if len(args) == 1 and is_matrix(a.expr) else None
        if not isinstance(z, Assignment):
            continue
        conv = _converter(program, letters)
        r, c = conv.free_indices(a.expr.shape)
        factors = sp.Mul.make_args(conv(a.expr, r, c))
        if len(factors) != 2:
            continue
        top = [f for f in factors if isinstance(f, sp.exp)]
        bottom = [f for f in factors if _softmax_denominator(f, z.name) == 1]
        if len(top) == 1 and len(bottom) == 1 and isinstance(top[0].args[0], sp.Indexed):
            if str(top[0].args[0].base) == z.name:
                out.append(SoftmaxNode(z.name, a.name))
    return out


# ------------------------------------------------------------------- records
@dataclass
class IndexLine:
    """One line ``lhs = rhs`` in index form, with its matrix form (the bridge)."""

    name: str
    lhs: sp.Basic
    rhs: sp.Basic
    matrix_lhs: sp.Basic
    matrix_rhs: sp.Basic
    free: tuple[sp.Basic, ...] = ()
    note: str = ""
    terms: list[tuple[str, sp.Basic]] = field(default_factory=list)  # per child (fan-out)
    general: sp.Basic | None = None  # Σ_k ȳ_k ∂y_k/∂h_i, before differentiating


@dataclass
class IndexStep:
    """One step of the naive route: ``lhs = rhs`` by ``rules``."""

    lhs: sp.Basic
    rhs: sp.Basic
    rules: list[str]


@dataclass
class IndexNaiveGradient:
    """∂L/∂θ_ij for one parameter: substituted, differentiated, contracted."""

    param: str
    wrt: sp.Basic  # the entry θ_ij (or the scalar θ)
    result: sp.Basic
    steps: list[IndexStep]


@dataclass
class IndexDerivation:
    """Forward pass, backprop and naive route of a vector program in index notation."""

    program: Program
    letters: dict[str, str]
    forward: list[IndexLine]
    backprop: list[IndexLine]
    naive: list[IndexNaiveGradient]
    substituted_loss: sp.Basic | None
    lowercase: set[str]
    seconds: float = 0.0
    naive_requested: bool = True

    def line(self, name: str, route: str = "backprop") -> IndexLine:
        for line in self.forward if route == "forward" else self.backprop:
            if line.name == name:
                return line
        raise KeyError(name)

    def gradient(self, param: str) -> IndexLine:
        """The backprop line of ``param`` (w̄⁽¹⁾_ij = z̄_i x_j)."""
        return self.line(param)


# ------------------------------------------------------------------- routes
def _shape(item: object) -> tuple[sp.Basic, sp.Basic]:
    sym = item.symbol  # type: ignore[attr-defined]
    return sym.shape if is_matrix(sym) else (sp.S.One, sp.S.One)


def _lhs(conv: Converter, name: str, shape: tuple, bar: bool = False) -> tuple[sp.Basic, tuple]:
    r, c = conv.free_indices(shape)
    if shape == (1, 1) or shape == (sp.S.One, sp.S.One):
        sym = error_signal(name) if bar else sp.Symbol(name, real=True)
        return sym, ()
    label = f"{name}_bar" if bar else name
    return conv.entry(label, shape, r, c), tuple(x for x in (r, c) if x is not None)


def forward_lines(program: Program, letters: dict[str, str]) -> list[IndexLine]:
    """Every assignment in index form: ``z_i = Σ_j w⁽¹⁾_ij x_j + b⁽¹⁾_i``."""
    lines = []
    for a in program.assignments:
        conv = _converter(program, letters)
        shape = _shape(a)
        lhs, free = _lhs(conv, a.name, shape)
        r, c = _free_rc(shape, free)
        rhs = sure_ranges(conv(a.expr, r, c), _ranges(conv, free, shape))
        lines.append(IndexLine(a.name, lhs, rhs, a.symbol, a.expr, free))
    return lines


def _ranges(conv: Converter, free: tuple, shape: tuple) -> dict[sp.Basic, tuple]:
    """Each free index's range (1, size), sizes bound by const as numbers."""
    sizes = [d for d in shape if d != 1]
    return {i: (sp.S.One, conv.number(d)) for i, d in zip(free, sizes, strict=False)}


def sure_ranges(e: sp.Basic, known: dict[sp.Basic, tuple]) -> sp.Basic:
    """Drop range conditions 𝟙[lo ≤ j ≤ hi] that hold for every value of an index j
    (a free index, or one a Σ runs over, whose range lies inside lo…hi)."""
    from ..ops.layer_index import InRange

    if isinstance(e, InRange):
        a, lo, hi = e.args
        if a in known:
            low, high = known[a]
            if (low - lo).is_nonnegative and (hi - high).is_nonnegative:
                return sp.S.One
        return e
    if isinstance(e, sp.Sum):
        inner = dict(known)
        for j, lo, hi in e.limits:
            inner[j] = (lo, hi)
        return sp.Sum(sure_ranges(e.function, inner), *e.limits)
    if isinstance(e, (sp.Add, sp.Mul, sp.Pow)) or (isinstance(e, sp.Function) and e.args):
        return e.func(*[sure_ranges(a, known) for a in e.args])
    return e


def _free_rc(shape: tuple, free: tuple) -> tuple[sp.Basic | None, sp.Basic | None]:
    it: Iterator[sp.Basic] = iter(free)
    r = next(it) if shape[0] != 1 else None
    c = next(it) if shape[1] != 1 else None
    return r, c


def _scalar_entry(conv: Converter, name: str, shape: tuple, free: tuple) -> sp.Basic:
    if not free:
        return sp.Symbol(name, real=True)
    r, c = _free_rc(shape, free)
    return conv.entry(name, shape, r, c)


def backprop_lines(program: Program, letters: dict[str, str]) -> list[IndexLine]:
    """Each error signal in index form, v̄_i = Σ_c Σ_{c's indices} c̄ ∂c/∂v_i, contracted.

    The nodes and order are those of the matrix route (:func:`vector_backprop`), so
    every line pairs with its matrix form.
    """
    from .vector import find_fusions, vector_backprop

    matrix = vector_backprop(program)
    sce = find_fusions(program)  # softmax + cross-entropy written as one step
    soft = softmax_nodes(program, letters)
    lines = []
    for s in matrix.steps:
        conv = _converter(program, letters)
        item = program[s.node]
        shape = _shape(item)
        lhs, free = _lhs(conv, s.node, shape, bar=True)
        wrt = _scalar_entry(conv, s.node, shape, free)
        line = IndexLine(s.node, lhs, sp.S.One, s.signal, s.expression, free, s.note)
        if s.role != "loss":
            children = list(dict.fromkeys(c.child for c in s.contributions))
            if s.node in sce:
                p = sce[s.node]
                term, general = _child_term(program, conv, p.reader, wrt, soft, through=p.skipped)
                for t in p.conditioned_inputs:
                    term = _simplex(term, program.symbol(t))
                line.terms = [(p.reader, term)]
                generals = [general]
            else:
                pairs = [_child_term(program, conv, ch, wrt, soft) for ch in children]
                line.terms = [(ch, t) for ch, (t, _) in zip(children, pairs, strict=True)]
                generals = [g for _, g in pairs]
            known = _ranges(conv, free, shape)
            line.terms = [
                (ch, sure_ranges(canonical_indices(t, letters, free), known))
                for ch, t in line.terms
            ]
            line.general = canonical_indices(sp.Add(*generals), letters, free)
            line.rhs = sp.Add(*[t for _, t in line.terms])
        lines.append(line)
    return lines


def _child_term(
    program: Program,
    conv: Converter,
    child: str,
    wrt: sp.Basic,
    soft: list[SoftmaxNode],
    through: str | None = None,
) -> tuple[sp.Basic, sp.Basic]:
    """Σ_{child's indices} c̄ ∂c/∂wrt, contracted (``through`` a node substituted once),
    and the same sum before differentiating (Σ_k ȳ_k ∂y_k/∂h_i, the Jacobian bridge)."""
    c = program[child]
    shape = _shape(c)
    _, free = _lhs(conv, child, shape)
    r, cc = _free_rc(shape, free)
    expr = conv(c.expr, r, cc)  # type: ignore[union-attr]
    rules: list[str] = []
    via = None
    if through is not None:
        mid = program[through]
        mshape = _shape(mid)

        def via(v: sp.Basic) -> sp.Basic | None:
            if not (isinstance(v, sp.Indexed) and str(v.base) == through):
                return None
            _, mfree = _lhs(conv, through, mshape)
            mr, mc = _free_rc(mshape, mfree)
            body = conv(mid.expr, mr, mc)  # type: ignore[union-attr]
            d = diff_entry(body, wrt, rules)
            return d.xreplace(dict(zip(mfree, v.indices, strict=True)))

    d = refold_softmax(diff_entry(expr, wrt, rules, via), soft, conv)
    signal = _scalar_entry(conv, f"{child}_bar", shape, free) if free else error_signal(child)
    term = signal * d
    general = signal * EntryDerivative(_scalar_entry(conv, child, shape, free), wrt)
    for i, size in reversed(list(zip(free, [x for x in shape if x != 1], strict=True))):
        term = sp.Sum(term, (i, 1, size))
        general = sp.Sum(general, (i, 1, size))
    return _tidy(refold_softmax(contract(term), soft, conv)), general


def _simplex(term: sp.Basic, target: sp.Basic) -> sp.Basic:
    """Σ_k t_k = 1 (each column of the target sums to 1): the softmax–CE step."""
    name = str(target.name) if hasattr(target, "name") else str(target)

    def is_target_sum(e: sp.Basic) -> bool:
        return (
            isinstance(e, sp.Sum)
            and isinstance(e.function, sp.Indexed)
            and str(e.function.base) == name
            and e.function.indices[0] == e.limits[0][0]
        )

    return _tidy(sp.expand(term.replace(is_target_sum, lambda e: sp.S.One)))


def _tidy(e: sp.Basic) -> sp.Basic:
    """Common factors out of every sum, bottom up: ``(2y_k − 2t_k)/2`` is ``y_k − t_k``."""
    if isinstance(e, sp.Sum):
        coeff, body = _tidy(e.function).as_coeff_Mul()
        return coeff * sp.Sum(body, *e.limits)
    if isinstance(e, (sp.Add, sp.Mul, sp.Pow)) or (isinstance(e, sp.Function) and e.args):
        e = e.func(*[_tidy(a) for a in e.args])
    return sp.factor_terms(e) if isinstance(e, sp.Add) else e


def naive_gradients(
    program: Program, letters: dict[str, str], budget: float = 10.0
) -> tuple[sp.Basic, list[IndexNaiveGradient]]:
    """The calculus-class route in index form: substitute, then ∂L/∂θ_ij per parameter.

    Differentiation goes into the substituted loss through each assignment in turn (the
    chain rule at each substitution, shown as ∂y_k/∂w_ij), then the deltas are contracted.
    """
    soft = softmax_nodes(program, letters)
    loss = program.loss_assignment
    substituted = _converter(program, letters)(program.substituted(loss.name))
    start = time.perf_counter()
    out = []
    for p in program.params:
        if time.perf_counter() - start > budget:
            break
        out.append(_naive_one(program, letters, p.name, soft))
    return substituted, out


def _naive_one(
    program: Program, letters: dict[str, str], param: str, soft: list[SoftmaxNode]
) -> IndexNaiveGradient:
    conv = _converter(program, letters)
    pshape = _shape(program[param])
    _, pfree = _lhs(conv, param, pshape)
    wrt = _scalar_entry(conv, param, pshape, pfree)
    done: dict[str, tuple[tuple, sp.Basic]] = {}
    steps: list[IndexStep] = []
    depends = _depends_on(program, param)
    queue: list[str] = []

    def through(v: sp.Basic) -> sp.Basic | None:
        name = str(v.base) if isinstance(v, sp.Indexed) else str(v)
        item = program[name] if name in program else None
        if not isinstance(item, Assignment) or name not in depends:
            return None
        if name not in done and name not in queue:
            queue.append(name)
        return EntryDerivative(v, wrt)

    def derive(name: str) -> None:
        a = program[name]
        shape = _shape(a)
        lhs, free = _lhs(conv, name, shape)
        r, c = _free_rc(shape, free)
        rules: list[str] = []
        d = diff_entry(conv(a.expr, r, c), wrt, rules, through)  # type: ignore[union-attr]
        d = refold_softmax(contract(refold_softmax(d, soft, conv)), soft, conv)
        d = refold_softmax(_tidy(d), soft, conv)
        done[name] = (free, d)
        steps.append(IndexStep(EntryDerivative(lhs, wrt), d, rules))

    derive(program.loss)
    while queue:
        # deepest-last: derive nodes in reverse program order (loss side first)
        queue.sort(key=lambda n: -program.assignments.index(program[n]))  # type: ignore[arg-type]
        derive(queue.pop(0))

    def resolve(e: sp.Basic) -> sp.Basic:
        def expand(of: sp.Basic, _wrt: sp.Basic) -> sp.Basic:
            name = str(of.base) if isinstance(of, sp.Indexed) else str(of)
            free, d = done[name]
            idx = of.indices if isinstance(of, sp.Indexed) else ()
            return resolve(d.xreplace(dict(zip(free, idx, strict=True))))

        return e.replace(EntryDerivative, expand)

    result = resolve(done[program.loss][1])
    result = refold_softmax(contract(refold_softmax(result, soft, conv)), soft, conv)
    result = _tidy(canonical_indices(result, letters, pfree))
    result = sure_ranges(result, _ranges(conv, pfree, pshape))
    steps = [_plain_step(st, pfree, letters) for st in steps]
    steps.append(
        IndexStep(
            EntryDerivative(sp.Symbol(program.loss), wrt),
            result,
            ["substitute each ∂v/∂w, contract Σ_a δ_ab f(a) = f(b)"],
        )
    )
    return IndexNaiveGradient(param, wrt, result, steps)


def _depends_on(program: Program, param: str) -> set[str]:
    """Assignments whose value depends on ``param``."""
    out = {param}
    for a in program.assignments:
        if any(p in out for p in program.parents(a.name)):
            out.add(a.name)
    return out - {param}


def _plain_step(step: IndexStep, keep: tuple, letters: dict[str, str]) -> IndexStep:
    """A naive-route step with its own indices renamed plainly (∂y_k′/∂w_ij → ∂y_k/∂w_ij)."""
    of = step.lhs.of if isinstance(step.lhs, EntryDerivative) else None
    if not isinstance(of, sp.Indexed):
        return IndexStep(step.lhs, canonical_indices(step.rhs, letters, keep), step.rules)
    taken = {str(k) for k in keep}
    ren = {}
    for i in of.indices:
        if isinstance(i, Index) and i not in keep:
            new = _plainest(str(i), taken)
            taken.add(new)
            ren[i] = index(new)
    lhs = step.lhs.xreplace(ren)
    rhs = step.rhs.xreplace(ren) if not set(ren.values()) & _all_indices(step.rhs) else None
    if rhs is None:
        return IndexStep(step.lhs, canonical_indices(step.rhs, letters, keep), step.rules)
    return IndexStep(
        lhs, canonical_indices(rhs, letters, tuple(keep) + tuple(ren.values())), step.rules
    )


def _all_indices(e: sp.Basic) -> set[sp.Basic]:
    return set(e.atoms(Index))


def _plainest(name: str, taken: set[str]) -> str:
    base = name.rstrip("".join(PRIMES[1:]) + "0123456789")
    for n in range(len(PRIMES)):
        if base + PRIMES[n] not in taken:
            return base + PRIMES[n]
    return name


def canonical_indices(e: sp.Basic, letters: dict[str, str], keep: tuple = ()) -> sp.Basic:
    """Rename each summation index to the plainest letter of its size not in use (i′ → i)."""

    def walk(x: sp.Basic, scope: set[str]) -> sp.Basic:
        if isinstance(x, sp.Sum):
            (j, lo, hi), *more = x.limits
            base = str(j.name).rstrip("".join(PRIMES[1:]) + "0123456789*")  # j* (a layer's)
            taken = scope | {str(s) for s in _all_indices(x.function) if s != j}
            new = j
            for pr in PRIMES:
                if base + pr not in taken:
                    new = index(base + pr)
                    break
            body = x.function.xreplace({j: new})
            inner = sp.Sum(body, *more) if more else body
            return sp.Sum(walk(inner, scope | {str(new)}), (new, lo, hi))
        if isinstance(x, sp.Add):
            return x.func(*[walk(a, scope) for a in x.args])
        if isinstance(x, (sp.Mul, sp.Pow)) or (isinstance(x, sp.Function) and x.args):
            args, seen = [], set(scope)  # sibling factors get distinct bound names
            for a in x.args:
                args.append(walk(a, seen))
                seen |= {str(s) for s in _all_indices(args[-1])}
            return x.func(*args)
        return x

    return walk(e, {str(s) for s in _index_symbols(e)} | {str(k) for k in keep})


def lowercase_entries(program: Program) -> set[str]:
    """Matrix names whose entries print in lower case (W1 → w⁽¹⁾_ij) without a clash."""
    names = {v.name for v in program.variables} | {a.name for a in program.assignments}
    out = set()
    for v in program.variables:
        if len(v.shape) == 2 and v.name[0].isupper():
            low = v.name[0].lower() + v.name[1:]
            if low not in names:
                out.add(v.name)
    return out


def _two_axes_at_most(program: Program) -> None:
    """Index notation here writes entries with one or two indices: a tensor with three
    or four axes ([C, H, W]) stops it with a message naming the tensor and its readers."""
    shapes = [(v.name, v.shape) for v in program.variables]
    shapes += [(a.name, a.shape) for a in program.assignments]
    big = next(((name, shape) for name, shape in shapes if len(shape) > 2), None)
    if big is None:
        return
    name, shape = big
    readers: list[str] = []
    for a in program.assignments:
        if name in program.parents(a.name) or a.name == name:
            for node in sp.preorder_traversal(a.expr):
                op = program.functions.for_node(node)
                if op is None or op.kind != "tensor" or not op.in_language or op.operator:
                    continue  # only operations written by name (conv2d, not + or @)
                if op.name not in readers:
                    readers.append(op.name)
    used = f" (in {', '.join(readers)})" if readers else ""
    raise IndexFormError(
        f"--notation index: {name} has {len(shape)} axes "
        f"[{', '.join(str(d) for d in shape)}]{used}; index notation here writes "
        "vectors and matrices (one or two indices per entry); derive it without "
        "--notation index (the matrix form covers tensors)"
    )


def index_derivation(program: Program, naive: bool = True, budget: float = 10.0) -> IndexDerivation:
    """Forward pass, backprop and (optionally) the naive route, all in index form."""
    if not program.is_vector:
        raise IndexFormError("index notation is for vector programs (declare shapes)")
    _two_axes_at_most(program)
    start = time.perf_counter()
    letters = lecture_letters(program)
    fwd = forward_lines(program, letters)
    back = backprop_lines(program, letters)
    substituted, grads = naive_gradients(program, letters, budget) if naive else (None, [])
    return IndexDerivation(
        program,
        letters,
        fwd,
        back,
        grads,
        substituted,
        lowercase_entries(program),
        time.perf_counter() - start,
        naive_requested=naive,
    )
