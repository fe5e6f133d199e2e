r"""Matrix answers: SymPy matrix expressions, with shapes, from an answer's syntax tree.

The vector builder (:class:`~chainrule.symbolic.vector.VectorBuilder`) reads student lines,
with the *lecture's* column convention instead of NumPy's 1-d one: a vector ``h`` is an
``(m, 1)`` column, ``h.T`` (``h^\top``) is the ``(1, m)`` row, so ``ybar @ h.T`` is the
outer product ȳ hᵀ. ``@`` (and juxtaposition in LaTeX) is the matrix product; a number
or scalar next to ``@`` scales. ``*`` (``∘``, ``\circ``, ``\odot``) is elementwise.

Shape mistakes inside the expression (``ybar @ h``: inner sizes 1 and m) raise
:class:`ShapeMismatch`, a located :class:`ModelError` the checker reports as an
``incorrect`` line (the text was read; the mathematics is wrong).

>>> from chainrule.symbolic import parse_program
>>> from chainrule.symbolic.grammar import parse_expression
>>> p = parse_program('''param W1[m, n], b1[m], W2[k, m], b2[k]
... input x[n], t[k]
... z = W1 @ x + b1
... h = sigma(z)
... y = W2 @ h + b2
... L = sum((y - t)^2) / 2
... loss L''')
>>> b = MatrixAnswerBuilder(p)
>>> v = b.build_val(parse_expression("ybar @ h.T"))
>>> v.expr, v.shape
(y_bar*h.T, ('k', 'm'))
>>> try:
...     b.build_val(parse_expression("ybar @ h"))
... except ShapeMismatch as exc:
...     print(exc.message)
ybar times h: (k, 1) @ (m, 1): inner sizes 1 and m differ
"""

from __future__ import annotations

import re
from typing import Any

import sympy as sp

from ..ops import Op, Registry, mat_mul, scale
from ..symbolic import grammar as g
from ..symbolic.build import CONSTANTS
from ..symbolic.errors import ModelError
from ..symbolic.program import Program, Shape
from ..symbolic.vector import Val, VectorBuilder, unparse
from .answers import SHAPED_BUILDERS, AnswerNames
from .notation import JUXT


class ShapeMismatch(ModelError):
    """An answer expression whose shapes do not fit (``ybar @ h``)."""


def as_2d(shape: Shape) -> tuple:
    """``()`` → ``(1, 1)``, a vector ``(m,)`` → the column ``(m, 1)``."""
    if not shape:
        return (1, 1)
    return (shape[0], 1) if len(shape) == 1 else tuple(shape)


def shape_words(shape: Shape, sizes: dict[str, int] | None = None) -> str:
    """``(k, m) = 4×3``; a scalar is ``a scalar``."""
    if not shape:
        return "a scalar"
    rows, cols = as_2d(shape)
    text = f"({rows}, {cols})"
    if sizes is not None:
        nums = [sizes.get(str(d), d) for d in (rows, cols)]
        if [str(n) for n in nums] != [str(rows), str(cols)]:
            text += f" = {nums[0]}×{nums[1]}"
        else:
            text = f"{rows}×{cols}"
    return text


def _normal(shape: tuple) -> Shape:
    """``(m, 1)`` → ``(m,)`` (vectors are stored the way the model declares them)."""
    if len(shape) == 2 and shape[1] == 1 and shape[0] != 1:
        return (shape[0],)
    return shape


class _AnswerScope:
    """The bit of a model scope the vector builder's scalar helper uses."""

    def __init__(self, resolve, functions: Registry) -> None:  # noqa: ANN001
        self.resolve = resolve
        self.functions = functions  # the shipped operations and the model's own defs
        self.items: dict = {}


