"""Generate one straight-line NumPy function ``loss_and_grad(params, data)`` per model.

The backprop derivation becomes the code a person would write by hand: the forward
pass with the program's own names (``z1``, ``h1``, ``y``), then the error signals
(``y_bar``, ``z1_bar``, …) reusing the forward values, then one gradient per parameter.

Data arrays carry the batch along axis 0 (rows are examples). The loss over a batch
is the mean (or the sum, ``reduction="sum"``) of the per-example losses, and every
gradient is exactly the gradient of that number:

* scalar (unit-form) programs batch by broadcasting: an input ``x1`` is a ``(B,)``
  array, so every node that depends on data is a ``(B,)`` array and a parameter's
  gradient is the sum of its per-example gradients over the batch;
* vector programs (``param W1[m, n]``) are printed by
  :mod:`chainrule.numeric.numpy_printer` when it is available (see
  :func:`generate`).

Safety: generated source is assembled only from checked identifiers
(``[A-Za-z_][A-Za-z0-9_]*``, Python keywords renamed ``lambda`` → ``lambda_``) and
printer output for SymPy trees; before compiling, :func:`audit_source` tokenizes the
text and refuses any name or string that is not one of those. No user text is ever
passed to ``exec``.

>>> import chainrule
>>> code = generate(chainrule.load("sum_times"))
>>> loss, grads = code.function({"x": -2.0, "y": 5.0, "z": -4.0}, {})
>>> float(loss), [float(grads[k]) for k in "xyz"]
(-12.0, [-4.0, -4.0, 3.0])
"""

from __future__ import annotations

import functools
import io
import keyword
import re
import tokenize
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from ..derive.records import BackpropDerivation, function_definitions
from ..derive.second_order import Tangent, tangent, tangent_steps
from ..ops import REGISTRY, in_forward_values
from ..symbolic.program import Assignment, Program
from .code_base import (  # noqa: F401  (re-exported: the public names of generated code)
    ACTIVATIONS,
    DTYPES,
    HELPER_NEEDS,
    HELPERS_ANALYTIC,
    HELPERS_STABLE,
    RESERVED,
    CodegenError,
    CodePrinter,
    _safe_text,
    assemble_module,
    helper_source,
    kink_arguments,
    name_table,
    namespace_lines,
    python_name,
    with_needs,
)
from .softmax_shift import SoftmaxShift, softmax_shifts


# ---------------------------------------------------------------- pre-checks
def unsupported_atoms(expr: sp.Basic) -> list[str]:
    """Names of atoms no generated code can evaluate (DiracDelta, Derivative, Subs)."""
    bad: list[str] = []
    if not isinstance(expr, sp.Basic):
        return bad
    for kind in (sp.DiracDelta, sp.Derivative, sp.Subs):
        if expr.has(kind):
            bad.append(kind.__name__)
    return bad


def precheck(derivation: BackpropDerivation) -> None:
    """Refuse a derivation containing DiracDelta / unevaluated Derivative, before codegen."""
    program = derivation.program
    for a in program.assignments:
        bad = unsupported_atoms(a.expr)
        if bad:
            raise CodegenError(
                f"node '{a.name}' contains {', '.join(bad)}; NumPy code cannot "
                "evaluate it (write the function with a supported activation)"
            )
    for s in derivation.steps:
        bad = unsupported_atoms(s.expression)
        if bad:
            what = " and ".join(bad)
            raise CodegenError(
                f"the error signal {s.signal} contains {what}: the derivative is not a function "
                "NumPy can evaluate (a step function's derivative is a DiracDelta; an unknown "
                "function stays an unevaluated Derivative). Use step/relu, whose derivative "
                "chainrule defines almost everywhere."
            )


