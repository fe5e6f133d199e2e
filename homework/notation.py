r"""The notation answers may use, in one place: function spellings, Unicode, δ.

Everything here is a *table* or a small rewrite on the syntax tree of
:mod:`chainrule.symbolic.grammar` (``Num, Name, Call, BinOp, Neg, Transpose``), so the
answer grammars (plain text in :mod:`~chainrule.homework.text_answer`, LaTeX in
:mod:`~chainrule.homework.latex`) share one vocabulary, and the operator registry can
absorb it table by table:

* :data:`FUNCTION_SPELLINGS`: how courses write functions (``\tanh``, ``\mathrm{tanh}``,
  ``\operatorname{sech}``, ``sigmoid``, ``\text{ReLU}``, ``H``…) → one answer function;
* :data:`MACROS`: functions the model grammar does not know, written with ones it does
  (``sinh(a)`` = (eᵃ − e⁻ᵃ)/2, ``sech(a)`` = √(1 − tanh²a), ``diag(v) B`` = v ∘ B);
* :data:`COMBINING` and :data:`SUPERSCRIPTS`: the Unicode chainrule itself prints
  (``z̄``, ``W̄⁽²⁾``, ``ŷ``, ``hᵀ``, ``(y − t)∘²``), so that its own output reads back;
* :func:`delta_node`: what δ names (the documented rule below).

**The δ rule.** δ is the error signal of a *pre-activation*, δ = ∂L/∂z:

* ``δ_v`` (``\delta_z``, ``\delta_{z_1}``, ``delta_z``) where ``v`` is a model node is v̄;
* ``δ^{(l)}`` (``\delta^{(2)}``, ``δ⁽²⁾``, ``delta2``) and ``δ_l`` with a number ``l``
  is the pre-activation of layer ``l``: the node that first uses the weight named with
  that layer number (``W1``/``W_1``/``w1`` → layer 1); with no numbered weights, the node
  ``z<l>`` (unit form);
* a bare ``δ`` is the pre-activation when the model has exactly one;
* in a vector model's expressions, ``δ_k`` is the output layer's pre-activation and
  ``δ_j`` the one before it (Bishop's units k and j); as *targets* letter indices make
  the answer index notation (:mod:`~chainrule.homework.index_answers`).

>>> to_latex_unicode("W̄⁽²⁾ = ȳ hᵀ")
'\\bar{W}^{(2)} = \\bar{y} h^\\top '
>>> to_text_unicode("W̄⁽²⁾ = ȳ hᵀ + ŷ")
'W2_bar = y_bar h.T + y_hat'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import sympy as sp

from ..symbolic import grammar as g
from ..symbolic.errors import LimitError, ModelError
from ..symbolic.program import Program

#: The operator of factors written side by side in a matrix answer (``ȳ hᵀ``, ``h̄(1 − h²)``):
#: the matrix product, or the elementwise one when only that fits (two m-vectors).
JUXT = "juxt"


# ===================================================================== FUNCTION TABLE
# One table of function spellings in answers (fold into the operator registry):
# spelling (a LaTeX command without "\", a word inside \operatorname{…}/\mathrm{…}/
# \text{…}, or a plain-text name; compared in lower case) → the answer function.
def _registry_spellings() -> dict[str, str]:
    """Every operation's names (model language, answers, LaTeX commands), lower case."""
    from ..ops import REGISTRY

    out: dict[str, str] = {}
    for op in REGISTRY:
        names = [*((op.name, *op.spellings) if op.in_language else ()), *op.answer_spellings]
        for s in [*names, *op.latex_commands]:
            if len(s) > 1 and s.isascii():
                out.setdefault(s.lower(), op.name)
    return out


#: The hyperbolic functions the model grammar lacks, written as :data:`MACROS` below.
_MACRO_NAMES = ("sinh", "cosh", "sech")
FUNCTION_SPELLINGS: dict[str, str] = {
    **_registry_spellings(),
    **{name: name for name in _MACRO_NAMES},
}
#: Names that are functions only when followed by an argument: ``H(z)`` is step(z).
CALL_ONLY_SPELLINGS = {"H": "step", "Theta": "step", "S": "sigma"}


