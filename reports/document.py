"""Report documents: gather what a report shows, then lay it out as HTML, Markdown or LaTeX.

>>> data = build_report("sum_times", ReportOptions(graph=False, checks=False, code=False))
>>> data.present()
['model', 'naive', 'backprop', 'costs']
>>> "<math" in render_report(data, "html")
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import sympy as sp

from ..derive.opcount import count_ops
from ..derive.records import BackpropStep, Derivation, NaiveGradient, RuleStep
from ..symbolic.program import Program
from .data import (
    SECTION_TITLES,
    BackpropSection,
    BackpropStepView,
    CostRowView,
    CostSection,
    Equation,
    GraphSection,
    Leaf,
    ModelSection,
    NaiveParamView,
    NaiveSection,
    NaiveStepView,
    ReportData,
    ReportOptions,
    SecondOrderView,
)
from .formats import FORMATS, render_template
from .notation import derivative_symbol, entry_lines, pretty_name, to_latex

RULE_NAMES = {
    "sum": "sum rule",
    "product": "product rule",
    "constant multiple": "constant multiple",
    "power": "power rule",
    "exponential": "exponential rule",
    "quotient": "quotient rule",
    "chain": "chain rule",
    "general": "general rule",
}


# ------------------------------------------------------------------- helpers
def _shape(shape: tuple) -> str:
    return "scalar" if not shape else "(" + ", ".join(str(d) for d in shape) + ")"


def tree_size(expr: sp.Basic, stop: int) -> int:
    """Nodes of ``expr`` as a tree, counting no further than ``stop + 1``.

    >>> x = sp.Symbol("x")
    >>> tree_size(x + 1, 100), tree_size(x + 1, 1)
    (3, 2)
    """
    n = 0
    for _ in sp.preorder_traversal(expr):
        n += 1
        if n > stop:
            break
    return n


@dataclasses.dataclass
class _Ctx:
    """What every section builder needs: the program's notation and the size limit."""

    program: Program
    limit: int

    @property
    def vector(self) -> bool:
        return self.program.is_vector

    def tex(self, expr: sp.Basic) -> str:
        """Lecture-notation LaTeX, elided with its op count when too long to typeset
        (the size is measured first: printing a swollen expression takes minutes)."""
        if tree_size(expr, self.limit // 4) <= self.limit // 4:
            s = to_latex(expr, vector=self.vector)
            if len(s) <= self.limit:
                return s
        try:
            shown = f"{count_ops(expr).total:,} operations"
        except Exception:  # noqa: BLE001 - counting is best effort here
            shown = "many operations"
        return rf"\text{{[an expression of {shown}, too long to typeset]}}"

    def tex_written(self, a: Any) -> str:
        """A forward line in the order it was written (SymPy's canonical order otherwise)."""
        if a.as_written is not None:
            try:
                return to_latex(a.as_written, vector=self.vector, order="none")
            except Exception:  # noqa: BLE001 - fall back to the canonical form
                pass
        return self.tex(a.expr)

    def name(self, name: str, bar: bool = False) -> str:
        return pretty_name(name, vector=self.vector, bar=bar, latex=True)

    def display_name(self, name: str) -> str:
        return self.name(getattr(self.program[name], "display", name))


# ------------------------------------------------------------- model section
#: How a defined function's derivative is known, as the reports say it.
DEFINITION_NOTES = {"definition": "", "derived": "from the body", "declared": "declared"}


def model_section(ctx: _Ctx, derivation: Derivation | None = None) -> ModelSection:
    program = ctx.program
    leaves = []
    for v in program.variables:
        value = "" if v.value is None else str(v.value)
        leaves.append(Leaf(v.name, v.role, ctx.name(v.name), _shape(v.shape), value))
    equations = [
        Equation(
            a.name, f"{ctx.display_name(a.name)} = {ctx.tex_written(a)}", a.name == program.loss
        )
        for a in program.assignments
    ]
    definitions = [
        Equation(
            d.name,
            f"{ctx.tex(d.application)} = {ctx.tex(d.body)}"
            + (rf"\quad\text{{({DEFINITION_NOTES[d.role]})}}" if DEFINITION_NOTES[d.role] else ""),
        )
        for d in (derivation.definitions if derivation is not None else [])
    ]
    return ModelSection(
        program.title,
        program.filename,
        program.source,
        program.is_vector,
        leaves,
        equations,
        program.loss,
        ctx.display_name(program.loss),
        definitions,
    )


def graph_section(program: Program) -> GraphSection:
    from .graph import latex_picture, render_graph

    dot, rendered, plain = render_graph(program)
    picture = latex_picture(program, plain) if plain else None
    return GraphSection(dot, rendered.svg, rendered.note, plain, picture)


# ------------------------------------------------------------- naive section
def preorder(steps: list[RuleStep]) -> list[RuleStep]:
    """The trace (recorded innermost first) reordered outermost first, as slides read.

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> inner = RuleStep("power", x**2, x, 2*x, 1)
    >>> outer = RuleStep("chain", sp.exp(x**2), x, 2*x*sp.exp(x**2), 0, "exp")
    >>> [s.rule for s in preorder([inner, outer])]
    ['chain', 'power']
    """
    stack: list[tuple[RuleStep, list]] = []
    for s in steps:
        children = []
        while stack and stack[-1][0].depth > s.depth:
            children.append(stack.pop())
        stack.append((s, children[::-1]))
    out: list[RuleStep] = []

    def walk(node: tuple[RuleStep, list]) -> None:
        out.append(node[0])
        for child in node[1]:
            walk(child)

    for node in stack:
        walk(node)
    return out


def _rule_label(step: RuleStep) -> str:
    label = RULE_NAMES.get(step.rule, step.rule)
    return f"{label} ({step.function})" if step.function else label


def _naive_param(ctx: _Ctx, g: NaiveGradient, options: ReportOptions) -> NaiveParamView:
    ordered = preorder(g.steps)
    keep = ordered if options.steps else ordered[: options.max_steps]
    wrt = ctx.name(g.param)
    views = [
        NaiveStepView(
            _rule_label(s),
            s.depth,
            rf"\frac{{\partial}}{{\partial {wrt}}}\left[{ctx.tex(s.expr)}\right]",
            ctx.tex(s.result),
        )
        for s in keep
    ]
    loss = ctx.display_name(ctx.program.loss)
    return NaiveParamView(
        g.param,
        rf"\frac{{\partial {loss}}}{{\partial {wrt}}}",
        ctx.tex(g.gradient),
        views,
        len(ordered) - len(keep),
        g.steps_truncated,
    )


def naive_section(ctx: _Ctx, derivation: Derivation, options: ReportOptions) -> NaiveSection | None:
    nv = derivation.naive
    if nv is None:
        return None
    if ctx.program.is_vector:  # index notation at symbolic sizes (reports/index_notation.py)
        from .index_notation import index_naive_section

        section = index_naive_section(ctx.program, nv.seconds, options.naive_budget)
        if section is not None:
            return section  # type: ignore[no-any-return]
    params = [_naive_param(ctx, g, options) for g in nv.gradients.values()]
    loss = f"{ctx.display_name(ctx.program.loss)} = {ctx.tex(nv.substituted_loss)}"
    total = sum(len(g.steps) for g in nv.gradients.values())
    return NaiveSection(loss, params, nv.complete, nv.note, nv.seconds, total)


# ---------------------------------------------------------- backprop section
def _paren(latex: str, expr: sp.Basic) -> str:
    return rf"\left({latex}\right)" if expr.is_Add else latex


def _step_equation(ctx: _Ctx, step: BackpropStep, signals: Mapping[str, sp.Basic]) -> str:
    sig = ctx.tex(step.signal)
    if step.role == "loss":
        return f"{sig} = 1"
    if not step.contributions:
        return f"{sig} = 0"
    symbolic, local = [], []
    for c in step.contributions:
        child_sig = ctx.tex(signals[c.child]) if c.child in signals else ctx.name(c.child, True)
        symbolic.append(
            child_sig
            + r"\, "
            + derivative_symbol(
                getattr(ctx.program[c.child], "display", c.child), step.node, ctx.vector, True
            )
        )
        if ctx.vector:
            local.append(ctx.tex(c.term))
        elif c.local_derivative == 1:
            local.append(child_sig)
        else:
            local.append(
                child_sig + r"\, " + _paren(ctx.tex(c.local_derivative), c.local_derivative)
            )
    chain = [sig, " + ".join(symbolic), " + ".join(local)]
    result = ctx.tex(step.expression)
    if _bare(result) not in {_bare(c) for c in chain}:
        chain.append(result)
    return " = ".join(chain)


def _bare(latex: str) -> str:
    """LaTeX without spacing, to tell whether two lines print the same."""
    return latex.replace(r"\,", "").replace(" ", "")


def _with_entries(step: Any, vector: bool) -> str:
    """A step's note, with the entrywise reading of its backward nodes (conv2d's K̄)."""
    entries = entry_lines(step.node, step.expression) if vector and step.role != "loss" else []
    return "; ".join([step.note] * bool(step.note) + [f"entrywise: {e}" for e in entries])


def backprop_section(ctx: _Ctx, derivation: Derivation) -> BackpropSection | None:
    bp = derivation.backprop
    if bp is None:
        return None
    signals = bp.signals
    steps = []
    for s in bp.steps:
        item = ctx.program[s.node]
        steps.append(
            BackpropStepView(
                s.node,
                s.role,
                ctx.tex(s.signal),
                _step_equation(ctx, s, signals),
                [c.child for c in s.contributions],
                s.fan_out,
                _shape(getattr(item, "shape", ())),
                _with_entries(s, ctx.program.is_vector),
            )
        )
    grads = [
        Equation(p.name, f"{ctx.name(p.name, bar=True)} = {ctx.tex(bp.gradient(p.name))}")
        for p in ctx.program.params
    ]
    return BackpropSection(steps, grads, bp.seconds)


def second_order_view(derivation: Derivation) -> SecondOrderView | None:
    """The backprop program differentiated once more (scalar programs)."""
    from ..derive.second_order import second_order
    from ..derive.vector_tangents import TangentError
    from .second_order import second_order_latex

    if derivation.backprop is None:
        return None
    try:
        return SecondOrderView(**second_order_latex(second_order(derivation.backprop)))
    except TangentError:
        return None


# -------------------------------------------------------------- cost section
def _ratio(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}×"


def cost_section(derivation: Derivation) -> CostSection | None:
    if not derivation.costs:
        return None
    from .plots import bar_fractions, cost_chart, cost_items

    rows = []
    for r in derivation.costs:
        o = r.ops
        rows.append(
            CostRowView(r.route, *(None,) * 5, _ratio(r.ratio), r.note)
            if o is None
            else CostRowView(
                r.route, o.adds, o.muls, o.divs, o.calls, o.total, _ratio(r.ratio), r.note
            )
        )
    section = CostSection(rows, cost_chart(derivation.costs))
    section.bars, section.bars_log = bar_fractions(cost_items(derivation.costs))
    _add_multiply_adds(section, derivation)
    return section


def _add_multiply_adds(section: CostSection, derivation: Derivation) -> None:
    """The lectures' multiply–add count of a vector program (forward vs backward)."""
    program = derivation.program
    if not program.is_vector or derivation.backprop is None:
        return
    try:
        from ..derive.vector_costs import vector_costs
    except ImportError:
        return
    try:
        c = vector_costs(program, derivation.backprop)
    except Exception as exc:  # noqa: BLE001 - a report notes it and goes on
        section.note = f"multiply–add table unavailable: {exc}"
        return
    sizes = ", ".join(f"{k}={v}" for k, v in c.sizes.items())

    def text(e: Any) -> str:
        return str(e).replace("**", "^").replace("*", "·")

    cols = ["pass", "multiply–adds", f"at {sizes}" if sizes else "count", "× forward"]
    fwd, bwd = c.forward_macs_at, c.backward_macs_at
    rows = [
        ["forward", text(c.forward_macs), f"{fwd:,}", "1.00×"],
        ["backward", text(c.backward_macs), f"{bwd:,}", f"{c.mac_ratio:.2f}×"],
    ]
    section.mac_columns = cols
    section.macs = [dict(zip(cols, r, strict=True)) for r in rows]


# ---------------------------------------------------------------- assembling
def derive_for_report(model: Any, options: ReportOptions) -> Derivation:
    if isinstance(model, Derivation):
        return model
    from ..pipeline import derive_model

    return derive_model(
        model,
        method="both" if options.naive else "backprop",
        steps=True,
        naive_budget=options.naive_budget,
    )


def build_report(model: Any, options: ReportOptions | None = None, **kw: Any) -> ReportData:
    """Everything a report of ``model`` shows (a Derivation, Program, path, text or
    example name); ``options`` (or keyword arguments) pick the sections."""
    options = dataclasses.replace(options or ReportOptions(), **kw)
    derivation = derive_for_report(model, options)
    program = derivation.program
    ctx = _Ctx(program, options.math_limit)
    data = ReportData(program.title, model_section(ctx, derivation))
    data.version = _version()
    if options.graph:
        data.graph = graph_section(program)
    if options.naive:
        data.naive = naive_section(ctx, derivation, options)
    data.backprop = backprop_section(ctx, derivation)
    if options.order == 2 and data.backprop is not None:
        data.backprop.second_order = second_order_view(derivation)
    data.costs = cost_section(derivation)
    if options.checks:
        from .checks import checks_section

        data.checks, why = checks_section(derivation, options.point, options.seed)
        _note(data, why)
        _add_agreement(data, derivation)
    data.notes += operation_notes(derivation)
    if options.code:
        from .sections import code_section

        data.code, why = code_section(derivation)
        _note(data, why)
    run = None
    if options.train is not None and options.history is None:
        from .sections import try_training

        run, why = try_training(derivation, options)
        _note(data, why)
    if run is not None or options.history is not None:
        from .sections import training_section

        data.training, why = training_section(derivation, options, run)
        _note(data, why)
    if options.feature_maps:
        from .feature_maps import feature_maps_section

        data.feature_maps, why = feature_maps_section(program, options, run)
        _note(data, why)
    return data


def operation_notes(derivation: Derivation) -> list[str]:
    """What the operations of the model say about themselves (an entry's
    ``extra["report_notes"]``: the two views of a convolution, dropout's conventions)
    and the closed forms proved equal to their paths."""
    from ..ops import REGISTRY

    notes: list[str] = []
    seen: set[str] = set()
    for a in derivation.program.assignments:
        for e in sp.preorder_traversal(a.expr):
            op = REGISTRY.for_node(e)
            say = op.extra.get("report_notes") if op is not None else None
            if say is not None and op is not None and op.name not in seen:
                seen.add(op.name)
                notes += say(e)
    if derivation.program.is_vector and derivation.backprop is not None:
        from ..derive.closed_forms import closed_forms

        notes += [cf.line() for cf in closed_forms(derivation.program)]
    return notes


def _note(data: ReportData, why: str) -> None:
    if why:
        data.notes.append(why)


def _add_agreement(data: ReportData, derivation: Derivation) -> None:
    if data.checks is None or not derivation.program.is_vector:
        return
    from .sections import unit_form_agreement

    data.checks.agreement, data.checks.agreement_passed = unit_form_agreement(derivation)


def _version() -> str:
    try:
        from chainrule import __version__

        return str(__version__)
    except ImportError:  # pragma: no cover
        return ""


TEMPLATE = {"html": "report.html.j2", "md": "report.md.j2", "tex": "report.tex.j2"}


def render_report(
    report: ReportData, fmt: str, fragment: bool = False, assets: Mapping[str, str] | None = None
) -> str:
    """Lay ``report`` out as ``html``, ``md`` or ``tex`` (``fragment``: no page wrapper,
    for Jupyter). ``assets`` maps picture names (``graph``, ``costs``, ``curves``, a
    feature-map panel's key) to file names the Markdown report links instead of
    embedding."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r} (choose html, md or tex)")
    return render_template(
        fmt,
        TEMPLATE[fmt],
        r=report,
        fragment=fragment,
        assets=dict(assets or {}),
        titles=SECTION_TITLES,
    )


def render_document(
    derivation: Derivation, fmt: str, fragment: bool = False, **options: Any
) -> str:
    """A derivation as a document (what ``render_derivation`` uses for html/md/tex).

    Without options, a fragment shows the model, graph, both routes and the costs (no
    numeric checks or code, to stay quick in a notebook)."""
    if fragment:
        options = {"checks": False, "code": False, **options}
    opts = ReportOptions(**options)
    return render_report(build_report(derivation, opts), fmt, fragment=fragment)


def report_assets(report: ReportData, stem: str) -> dict[str, tuple[str, str]]:
    """Pictures a Markdown report links to: key → (file name, SVG text)."""
    out: dict[str, tuple[str, str]] = {}
    if report.graph is not None and report.graph.svg:
        out["graph"] = (f"{stem}-graph.svg", _standalone_svg(report.graph.svg))
    if report.costs is not None and report.costs.chart_svg:
        out["costs"] = (f"{stem}-costs.svg", report.costs.chart_svg)
    if report.training is not None and report.training.curves_svg:
        out["curves"] = (f"{stem}-curves.svg", report.training.curves_svg)
    for layer in report.feature_maps.layers if report.feature_maps is not None else []:
        for panel in layer.panels:
            out[panel.key] = (f"{stem}-{panel.key}.svg", panel.svg)
    return out


def _standalone_svg(svg: str) -> str:
    if "xmlns=" not in svg.split(">", 1)[0]:
        svg = svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    return svg


def latex_math(derivation: Derivation) -> str:
    r"""The backward pass as one ``$$\begin{aligned}…\end{aligned}$$`` block, for
    Jupyter's ``_repr_latex_`` (nbconvert to PDF, LaTeX-only front ends).

    >>> import chainrule
    >>> print(latex_math(chainrule.derivation("sum_times", method="backprop")))
    $$\begin{aligned}
    \bar{f} &= 1 \\
    \bar{q} &= \bar{f}\, z \\
    \bar{z} &= \bar{f}\, q \\
    \bar{y} &= \bar{q} \\
    \bar{x} &= \bar{q}
    \end{aligned}$$
    """
    ctx = _Ctx(derivation.program, 3000)
    bp = derivation.backprop
    if bp is None:
        lines = (
            [f"{ctx.display_name(ctx.program.loss)} = {ctx.tex(derivation.naive.substituted_loss)}"]
            if derivation.naive is not None
            else []
        )
    else:
        lines = []
        for s in bp.steps:
            eq = _step_equation(ctx, s, bp.signals)
            head, _, rest = eq.partition(" = ")
            last = rest.rsplit(" = ", 1)[-1]
            lines.append(f"{head} &= {last}")
    return "$$\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}$$"