# ----------------------------------------------------------------- the result
@dataclass
class GeneratedCode:
    """A compiled module: its source, its functions and how names were mapped."""

    source: str
    namespace: dict[str, Any]
    names: dict[str, str]  # program name → Python identifier
    params: list[str]
    inputs: list[str]
    dtype: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def function(self) -> Callable[..., tuple[Any, dict[str, Any]]]:
        """``loss_and_grad(params, data, reduction="mean") -> (loss, grads)``."""
        return self.namespace["loss_and_grad"]

    @property
    def hvp(self) -> Callable[..., dict[str, Any]]:
        """``hvp(params, data, v, reduction="mean") -> {param: (H v)_param}``: forward
        mode over the backprop program."""
        if "hvp" not in self.namespace:
            raise CodegenError("no hvp in this module (an operation has no forward-mode rule)")
        return self.namespace["hvp"]

    @property
    def forward(self) -> Callable[..., dict[str, Any]]:
        """``forward(params, data) -> {node: value}`` (the forward pass only)."""
        return self.namespace["forward"]

    def __call__(
        self, params: Mapping[str, Any], data: Mapping[str, Any], reduction: str = "mean"
    ) -> tuple[Any, dict[str, Any]]:
        return self.function(params, data, reduction)


# --------------------------------------------------------- the scalar emitter
@dataclass
class _Line:
    target: str  # Python identifier assigned
    code: str
    comment: str = ""
    key: str = ""  # the program's name for it

    def render(self, indent: str = "    ") -> str:
        tail = f"  # {self.comment}" if self.comment else ""
        return f"{indent}{self.target} = {self.code}{tail}"


