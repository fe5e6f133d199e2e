"""Vector programs: ``.chain`` texts with shaped declarations, built into matrix expressions.

Text semantics (NumPy's, with the lectures' column convention):

* shapes ``param W1[m, n], b1[m]``; a vector ``[n]`` is a column ``(n, 1)``;
* ``@`` matrix product: ``(m, n) @ (n,) → (m,)``, ``(m, n) @ (n, p) → (m, p)``,
  ``(n,) @ (n,) → scalar`` (uᵀv), ``(n,) @ (n, p) → (p,)`` (Bᵀu);
* ``+ - *`` elementwise with broadcasting of scalars, of a vector ``(m,)`` or column
  ``(m, 1)`` over the columns of an ``(m, B)`` matrix (biases over a batch) and of a row
  ``(1, n)`` over rows; ``/`` elementwise, usually by a scalar; ``^`` elementwise power;
* ``.T`` / ``^T`` transposes a matrix; on a vector it does nothing (as in NumPy);
* every activation applies componentwise (``sigma(z)``, ``relu(z)``, ``log``, ``exp``, …);
  ``sum``, ``mean``, ``dot(u, v)``, ``norm2(v)`` (‖v‖²) give scalars; ``softmax`` and
  ``log_softmax`` work per column.

Sizes: numbers, or names. A name can be bound with a const of the same name
(``const n = 3``); otherwise numeric evaluation infers it from the data.

>>> p = parse_vector_program('''
... param W[2, n], b[2]
... input x[n]
... const n = 3
... h = tanh(W @ x + b)
... L = sum(h)
... loss L''')
>>> [(a.name, str(a.expr), a.shape) for a in p.assignments]
[('h', 'tanh(W*x + b)', (2,)), ('L', 'sum(h)', ())]
>>> p.sizes
{'n': 3}
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..ops import Op, OpError, Registry, U, is_matrix, mat_add, scale
from ..ops.tensor import Broadcast, Elementwise
from . import grammar as g
from .defs import define_function
from .errors import LimitError, ModelError, SourceSpan
from .expr import CONSTANTS, ExprBuilder, call_arguments, find_function, number
from .program import Assignment, Program, Shape, Variable, make_symbol
from .scope import Scope, check_new_name, finish_program


@dataclass(frozen=True)
class Val:
    """A built value: its SymPy expression and its shape in the text's terms."""

    expr: sp.Basic
    shape: Shape


def shape_text(shape: Shape) -> str:
    """``(k, m)``, ``(n,)`` or ``()`` as NumPy writes shapes."""
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(d) for d in shape) + ")"


def sympy_shape(shape: Shape) -> tuple[sp.Expr, sp.Expr]:
    """(rows, cols) of the SymPy matrix for a shape (vectors are columns)."""
    ms = make_symbol("_shape", shape)
    return ms.shape


def unparse(node: g.Expr) -> str:
    """Source-like text of a syntax tree (for error messages)."""
    if isinstance(node, g.Num):
        return node.text
    if isinstance(node, g.Name):
        return node.id
    if isinstance(node, g.Neg):
        return "-" + _paren(node.operand)
    if isinstance(node, g.Transpose):
        return _paren(node.operand) + ".T"
    if isinstance(node, g.Call):
        return (
            node.func
            + ("'" if node.prime else "")
            + "("
            + ", ".join(
                [unparse(a) for a in node.args] + [f"{k}={unparse(v)}" for k, v in node.keywords]
            )
            + ")"
        )
    if isinstance(node, g.BinOp):
        return f"{_paren(node.left)} {node.op} {_paren(node.right)}"
    if isinstance(node, g.ArrayLit):
        return "[" + ", ".join(unparse(a) for a in node.items) + "]"
    if isinstance(node, g.Word):
        return f'"{node.text}"'
    return "?"


def _paren(node: g.Expr) -> str:
    text = unparse(node)
    return f"({text})" if isinstance(node, (g.BinOp, g.Neg)) else text


