"""Batched NumPy code for vector programs (``param W1[m, n]``), matrix by matrix.

Inside the generated function a per-example column vector ``x`` (n, 1) becomes the
matrix of all examples' columns, shape (n, B): ``W1 @ x + b1`` is then the whole
batch at once, ``z_bar @ x.T`` sums the per-example ``z̄ xᵀ`` over the batch (exactly
the gradient of the summed loss), and a bias gradient is ``xp.sum(z_bar, axis=1)``.
Data come in with one row per example (``x`` is (B, n), transposed once on entry);
per-example scalars are (1, B) rows.

Every sub-expression's printed code carries a batch *state*:

``const``   the same for every example (parameters, constants): summed over a
            batch it counts B times;
``batch``   examples along the last axis;
``batchT``  examples along the first axis (the transpose of a batched value);
``sum``     already summed over the batch (a product contracting the batch axis);
``stack``   examples along the first axis, each in its own axes: an input ``X[C, H, W]``
            is (B, C, H, W), and the layers (conv2d, pooling) work on it as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import sympy as sp

from ..derive.records import BackpropDerivation
from ..ops import REGISTRY, Elementwise, OpError, U, in_forward_values, is_matrix
from .code_base import (
    CodegenError,
    CodePrinter,
    assemble_module,
    name_table,
    namespace_lines,
)

Code = tuple[str, str]  # (source, state)


def _combine(states: list[str], what: str) -> str:
    s = set(states) - {"const"}
    if not s:
        return "const"
    if len(s) == 1:
        return s.pop()
    raise CodegenError(f"cannot batch {what}: operands are {sorted(s)} over the batch")


class MatrixPrinter:
    """Matrix-expression → (NumPy code, batch state), one method per node type."""

    def __init__(
        self,
        names: dict[sp.Basic, str],
        states: dict[sp.Basic, str],
        reuse: dict[tuple[sp.Basic, sp.Basic], sp.Basic],
        sizes: dict[str, int] | None = None,
    ) -> None:
        self.names = names
        self.states = states
        self.sizes = dict(sizes or {})  # size names bound to numbers
        self.reuse = reuse  # (function body in U, argument) → forward node symbol
        self.scalar = CodePrinter(names)
        self.ndims: dict[sp.Basic, int] = {}  # a stacked symbol → its value's own axes
        # values computed once in the forward pass and read again by the backward pass
        # (a convolution's patches): key → name, and the lines still to be written
        self.shared: dict[Any, str] = {}
        self.pending: list[tuple[str, str]] = []
        self.sharing = False  # True while the forward pass prints

    @property
    def helpers_used(self) -> set[str]:
        return self.scalar.helpers_used

    # -- what the registry's batched rules use
    @staticmethod
    def wrap(code: str) -> str:
        return _wrap(code)

    @staticmethod
    def combine(states: list[str], what: str) -> str:
        return _combine(states, what)

    def use_helper(self, name: str) -> None:
        self.helpers_used.add(name)

    def __call__(self, e: sp.Basic) -> Code:
        op = REGISTRY.for_node(e)
        if op is not None and op.batched is not None:
            try:
                return op.batched(self, e)
            except (OpError, NotImplementedError) as exc:  # an entry's rule cannot batch it
                raise CodegenError(f"cannot batch {op.name}: {exc}") from None
        for cls in type(e).__mro__:
            method = getattr(self, "p_" + cls.__name__, None)
            if method is not None:
                return method(e)
        raise CodegenError(f"no batched NumPy code for {type(e).__name__}: {e}")

    # -- leaves
    def p_Symbol(self, e: sp.Symbol) -> Code:
        return self.scalar._print(e), self.states.get(e, "const")

    p_MatrixSymbol = p_Symbol

    def p_Number(self, e: sp.Number) -> Code:
        return self.scalar._print(e), "const"

    def p_NumberSymbol(self, e: sp.Basic) -> Code:
        return self.scalar._print(e), "const"

    def p_OneMatrix(self, e: sp.Basic) -> Code:
        """𝟙 (the cotangent of a sum): a column of ones when its size is a number, else 1
        (it only ever meets arrays it broadcasts against)."""
        rows = sp.sympify(e.shape[0]).xreplace(
            {sp.Symbol(k, integer=True, positive=True): v for k, v in self.sizes.items()}
        )
        if rows.is_Integer and e.shape[1] == 1:
            return f"xp.ones(({int(rows)}, 1), dtype=dtype)", "const"
        if e.shape[1] == 1 and rows.free_symbols and rows.free_symbols <= set(self.names):
            size = self.scalar._print(rows)  # a minibatch program's B: its own variable
            return f"xp.ones(({size}, 1), dtype=dtype)", "const"
        return "1", "const"

    # -- structure
    def p_Transpose(self, e: sp.Basic) -> Code:
        code, st = self(e.arg)
        if st == "stack":  # each example's matrix transposed
            return f"xp.matrix_transpose({code})", "stack"
        flip = {"batch": "batchT", "batchT": "batch"}.get(st, st)
        return f"{_wrap(code)}.T", flip

    def p_MatMul(self, e: sp.Basic) -> Code:
        coeffs = [self(a) for a in e.args if not getattr(a, "is_Matrix", False)]
        mats = [a for a in e.args if getattr(a, "is_Matrix", False)]
        code, st = self(mats[0])
        for m in mats[1:]:
            code, st = self._matmul(code, st, mats[0], m)
        if coeffs and st == "stack":  # per-example scales of an examples-first tensor
            scalars = [a for a in e.args if not getattr(a, "is_Matrix", False)]
            coeffs = self._lifted([*scalars, e], [*coeffs, (code, st)])[:-1]
        if coeffs:
            cst = _combine([c[1] for c in coeffs] + ([st] if st != "sum" else []), "a product")
            if st == "sum" and cst != "const":
                raise CodegenError("cannot batch a batched scale of a batch sum")
            code = "*".join([_wrap(c[0]) for c in coeffs] + [_wrap(code)])
            st = st if st == "sum" else cst
        return code, st

    def _matmul(self, a: str, sa: str, left: sp.Basic, right: sp.Basic) -> Code:
        b, sb = self(right)
        pair = (sa, sb)
        if sa == "const" or sb == "const":
            if pair in (
                ("const", "const"),
                ("const", "batch"),
                ("batchT", "const"),
                ("sum", "const"),
                ("const", "sum"),
            ):
                st = (
                    "const"
                    if pair == ("const", "const")
                    else ("sum" if "sum" in pair else sa if sa != "const" else sb)
                )
                return f"{_wrap(a)} @ {_wrap(b)}", st
        if "stack" in pair and set(pair) <= {"stack", "const"}:  # a product per example
            if right.shape[1] == 1:  # each example's column: back to columns (n, B)
                return f"({_wrap(a)} @ {_wrap(b)})[:, :, 0].T", "batch"
            return f"{_wrap(a)} @ {_wrap(b)}", "stack"
        if pair == ("batch", "const") and right.shape[0] == 1:  # each example's outer product
            return f"{_wrap(a)}.T[:, :, None] @ {_wrap(b)}", "stack"
        if pair == ("stack", "batch"):  # each example's matrix times its column
            return f"({_wrap(a)} @ {_wrap(b)}.T[:, :, None])[:, :, 0].T", "batch"
        if pair == ("batchT", "stack"):  # each example's row times its matrix
            return f"({_wrap(a)}[:, None, :] @ {_wrap(b)})[:, 0, :].T", "batch"
        if pair == ("batch", "batchT"):
            return f"{_wrap(a)} @ {_wrap(b)}", "sum"  # Σ over examples
        if pair == ("batchT", "batch"):  # per-example row @ column: a scalar each
            return f"xp.sum({_wrap(a)}.T * {_wrap(b)}, axis=0, keepdims=True)", "batch"
        raise CodegenError(f"cannot batch the product {left} @ {right} ({sa} @ {sb})")

    def _nary(self, e: sp.Basic, op: str, what: str) -> Code:
        parts = self._lifted(list(e.args), [self(a) for a in e.args])
        return op.join(_wrap(c) for c, _ in parts), _combine([s for _, s in parts], what)

    def shared_value(self, key: Any, name: str, code: str, create: bool) -> str | None:
        """The name of a value the forward pass computes once (``create``: write its line
        before the current one); None where there is none."""
        if key in self.shared or not (create and self.sharing):
            return self.shared.get(key)
        taken = set(self.names.values()) | set(self.shared.values())
        while name in taken:
            name += "_"
        self.shared[key] = name
        self.pending.append((name, code))
        return name

    # -- per-example scalars meeting examples-first tensors
    def stack_ndim(self, e: sp.Basic) -> int:
        """How many axes one example's value of ``e`` has (X[C, H, W]: 3)."""
        if e in self.ndims:
            return self.ndims[e]
        op = REGISTRY.for_node(e)
        rule = op.extra.get("ndim") if op is not None else None
        if rule is not None:
            return int(rule(e, self.stack_ndim))
        inner = [self.stack_ndim(a) for a in e.args if is_matrix(a)]
        return max(inner, default=2)

    def _lifted(self, exprs: list[sp.Basic], parts: list[Code]) -> list[Code]:
        """Per-example scalars (1, B) beside examples-first tensors (B, …) become
        (B, 1, …, 1), so they broadcast example by example."""
        states = {st for _, st in parts}
        if not {"batch", "stack"} <= states:
            return parts
        nd = max(
            self.stack_ndim(x) for x, (_, st) in zip(exprs, parts, strict=True) if st == "stack"
        )
        out = []
        for x, (code, st) in zip(exprs, parts, strict=True):
            if st == "batch":
                scalar = self._per_example_scalar(x)
                if scalar is None:
                    raise CodegenError(f"cannot batch {x}: a column per example beside a tensor")
                code = f"xp.reshape({scalar}, (-1{', 1' * nd}))"
                st = "stack"
            out.append((code, st))
        return out

    def operand(self, e: sp.Basic, i: int, axes: tuple[int, ...] | None = None) -> Code:
        """Argument ``i`` of node ``e``; an error signal s·𝟙 with one number per example
        (a layer read inline by a scalar) spread to examples first, (B, *axes)."""
        code, st = self(e.args[i])
        wide = self.spread(e.args[i], axes) if st == "batch" and axes is not None else None
        return (wide, "stack") if wide is not None else (code, st)

    def spread(self, x: sp.Basic, axes: tuple[int, ...]) -> str | None:
        """``x`` = s·𝟙 (one number s per example) as examples-first arrays (B, *axes);
        None when x is not that."""
        scalar = self._per_example_scalar(x)
        if scalar is None:
            return None
        lifted = f"xp.reshape({scalar}, (-1{', 1' * len(axes)}))"
        return f"xp.broadcast_to({lifted}, (B, {', '.join(map(str, axes))}))"

    def _per_example_scalar(self, x: sp.Basic) -> str | None:
        """The code of ``x`` as one number per example: x itself, or s of s·𝟙."""
        if not is_matrix(x):
            return self(x)[0]
        if isinstance(x, sp.MatMul | sp.Mul):
            ones = [a for a in x.args if isinstance(a, sp.OneMatrix)]
            rest = [a for a in x.args if not isinstance(a, sp.OneMatrix)]
            if len(ones) == 1 and rest and not any(is_matrix(a) for a in rest):
                return self(sp.Mul(*rest))[0]
        return None

    def p_MatAdd(self, e: sp.Basic) -> Code:
        signs = [_negated(a) for a in e.args]  # a − b prints as such, not a + (-1)*b
        shown = [_unsigned(a) if n else a for a, n in zip(e.args, signs, strict=True)]
        parts = self._lifted(shown, [self(x) for x in shown])
        code = " + ".join(c for (c, _), n in zip(parts, signs, strict=True) if not n) or "0"
        for (c, _), n in zip(parts, signs, strict=True):
            code += f" - {_wrap(c)}" if n else ""
        return code, _combine([st for _, st in parts], "a sum")

    def p_Add(self, e: sp.Basic) -> Code:
        return self.p_MatAdd(e)

    def p_HadamardProduct(self, e: sp.Basic) -> Code:
        return self._nary(e, "*", "a Hadamard product")

    def p_Mul(self, e: sp.Basic) -> Code:
        num: list[Code] = []
        den: list[Code] = []
        negative = False
        num_x: list[sp.Basic] = []
        den_x: list[sp.Basic] = []
        for a in e.args:
            if a.is_Pow and a.exp.is_Integer and a.exp < 0 and not getattr(a, "is_Matrix", False):
                den_x.append(a.base if a.exp == -1 else a.base ** (-a.exp))
                den.append(self(den_x[-1]))
            elif a == -1:
                negative = not negative
            else:
                num_x.append(a)
                num.append(self(a))
        lifted = self._lifted(num_x + den_x, num + den)
        num, den = lifted[: len(num)], lifted[len(num) :]
        code = "*".join(_wrap(c) for c, _ in num) or "1"
        if den:
            code += "/" + "/".join(_wrap(c) for c, _ in den)
        states = [s for _, s in num + den]
        if "sum" in states and set(states) - {"sum", "const"}:
            raise CodegenError("cannot batch a product of a batch sum and batched values")
        return ("-" + code if negative else code), _combine(states, "a product")

    def p_HadamardPower(self, e: sp.Basic) -> Code:
        code, st = self(e.args[0])
        return f"{_wrap(code)}**{self.scalar._print(e.args[1])}", st

    def p_Pow(self, e: sp.Basic) -> Code:
        base, st = self(e.base)
        exp, st2 = self(e.exp)
        if e.exp.is_Integer and e.exp < 0:
            inv = f"{_wrap(base)}**{-int(e.exp)}" if e.exp != -1 else _wrap(base)
            return f"1/{_wrap(inv) if e.exp != -1 else inv}", st
        return f"{_wrap(base)}**{_wrap(exp)}", _combine([st, st2], "a power")

    # -- functions
    def p_Elementwise(self, e: Elementwise) -> Code:
        body = e.fn.expr
        node = self.reuse.get((body, e.arg))
        if node is not None:
            return self(node)
        arg_code, st = self(e.arg)
        placeholder = sp.Symbol("ARG_PLACEHOLDER")
        extra = {placeholder: _wrap(arg_code)}
        body = self._reuse_in_body(body, e.arg, extra)
        self.scalar.names = {**self.names, **extra}
        try:
            return self.scalar.doprint(body.xreplace({U: placeholder})), st
        finally:
            self.scalar.names = self.names

    def _reuse_in_body(self, body: sp.Basic, arg: sp.Basic, extra: dict[sp.Basic, str]) -> sp.Basic:
        """σ'(u) → h(1 − h) and f(u) → h where the forward pass has h = f(arg).

        Forward nodes enter the scalar body as placeholder symbols (added to ``extra``
        with the node's name) so the body stays a scalar expression.
        """
        subs: dict[sp.Basic, sp.Basic] = {}
        for k, ((fbody, farg), sym) in enumerate(self.reuse.items()):
            if farg == arg:
                ph = sp.Symbol(f"REUSE{k}_PLACEHOLDER")
                extra[ph] = self.names[sym]
                subs[fbody] = ph
        return in_forward_values(body, subs) if subs else body

    def p_Function(self, e: sp.Basic) -> Code:
        parts = [self(a) for a in e.args]
        ph = [sp.Symbol(f"ARG{i}_PLACEHOLDER") for i in range(len(parts))]
        self.scalar.names = {
            **self.names,
            **{p: _wrap(c) for p, (c, _) in zip(ph, parts, strict=True)},
        }
        try:
            code = self.scalar.doprint(e.func(*ph))
        finally:
            self.scalar.names = self.names
        return code, _combine([s for _, s in parts], "a function")

    p_Max = p_Function
    p_Min = p_Function

    # -- reductions (per example: over axis 0 of the (n, B) columns)
    def reduce(self, fn: str, code: str, st: str) -> Code:
        """A reduction of each example's entries (over axis 0 of the (n, B) columns)."""
        if st == "batch":
            return f"xp.{fn}({code}, axis=0, keepdims=True)", "batch"
        if st == "const":
            return f"xp.{fn}({code})", "const"
        if st == "stack":  # each example's entries (its own axes after the first)
            return f"xp.reshape(xp.{fn}(xp.reshape({code}, (B, -1)), axis=1), (1, -1))", "batch"
        raise CodegenError(f"cannot batch {fn} of a {st} value")