class ScalarEmitter:
    """Emit the batched code of a scalar (unit-form) program.

    ``instrument`` adds hooks used by the gradient checker: a ``delta`` dict added to
    node values after they are computed, the error signals returned in ``signals`` and
    the arguments of non-smooth atoms in ``probes``.
    """

    def __init__(
        self,
        derivation: BackpropDerivation,
        dtype: str | None = None,
        analytic: bool = False,
        instrument: bool = False,
        fuse: bool = True,
    ) -> None:
        self.d = derivation
        self.p: Program = derivation.program
        self.dtype = dtype
        self.analytic = analytic
        self.instrument = instrument
        self.fuse = fuse
        self.needed = self.p.needed_by_loss()
        symbols = [v.symbol for v in self.p.variables]
        symbols += [a.symbol for a in self.p.assignments]
        symbols += [s.signal for s in derivation.steps]
        symbols += [tangent(str(s)) for s in symbols if not isinstance(s, Tangent)]
        self.names = name_table(symbols, reserved=("v", "Hv"))  # hvp's own names
        self.printer = CodePrinter(self.names)
        self.shifts = (
            []
            if analytic or instrument
            else softmax_shifts(derivation, {str(x.name) for x in symbols})  # type: ignore[attr-defined]
        )
        for sh in self.shifts:
            self.names[sh.shift] = python_name(sh.shift.name, self.names.values())
        self.shift_map = {k: v for sh in self.shifts for k, v in sh.replacements.items()}
        self.fwd_exprs: list[tuple[sp.Basic, sp.Basic, str, str]] = []  # for the tangents
        self.signal_exprs: dict[sp.Basic, sp.Basic] = {}
        self.all_backward: list[_Line] = []
        self.batched: set[sp.Basic] = set()
        self.forward_of: dict[sp.Basic, sp.Basic] = {}  # expr → node symbol (reuse)

    # -- helpers
    def pr(self, expr: sp.Basic) -> str:
        if self.shift_map:
            expr = expr.xreplace(self.shift_map)  # exp(z_k) → exp(z_k − S_max)
        return self.printer.doprint(expr)

    def is_batched(self, expr: sp.Basic) -> bool:
        return bool(getattr(expr, "free_symbols", set()) & self.batched)

    def n(self, sym: sp.Basic) -> str:
        return self.names[sym]

    # -- sections
    def leaves(self) -> list[str]:
        lines = namespace_lines(self.dtype)
        for v in self.p.params:
            lines.append(f"    {self.n(v.symbol)} = xp.asarray(params[{v.name!r}], dtype=dtype)")
        inputs = [v for v in self.p.inputs if v.name in self.needed]
        for v in inputs:
            self.batched.add(v.symbol)
            lines.append(
                f"    {self.n(v.symbol)} = "
                f"xp.reshape(xp.asarray(data[{v.name!r}], dtype=dtype), (-1,))"
            )
        for v in self.p.consts:
            lines.append(f"    {self.n(v.symbol)} = {self.pr(sp.sympify(v.value))}")
        lines.append(f"    B = {self.n(inputs[0].symbol)}.shape[0]" if inputs else "    B = 1")
        return lines

    def forward_lines(self) -> list[_Line]:
        out = []
        logs = stable_log_forms(self.p)
        for a in self.p.assignments:
            if a.name not in self.needed:
                continue
            plain = self.analytic or self.instrument
            expr = a.expr if plain else stable_logs(a.expr, logs)
            if self.is_batched(a.expr):
                self.batched.add(a.symbol)
            for sh in self.shifts:
                if sh.node == a.symbol:
                    out.append(self.shift_line(sh))
            self.forward_of.setdefault(a.expr, a.symbol)
            self.fwd_exprs.append((a.symbol, expr, "forward", a.name))
            out.append(
                _Line(
                    self.n(a.symbol),
                    self.pr(expr),
                    a.display if a.display != a.name else "",
                    key=a.name,
                )
            )
        return out

    def true_value(self, sym: sp.Basic) -> str:
        """A node's value as the model defines it (a shifted softmax sum scaled back)."""
        for sh in self.shifts:
            if sh.node == sym:
                return f"{self.n(sym)} * xp.exp({self.n(sh.shift)})"
        return self.n(sym)

    def shift_line(self, sh: SoftmaxShift) -> _Line:
        """S_max = max(z1, z2, …): the softmax exponents are shifted by it."""
        if any(self.is_batched(u) for u in sh.arguments):
            self.batched.add(sh.shift)
        code = self.printer.doprint(sp.Max(*sh.arguments, evaluate=False))
        return _Line(self.n(sh.shift), code, "softmax: exponents shifted by their max")

    def backward_lines(self) -> tuple[list[_Line], dict[str, str]]:
        """Error-signal lines and param → gradient code."""
        exprs = {s.signal: self.reuse(s.expression) for s in self.d.steps}
        notes: dict[sp.Basic, str] = {}
        if self.fuse and not self.analytic and not self.instrument:
            fuse_sigmoid_cross_entropy(self.d, exprs, notes)
        lines: list[_Line] = []
        grads: dict[str, str] = {}
        for s in self.d.steps:
            expr = exprs[s.signal]
            if s.role == "loss":
                lines.append(_Line(self.n(s.signal), "scale", "seed: the loss's own signal"))
                continue
            if self.is_batched(expr):
                self.batched.add(s.signal)
            if s.role == "param":
                grads[s.node] = self.param_gradient(expr)
                continue
            lines.append(_Line(self.n(s.signal), self.pr(expr), notes.get(s.signal, "")))
        self.signal_exprs, self.all_backward = exprs, lines
        return dead_code_free(lines, grads, self.instrument), grads

    def param_gradient(self, expr: sp.Basic) -> str:
        code = self.pr(expr)
        if self.is_batched(expr):
            return f"xp.sum({code})"
        return f"B * ({code})"

    def reuse(self, expr: sp.Basic) -> sp.Basic:
        """Write σ'(z) as h(1 − h) and f(z) as h when the forward pass computed h = f(z)."""
        return in_forward_values(
            expr,
            {
                e: s
                for e, s in self.forward_of.items()
                if not e.is_Atom and not isinstance(e, sp.Add | sp.Mul)
            },
        )

    # -- module
    def emit(self) -> str:
        head = self.leaves()
        fwd = self.forward_lines()
        loss_sym = self.p.loss_assignment.symbol
        loss_name = self.n(loss_sym)
        loss_code = (
            f"xp.sum({loss_name}) * scale"
            if loss_sym in self.batched
            else f"B * {loss_name} * scale"
        )
        bwd, grads = self.backward_lines()
        param_names = [v.name for v in self.p.params]
        body = [*head, '    scale = 1 / B if reduction == "mean" else 1', "    # forward pass"]
        for ln in fwd:
            body.append(ln.render())
            if self.instrument:
                body.append(
                    f"    if {ln.key!r} in delta:\n        {ln.target} = {ln.target} + "
                    f"delta[{ln.key!r}]"
                )
        body.append(f"    loss = {loss_code}")
        body.append("    # backward pass: error signals (v_bar = dLoss/dv)")
        body += [ln.render() for ln in bwd]
        body.append("    grads = {")
        for name in param_names:
            sym = self.p.symbol(name)
            code = grads.get(name, f"xp.zeros_like({self.n(sym)})")
            if not code.startswith(("xp.sum(", "xp.zeros_like(")):
                code = f"xp.asarray({code}, dtype=dtype)"
            body.append(f"        {name!r}: {code},")
        body.append("    }")
        if self.instrument:
            body += self.signal_lines()
            body += self.probe_lines()
        body.append("    return loss, grads")
        fwd_body = [
            *head,
            *(ln.render() for ln in fwd),
            "    return {"
            + ", ".join(
                f"{a.name!r}: {self.true_value(a.symbol)}"
                for a in self.p.assignments
                if a.name in self.needed
            )
            + "}",
        ]
        plain = self.analytic or self.instrument
        extra = [] if plain else [self.hvp_function(head, fwd)]
        return assemble_module(
            self.p,
            self.dtype,
            self.printer.helpers_used,
            body,
            fwd_body,
            self.analytic,
            self.instrument,
            extra,
            sources=self.printer.user_sources,
        )

    def hvp_function(self, head: list[str], fwd: list[_Line]) -> str:
        """``hvp(params, data, v)``: forward mode over the forward and backward passes.

        Every line ``u = f(a, …)`` of the two passes (as generated: fused, stable) gets
        a tangent line ``u_dot = f_a(a, …) a_dot + …``; the tangent of a gradient is
        (H v)_p, so H v costs about one more gradient.
        """
        lines = list(self.fwd_exprs)
        for s in self.d.steps:
            if s.role != "loss":
                kind = "gradient" if s.role == "param" else "backward"
                lines.append((s.signal, self.signal_exprs[s.signal], kind, s.node))
        params = {v.symbol: tangent(v.name) for v in self.p.params}
        tangents: list[_Line] = []
        hv: dict[str, str] = {}
        for t in tangent_steps(lines, params):
            expr = self.reuse(t.expression)
            if self.is_batched(expr):
                self.batched.add(t.tangent)
            if t.kind == "gradient":
                hv[t.node] = self.param_gradient(expr)
            else:
                tangents.append(_Line(self.n(t.tangent), self.pr(expr)))
        needed = dead_code_free(fwd + self.all_backward + tangents, hv, False)
        body = [*head, '    scale = 1 / B if reduction == "mean" else 1', "    # forward pass"]
        body += [ln.render() for ln in needed if ln in fwd]
        body.append("    # backward pass: error signals (v_bar = dLoss/dv)")
        body += [ln.render() for ln in needed if ln in self.all_backward]
        body.append("    # tangents along v: u_dot = directional derivative of u")
        for v in self.p.params:
            code = f"xp.asarray(v[{v.name!r}], dtype=dtype)"
            body.append(f"    {self.n(params[v.symbol])} = {code}")
        body += [ln.render() for ln in needed if ln in tangents]
        body.append("    Hv = {")
        for v in self.p.params:
            code = hv.get(v.name, f"xp.zeros_like({self.n(v.symbol)})")
            if not code.startswith(("xp.sum(", "xp.zeros_like(")):
                code = f"xp.asarray({code}, dtype=dtype)"
            body.append(f"        {v.name!r}: {code},")
        body.append("    }")
        body.append("    return Hv")
        return (
            'def hvp(params, data, v, reduction="mean"):\n'
            '    """H v: the Hessian of the loss (mean or sum) times v, a dict like params."""\n'
            + "\n".join(body)
            + "\n"
        )

    def signal_lines(self) -> list[str]:
        """dLoss/dv for every node: per example when v is batched, else the total."""
        out = []
        for s in self.d.steps:
            if s.role not in ("node", "loss"):
                continue
            code = self.n(s.signal)
            if self.p.symbol(s.node) not in self.batched:
                code = f"xp.sum({code})" if s.signal in self.batched else f"B * {code}"
            out.append(f"    signals[{s.node!r}] = {code}")
        return out

    def probe_lines(self) -> list[str]:
        """Arguments of non-smooth atoms, for kink detection."""
        out = []
        for a in self.p.assignments:
            if a.name not in self.needed:
                continue
            for arg in kink_arguments(a.expr):
                out.append(f"    probes.append({self.pr(arg)})")
        return out