class MatrixAnswerBuilder(VectorBuilder):
    """Answer trees → :class:`Val` (matrix expression + shape) for a vector program.

    ``signals`` maps node → error-signal symbol (default: the ``v_bar`` matrix symbols
    backprop uses).
    """

    def __init__(
        self,
        program: Program,
        signals: dict[str, sp.Basic] | None = None,
        limits: g.Limits = g.DEFAULT_LIMITS,
        sizes: dict[str, int] | None = None,
    ) -> None:
        scope: Any = _AnswerScope(
            self._scalar_resolve, program.functions
        )  # duck-types the model scope
        super().__init__(scope, dict(sizes or {}), limits)
        self.program = program
        self.names = AnswerNames(program)
        if signals is None:
            from ..derive.records import error_signal

            signals = {n: error_signal(n, program[n].symbol) for n in program.topological_order()}
        self.signals = signals
        from ..derive.vector import size_names

        self.size_symbols = {
            n: sp.Symbol(n, integer=True, positive=True) for n in size_names(program)
        }
        self.source = ""  # the line as written, for messages in the student's notation
        self.extents: dict[int, tuple[int, int]] = {}
        self.target: tuple[str, Shape] | None = None  # (pretty name, shape) of the line
        self.root: g.Expr | None = None

    def set_line(self, source: str, tree: g.Expr | None, target: tuple[str, Shape] | None) -> None:
        """Remember the line being built, so that messages quote what the student wrote."""
        self.source, self.target, self.root = source, target, tree
        self.extents = tree_extents(tree, len(source)) if tree is not None and source else {}

    def written(self, node: g.Expr) -> str:
        """The student's own text of a sub-expression (lecture notation as a fallback)."""
        if node is self.root and "=" in self.source:  # the whole right-hand side
            rhs = re.split(r"(?<!\\)[#%]", self.source.rsplit("=", 1)[1])[0]
            rhs = rhs.strip().rstrip("\\$&,;. ").strip()
            if rhs:
                return rhs
        ext = self.extents.get(id(node))
        if ext is not None and self.source.isascii():
            start, stop = ext
            for _ in range(12):  # take in the brackets the tree does not record
                text = self.source[max(start - 1, 0) : stop]
                if text.count("(") >= text.count(")") and text.count("{") >= text.count("}"):
                    break
                start -= 1
            text = text.strip().rstrip("\\$&,;. ").strip()
            if text and text.count("(") == text.count(")") and text.count("{") == text.count("}"):
                return text
        return unparse(node).replace(f" {JUXT} ", " ")

    def shape_text(self, shape: Shape) -> str:
        rows, cols = as_2d(shape)
        if not shape:
            return "a scalar"
        kind = "a column vector" if cols == 1 else ("a row vector" if rows == 1 else "a matrix")
        return f"{kind} {shape_words(shape, self.sizes)}"

    # -- entry points
    def build(self, tree: g.Expr) -> sp.Basic:
        return self.build_val(tree).expr

    def build_val(self, tree: g.Expr) -> Val:
        return self(tree)

    # -- names
    def lookup(self, node: g.Name) -> Val:
        name = node.id
        if name in self.names.items:
            item = self.program[self.names.items[name]]
            return Val(item.symbol, item.shape)
        sig = self.names.signal_node(name)
        if sig is not None:
            if sig not in self.signals:
                raise ModelError(
                    f"'{name}': {sig} has no error signal (a constant, or not used by the loss)",
                    node.span,
                )
            return Val(self.signals[sig], self.program[sig].shape)
        if name in self.size_symbols:
            return Val(self.size_symbols[name], ())
        if name in CONSTANTS:
            return Val(CONSTANTS[name], ())
        if name in self.functions.spellings("scalar"):
            raise ModelError(f"'{name}' is a function; call it like {name}(z)", node.span)
        raise self.names._unknown(name, node.span)

    def _scalar_resolve(self, node: g.Name) -> sp.Basic:
        v = self.lookup(node)
        if v.shape:
            raise ShapeMismatch(f"'{node.id}' is not a scalar", node.span)
        return v.expr

    def build_Name(self, node: g.Name) -> Val:
        return self.lookup(node)

    # -- the lecture's column convention
    def build_Transpose(self, node: g.Transpose) -> Val:
        v = self(node.operand)
        if not v.shape:
            return v
        rows, cols = as_2d(v.shape)
        return Val(v.expr.T, _normal((cols, rows)))

    def binop(self, op: str, left: Val, right: Val, node: g.BinOp) -> Val:
        if op == JUXT:  # side by side: a matrix product, or ∘ when only that fits
            a, b = as_2d(left.shape), as_2d(right.shape)
            if left.shape and right.shape and self.same(left.shape, right.shape):
                if not self.dim_eq(a[1], b[0]):
                    return super().binop("*", left, right, node)
            op = "@"
        return super().binop(op, left, right, node)

    def matmul(self, left: Val, right: Val, node: g.BinOp) -> Val:
        if not left.shape or not right.shape:  # 2 @ ybar (LaTeX juxtaposition): scaling
            if not left.shape and not right.shape:
                return Val(left.expr * right.expr, ())
            s, m = (left, right) if not left.shape else (right, left)
            return Val(scale(s.expr, m.expr), m.shape)
        a, b = as_2d(left.shape), as_2d(right.shape)
        if not self.dim_eq(a[1], b[0]):
            hint = "check the transposes and the order of the factors"
            if self.same(left.shape, right.shape):
                hint = (
                    "for the elementwise (Hadamard) product write '*' "
                    "('∘', \\circ or \\odot in LaTeX); " + hint
                )
            elif a[1] == 1 and b[1] == 1:  # two columns: the outer product u vᵀ was meant?
                t = "^\\top" if "\\" in self.source else ".T"
                right_text = self.written(node.right)
                if not right_text.isalnum():
                    right_text = f"({right_text})"
                hint = (
                    f"a missing transpose? the outer product is "
                    f"{self.written(node.left)} {right_text}{t}"
                )
            raise ShapeMismatch(
                f"{self.written(node.left)} times {self.written(node.right)}: ({a[0]}, {a[1]}) @ "
                f"({b[0]}, {b[1]}): inner sizes {a[1]} and {b[0]} differ",
                node.span,
                hint,
            )
        return Val(mat_mul(left.expr, right.expr), _normal((a[0], b[1])))

    def broadcast_shape(self, left: Val, right: Val, node: g.BinOp) -> Shape:
        try:
            return super().broadcast_shape(left, right, node)
        except ModelError as exc:
            word = {"+": "plus", "-": "minus", "*": "∘", "/": "divided by"}.get(node.op, node.op)
            msg = (
                f"you wrote {self.written(node.left)}, {self.shape_text(left.shape)}, {word} "
                f"{self.written(node.right)}, {self.shape_text(right.shape)}: the shapes differ"
            )
            if self.target is not None:
                name, want = self.target
                for side, val in ((node.left, left), (node.right, right)):
                    if val.shape and as_2d(val.shape) == as_2d(want)[::-1] != as_2d(want):
                        msg += (
                            f"; {name} is {shape_words(want, self.sizes)}: a missing transpose "
                            f"in {self.written(side)}?"
                        )
                        break
            raise ShapeMismatch(msg, exc.span, exc.hint) from None

    def tensor_call(self, node: g.Call, op: Op) -> Val:
        if op.name == "dot" and len(node.args) == 2 and not node.prime:
            left, right = self(node.args[0]), self(node.args[1])
            if not (left.shape and self.same(left.shape, right.shape)):  # np.dot(W.T, y)
                return self.matmul(left, right, g.BinOp(node.span, "@", *node.args))
        try:
            return super().tensor_call(node, op)
        except ShapeMismatch:
            raise
        except ModelError as exc:
            if "shapes" in exc.message:
                raise ShapeMismatch(exc.message, exc.span, exc.hint) from None
            raise

    def build_Call(self, node: g.Call) -> Val:
        scalar = self.functions.spellings("scalar")
        if node.func.endswith("_prime") and node.func[:-6] in scalar and not node.prime:
            node = g.Call(node.span, node.func[:-6], node.args, prime=True)
        return super().build_Call(node)