@dataclass(frozen=True)
class _CallContext:
    """What a registry ``build_tensor`` rule may use: shapes, values, the call's text."""

    builder: VectorBuilder
    node: g.Call

    def val(self, expr: sp.Basic, shape: Shape) -> Val:
        return Val(expr, shape)

    def same(self, a: Shape, b: Shape) -> bool:
        return self.builder.same(a, b)

    def dim_eq(self, x: int | str, y: int | str) -> bool:
        return self.builder.dim_eq(x, y)

    def text(self, i: int) -> str:
        return unparse(self.node.args[i])

    def word(self, i: int) -> str | None:
        """The quoted option word written as argument ``i`` (``"valid"``), if any."""
        arg = self.node.args[i] if i < len(self.node.args) else None
        return arg.text if isinstance(arg, g.Word) else None

    @property
    def max_entries(self) -> int:
        """The most entries one value may have (the parse limits)."""
        return self.builder.limits.max_entries

    def keyword(self, name: str) -> Val | None:
        """The value of the keyword argument ``name=…`` (``stride=2``), if given."""
        for key, value in self.node.keywords:
            if key == name and isinstance(value, g.Word):
                raise ModelError(
                    f'{self.node.func}(): {name}= takes a whole number, not "{value.text}"',
                    value.span,
                    "padding=1 keeps the size of a 3×3 layer's maps (stride 1)"
                    if name == "padding"
                    else "",
                )
            if key == name:
                return self.builder(value)
        return None

    @property
    def batch(self) -> str | None:
        """The size that counts examples (``batch B``), or None."""
        return self.builder.batch

    def number(self, d: int | str) -> int | None:
        """A size as a number: literal, or a name bound by a const (``const n = 5``)."""
        return d if isinstance(d, int) else self.builder.sizes.get(d)

    @staticmethod
    def shape_text(shape: Shape) -> str:
        return shape_text(shape)


