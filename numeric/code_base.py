"""What every generated module shares: safe names, the printer of scalar expressions
(array-API calls, helpers from the operator registry, a model's own functions as
helpers), kink arguments and the assembled module text. Used by the scalar emitter
(:mod:`.codegen`) and the batched one (:mod:`.vector_codegen`)."""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from ..ops import REGISTRY
from ..ops.scalar import kinks
from ..symbolic.errors import ChainruleError
from ..symbolic.program import Program
from .functions import NUMPY_FUNCTIONS

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

#: The activation helpers generated code may call (one list: numeric.functions).
ACTIVATIONS = frozenset(NUMPY_FUNCTIONS)

#: Names the generated module defines or uses itself; program names that collide get a
#: trailing underscore.
RESERVED = (
    frozenset(
        {
            "np",
            "xp",
            "dtype",
            "namespace_and_dtype",
            "array_namespace",
            "params",
            "data",
            "reduction",
            "grads",
            "loss",
            "B",
            "scale",
            "DTYPE",
            "values",
            "loss_and_grad",
            "forward",
            "hvp",
            "delta",
            "signals",
            "probes",
            "float",
            "dict",
            "len",
            "sign",
            "logsumexp",
            "self",
            "None",
            "True",
            "False",
        }
    )
    | ACTIVATIONS
    | {op.numpy_call for op in REGISTRY if op.numpy_source}  # helpers (softmax, …)
    | {name for op in REGISTRY for name in op.extra.get("helper_sources", {})}
)

#: Explicit casts (``--dtype``); without one, generated code computes in its inputs' dtype.
DTYPES = ("float64", "float32", "complex128")


def namespace_lines(dtype: str | None) -> list[str]:
    """The first lines of a generated function: the inputs' array library and dtype."""
    out = ["    xp, dtype = namespace_and_dtype(params, data)"]
    if dtype is not None:
        out.append(f"    dtype = xp.{dtype}  # an explicit cast, as generated (--dtype)")
    return out


class CodegenError(ChainruleError):
    """The derivation cannot become NumPy code (e.g. it contains a DiracDelta)."""


# ----------------------------------------------------------------------- helpers
#: Helper source by name, from the operator registry (each entry's ``numpy_source``, the
#: array-API form): ``stable`` versions never overflow; ``analytic`` ones are holomorphic
#: (for complex-step checks).
#: An entry may bring more helpers than its own (``extra["helper_sources"]``, with
#: ``extra["helper_needs"]``): conv2d's entry also brings conv1d and the patch view.
_MORE_HELPERS: dict[str, str] = {
    name: src for op in REGISTRY for name, src in op.extra.get("helper_sources", {}).items()
}
HELPERS_STABLE: dict[str, str] = {
    **{op.numpy_call: op.numpy_source for op in REGISTRY if op.numpy_source},
    **_MORE_HELPERS,
}
HELPERS_ANALYTIC: dict[str, str] = {
    **{
        op.numpy_call: op.numpy_source_analytic or op.numpy_source
        for op in REGISTRY
        if op.numpy_source
    },
    **_MORE_HELPERS,
}

#: Helpers that call other helpers.
HELPER_NEEDS = {
    **{op.numpy_call: op.needs for op in REGISTRY if op.numpy_source and op.needs},
    **{n: d for op in REGISTRY for n, d in op.extra.get("helper_needs", {}).items()},
}

#: The first helper of every generated module: the inputs' array library and dtype.
NAMESPACE_AND_DTYPE = '''def namespace_and_dtype(*groups):
    """The inputs' array library (NumPy for plain numbers and lists) and the type to
    compute in: the result type of the floating-point inputs (float64 if none)."""
    arrays = [v for group in groups for v in group.values() if hasattr(v, "dtype")]
    numpy_only = all(isinstance(a, (np.ndarray, np.generic)) for a in arrays)
    if numpy_only and hasattr(np, "isdtype"):
        xp = np  # NumPy 2 is itself an array-API namespace
    else:
        xp = array_namespace(*(arrays or [np.zeros(0)]))
    kinds = ("real floating", "complex floating")
    floats = [d for d in {a.dtype for a in arrays} if xp.isdtype(d, kinds)]
    return xp, (xp.result_type(*floats) if floats else xp.float64)
'''


def helper_source(name: str, analytic: bool = False) -> str:
    """The generated source of one helper (``analytic``: the holomorphic form)."""
    return (HELPERS_ANALYTIC if analytic else HELPERS_STABLE)[name]