def function_of(word: str) -> str | None:
    """The answer function a spelling names (``\\mathrm{Tanh}`` → ``tanh``), or None."""
    return FUNCTION_SPELLINGS.get(word.lower().replace(" ", ""))


def _call(span: object, func: str, *args: g.Expr) -> g.Call:
    return g.Call(span, func, tuple(args))  # type: ignore[arg-type]


def _num(span: object, text: str) -> g.Num:
    return g.Num(span, text)  # type: ignore[arg-type]


def _bin(span: object, op: str, a: g.Expr, b: g.Expr) -> g.BinOp:
    return g.BinOp(span, op, a, b)  # type: ignore[arg-type]


def _sinh(a: g.Expr, s: object) -> g.Expr:
    e = _bin(s, "-", _call(s, "exp", a), _call(s, "exp", g.Neg(s, a)))  # type: ignore[arg-type]
    return _bin(s, "/", e, _num(s, "2"))


def _cosh(a: g.Expr, s: object) -> g.Expr:
    e = _bin(s, "+", _call(s, "exp", a), _call(s, "exp", g.Neg(s, a)))  # type: ignore[arg-type]
    return _bin(s, "/", e, _num(s, "2"))


def _sech(a: g.Expr, s: object) -> g.Expr:  # sech a = √(1 − tanh² a) (sech > 0)
    return _call(
        s, "sqrt", _bin(s, "-", _num(s, "1"), _bin(s, "^", _call(s, "tanh", a), _num(s, "2")))
    )


def _sech_prime(a: g.Expr, s: object) -> g.Expr:  # sech' = −sech·tanh
    return g.Neg(s, _bin(s, "*", _sech(a, s), _call(s, "tanh", a)))  # type: ignore[arg-type]


#: Functions the model grammar lacks, as trees of ones it has: name → (f(a), f'(a)).
MACROS: dict[str, tuple[Callable[[g.Expr, object], g.Expr], Callable[[g.Expr, object], g.Expr]]] = {
    "sinh": (_sinh, _cosh),
    "cosh": (_cosh, _sinh),
    "sech": (_sech, _sech_prime),
}
#: NumPy-style calls in plain-text answers (``np.outer(ybar, h)``): name → tree builder.
CALL_REWRITES: dict[str, Callable[[tuple[g.Expr, ...], object], g.Expr]] = {
    "outer": lambda a, s: _bin(s, "@", a[0], g.Transpose(s, a[1])),  # type: ignore[arg-type]
    "matmul": lambda a, s: _bin(s, "@", a[0], a[1]),
    "multiply": lambda a, s: _bin(s, "*", a[0], a[1]),
    "transpose": lambda a, s: g.Transpose(s, a[0]),  # type: ignore[arg-type]
    "step": lambda a, s: _call(s, "step", a[0]),  # np.heaviside(z, 0): step(z)
}
CALL_REWRITE_ARITY = {"outer": 2, "matmul": 2, "multiply": 2, "transpose": 1, "step": 2}
# =================================================================== END OF TABLE


#: Largest expression (nodes, shared ones counted each time) a rewrite may produce:
#: ``sinh`` uses its argument twice, so 40 nested ``sinh`` would be 2⁴⁰ nodes.
MAX_EXPANDED_NODES = 20_000


def expand_macros(tree: g.Expr, matrix: bool) -> g.Expr:
    """Rewrite :data:`MACROS`, :data:`CALL_REWRITES` and ``diag`` into the model
    grammar's functions, refusing results larger than :data:`MAX_EXPANDED_NODES`.

    ``diag(v) B`` is v ∘ B (rows scaled), ``B diag(v)`` is B ∘ vᵀ (columns scaled); for
    scalar models ``diag(a)`` is ``a``.
    """
    out = _expand(tree, matrix)
    if out is not tree and tree_size(out) > MAX_EXPANDED_NODES:
        raise LimitError(
            f"the expression grows past {MAX_EXPANDED_NODES:,} terms once sinh, cosh and "
            "sech are written out",
            tree.span,
        )
    return out


def _kids(e: g.Expr) -> list[g.Expr]:
    kids = [getattr(e, a) for a in ("left", "right", "operand") if hasattr(e, a)]
    return kids + list(getattr(e, "args", ()) or ())