class VectorBuilder:
    """Builds :class:`Val` objects (expression + shape) from syntax trees."""

    def __init__(
        self, scope: Scope, sizes: dict[str, int], limits: g.Limits, batch: str | None = None
    ) -> None:
        self.batch = batch  # ``batch B``: rows of (B, n) matrices are examples
        self.scope = scope
        self.sizes = sizes
        self.limits = limits
        self.scalar = ExprBuilder(scope.resolve, limits, scope.functions)  # scalars, powers
        self.functions: Registry = scope.functions

    def __call__(self, node: g.Expr) -> Val:
        val = getattr(self, "build_" + type(node).__name__)(node)
        if not is_matrix(val.expr) and val.expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            raise ModelError("expression is not finite (division by zero?)", node.span)
        return val

    # -- leaves
    def build_Num(self, node: g.Num) -> Val:
        return Val(number(node.text, node.span, self.limits), ())

    def build_Name(self, node: g.Name) -> Val:
        sym = self.scope.resolve(node)  # raises the located "unknown name" errors
        item = self.scope.items.get(node.id)
        return Val(sym, item.shape if item is not None else ())

    def build_Word(self, node: g.Word) -> Val:
        return Val(self.scalar.build_Word(node), ())  # raises: words are options only

    def build_ArrayLit(self, node: g.ArrayLit) -> Val:
        raise ModelError(
            "array literals are not supported in expressions",
            node.span,
            "declare the array as an input and give its value at evaluation",
        )

    # -- operators
    def build_Neg(self, node: g.Neg) -> Val:
        v = self(node.operand)
        return Val(scale(-1, v.expr) if v.shape else -v.expr, v.shape)

    def build_Transpose(self, node: g.Transpose) -> Val:
        v = self(node.operand)
        if len(v.shape) < 2:
            return v  # NumPy: .T of a scalar or vector is itself
        if len(v.shape) > 2:
            raise ModelError(
                f"{unparse(node.operand)}.T: a tensor with {len(v.shape)} axes has no transpose",
                node.span,
            )
        return Val(v.expr.T, (v.shape[1], v.shape[0]))

    def build_BinOp(self, node: g.BinOp) -> Val:
        left, right = self(node.left), self(node.right)
        return self.binop(node.op, left, right, node)

    def binop(self, op: str, left: Val, right: Val, node: g.BinOp) -> Val:
        if op == "@":
            return self.matmul(left, right, node)
        if op == "^":
            return self.power(left, right, node)
        if not left.shape and not right.shape:
            return Val(_scalar_op(op, left.expr, right.expr, node.span), ())
        shape = self.broadcast_shape(left, right, node)
        if op == "*" and (not left.shape or not right.shape):
            s, m = (left.expr, right.expr) if not left.shape else (right.expr, left.expr)
            return Val(scale(s, m), shape)
        if op == "/" and not right.shape:
            if right.expr.is_zero:
                raise ModelError("division by zero", node.span)
            return Val(scale(1 / right.expr, left.expr), shape)
        a, b = self.expand(left, shape), self.expand(right, shape)
        if op == "+":
            return Val(mat_add(a, b), shape)
        if op == "-":
            return Val(mat_add(a, scale(-1, b)), shape)
        if op == "*":
            return Val(sp.HadamardProduct(a, b), shape)
        return Val(sp.HadamardProduct(a, sp.HadamardPower(b, -1)), shape)  # "/"

    def expand(self, v: Val, shape: Shape) -> sp.Basic:
        """``v`` broadcast to ``shape`` (unchanged when it already has it)."""
        if v.shape and self.same(v.shape, shape):
            return v.expr
        rows, cols = sympy_shape(shape)
        if self._row_broadcast(v.shape, shape):
            return Broadcast(v.expr.T, rows, cols)  # a vector along each example's row
        return Broadcast(v.expr, rows, cols)

    def _row_broadcast(self, small: Shape, big: Shape) -> bool:
        """In a batch program a vector (n,) broadcasts over the rows of (B, n) (NumPy)."""
        return (
            self.batch is not None
            and len(small) == 1
            and len(big) == 2
            and big[0] == self.batch
            and self.dim_eq(small[0], big[1])
        )

    def same(self, a: Shape, b: Shape) -> bool:
        """Shapes equal, a vector ``(m,)`` counting as the column ``(m, 1)``."""
        a2 = a + (1,) if len(a) == 1 else a
        b2 = b + (1,) if len(b) == 1 else b
        return len(a2) == len(b2) and all(self.dim_eq(x, y) for x, y in zip(a2, b2, strict=False))

    def dim_eq(self, x: int | str, y: int | str) -> bool:
        if x == y:
            return True
        return self.sizes.get(str(x), x) == self.sizes.get(str(y), y)

    def broadcast_shape(self, left: Val, right: Val, node: g.BinOp) -> Shape:
        a, b = left.shape, right.shape
        if not a or not b:
            return a or b
        if self.same(a, b):
            return a if len(a) >= len(b) else b
        for small, big in ((a, b), (b, a)):
            if len(big) == 2 and self._fits(small, big):
                return big
        hint = (
            "a vector (m,) broadcasts over the columns of an (m, B) matrix and a row (1, n) "
            "over the rows of an (m, n) matrix"
        )
        if max(len(a), len(b)) > 2:
            hint = (
                "a tensor combines with scalars and tensors of its own shape; a bias per "
                "output channel is the convolution's third argument (conv2d(X, K, b))"
            )
        raise ModelError(
            f"{unparse(node.left)} {node.op} {unparse(node.right)}: shapes {shape_text(a)} and "
            f"{shape_text(b)} do not match",
            node.span,
            hint,
        )

    def _fits(self, small: Shape, big: Shape) -> bool:
        if self._row_broadcast(small, big):
            return True
        if len(small) == 1:
            return self.dim_eq(small[0], big[0])
        rows_ok = self.dim_eq(small[0], big[0]) or small[0] == 1
        cols_ok = self.dim_eq(small[1], big[1]) or small[1] == 1
        return rows_ok and cols_ok

    def matmul(self, left: Val, right: Val, node: g.BinOp) -> Val:
        if len(left.shape) > 2 or len(right.shape) > 2:
            raise ModelError(
                f"{unparse(node.left)} @ {unparse(node.right)}: @ multiplies vectors and "
                f"matrices, got {shape_text(left.shape)} and {shape_text(right.shape)}",
                node.span,
                "flatten a tensor first (W @ flatten(P)), as a dense layer after a CNN does",
            )
        op = self.functions.operator("@")
        assert op is not None and op.build_tensor is not None
        context = _CallContext(self, g.Call(node.span, "@", (node.left, node.right)))
        try:
            return op.build_tensor(context, "@", [left, right])
        except OpError as exc:
            raise ModelError(str(exc), node.span, exc.hint) from None

    def power(self, left: Val, right: Val, node: g.BinOp) -> Val:
        if right.shape:
            raise ModelError("the exponent must be a scalar", node.span)
        expo = right.expr
        self.scalar.power(sp.Symbol("_x", positive=True), expo, node.span)  # limit checks
        if not left.shape:
            return Val(self.scalar.power(left.expr, expo, node.span), ())
        if expo.free_symbols:
            raise ModelError("an elementwise power needs a number exponent", node.span)
        return Val(sp.HadamardPower(left.expr, expo), left.shape)

    # -- calls
    def build_Call(self, node: g.Call) -> Val:
        op = find_function(self.functions, node)
        if op.kind == "tensor":
            return self.tensor_call(node, op)
        args = [self(a) for a in node.args]
        shaped = [i for i, a in enumerate(args) if a.shape]
        if shaped and op.build_tensor is not None:  # max(a, b) of tensors, max(v)
            return self.tensor_call(node, op)
        if not shaped:
            return Val(self.scalar.build_Call(node), ())
        if len(shaped) > 1:
            raise ModelError(
                f"{node.func}() takes at most one vector or matrix argument", node.span
            )
        return self.componentwise(node, op, args, shaped[0])

    def componentwise(self, node: g.Call, op: Op, args: list[Val], k: int) -> Val:
        """φ applied to every entry of argument ``k`` (the others are scalars)."""
        exprs = call_arguments(op, [a.expr for a in args], node)
        arg = exprs[k]
        exprs[k] = U
        body = (op.build or op.node)(*exprs)
        if node.prime:
            body = sp.diff(body, U)
        return Val(Elementwise(sp.Lambda(U, body), arg), args[k].shape)

    def tensor_call(self, node: g.Call, op: Op) -> Val:
        """A tensor operation by its registry entry (``sum``, ``softmax``, …)."""
        arity = op.extra.get("tensor_arity", op.arity)
        if len(node.args) not in arity:
            want = " or ".join(str(a) for a in arity)
            raise ModelError(
                f"{node.func}() takes {want} argument(s), got {len(node.args)}", node.span
            )
        if node.prime:
            raise ModelError(f"{node.func}' is not available; write the derivative out", node.span)
        options = tuple(op.extra.get("options", ()))
        args = []
        for a in node.args:
            if not isinstance(a, g.Word):
                args.append(self(a))
            elif a.text not in options:
                want = " or ".join(f'"{w}"' for w in options) or "no quoted options"
                raise ModelError(f'{node.func}() takes {want}, not "{a.text}"', a.span)
        assert op.build_tensor is not None
        try:
            return op.build_tensor(_CallContext(self, node), node.func, args)
        except OpError as exc:
            raise ModelError(str(exc), node.span, exc.hint) from None