def with_needs(names: set[str]) -> set[str]:
    """The helpers ``names`` call, themselves included."""
    out = set(names)
    for name in names:
        out |= set(HELPER_NEEDS.get(name, ()))
    return out


#: NumPy names whose array-API spelling differs.
_ARRAY_API_NAMES = {"arcsin": "asin", "arccos": "acos", "arctan": "atan", "power": "pow"}


# ----------------------------------------------------------------------- names
def python_name(name: str, taken: Iterable[str] = ()) -> str:
    """A safe Python identifier for a checked program name.

    >>> python_name("lambda"), python_name("z1"), python_name("loss")
    ('lambda_', 'z1', 'loss_')
    """
    if not _IDENT.match(name):
        raise CodegenError(f"'{name}' is not a valid name ([A-Za-z_][A-Za-z0-9_]*)")
    used = set(taken)
    out = name
    while keyword.iskeyword(out) or keyword.issoftkeyword(out) or out in RESERVED or out in used:
        out += "_"
    return out


def name_table(symbols: Iterable[sp.Basic], reserved: Iterable[str] = ()) -> dict[sp.Basic, str]:
    """Symbol → unique safe identifier (program order kept), avoiding ``reserved``."""
    table: dict[sp.Basic, str] = {}
    taken = set(reserved)
    for s in symbols:
        if s not in table:
            table[s] = python_name(str(s.name), taken)  # type: ignore[attr-defined]
            taken.add(table[s])
    return table


# --------------------------------------------------------------------- printer
class CodePrinter(NumPyPrinter):
    """SymPy → array-API source with ``xp.`` calls and the program's (renamed) names."""

    def __init__(self, names: Mapping[sp.Basic, str]) -> None:
        super().__init__(
            {"fully_qualified_modules": True, "inline": True, "allow_unknown_functions": False}
        )
        self.names = names
        self.helpers_used: set[str] = set()
        self.user_sources: dict[str, str] = {}  # a model's own functions, as helpers

    def _module_format(self, fqn: str, register: bool = True) -> str:
        if fqn.startswith("numpy."):
            name = fqn[len("numpy.") :]
            return "xp." + _ARRAY_API_NAMES.get(name, name)
        raise CodegenError(f"generated code would need {fqn}")

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        try:
            return self.names[expr]
        except KeyError:
            raise CodegenError(f"no value for '{expr}' in generated code") from None

    def _print_MatrixSymbol(self, expr: sp.Basic) -> str:
        return self.names.get(expr, str(expr.name))  # type: ignore[attr-defined]

    def _print_Function(self, expr: sp.Basic) -> str:
        name = type(expr).__name__
        if name not in HELPERS_STABLE:
            op = REGISTRY.for_node(expr)
            if op is None or op.extra.get("body") is None:
                raise CodegenError(f"no NumPy code for the function {name}")
            self.define(op)
        self.helpers_used.add(name)
        return f"{name}({', '.join(self._print(a) for a in expr.args)})"

    def define(self, op: Any) -> None:
        """A defined function (``def swish(z) = …``) as a helper of its own: the body
        printed like any expression, its parameters as the helper's arguments."""
        if op.name in self.user_sources:
            return
        if not _IDENT.match(op.name) or op.name in RESERVED - ACTIVATIONS:
            raise CodegenError(f"'{op.name}' cannot name a generated helper")
        params = {p: python_name(str(p), {op.name}) for p in op.extra["params"]}
        inner = CodePrinter(params)
        inner.user_sources = self.user_sources
        self.user_sources[op.name] = ""  # reserved while its body prints (no recursion)
        body = inner.doprint(op.extra["body"])
        self.helpers_used |= inner.helpers_used
        args = ", ".join(params.values())
        self.user_sources[op.name] = (
            f"def {op.name}({args}):\n"
            f'    """{_safe_text(op.doc)}"""\n'
            f"    xp = array_namespace({args})\n"
            f"    return {body}\n"
        )

    def _print_Abs(self, expr: sp.Basic) -> str:
        return f"xp.abs({self._print(expr.args[0])})"

    def _print_sign(self, expr: sp.Basic) -> str:
        return f"xp.sign({self._print(expr.args[0])})"

    def _print_Max(self, expr: sp.Basic) -> str:
        return self._fold("xp.maximum", expr.args)

    def _print_Min(self, expr: sp.Basic) -> str:
        return self._fold("xp.minimum", expr.args)

    def _fold(self, fn: str, args: tuple) -> str:
        out = self._print(args[0])
        for a in args[1:]:
            out = f"{fn}({out}, {self._print(a)})"
        return out

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        base, exp = expr.args
        if exp.is_Integer and exp < 0:
            denom = sp.Pow(base, -exp, evaluate=False) if exp != -1 else base
            return f"1/{self.parenthesize(denom, 1000)}"
        return super()._print_Pow(expr, rational=rational)

    def _print_Rational(self, expr: sp.Rational) -> str:
        return repr(expr.p / expr.q)  # the double nearest p/q, as Python computes p/q

    def _print_Float(self, expr: sp.Float) -> str:
        return repr(float(expr))

    def _print_Exp1(self, expr: sp.Basic) -> str:
        return "xp.e"

    def _print_Pi(self, expr: sp.Basic) -> str:
        return "xp.pi"

    def _print_DiracDelta(self, expr: sp.Basic) -> str:
        raise CodegenError("DiracDelta in a derivative")

    def _print_Derivative(self, expr: sp.Basic) -> str:
        raise CodegenError("unevaluated Derivative")

    def _print_not_supported(self, expr: sp.Basic) -> str:
        raise CodegenError(f"no NumPy code for {type(expr).__name__}")