def tree_size(tree: g.Expr) -> int:
    """Nodes of the tree with shared sub-trees counted each time (memoized, no blow-up,
    no recursion: a deep tree is no problem)."""
    memo: dict[int, int] = {}
    stack: list[tuple[g.Expr, bool]] = [(tree, False)]
    while stack:
        e, done = stack.pop()
        if id(e) in memo:
            continue
        if done:
            n = 1 + sum(memo[id(k)] for k in _kids(e))
            memo[id(e)] = min(n, 10 * MAX_EXPANDED_NODES)
        else:
            stack.append((e, True))
            stack.extend((k, False) for k in _kids(e) if id(k) not in memo)
    return memo[id(tree)]


def tree_depth(tree: g.Expr) -> int:
    """The nesting depth of a tree (iteratively)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        e, d = stack.pop()
        deepest = max(deepest, d)
        if d <= 10 * MAX_DEPTH:
            stack.extend((k, d + 1) for k in _kids(e))
    return deepest


#: Deepest expression a rewrite may produce (the grammar allows 100 levels per line).
MAX_DEPTH = 250


def _expand(tree: g.Expr, matrix: bool) -> g.Expr:
    if isinstance(tree, g.Call):
        args = tuple(_expand(a, matrix) for a in tree.args)
        if tree.func in MACROS and len(args) == 1:
            make, prime = MACROS[tree.func]
            return (prime if tree.prime else make)(args[0], tree.span)
        if CALL_REWRITE_ARITY.get(tree.func) == len(args) and not tree.prime:
            return CALL_REWRITES[tree.func](args, tree.span)
        if tree.func == "dot" and len(args) == 2 and not matrix:
            return g.BinOp(tree.span, "*", args[0], args[1])
        if tree.func == "diag" and len(args) == 1 and not tree.prime:
            if not matrix:
                return args[0]
            raise ModelError(
                "diag(v) is read as a factor of a matrix product, e.g. diag(v) B",
                tree.span,
                "or write the elementwise product v ∘ B",
            )
        return g.Call(tree.span, tree.func, args, tree.prime)
    if isinstance(tree, g.BinOp):
        if matrix and tree.op in ("@", JUXT):
            for side in ("left", "right"):  # −diag(v) B = −(v ∘ B)
                neg = getattr(tree, side)
                if isinstance(neg, g.Neg) and _is_diag(neg.operand):
                    inner = g.BinOp(
                        tree.span,
                        tree.op,
                        neg.operand if side == "left" else tree.left,
                        neg.operand if side == "right" else tree.right,
                    )
                    return g.Neg(neg.span, _expand(inner, matrix))
            if _is_diag(tree.left):
                v = _expand(tree.left.args[0], matrix)  # type: ignore[attr-defined]
                return g.BinOp(tree.span, "*", v, _expand(tree.right, matrix))
            if _is_diag(tree.right):
                v = _expand(tree.right.args[0], matrix)  # type: ignore[attr-defined]
                left = _expand(tree.left, matrix)
                return g.BinOp(tree.span, "*", left, g.Transpose(tree.span, v))
        return g.BinOp(tree.span, tree.op, _expand(tree.left, matrix), _expand(tree.right, matrix))
    if isinstance(tree, g.Neg):
        return g.Neg(tree.span, _expand(tree.operand, matrix))
    if isinstance(tree, g.Transpose):
        if _is_diag(tree.operand):
            return tree.operand if not matrix else _expand(tree.operand, matrix)
        return g.Transpose(tree.span, _expand(tree.operand, matrix))
    return tree


def _is_diag(e: g.Expr) -> bool:
    return isinstance(e, g.Call) and e.func == "diag" and len(e.args) == 1 and not e.prime


# ===================================================================== Unicode
#: Combining marks → the decoration they write.
COMBINING = {"\u0304": "bar", "\u0305": "bar", "\u0302": "hat", "\u0303": "tilde", "\u20d7": "vec"}
SUPERSCRIPTS = {
    "⁰": "0",
    "¹": "1",
    "²": "2",
    "³": "3",
    "⁴": "4",
    "⁵": "5",
    "⁶": "6",
    "⁷": "7",
    "⁸": "8",
    "⁹": "9",
    "⁻": "-",
    "⁺": "+",
}
SUBSCRIPTS = {chr(0x2080 + i): str(i) for i in range(10)}
_SUP = "".join(SUPERSCRIPTS)
_MARKS = "".join(COMBINING)
#: a letter with marks, then subscript digits, then a layer ⁽ˡ⁾
_SUPDIGITS = "⁰¹²³⁴⁵⁶⁷⁸⁹"
_DECORATED = re.compile(
    rf"(?P<base>[A-Za-z\u0370-\u03ff])(?P<marks>[{_MARKS}]+)(?P<tail>_[A-Za-z]+)?"
    rf"(?P<sub>[₀-₉0-9]*)(?:⁽(?P<layer>[{_SUPDIGITS}]+)⁾)?"
)
_LAYER = re.compile(rf"(?P<base>[A-Za-z\u0370-\u03ff][A-Za-z0-9_₀-₉]*)⁽(?P<layer>[{_SUPDIGITS}]+)⁾")
_POWER = re.compile(rf"∘?(?P<p>[{_SUP}]+)")
#: Other symbols people paste (applied before NFKC would blur them).
SYMBOLS = {"𝟙": "indicator", "𝟏": "indicator", "δ": "delta", "Δ": "Delta", "∑": "sum", "Σ": "sum"}
#: Operators that NFKC leaves alone: → (LaTeX, plain text).
OPERATORS = {"∗": ("*", "*"), "⊤": ("^\\top ", ".T"), "⊗": ("\\otimes ", " outer ")}


def _digits(s: str) -> str:
    return "".join(SUPERSCRIPTS.get(c, SUBSCRIPTS.get(c, c)) for c in s)


def _greek_latex(ch: str) -> str:
    try:
        name = unicodedata.name(ch).split()[-1].lower()
    except ValueError:
        return ch
    return "\\" + name + " " if "GREEK" in unicodedata.name(ch, "") else ch


def to_latex_unicode(text: str) -> str:
    r"""Unicode math → LaTeX (``W̄⁽²⁾`` → ``\bar{W}^{(2)}``, ``ŷ`` → ``\hat{y}``,
    ``hᵀ`` → ``h^\top``, ``x²`` → ``x^{2}``); ASCII text is unchanged."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFD", text)
    for k, v in SYMBOLS.items():
        text = text.replace(k, f"\\{v} " if v in ("delta", "Delta", "sum") else "\\mathbb{1}")
    for k, (latex, _) in OPERATORS.items():
        text = text.replace(k, latex)

    def decorated(m: re.Match[str]) -> str:
        base = m.group("base")
        base = _greek_latex(base) if not base.isascii() else base
        out = base.strip()
        for mark in m.group("marks")[::-1]:
            out = f"\\{COMBINING[mark]}{{{out}}}"
        if m.group("tail"):
            out += f"_{{{m.group('tail')[1:]}}}"
        if m.group("sub"):
            out += f"_{{{_digits(m.group('sub'))}}}"
        if m.group("layer"):
            out += f"^{{({_digits(m.group('layer'))})}}"
        return out

    text = _DECORATED.sub(decorated, text)
    text = re.sub(rf"⁽([{_SUPDIGITS}]+)⁾", lambda m: f"^{{({_digits(m.group(1))})}}", text)
    text = text.replace("ᵀ", "^\\top ")
    text = _POWER.sub(lambda m: f"^{{{_digits(m.group('p'))}}}", text)
    return unicodedata.normalize("NFC", text)