def _scalar_op(op: str, a: sp.Basic, b: sp.Basic, span: SourceSpan) -> sp.Basic:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b.is_zero:
        raise ModelError("division by zero", span)
    return a / b


# ------------------------------------------------------------------- statements
def _bind_sizes(parsed: g.ParsedText, builder_scope: Scope, limits: g.Limits) -> dict[str, int]:
    """Sizes named in shapes and bound by a const of the same name (``const n = 3``)."""
    dim_names = {
        d
        for st in parsed.statements
        if isinstance(st, g.Declaration)
        for item in st.names
        for d in item.dims
        if isinstance(d, str)
    }
    sizes: dict[str, int] = {}
    scalar = ExprBuilder(builder_scope.resolve, limits, builder_scope.functions)
    for st in parsed.statements:
        if isinstance(st, g.Declaration) and st.kind == "const":
            for item in st.names:
                if item.name in dim_names and item.value is not None and not item.dims:
                    value = scalar(item.value) if isinstance(item.value, g.Num) else None
                    if value is None or not value.is_Integer or not 0 < int(value) <= 100_000:
                        raise ModelError(
                            f"size '{item.name}' must be a positive integer", item.span
                        )
                    sizes[item.name] = int(value)
    return sizes


def build_vector_program(parsed: g.ParsedText, limits: g.Limits = g.DEFAULT_LIMITS) -> Program:
    """Give meaning to a parsed text with shaped declarations (see the module doc)."""
    scope = Scope(parsed.filename)
    for st in parsed.statements:
        if isinstance(st, g.Assign):
            scope.defined_later.setdefault(st.target, st.span.line)
    sizes = _bind_sizes(parsed, scope, limits)
    batches = [st for st in parsed.statements if isinstance(st, g.BatchDecl)]
    if len(batches) > 1:
        raise ModelError("a program declares one batch size", batches[1].span)
    build = VectorBuilder(scope, sizes, limits, batches[0].name if batches else None)
    variables: list[Variable] = []
    assignments: list[Assignment] = []
    loss: tuple[str, SourceSpan] | None = None
    for st in parsed.statements:
        if isinstance(st, g.Declaration):
            for d in st.names:
                var = _declare(st.kind, d, build, scope)
                variables.append(var)
                scope.items[d.name] = var
        elif isinstance(st, g.Assign):
            a = _assign(st, build, scope)
            assignments.append(a)
            scope.items[st.target] = a
            scope.items.setdefault(a.name, a)
        elif isinstance(st, g.FuncDef):
            define_function(st, scope, limits)
        elif isinstance(st, g.LossDecl):
            loss = (st.name, st.span)
    program = finish_program(parsed, variables, assignments, loss, scope)
    _check_scalar_loss(program, loss)
    program.sizes = sizes
    program.batch = build.batch
    if batches and not any(build.batch in v.shape for v in variables):
        raise ModelError(
            f"batch size '{build.batch}' is in no declaration",
            batches[0].span,
            f"write the minibatch's inputs with it, e.g. 'input X[{build.batch}, n]'",
        )
    return program


