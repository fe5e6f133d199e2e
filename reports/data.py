"""What a report shows, as plain records: math as LaTeX strings, the rest as text.

:func:`chainrule.reports.document.build_report` fills these from a model; the format
templates (``reports/templates/*.j2``) only lay them out. Math is kept as LaTeX (the
lectures' notation, from :mod:`chainrule.reports.notation`) and converted per format:
MathML for HTML, ``$…$`` for Markdown, as is for LaTeX. Every other string is plain text
that each format escapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ReportOptions:
    """Which sections a report has and how much detail they show.

    >>> ReportOptions(naive=False).naive
    False
    """

    naive: bool = True  # section 3, the calculus-class route
    steps: bool = False  # every rule application (else the first ``max_steps`` per param)
    max_steps: int = 24
    graph: bool = True
    checks: bool = True
    code: bool = True
    naive_budget: float | None = 30.0
    point: dict[str, Any] | None = None  # where the numeric checks evaluate
    seed: int = 0
    train: dict[str, Any] | None = None  # training options (``data``, ``epochs``, ``lr``…)
    history: dict[str, Any] | None = None  # a finished training history to show instead
    math_limit: int = 3000  # longer LaTeX is elided with its op count
    order: int = 1  # 2: the second order (forward-over-reverse) in the backprop section
    feature_maps: bool = True  # CNNs: kernels and feature maps as heatmaps


@dataclass
class Leaf:
    name: str
    role: str  # param, input, const
    latex: str
    shape: str  # "scalar", "(m, n)"
    value: str = ""  # consts only


@dataclass
class Equation:
    name: str
    latex: str
    is_loss: bool = False


@dataclass
class ModelSection:
    title: str
    filename: str
    source: str
    is_vector: bool
    leaves: list[Leaf]
    equations: list[Equation]
    loss: str
    loss_latex: str
    #: the functions the model defines (``swish(z) = z σ(z)``, ``swish'(z) = …``)
    definitions: list[Equation] = field(default_factory=list)


@dataclass
class GraphSection:
    dot: str
    svg: str | None  # inline SVG from Graphviz, or None when ``dot`` is missing
    note: str = ""
    plain: str | None = None  # ``dot -Tplain`` layout
    picture: str | None = None  # the layout as a LaTeX ``picture`` (no packages needed)


@dataclass
class NaiveStepView:
    rule: str  # rule name as the lectures say it ("chain rule (σ)")
    depth: int
    before: str  # LaTeX: d/dw [expr]
    after: str  # LaTeX: the result


@dataclass
class NaiveParamView:
    name: str
    latex: str  # ∂L/∂w
    result: str
    steps: list[NaiveStepView]
    omitted_steps: int = 0
    truncated: bool = False  # the trace hit the deriver's step limit


@dataclass
class NaiveSection:
    loss_latex: str  # the substituted loss
    params: list[NaiveParamView]
    complete: bool
    note: str
    seconds: float
    total_steps: int = 0


@dataclass
class BackpropStepView:
    node: str
    role: str  # loss, node, param, input
    signal: str  # LaTeX v̄
    equation: str  # LaTeX: v̄ = Σ c̄ ∂c/∂v = … = result
    children: list[str]
    fan_out: int
    shape: str = ""
    note: str = ""


@dataclass
class BackpropSection:
    steps: list[BackpropStepView]
    gradients: list[Equation]  # p̄ for every parameter
    seconds: float
    second_order: SecondOrderView | None = None


@dataclass
class SecondOrderView:
    """Forward-over-reverse: tangent lines, closed-form Hessian entries (LaTeX)."""

    tangents: list[str]
    entries: list[str]
    rank_one: str = ""
    note: str = ""


@dataclass
class CostRowView:
    route: str
    adds: int | None
    muls: int | None
    divs: int | None
    calls: int | None
    total: int | None
    ratio: str  # "1.00×" or "—"
    note: str


@dataclass
class CostSection:
    rows: list[CostRowView]
    chart_svg: str | None
    bars: list[tuple[str, float | None, float | None]] = field(default_factory=list)
    bars_log: bool = False  # the bars' scale (label, value, fraction of the longest)
    macs: list[dict[str, Any]] = field(default_factory=list)  # vector programs
    mac_columns: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class CheckRow:
    name: str  # parameter (or error signal) checked
    index: str  # entry index ("" for scalars)
    analytic: float
    numeric: float
    rel_error: float
    passed: bool
    method: str = "central difference"


@dataclass
class ChecksSection:
    method: str
    threshold: float
    rows: list[CheckRow]
    worst: float
    passed: bool
    point: dict[str, str]
    band: str = ""  # "good (≤ 1e-7)" / "acceptable" / "wrong (> 1e-2)"
    signals: list[CheckRow] = field(default_factory=list)  # error signals checked
    entries: int = 0  # entries checked in all (rows may show only the worst)
    agreement: str = ""  # unit-form / vector-form agreement line
    agreement_passed: bool | None = None
    note: str = ""


@dataclass
class CodeSection:
    language: str
    code: str
    highlighted: str  # HTML (escaped, with span classes)
    note: str = ""


@dataclass
class TrainingSection:
    curves_svg: str | None
    final: dict[str, str]
    hyper: dict[str, str]
    seed: str
    epochs: int
    rows: list[dict[str, str]] = field(default_factory=list)  # a few epochs as a table
    note: str = ""
    curves_tex: str = ""  # the same curves as a LaTeX picture


@dataclass
class HeatmapPanel:
    """One picture group on one colour scale: a layer's kernels, its input, or the
    feature maps of one node (``svg`` for HTML and Markdown, ``tex`` a LaTeX picture)."""

    key: str  # names the Markdown report's picture file ("maps-1")
    title: str  # "Kernels K[f, c] of Y (8 × 1)"
    node: str  # the program's name of the values (K, X, Y, H, P)
    shape: str  # the array's shape, "(8, 6, 6)"
    vmin: float  # the array's own minimum and maximum
    vmax: float
    limit: float  # the colour scale runs from −limit to +limit
    pictures: int  # kernels or maps drawn
    svg: str
    tex: str
    note: str = ""  # "the first 16 of 32 maps"


@dataclass
class ConvLayerView:
    """One conv1d/conv2d layer: its line, kernels, input and feature maps."""

    title: str  # "Y = conv2d(X, K, b)"
    panels: list[HeatmapPanel]


@dataclass
class FeatureMapsSection:
    caption: str  # which values: trained parameters or the check point
    trained: bool
    layers: list[ConvLayerView]


SECTION_TITLES = {
    "model": "1. The model",
    "graph": "2. Computation graph",
    "naive": "3. Naive derivation",
    "backprop": "4. Backpropagation",
    "costs": "5. Cost",
    "checks": "6. Checks",
    "code": "7. Generated code",
    "training": "8. Training",
    "feature_maps": "9. Feature maps and kernels",
}


@dataclass
class ReportData:
    """Everything one report shows, in order; absent sections are ``None``."""

    title: str
    model: ModelSection
    graph: GraphSection | None = None
    naive: NaiveSection | None = None
    backprop: BackpropSection | None = None
    costs: CostSection | None = None
    checks: ChecksSection | None = None
    code: CodeSection | None = None
    training: TrainingSection | None = None
    feature_maps: FeatureMapsSection | None = None
    notes: list[str] = field(default_factory=list)  # sections left out, and why
    version: str = ""

    SECTIONS = (
        "model",
        "graph",
        "naive",
        "backprop",
        "costs",
        "checks",
        "code",
        "training",
        "feature_maps",
    )

    def present(self) -> list[str]:
        """Names of the sections this report has, in order."""
        return [s for s in self.SECTIONS if getattr(self, s) is not None]