def to_text_unicode(text: str) -> str:
    """Unicode math → the plain-text answer grammar (``W̄⁽²⁾`` → ``W2_bar``,
    ``ŷ`` → ``y_hat``, ``hᵀ`` → ``h.T``, ``(y − t)∘²`` → ``(y − t)^2``)."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFD", text)
    for k, v in SYMBOLS.items():
        text = text.replace(k, v)
    for k, (_, plain) in OPERATORS.items():
        text = text.replace(k, plain)

    def decorated(m: re.Match[str]) -> str:
        name = m.group("base") + (m.group("tail") or "")
        name += _digits(m.group("sub")) + _digits(m.group("layer") or "")
        marks = m.group("marks")
        bars = "".join(f"_{COMBINING[c]}" for c in marks[::-1] if COMBINING[c] != "vec")
        return name + bars + _gap(m)

    text = _DECORATED.sub(decorated, text)
    text = _LAYER.sub(lambda m: m.group("base") + _digits(m.group("layer")) + _gap(m), text)
    text = re.sub(r"([A-Za-z0-9_])([₀-₉]+)", lambda m: m.group(1) + _digits(m.group(2)), text)
    text = text.replace("ᵀ", ".T")
    text = _POWER.sub(lambda m: "^" + _paren(_digits(m.group("p"))), text)
    return unicodedata.normalize("NFC", text)


def _gap(m: re.Match[str]) -> str:
    """A space when a name written out runs into the next one (``W⁽¹⁾x`` → ``W1 x``)."""
    rest = m.string[m.end() : m.end() + 1]
    return " " if rest and (rest.isalnum() or rest == "_") else ""


def _paren(s: str) -> str:
    return s if s.isdigit() else f"({s})"


# ===================================================================== δ
_LAYERED = re.compile(r"^([A-Za-z]+)_?(\d)$")


def layer_nodes(program: Program) -> dict[str, str]:
    """Layer number → the node that first uses that layer's weight (``W1`` → ``z``)."""
    out: dict[str, str] = {}
    for p in program.params:
        m = _LAYERED.match(p.name)
        if not m or m.group(1).lower() not in ("w", "theta", "v"):
            continue
        for a in program.assignments:
            if a.expr.has(p.symbol):
                out.setdefault(m.group(2), a.name)
                break
    return out