def _needed(lines: list[str], roots: Iterable[str]) -> list[str]:
    """The ``name = code`` lines the roots read, directly or not (comments kept)."""
    words = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
    used = {w for r in roots for w in words.findall(r)}
    kept = []
    for ln in reversed(lines):
        target, sep, code = ln.strip().partition(" = ")
        if ln.lstrip().startswith("#") or not sep or target in used:
            kept.append(ln)
            used |= set(words.findall(code))
    return kept[::-1]


def _negated(a: sp.Basic) -> bool:
    """Whether a term is written −1·rest."""
    return isinstance(a, sp.MatMul | sp.Mul) and bool(a.args) and a.args[0] == -1


def _unsigned(a: sp.Basic) -> sp.Basic:
    """rest of a term −1·rest."""
    return a.func(*a.args[1:]) if len(a.args) > 2 else a.args[1]


def _reshape(code: str, shape: str, when: bool = True) -> str:
    """``xp.reshape(code, shape)`` (the array API has no ``.reshape`` method); a
    reshape of a reshape is one."""
    if not when:
        return code
    inner = re.fullmatch(r"xp\.reshape\((.*), \(-1, 1\)\)", code)
    if inner and shape == "(-1,)" and _balanced(inner.group(1)):
        code = inner.group(1)
    return f"xp.reshape({code}, {shape})"