def _declare(kind: str, d: g.Declared, build: VectorBuilder, scope: Scope) -> Variable:
    check_new_name(d.name, d.span, scope)
    if d.name in CONSTANTS:
        pass  # a declaration shadows e/pi, as in scalar programs
    value = None
    if kind == "const":
        if d.dims:
            raise ModelError(
                f"const '{d.name}' must be a scalar",
                d.span,
                "declare arrays as inputs and give their values when evaluating",
            )
        assert d.value is not None
        v = build(d.value)
        if v.shape or v.expr.free_symbols:
            raise ModelError("a const value must be a number", d.value.span)
        value = v.expr
    elif d.value is not None:
        raise ModelError(f"only consts take a value; '{d.name}' is a {kind}", d.value.span)
    _check_entries(d, build)
    return Variable(d.name, kind, make_symbol(d.name, d.dims), d.dims, value, d.span)  # type: ignore[arg-type]


def _check_entries(d: g.Declared, build: VectorBuilder) -> None:
    """A declared array's entries (its sizes that are numbers) within the limit."""
    entries = 1
    for dim in d.dims:
        n = dim if isinstance(dim, int) else build.sizes.get(dim)
        entries *= n or 1
    if entries > build.limits.max_entries:
        raise LimitError(
            f"'{d.name}' has {entries:,} entries; at most {build.limits.max_entries:,} per "
            "declared array",
            d.span,
        )


def _assign(st: g.Assign, build: VectorBuilder, scope: Scope) -> Assignment:
    existing = scope.items.get(st.target)
    if isinstance(existing, Variable):
        raise ModelError(
            f"'{st.target}' is a {existing.role}; it cannot be assigned",
            st.span,
            "choose another name for the new node",
        )
    if scope.functions.is_function(st.target) or st.target in CONSTANTS:
        raise ModelError(f"'{st.target}' is a built-in name", st.span)
    val = build(st.value)
    if st.op != "=":
        if existing is None:
            raise ModelError(f"'{st.target}' has no value to update with {st.op}", st.span)
        fake = g.BinOp(st.span, st.op[0], g.Name(st.span, st.target), st.value)
        val = build.binop(st.op[0], Val(existing.symbol, existing.shape), val, fake)
    scope.defined_later.pop(st.target, None)
    name = scope.new_version(st.target)
    return Assignment(
        name, make_symbol(name, val.shape), val.expr, val.shape, st.span, display=st.target
    )


def _check_scalar_loss(program: Program, loss: tuple[str, SourceSpan] | None) -> None:
    a = program.loss_assignment
    if a.shape:
        span = loss[1] if loss is not None else a.span
        raise ModelError(
            f"loss '{a.display}' has shape {shape_text(a.shape)}; the loss must be a scalar",
            span,
            f"reduce it, e.g. {a.display}_total = sum({a.display})",
        )


def parse_vector_program(
    text: str, filename: str = "<input>", limits: g.Limits = g.DEFAULT_LIMITS
) -> Program:
    """Parse a vector program (any text with shapes; see the module docstring)."""
    return build_vector_program(g.parse_text(text, filename, limits), limits)