def node_layers(program: Program) -> dict[str, str]:
    """Node → the highest layer number of the weights it depends on (``h`` → '1')."""
    weight_layer: dict[sp.Basic, int] = {}
    for p in program.params:
        m = _LAYERED.match(p.name)
        if m and m.group(1).lower() in ("w", "theta", "v", "b"):
            weight_layer[p.symbol] = int(m.group(2))
    layers: dict[sp.Basic, int] = {}
    out: dict[str, str] = {}
    for a in program.assignments:
        deps = [weight_layer.get(s, layers.get(s, 0)) for s in _atoms(a.expr)]
        layers[a.symbol] = max(deps, default=0)
        if layers[a.symbol]:
            out[a.name] = str(layers[a.symbol])
    return out


def _atoms(e: sp.Basic) -> set[sp.Basic]:
    out = set(e.free_symbols)
    if e.has(sp.MatrixSymbol):
        out |= set(e.atoms(sp.MatrixSymbol))
    return out


def preactivations(program: Program) -> list[str]:
    """Nodes computed directly from a parameter (weights and biases) by sums and products."""
    params = [p.symbol for p in program.params]
    out = []
    for a in program.assignments:
        if a.expr.has(*params) and (a.expr.is_Add or getattr(a.expr, "is_MatAdd", False)):
            out.append(a.name)
    return out


def delta_node(name: str, program: Program, items: dict[str, str]) -> str | None:
    """The node whose error signal a δ name means (the rule in the module doc), or None."""
    m = re.match(r"^delta(?:_?\{?([A-Za-z0-9_]*)\}?)?$", name)
    if not m:
        return None
    sub = (m.group(1) or "").strip("_")
    if sub and sub in items:
        return items[sub]
    if sub.isdigit():
        layers = layer_nodes(program)
        if sub in layers:
            node = layers[sub]
            return node if node in preactivations(program) else None  # inline: see implicit
        for cand in (f"z{sub}", f"a{sub}", f"z_{sub}"):
            if cand in items:
                return items[cand]
        return None
    if not sub:
        pre = preactivations(program)
        return pre[0] if len(pre) == 1 else None
    if sub in ("k", "j") and program.is_vector:  # Bishop: δ_k output units, δ_j hidden
        pre = preactivations(program)
        back = 1 if sub == "k" else 2
        return pre[-back] if len(pre) >= back else None
    return None


# ===================================================================== ŷ and y
def label_of(program: Program, node: str) -> str | None:
    """The data input a node is compared with in the loss (``t`` for ``y``), if one."""
    sym = program.symbol(node)
    inputs = {v.symbol: v.name for v in program.inputs}
    found: set[str] = set()
    for a in program.assignments:
        if a.expr.has(sym):
            found |= {inputs[s] for s in _atoms(a.expr) if s in inputs}
    found -= {v.name for v in program.inputs if _depends(program, node, v.symbol)}
    return next(iter(found)) if len(found) == 1 else None