def _balanced(code: str) -> bool:
    """Whether ``code`` is one argument: brackets closing in order, no comma outside."""
    depth = 0
    for ch in code:
        depth += ch in "([" and 1 or 0
        depth -= ch in ")]" and 1 or 0
        if depth < 0 or (depth == 0 and ch == ","):
            return False
    return depth == 0


def _wrap(code: str) -> str:
    """Parenthesize unless the code is a name, call, number or already bracketed."""
    c = code.strip()
    if c.replace("_", "").replace(".", "").isalnum():
        return c
    if c.endswith(")") or c.endswith("]") or c.endswith(".T"):
        depth = 0
        for i, ch in enumerate(c):
            depth += ch in "([" and 1 or 0
            depth -= ch in ")]" and 1 or 0
            if depth == 0 and ch in " +-*/@" and i > 0:
                return f"({c})"
        return c
    return f"({c})"


# ------------------------------------------------------------------ emitter
class VectorEmitter:
    """The batched module of a vector program (see the module docstring)."""

    def __init__(
        self,
        derivation: BackpropDerivation,
        dtype: str | None = None,
        analytic: bool = False,
        instrument: bool = False,
    ) -> None:
        self.d = derivation
        self.p = derivation.program
        self.dtype = dtype
        self.analytic = analytic
        self.instrument = instrument
        self.needed = self.p.needed_by_loss()
        symbols = [v.symbol for v in self.p.variables] + [a.symbol for a in self.p.assignments]
        symbols += [s.signal for s in derivation.steps]
        size = sp.Symbol(str(self.p.batch), integer=True, positive=True)
        if self.p.batch is not None:
            symbols.append(size)
        self.names = name_table(symbols, reserved=("v", "Hv"))  # hvp's own names
        if self.p.batch == "B":  # the generated code's B is the batch size itself
            self.names[size] = "B"
        self.states: dict[sp.Basic, str] = {}
        reuse = {
            (a.expr.fn.expr, a.expr.arg): a.symbol
            for a in self.p.assignments
            if isinstance(a.expr, Elementwise) and a.name in self.needed
        }
        self.pr = MatrixPrinter(self.names, self.states, reuse, self.p.sizes)
        self.kind: dict[str, str] = {}  # name → "vector" | "scalar" | "matrix"

    def n(self, sym: sp.Basic) -> str:
        return self.names[sym]

    def leaves(self) -> list[str]:
        out = namespace_lines(self.dtype)
        for v in self.p.params:
            code = f"xp.asarray(params[{v.name!r}], dtype=dtype)"
            out.append(f"    {self.n(v.symbol)} = {_reshape(code, '(-1, 1)', len(v.shape) == 1)}")
        inputs = [v for v in self.p.inputs if v.name in self.needed]
        if self.p.batch is not None:
            return out + self._minibatch_leaves(inputs)
        for v in inputs:
            self.states[v.symbol] = "batch"
            name = self.n(v.symbol)
            if len(v.shape) > 1:
                self.states[v.symbol] = "stack"
                self.pr.ndims[v.symbol] = len(v.shape)
                axes = ", ".join(str(self._number(d, v.name)) for d in v.shape)
                code = f"xp.asarray(data[{v.name!r}], dtype=dtype)"
                out.append(f"    {name} = xp.reshape({code}, (-1, {axes}))  # examples first")
                continue
            out.append(f"    {name} = xp.asarray(data[{v.name!r}], dtype=dtype)")
            shape = f"({name}.shape[0], -1)" if v.shape else "(1, -1)"
            tail = ".T" if v.shape else ""
            out.append(f"    {name} = xp.reshape({name}, {shape}){tail}  # one column per example")
        for v in self.p.consts:
            if v.name in self.p.sizes:
                continue
            if not v.shape:
                out.append(f"    {self.n(v.symbol)} = {self.pr.scalar._print(sp.sympify(v.value))}")
            else:
                raise CodegenError(f"constant '{v.name}' with a shape is not supported")
        first = inputs[0] if inputs else None
        axis = 0 if first is not None and len(first.shape) > 1 else 1
        out.append(f"    B = {self.n(first.symbol)}.shape[{axis}]" if first else "    B = 1")
        return out

    def _number(self, d: int | str, name: str) -> int:
        n = d if isinstance(d, int) else self.p.sizes.get(d)
        if n is None:
            raise CodegenError(f"the size '{d}' of input '{name}' must be bound by a const")
        return n

    def _minibatch_leaves(self, inputs: list[Any]) -> list[str]:
        """A whole-minibatch program (``batch B``) is one evaluation: its inputs are the
        minibatch's matrices as given (rows are examples), every value is ``const``."""
        out = []
        for v in inputs:
            code = f"xp.asarray(data[{v.name!r}], dtype=dtype)"
            out.append(f"    {self.n(v.symbol)} = {_reshape(code, '(-1, 1)', len(v.shape) == 1)}")
        first = next((v for v in inputs if v.shape and v.shape[0] == self.p.batch), None)
        if first is None:
            raise CodegenError(f"no input has the batch size {self.p.batch} first")
        out.append(f"    B = {self.n(first.symbol)}.shape[0]  # examples in this minibatch")
        size = sp.Symbol(str(self.p.batch), integer=True, positive=True)
        if self.names[size] != "B":
            out.append(f"    {self.names[size]} = B")
        return out

    def forward(self) -> tuple[list[tuple[str, str, str]], list[str]]:
        lines: list[tuple[str, str, str]] = []
        out_fwd: list[str] = []
        reuse, self.pr.reuse = self.pr.reuse, {}  # a node is not its own forward value
        self.pr.sharing = not (self.analytic or self.instrument)
        try:
            self._forward(lines)
        finally:
            self.pr.reuse = reuse
            self.pr.sharing = False
        return lines, out_fwd

    def _forward(self, lines: list[tuple[str, str, str]]) -> None:
        for a in self.p.assignments:
            if a.name not in self.needed:
                continue
            expr = a.expr if self.analytic or self.instrument else self._stable(a.expr)
            code, st = self.pr(expr)
            if st == "batchT":
                code, st = f"{_wrap(code)}.T", "batch"
            if st == "sum":
                raise CodegenError(f"node '{a.name}' sums over the batch; not batchable")
            if st == "stack":
                self.pr.ndims[a.symbol] = len(a.shape)
            self.states[a.symbol] = st
            lines += [(name, value, "") for name, value in self.pr.pending]
            self.pr.pending.clear()
            lines.append((self.n(a.symbol), code, a.name))

    def _stable(self, expr: sp.Basic) -> sp.Basic:
        """log(y) with y = f(u) → the entry's stable form (log softmax(u) → log_softmax(u)):
        no log 0 when y underflows."""
        forms: dict[sp.Basic, tuple[Callable[..., sp.Basic], tuple[sp.Basic, ...]]] = {}
        for a in self.p.assignments:
            op = REGISTRY.for_node(a.expr)
            if op is not None and op.log_form is not None and op.kind == "tensor":
                forms[a.symbol] = (op.log_form, a.expr.args)
        if not forms:
            return expr
        subs = {}
        for e in sp.preorder_traversal(expr):
            if isinstance(e, Elementwise) and e.fn.expr == sp.log(U) and e.arg in forms:
                log_form, args = forms[e.arg]
                subs[e] = log_form(*args)
        return expr.xreplace(subs) if subs else expr

    def _spread(self, node: str, expr: sp.Basic) -> Code:
        """The error signal s·𝟙 of a tensor node, one number s per example, spread over
        each example's tensor: (B, *axes)."""
        axes = tuple(self._number(d, node) for d in self.p[node].shape)
        code = self.pr.spread(expr, axes)
        if code is None:
            raise CodegenError(f"cannot batch the error signal of '{node}'")
        return code, "stack"

    def rows(self, name: str, code: str) -> str:
        """A value in the caller's layout: one row per example."""
        item = self.p[name]
        st = self.states.get(item.symbol, "const")
        if st == "batch":
            return f"{code}.T" if item.shape else _reshape(code, "(-1,)")
        if st == "stack":
            return code
        return _reshape(code, "(-1,)", len(item.shape) == 1)

    def cols(self, name: str, code: str) -> str:
        item = self.p[name]
        st = self.states.get(item.symbol, "const")
        if st == "batch":
            return f"{code}.T" if item.shape else _reshape(code, "(1, -1)")
        if st == "stack":
            return code
        return _reshape(code, "(-1, 1)", len(item.shape) == 1)

    def param_gradient(self, name: str, expr: sp.Basic) -> str:
        v = self.p[name]
        terms = expr.args if isinstance(expr, sp.MatAdd | sp.Add) else (expr,)
        parts = []
        for term in terms:
            code, st = self.pr(term)
            if st == "batchT":
                code, st = f"{_wrap(code)}.T", "batch"
            if st == "batch":
                axis = ", axis=1" if len(v.shape) == 1 else ""
                if len(v.shape) == 2:
                    raise CodegenError(f"cannot batch the gradient of '{name}'")
                parts.append(f"xp.sum({code}{axis})")
            elif st == "stack":
                parts.append(f"xp.sum({code}, axis=0)")
            elif st == "const":
                count = "" if self.p.batch is not None else "B*"  # one evaluation
                parts.append(_reshape(f"{count}{_wrap(code)}", "(-1,)", len(v.shape) == 1))
            else:  # already summed over examples
                parts.append(_reshape(code, "(-1,)", len(v.shape) == 1))
        return " + ".join(parts)

    def emit(self) -> str:
        head = self.leaves()
        fwd, _ = self.forward()
        loss = self.p.loss_assignment
        lname = self.n(loss.symbol)
        loss_code = (
            f"xp.sum({lname}) * scale"
            if self.states[loss.symbol] == "batch"
            else f"B * {lname} * scale"
        )
        scale = '    scale = 1 / B if reduction == "mean" else 1'
        if self.p.batch is not None:  # the program itself says how it reduces its minibatch
            loss_code, scale = lname, "    scale = 1  # the loss is the program's own"
        body = [*head, scale, "    # forward pass"]
        for target, code, key in fwd:
            body.append(f"    {target} = {code}")
            if self.instrument and key:
                body.append(
                    f"    if {key!r} in delta:\n        {target} = {target} + "
                    f"{self.cols(key, f'delta[{key!r}]')}"
                )
        body.append(f"    loss = {loss_code}")
        body.append("    # backward pass: error signals (v_bar = dLoss/dv), examples in columns")
        grads: dict[str, str] = {}
        signal_lines = []
        for s in self.d.steps:
            if s.role == "loss":
                body.append(f"    {self.n(s.signal)} = scale  # seed")
                self.states[s.signal] = "const"
                continue
            if s.role == "param":
                grads[s.node] = self.param_gradient(s.node, s.expression)
                continue
            code, st = self.pr(s.expression)
            if st == "batchT":
                code, st = f"{_wrap(code)}.T", "batch"
            if st == "sum":
                raise CodegenError(f"the error signal of '{s.node}' sums over the batch")
            if st == "batch" and self.states.get(self.p[s.node].symbol) == "stack":
                code, st = self._spread(s.node, s.expression)
            if st == "stack":
                self.pr.ndims[s.signal] = len(self.p[s.node].shape)
            self.states[s.signal] = st
            note = f"  # {s.note.split(':')[0]}" if s.note else ""
            body.append(f"    {self.n(s.signal)} = {code}{note}")
            signal_lines.append(s)
        passes = list(body)
        body.append("    grads = {")
        for v in self.p.params:
            code = grads.get(v.name, f"xp.zeros_like({self.n(v.symbol)})")
            if v.name not in grads and len(v.shape) == 1:
                code = _reshape(code, "(-1,)")
            body.append(f"        {v.name!r}: {code},")
        body.append("    }")
        if self.instrument:
            body += self.signal_checks(signal_lines)
            body += self.probes()
        body.append("    return loss, grads")
        fwd_body = [
            *head,
            *(f"    {t} = {c}" for t, c, _ in fwd),
            "    return {"
            + ", ".join(f"{key!r}: {self.rows(key, t)}" for t, _, key in fwd if key)
            + "}",
        ]
        extra = []
        if not (self.analytic or self.instrument):
            try:
                extra.append(self.hvp_function([ln for ln in passes if " loss = " not in ln]))
            except CodegenError:
                pass  # an operation without a forward-mode rule: no hvp for this model
        return assemble_module(
            self.p,
            self.dtype,
            self.pr.helpers_used,
            body,
            fwd_body,
            self.analytic,
            self.instrument,
            extra,
            sources=self.pr.scalar.user_sources,
        )

    def hvp_function(self, passes: list[str]) -> str:
        """``hvp(params, data, v)``: tangent lines over the two passes (see vector_hvp)."""
        from ..derive.vector_tangents import TangentError, jvp
        from .code_base import python_name

        dots: dict[sp.Basic, sp.Basic] = {}
        lines = ["    # tangents along v: u_dot = directional derivative of u"]

        def tangent_of(sym: sp.Basic, name: str) -> sp.Basic:
            t = (
                sp.MatrixSymbol(f"{name}_dot", *sym.shape)
                if getattr(sym, "is_Matrix", False)
                else sp.Symbol(f"{name}_dot", real=True)
            )
            self.names[t] = python_name(f"{name}_dot", self.names.values())
            dots[sym] = t
            return t

        for v in self.p.params:
            t = tangent_of(v.symbol, v.name)
            self.states[t] = "const"
            code = f"xp.asarray(v[{v.name!r}], dtype=dtype)"
            lines.append(f"    {self.n(t)} = {_reshape(code, '(-1, 1)', len(v.shape) == 1)}")
        items = [
            (a.symbol, a.name, self._stable(a.expr), "node")
            for a in self.p.assignments
            if a.name in self.needed
        ]
        items += [
            (s.signal, s.node, s.expression, s.role) for s in self.d.steps if s.role != "loss"
        ]
        hv: dict[str, str] = {}
        for sym, name, expr, role in items:
            try:
                d = jvp(expr, dots)
            except TangentError as exc:
                raise CodegenError(str(exc)) from None
            if d is None:
                continue
            if role == "param":
                hv[name] = self.param_gradient(name, d)
                continue
            code, st = self.pr(d)
            if st == "batchT":
                code, st = f"{_wrap(code)}.T", "batch"
            if st == "sum":
                raise CodegenError(f"the tangent of '{name}' sums over the batch")
            t = tangent_of(sym, str(sym.name) if sym.name != name else name)
            self.states[t] = st
            lines.append(f"    {self.n(t)} = {code}")
        out = [*passes, *_needed(lines, hv.values()), "    Hv = {"]
        for v in self.p.params:
            code = hv.get(v.name, f"xp.zeros_like({self.n(v.symbol)})")
            if v.name not in hv and len(v.shape) == 1:
                code = _reshape(code, "(-1,)")
            out.append(f"        {v.name!r}: {code},")
        out += ["    }", "    return Hv"]
        return (
            'def hvp(params, data, v, reduction="mean"):\n'
            '    """H v: the Hessian of the loss (mean or sum) times v, a dict like params."""\n'
            + "\n".join(out)
            + "\n"
        )

    def signal_checks(self, steps: list[Any]) -> list[str]:
        out = [f"    signals[{self.p.loss!r}] = {self._total(self.p.loss, 'scale', 'const')}"]
        for s in steps:
            st = self.states[s.signal]
            code = self._total(s.node, self.n(s.signal), st)
            item = self.p[s.node]
            if self.states.get(item.symbol) == "batch" and st == "const":
                code = (
                    _reshape(f"xp.asarray({code})", "(-1,)") if item.shape else code
                )  # broadcasts
            else:
                code = self.rows(s.node, code)
            out.append(f"    signals[{s.node!r}] = {code}")
        return out

    def _total(self, node: str, code: str, st: str) -> str:
        if self.p.batch is not None:
            return code  # one evaluation of the whole minibatch
        item = self.p[node]
        if self.states.get(item.symbol, "const") in ("batch", "stack"):
            return code
        if st == "batch":
            return f"xp.sum({code}, axis=-1, keepdims=True)" if item.shape else f"xp.sum({code})"
        return f"B*{_wrap(code)}"

    def probes(self) -> list[str]:
        from .code_base import kink_arguments

        out = []
        for a in self.p.assignments:
            if a.name not in self.needed:
                continue
            for e in sp.preorder_traversal(a.expr):
                if isinstance(e, Elementwise):
                    for arg in kink_arguments(e.fn.expr):
                        if arg == U:
                            out.append(f"    probes.append({self.pr(e.arg)[0]})")
                op = REGISTRY.for_node(e)
                tie = op.extra.get("tie_probe") if op is not None else None
                if tie is not None:  # 0 where a max-pool group is tied
                    out.append(f"    probes.append({tie(self.pr, e)[0]})")
        return out


def emit_vector_module(
    derivation: BackpropDerivation,
    dtype: str | None = None,
    analytic: bool = False,
    instrument: bool = False,
) -> tuple[str, dict[str, str], list[str]]:
    """(source, program name → identifier, the identifiers of shared values)."""
    em = VectorEmitter(derivation, dtype, analytic, instrument)
    source = em.emit()
    names = {str(k.name): v for k, v in em.names.items()}  # type: ignore[attr-defined]
    return source, names, sorted(em.pr.shared.values())


Callback = Callable[..., Any]