def _min_col(e: g.Expr) -> int:
    cols = [e.span.column] if e.span is not None else []
    for child in _children(e):
        cols.append(_min_col(child))
    return min(cols) if cols else 1


def _children(e: g.Expr) -> list[g.Expr]:
    if isinstance(e, g.BinOp):
        return [e.left, e.right]
    if isinstance(e, (g.Neg, g.Transpose)):
        return [e.operand]
    if isinstance(e, g.Call):
        return list(e.args)
    return []


def tree_extents(tree: g.Expr, end: int) -> dict[int, tuple[int, int]]:
    """``id(node)`` → (first, last) column of each sub-expression in the line."""
    out: dict[int, tuple[int, int]] = {}

    def visit(e: g.Expr, stop: int, depth: int = 0) -> None:
        if depth > 200:
            return
        start = _min_col(e)
        out[id(e)] = (start, stop)
        if isinstance(e, g.BinOp):
            right_start = _min_col(e.right)
            visit(e.left, min(e.span.column, right_start) - 1, depth + 1)
            visit(e.right, stop, depth + 1)
        elif isinstance(e, g.Transpose):
            col = e.span.column
            visit(e.operand, col - 1 if col > _min_col(e.operand) else stop, depth + 1)
        elif isinstance(e, g.Neg):
            visit(e.operand, stop, depth + 1)

    visit(tree, end)
    return out


SHAPED_BUILDERS.append(MatrixAnswerBuilder)