def _depends(program: Program, node: str, leaf: sp.Basic) -> bool:
    item = program[node]
    expr = getattr(item, "expr", None)
    if expr is None:
        return item.symbol == leaf
    forms: dict[sp.Basic, sp.Basic] = {}
    for a in program.assignments:
        forms[a.symbol] = a.expr.xreplace(forms)
        if a.name == node:
            return bool(forms[a.symbol].has(leaf))
    return False


def hat_is_prediction(tree: g.Expr, program: Program, items: dict[str, str]) -> g.Expr:
    """``\\hat{y} - y`` where the model calls the label ``t``: ŷ is the model's y and the
    plain y is the label (courses that name the target y)."""
    names = set(tree_names(tree))
    renames: dict[str, str] = {}
    for n in names:
        base = n.removesuffix("_hat")
        if n == base or base not in names or n in program or base not in program:
            continue
        label = label_of(program, base)
        if label is not None and label not in names:
            renames[base] = label
            renames[n] = base
    return rename(tree, renames) if renames else tree


def tree_names(e: g.Expr) -> list[str]:
    """Every name in a tree, in order (with repeats)."""
    out = [e.id] if isinstance(e, g.Name) else []
    for attr in ("left", "right", "operand"):
        child = getattr(e, attr, None)
        if child is not None:
            out += tree_names(child)
    for child in getattr(e, "args", ()) or ():
        out += tree_names(child)
    return out


def rename(e: g.Expr, mapping: dict[str, str]) -> g.Expr:
    """The tree with names renamed (frozen nodes are rebuilt)."""
    if isinstance(e, g.Name):
        return g.Name(e.span, mapping.get(e.id, e.id))
    if isinstance(e, g.BinOp):
        return g.BinOp(e.span, e.op, rename(e.left, mapping), rename(e.right, mapping))
    if isinstance(e, g.Neg):
        return g.Neg(e.span, rename(e.operand, mapping))
    if isinstance(e, g.Transpose):
        return g.Transpose(e.span, rename(e.operand, mapping))
    if isinstance(e, g.Call):
        return g.Call(e.span, e.func, tuple(rename(a, mapping) for a in e.args), e.prime)
    return e


def substitute(tree: g.Expr, macros: dict[str, g.Expr], used: set[str] | None = None) -> g.Expr:
    """Names of the student's shorthands replaced by their definitions (size bounded);
    the names replaced are added to ``used``."""

    def sub(e: g.Expr) -> g.Expr:
        if isinstance(e, g.Name):
            if e.id in macros and used is not None:
                used.add(e.id)
            return macros.get(e.id, e)
        if isinstance(e, g.BinOp):
            return g.BinOp(e.span, e.op, sub(e.left), sub(e.right))
        if isinstance(e, g.Neg):
            return g.Neg(e.span, sub(e.operand))
        if isinstance(e, g.Transpose):
            return g.Transpose(e.span, sub(e.operand))
        if isinstance(e, g.Call):
            return g.Call(e.span, e.func, tuple(sub(a) for a in e.args), e.prime)
        return e

    out = sub(tree)
    if tree_depth(out) > MAX_DEPTH:
        raise LimitError(
            f"the expression is nested deeper than {MAX_DEPTH} levels once your own names "
            "are written out",
            tree.span,
        )
    if tree_size(out) > MAX_EXPANDED_NODES:
        raise LimitError(
            f"the expression grows past {MAX_EXPANDED_NODES:,} terms once your own names "
            "are written out",
            tree.span,
        )
    return out


def prediction_of(program: Program) -> g.Expr | None:
    """The model's prediction as a tree, for ``ŷ`` in a model with no ``y``: the last node
    computed by an output function (softmax or σ), or softmax(z) for a node
    log_softmax(z) (each entry says which it is)."""
    from ..ops import REGISTRY

    span = None
    for a in reversed(program.assignments):
        op = REGISTRY.for_node(a.expr)
        if op is None:
            continue
        if op.extra.get("output"):
            return g.Name(span, a.name)  # type: ignore[arg-type]
        if op.extra.get("prediction"):
            item = program.item_of(a.expr.args[0])
            if item is not None:
                return g.Call(span, op.extra["prediction"], (g.Name(span, item.name),))  # type: ignore[arg-type]
    return None