def stable_log_forms(program: Program) -> dict[sp.Basic, tuple[Any, tuple[sp.Basic, ...]]]:
    """Nodes ``y = f(u)`` whose function's entry has a stable ``log`` form (σ)."""
    out = {}
    for a in program.assignments:
        op = REGISTRY.for_node(a.expr)
        if op is not None and op.kind == "scalar" and op.log_form is not None:
            out[a.symbol] = (op, a.expr.args)
    return out


def stable_logs(expr: sp.Basic, forms: Mapping[sp.Basic, tuple[Any, tuple]]) -> sp.Basic:
    """log y → the entry's log form and log(1 − y) → its complement form where y = f(u)
    (log σ(u) = −softplus(−u), log(1 − σ(u)) = −softplus(u): no log 0 for large |u|)."""
    if not forms or not expr.has(sp.log):
        return expr

    def rewrite(arg: sp.Basic) -> sp.Basic:
        if arg in forms:
            op, args = forms[arg]
            return op.log_form(*args)
        for y, (op, args) in forms.items():
            if op.log_complement is not None and sp.expand(arg - (1 - y)) == 0:
                return op.log_complement(*args)
        return sp.log(arg)

    return expr.replace(sp.log, rewrite)


def fuse_sigmoid_cross_entropy(
    d: BackpropDerivation, exprs: dict[sp.Basic, sp.Basic], notes: dict[sp.Basic, str]
) -> None:
    """u_bar = y_bar σ'(u) with y = σ(u): substitute y_bar and cancel (→ L_bar (y − t)).

    Done only when the cancelled form has no division by y or 1 − y, i.e. exactly the
    textbook stable gradient of cross-entropy on a sigmoid output.
    """
    program = d.program
    sig_nodes = {
        a.symbol: a.expr.args[0]
        for a in program.assignments
        if a.expr.args
        and a.expr.args[0].is_Symbol
        and getattr(REGISTRY.for_node(a.expr), "extra", {}).get("cancel_in_reader")
    }
    for y, u in sig_nodes.items():
        ysig = next((s.signal for s in d.steps if s.node == str(y)), None)
        usig = next((s.signal for s in d.steps if s.node == str(u)), None)
        if ysig is None or usig is None or ysig not in exprs:
            continue
        uexpr = exprs[usig]
        if not uexpr.has(ysig):
            continue
        full = uexpr.xreplace({ysig: exprs[ysig]})
        cancelled = sp.factor(sp.cancel(full))
        den = sp.denom(cancelled)
        if den.has(y) or sp.count_ops(cancelled) > sp.count_ops(full):
            continue
        exprs[usig] = cancelled
        notes[usig] = f"{ysig}*{y}*(1 - {y}) cancelled: stable, no division by {y}"