def kink_arguments(expr: sp.Basic) -> list[sp.Basic]:
    """Expressions whose sign change crosses a kink of a non-smooth atom."""
    out: list[sp.Basic] = []
    for atom in sp.preorder_traversal(expr):
        if isinstance(atom, sp.Heaviside):
            out.append(atom.args[0])
        elif isinstance(atom, sp.Piecewise):
            for _, cond in atom.args:
                if isinstance(cond, sp.core.relational.Relational):
                    out.append(cond.lhs - cond.rhs)
        elif isinstance(atom, sp.Basic) and atom.args:
            op = REGISTRY.for_node(atom)
            if op is not None and op.kind == "scalar":
                out += kinks(op, atom.args)
    return out


# --------------------------------------------------------------- the module
def assemble_module(
    program: Program,
    dtype: str | None,
    helpers: set[str],
    body: list[str],
    fwd_body: list[str],
    analytic: bool = False,
    instrument: bool = False,
    extra: Sequence[str] = (),
    sources: Mapping[str, str] | None = None,
) -> str:
    """The module text: docstring, imports, helpers, ``loss_and_grad``, ``extra``
    functions (``hvp``), ``forward``."""
    sources = dict(sources or {})
    wanted = with_needs({h for h in helpers if h not in sources})
    params = ", ".join(v.name for v in program.params)
    inputs = ", ".join(v.name for v in program.inputs) or "(none)"
    title = _safe_text(program.title or program.filename)
    sig_extra = ", delta=None, signals=None, probes=None" if instrument else ""
    init = (
        [
            "    delta = {} if delta is None else delta",
            "    signals = {} if signals is None else signals",
            "    probes = [] if probes is None else probes",
        ]
        if instrument
        else []
    )
    parts = [
        f'"""Loss and gradient of {title}, generated by chainrule.\n\n'
        f"params: {params}\ndata:   {inputs} (arrays, one row per example)\n\n"
        "Arrays of any array-API library (NumPy, CuPy, PyTorch, JAX, array-api-strict)\n"
        "come back as arrays of the same library, computed in the inputs' dtype.\n"
        '"""\n',
        "import numpy as np\nfrom array_api_compat import array_namespace\n",
        NAMESPACE_AND_DTYPE,
        *[helper_source(h, analytic) for h in sorted(wanted, key=_helper_order)],
        *[sources[h] for h in sorted(sources) if h in helpers],
        f'def loss_and_grad(params, data, reduction="mean"{sig_extra}):\n'
        '    """(loss, grads): the mean (or sum) of per-example losses and its gradient."""\n'
        + "\n".join(init + body)
        + "\n",
        *extra,
        "def forward(params, data):\n"
        '    """Every node\'s value (the forward pass only)."""\n' + "\n".join(fwd_body) + "\n",
    ]
    return "\n\n\n".join(p.rstrip("\n") for p in parts) + "\n"


def _helper_order(name: str) -> tuple[int, str]:
    return (1 if name in HELPER_NEEDS else 0, name)


def _safe_text(text: str) -> str:
    """A title for the docstring: printable ASCII without quotes or backslashes."""
    clean = "".join(ch for ch in text if ch.isascii() and ch.isprintable() and ch not in "\"'\\")
    return clean[:80] or "a model"