def dead_code_free(lines: list[_Line], grads: Mapping[str, str], keep_all: bool) -> list[_Line]:
    """Drop signal lines nothing reads (after fusion), unless instrumenting."""
    if keep_all:
        return lines
    used: set[str] = set()
    for code in grads.values():
        used |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code))
    kept = []
    for ln in reversed(lines):
        if ln.target in used:
            kept.append(ln)
            used |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", ln.code))
    return kept[::-1]


# ------------------------------------------------------------------ auditing
_ALLOWED_NAMES = (
    frozenset(
        {
            "errstate",
            "hvp",
            "Hv",
            "xp",
            "array_namespace",
            "array_api_compat",
            "namespace_and_dtype",
            "isdtype",
            "groups",
            "group",
            "v",
            "arrays",
            "kinds",
            "floats",
            "numpy_only",
            "isinstance",
            "all",
            "ndarray",
            "generic",
            "d",
            "hasattr",
            "asin",
            "acos",
            "atan",
            "pow",
            "over",
            "np",
            "numpy",
            "DTYPE",
            "params",
            "data",
            "reduction",
            "grads",
            "loss",
            "B",
            "scale",
            "delta",
            "signals",
            "probes",
            "len",
            "float",
            "dict",
            "e",
            "r",
            "s",
            "z",
            "a",
            "m",
            "append",
            "loss_and_grad",
            "forward",
            "values",
            "None",
            "True",
            "False",
            "asarray",
            "reshape",
            "dtype",
            "shape",
            "astype",
            "result_type",
            "float64",
            "float32",
            "complex128",
            "exp",
            "expm1",
            "log",
            "log1p",
            "logaddexp",
            "abs",
            "where",
            "sinh",
            "cosh",
            "tan",
            "sqrt",
            "sign",
            "sum",
            "mean",
            "zeros_like",
            "pi",
            "max",
            "min",
            "T",
            "keepdims",
            "axis",
            "ones",
            "zeros",
            "full",
            "matmul",
            "einsum",
            "outer",
            "eye",
            "diag",
            "exp2",
            "square",
            "arctan",
            "arcsin",
            "arccos",
            "logsumexp",
            "amax",
            "transpose",
            "broadcast_to",
            "ndim",
            "select",
            "inf",
            "nan",
            "out",
            "clip",
            "n",
            "x",
            "y",
            "k",
            "ravel",
            "copy",
            "ones_like",
            "matrix_transpose",
        }
    )
    | ACTIVATIONS
    # every operation's NumPy name (xp.tanh → tanh) and generated helper (softmax)
    | {op.numpy_call.rsplit(".", 1)[-1] for op in REGISTRY if op.numpy_call}
    | {name for op in REGISTRY for name in op.extra.get("helper_sources", {})}
    | {sp.Heaviside.__name__.lower()}  # SymPy's Heaviside prints as xp.heaviside
)


def audit_source(source: str, identifiers: Iterable[str], strings: Iterable[str]) -> None:
    """Refuse generated source with a name or string literal not known to be safe.

    ``identifiers`` are the checked program identifiers; ``strings`` the program names
    used as dict keys. Keywords are fine; comments and the module docstring are ignored.
    """
    helper_names, helper_strings = _entry_helper_tokens()
    allowed = _ALLOWED_NAMES | set(identifiers) | helper_names
    ok_strings = (
        {repr(s) for s in strings}
        | helper_strings
        | {
            '"mean"',
            "'mean'",
            '"ignore"',
            '"dtype"',
            '"real floating"',
            '"complex floating"',
            '"isdtype"',
        }
    )
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    first_string = True
    for tok in tokens:
        if tok.type == tokenize.NAME:
            if not (keyword.iskeyword(tok.string) or tok.string in allowed):
                raise CodegenError(f"refusing generated code: unexpected name {tok.string!r}")
        elif tok.type == tokenize.STRING:
            if first_string or tok.string.startswith(('"""', "'''")):
                first_string = False
                continue  # the module / function docstrings we wrote
            if tok.string not in ok_strings:
                raise CodegenError(f"refusing generated code: unexpected string {tok.string}")
        elif tok.type == tokenize.OP and tok.string in ("@", ";") and tok.string == ";":
            raise CodegenError("refusing generated code: ';'")


@functools.cache
def _entry_helper_tokens() -> tuple[frozenset[str], frozenset[str]]:
    """Names and string literals of the registry entries' own helper sources (our
    code, copied into generated modules): the audit accepts them in generated code."""
    from ..ops import REGISTRY

    names: set[str] = set()
    strings: set[str] = set()
    sources = [op.numpy_source for op in REGISTRY if op.numpy_source]
    sources += [src for op in REGISTRY for src in op.extra.get("helper_sources", {}).values()]
    for source in sources:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.NAME:
                names.add(tok.string)
            elif tok.type == tokenize.STRING and not tok.string.startswith(('"' * 3, "'" * 3)):
                strings.add(tok.string)
    return frozenset(names), frozenset(strings)


def compile_module(
    source: str, identifiers: Iterable[str], strings: Iterable[str]
) -> dict[str, Any]:
    """Audit then compile the generated module into a fresh namespace with only numpy."""
    audit_source(source, identifiers, strings)
    namespace: dict[str, Any] = {"__name__": "chainrule_generated", "np": np}
    code = compile(source, "<chainrule generated>", "exec")
    exec(code, namespace)  # noqa: S102 - audited source built from checked identifiers only
    return namespace


# ------------------------------------------------------------------ public API
def generate(
    model: Any,
    reduction: str = "mean",
    dtype: str | None = None,
    analytic: bool = False,
    instrument: bool = False,
    fuse: bool = True,
) -> GeneratedCode:
    """Generate and compile ``loss_and_grad`` for a model (program, path, derivation…).

    Without ``dtype`` the code computes in its inputs' dtype and array library;
    ``"float64"``, ``"float32"`` or ``"complex128"`` cast explicitly. ``analytic``/``instrument``
    build the variant the gradient checker uses (complex-safe helpers; hooks for
    perturbing nodes and reading error signals and kink probes).
    """
    if dtype is not None and dtype not in DTYPES:
        raise CodegenError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if reduction not in ("mean", "sum"):
        raise CodegenError(f"reduction must be 'mean' or 'sum', not {reduction!r}")
    derivation = _derivation(model)
    precheck(derivation)
    program = derivation.program
    if program.is_vector:
        from .vector_codegen import emit_vector_module

        source, names, shared = emit_vector_module(
            derivation, dtype=dtype, analytic=analytic, instrument=instrument
        )
    else:
        shared = []
        emitter = ScalarEmitter(
            derivation, dtype, analytic=analytic, instrument=instrument, fuse=fuse
        )
        source = emitter.emit()
        names = {str(k.name): v for k, v in emitter.names.items()}  # type: ignore[attr-defined]
    if reduction == "sum":
        source = source.replace('reduction="mean"', 'reduction="sum"', 1)
    strings = [v.name for v in program.variables] + [a.name for a in program.assignments]
    defined = function_definitions(program, *[s.expression for s in derivation.steps])
    helpers = {d.name for d in defined} | {
        python_name(str(p), {d.name}) for d in defined for p in d.params
    }
    namespace = compile_module(source, [*names.values(), *helpers, *shared], strings)
    return GeneratedCode(
        source,
        namespace,
        names,
        [v.name for v in program.params],
        [v.name for v in program.inputs],
        dtype,
        {"reduction": reduction, "analytic": analytic, "instrument": instrument},
    )


def compiled(
    model: Any,
    dtype: str | None = None,
    reduction: str = "mean",
    analytic: bool = False,
    instrument: bool = False,
) -> GeneratedCode:
    """:func:`generate`, compiled once and cached on the program object."""
    derivation = _derivation(model)
    program = derivation.program
    cache = program.__dict__.setdefault("_codegen_cache", {})
    key = (dtype, reduction, analytic, instrument)
    if key not in cache:
        cache[key] = generate(derivation, reduction, dtype, analytic, instrument)
    return cache[key]


def loss_and_grad(
    model: Any,
    params: Mapping[str, Any],
    data: Mapping[str, Any],
    reduction: str = "mean",
    dtype: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Evaluate a model's generated ``loss_and_grad`` (compiled once per model)."""
    return compiled(model, dtype=dtype).function(params, data, reduction)


def _derivation(model: Any) -> BackpropDerivation:
    if isinstance(model, BackpropDerivation):
        return model
    if getattr(model, "backprop", None) is not None and hasattr(model, "naive"):
        return model.backprop
    from ..derive.backprop import backprop
    from ..symbolic.build import load_model as load

    program = load(model)
    cache = program.__dict__.setdefault("_codegen_cache", {})
    if "derivation" not in cache:
        cache["derivation"] = backprop(program)
    return cache["derivation"]


def forward_nodes(program: Program) -> list[Assignment]:
    """The assignments the loss needs, in order."""
    needed = program.needed_by_loss()
    return [a for a in program.assignments if a.name in needed]
