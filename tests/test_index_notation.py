"""Index notation: derived lines, the bridge to the matrix form, FD checks, op counts."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from conftest import rel_err

import chainrule
from chainrule.derive.index_costs import index_costs
from chainrule.derive.index_form import Index, index_derivation
from chainrule.derive.vector import vector_backprop
from chainrule.derive.vector_costs import vector_costs
from chainrule.examples import example_names
from chainrule.numeric.index_eval import bridge_check, index_forward_backward, random_sizes
from chainrule.numeric.vector_eval import loss_at, random_point, vector_gradient_at
from chainrule.reports.index_notation import cost_lines, index_unicode, line_text
from chainrule.symbolic import parse_program

MLP = """# 2-layer MLP (csc2515 lecture 8)
param W1[m, n], b1[m], W2[k, m], b2[k]
input x[n], t[k]
z = W1 @ x + b1
h = sigma(z)
y = W2 @ h + b2
L = sum((y - t)^2) / 2
loss L
"""

THREE_LAYERS = """# three layers, other activations
param W1[p, n], b1[p], W2[q, p], b2[q], W3[k, q]
input x[n], t[k]
h1 = relu(W1 @ x + b1)
h2 = tanh(W2 @ h1 + b2)
y = W3 @ h2
L = sum((y - t)^2) / 2 + norm2(W3) / 10
loss L
"""

SOFTMAX_CE = """# softmax with cross-entropy, symbolic sizes
param W[k, n], b[k], V[k, k]
input x[n], t[k]
z = V @ tanh(W @ x + b)
y = softmax(z)
L = -sum(t * log(y))
loss L
"""

SHARED = """# one weight matrix in two layers and in the loss
param W[n, n], v[n]
input x[n], t
h1 = sigma(W @ x)
h2 = sigma(W.T @ h1)
L = (dot(v, h2) - t)^2 / 2 + mean(W * W)
loss L
"""

LOG_SOFTMAX = """# log-softmax, squared error on a softmax (no CE shortcut), a transpose
param W[k, n], U[n, k]
input x[n], t[k], s[n]
y = log_softmax(W @ x)
p = softmax(U.T @ s)
L = -sum(t * y) + sum((p - t)^2)
loss L
"""

BATCH = """# a batch of columns: the bias broadcasts over examples
param W[m, n], b[m]
input X[n, B], T[m, B]
Z = W @ X + b
L = sum((sigma(Z) - T)^2) / 2
loss L
"""

NEW_MODELS = {
    "mlp": MLP,
    "three_layers": THREE_LAYERS,
    "softmax_ce": SOFTMAX_CE,
    "shared": SHARED,
    "log_softmax": LOG_SOFTMAX,
    "batch": BATCH,
}


def _indexable(program) -> bool:  # noqa: ANN001
    """Every tensor operation of the program has an index form (conv, pooling, maxout's
    entrywise max and the normalizations have none yet)."""
    import sympy as sp

    from chainrule.ops import REGISTRY

    for a in program.assignments:
        for e in sp.preorder_traversal(a.expr):
            op = REGISTRY.for_node(e)
            if op is not None and op.kind == "tensor" and op.index_form is None:
                return False
    return True


def _vector_examples(max_size: int = 8) -> list[str]:
    out = []
    for name in example_names():
        p = chainrule.load(name)
        if p.is_vector and all(v <= max_size for v in p.sizes.values()) and _indexable(p):
            out.append(name)
    return out


def _central(program, point, h=1e-6):  # noqa: ANN001, ANN201
    out = {}
    for p in program.params:
        base = np.array(point[p.name], dtype=float)
        grad = np.zeros_like(base)
        for idx in np.ndindex(*base.shape):
            up, down = base.copy(), base.copy()
            up[idx] += h
            down[idx] -= h
            grad[idx] = (
                loss_at(program, {**point, p.name: up}) - loss_at(program, {**point, p.name: down})
            ) / (2 * h)
        out[p.name] = grad
    return out


def _index_gradient_checks(program) -> None:  # noqa: ANN001
    d = index_derivation(program)
    matrix = vector_backprop(program)
    for seed in (0, 1, 2):
        sizes = random_sizes(d, seed)
        point = random_point(program, sizes, seed=seed)
        _, signals = index_forward_backward(d, point, sizes)  # index lines only
        _, grads = vector_gradient_at(matrix, point)
        fd = _central(program, point)
        for p in program.params:
            assert rel_err(signals[p.name], grads[p.name]) < 1e-10, (p.name, sizes)
            assert rel_err(signals[p.name], fd[p.name]) < 1e-5, (p.name, sizes)


@pytest.mark.parametrize("name", _vector_examples())
def test_shipped_examples_index_backprop_equals_matrix_and_fd(name: str) -> None:
    _index_gradient_checks(chainrule.load(name))


@pytest.mark.parametrize("name", sorted(NEW_MODELS))
def test_new_index_patterns_equal_matrix_and_fd(name: str) -> None:
    _index_gradient_checks(parse_program(NEW_MODELS[name]))


@pytest.mark.slow
def test_mlp_digits_at_its_bound_sizes() -> None:
    d = index_derivation(chainrule.load("mlp_digits"))
    check = bridge_check(d, seeds=(0,))
    assert check.ok, check.worst


@pytest.mark.parametrize("name", sorted(NEW_MODELS))
def test_bridge_every_line_and_the_naive_route(name: str) -> None:
    d = index_derivation(parse_program(NEW_MODELS[name]))
    check = bridge_check(d, seeds=(3, 4))
    assert check.ok, check.worst
    assert len(d.naive) == len(d.program.params)


def _entries(expr: sp.Basic, sizes: dict[str, int], program) -> sp.Basic:  # noqa: ANN001
    """An index expression at concrete sizes, every entry a matrix-symbol element."""
    subs = {sp.Symbol(k, integer=True, positive=True): v for k, v in sizes.items()}
    e = expr.xreplace(subs).doit()

    def element(x: sp.Indexed) -> sp.Basic:
        name = str(x.base)
        node = name[: -len("_bar")] if name.endswith("_bar") else name
        shape = program.symbol(node).shape
        shape = tuple(int(s.xreplace(subs)) for s in shape)
        m = sp.MatrixSymbol(name, *shape)
        idx = [int(i) - 1 for i in x.indices]
        return m[idx[0], 0] if shape[1] == 1 else m[idx[0], idx[1]]

    return e.replace(lambda x: isinstance(x, sp.Indexed), element)


def _explicit(expr: sp.Basic, sizes: dict[str, int]) -> sp.Matrix:
    subs = {sp.Symbol(k, integer=True, positive=True): v for k, v in sizes.items()}
    return sp.Matrix(expr.xreplace(subs).as_explicit())


def _rename_bars(m: sp.Basic) -> sp.Basic:
    return m.replace(
        lambda x: isinstance(x, sp.MatrixSymbol) and str(x.name).endswith("_bar"),
        lambda x: sp.MatrixSymbol(str(x.name), *x.shape),
    )


def test_bridge_is_symbolic_identity_for_the_lecture_mlp() -> None:
    """Each index line, expanded at concrete sizes, is the same polynomial as its matrix
    form entry by entry (SymPy proves it; no numbers)."""
    program = parse_program(MLP)
    d = index_derivation(program)
    sizes = {"m": 3, "n": 2, "k": 2}
    proved = 0
    for line in [*d.forward[:3], *d.backprop[1:]]:
        mat = _explicit(_rename_bars(line.matrix_rhs), sizes)
        for pos in np.ndindex(*mat.shape):
            values = [p + 1 for p, s in zip(pos, mat.shape, strict=True) if s != 1]
            env = dict(zip(line.free, values, strict=True))
            index_value = _entries(line.rhs.xreplace(env), sizes, program)
            assert sp.simplify(index_value - mat[pos]) == 0, (line.name, pos)
            proved += 1
    assert proved >= 30


def test_lecture_lines_are_printed_as_in_the_notes() -> None:
    d = index_derivation(parse_program(MLP))
    low = d.lowercase
    forward = [line_text(x, low) for x in d.forward]
    backward = [line_text(x, low) for x in d.backprop]
    assert forward[:3] == [
        "z_i = Σ_j w⁽¹⁾_ij x_j + b⁽¹⁾_i",
        "h_i = σ(z_i)",
        "y_k = Σ_i w⁽²⁾_ki h_i + b⁽²⁾_k",
    ]
    assert forward[3] == "L = ½ Σ_k (y_k − t_k)²"
    assert backward == [
        "L̄ = 1",
        "ȳ_k = L̄ (y_k − t_k)",
        "w̄⁽²⁾_ki = ȳ_k h_i",
        "b̄⁽²⁾_k = ȳ_k",
        "h̄_i = Σ_k ȳ_k w⁽²⁾_ki",
        "z̄_i = h̄_i σ'(z_i)",
        "w̄⁽¹⁾_ij = z̄_i x_j",
        "b̄⁽¹⁾_i = z̄_i",
    ]
    w1 = next(g for g in d.naive if g.param == "W1")
    assert index_unicode(w1.result, low) == "Σ_k (y_k − t_k) w⁽²⁾_ki σ'(z_i) x_j"
    assert any("chain rule (σ)" in s.rules for s in w1.steps)
    assert any("δ" in index_unicode(s.rhs, low) for s in w1.steps)


def test_softmax_sum_uses_ell_and_cross_entropy_simplifies() -> None:
    d = index_derivation(chainrule.load("softmax_regression_vector"))
    low = d.lowercase
    assert line_text(d.line("y", "forward"), low) == "y_k = exp(z_k)/Σ_ℓ exp(z_ℓ)"
    assert line_text(d.line("z"), low) == "z̄_k = Ē (y_k − t_k)"
    assert "sums to 1" in d.line("z").note


def test_symbolic_sizes_never_expand() -> None:
    """A big MLP in index form is as short as a small one and derives in seconds."""
    d = index_derivation(parse_program(MLP))
    assert d.seconds < 10
    text = str(chainrule.derivation(MLP, notation="index"))
    assert "too long to print" not in text and "Σ_k" in text
    sizes = {str(s) for line in d.forward + d.backprop for s in line.rhs.free_symbols}
    assert {"m", "n", "k"} & sizes  # sums run to the size names, never to numbers


def test_indices_are_their_own_symbols() -> None:
    d = index_derivation(parse_program(MLP))
    loss = d.line("L", "forward").rhs
    (k, lo, hi) = next(iter(loss.atoms(sp.Sum))).limits[0]
    assert isinstance(k, Index) and not isinstance(hi, Index) and str(k) == str(hi) == "k"


def test_op_counts_are_formulas_matching_the_matrix_view() -> None:
    program = parse_program(MLP)
    d = index_derivation(program)
    c = index_costs(d, {"m": 3, "n": 2, "k": 2})
    m, n, k = sp.symbols("m n k", integer=True, positive=True)
    assert c.forward.multiplications == sp.expand(k * m + m * n + k + 1)
    macs = vector_costs(program, vector_backprop(program), {"m": 3, "n": 2, "k": 2})
    quadratic = sp.Poly(c.forward.multiplications, m, n, k)
    leading = sum(
        coeff * m**a * n**b * k**e
        for (a, b, e), coeff in zip(quadratic.monoms(), quadratic.coeffs(), strict=True)
        if a + b + e == 2
    )
    assert sp.expand(leading - macs.forward_macs) == 0
    assert sp.Poly(c.naive.total, m, n, k).total_degree() == 5  # k·m²·n²
    assert any("grows as k·m²·n²" in line for line in cost_lines(c))
    assert c.forward.at({"m": 3, "n": 2, "k": 2}) == 33


def test_op_count_formula_equals_the_expanded_count() -> None:
    """Each forward line's formula at concrete sizes equals the scalar cost model's count
    of the fully expanded entries (:func:`chainrule.derive.opcount.count_ops`)."""
    from chainrule.derive.index_costs import line_cost
    from chainrule.derive.opcount import count_ops

    program = parse_program(MLP)
    d = index_derivation(program)
    sizes = {"m": 3, "n": 2, "k": 2}
    subs = {sp.Symbol(a, integer=True, positive=True): v for a, v in sizes.items()}
    for name in ("z", "y"):
        line = d.line(name, "forward")
        expanded = 0
        for i in range(1, 4 if name == "z" else 3):
            entry = line.rhs.xreplace({line.free[0]: i}).xreplace(subs).doit()
            expanded += count_ops(entry).total
        assert line_cost(line).total.xreplace(subs) == expanded, name


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chainrule", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_derive_notation_index_text_and_json() -> None:
    r = _cli("derive", "vector_mlp", "--notation", "index", "--sizes", "m=3,n=2,k=2")
    assert r.returncode == 0, r.stderr
    assert "h̄_i = Σ_k ȳ_k w⁽²⁾_ki   ⇔   h̄ = W⁽²⁾ᵀ ȳ" in r.stdout
    assert "∂L/∂w⁽¹⁾_ij = Σ_k (y_k − t_k) w⁽²⁾_ki σ'(z_i) x_j" in r.stdout
    assert "too long to print" not in r.stdout
    assert "index form agrees" in r.stdout
    r = _cli("derive", "vector_mlp", "--notation", "index", "--format", "json")
    data = json.loads(r.stdout)
    assert data["notation"] == "index"
    assert data["backprop"][4]["index"] == "h̄_i = Σ_k ȳ_k w⁽²⁾_ki"
    assert (
        data["backprop"][4]["index_latex"] == r"\bar{h}_{i} = \sum_{k} \bar{y}_{k} \, w^{(2)}_{ki}"
    )
    assert data["bridge"]["ok"] is True
    assert data["costs"]["forward"]["total"]


def test_cli_index_needs_a_vector_program() -> None:
    r = _cli("derive", "xor", "--notation", "index")
    assert r.returncode == 2
    assert "vector program" in r.stderr and "Traceback" not in r.stderr
    r = _cli("derive", "vector_mlp", "--notation", "index", "--sizes", "m=x")
    assert r.returncode == 2


@pytest.mark.parametrize("suffix", [".md", ".html", ".tex"])
def test_report_notation_index(tmp_path, suffix: str) -> None:  # noqa: ANN001
    out = tmp_path / f"mlp{suffix}"
    r = _cli("report", "vector_mlp", "-o", str(out), "--notation", "index")
    assert r.returncode == 0, r.stderr
    text = out.read_text(encoding="utf-8")
    if suffix == ".html":
        assert "h̄_i = Σ_k ȳ_k w⁽²⁾_ki" in text and "<script" not in text
    else:
        assert r"\bar{h}_{i} = \sum_{k} \bar{y}_{k} \, w^{(2)}_{ki}" in text.replace("&= ", "= ")


def test_python_api_and_jupyter() -> None:
    view = chainrule.derivation(MLP, notation="index")
    assert view.gradient("W1") == "w̄⁽¹⁾_ij = z̄_i x_j"
    assert r"\bar{w}^{(1)}_{ij}" in view._repr_latex_()
    assert "Σ_k ȳ_k w⁽²⁾_ki" in view._repr_html_()
    with pytest.raises(ValueError):
        chainrule.derivation(MLP, notation="tensor")  # type: ignore[call-overload]


def test_standard_report_naive_section_is_in_index_notation() -> None:
    from chainrule.reports.document import build_report, render_report

    data = build_report("vector_mlp")
    assert data.naive is not None and "index notation" in data.naive.note
    w1 = next(p for p in data.naive.params if p.name == "W1")
    assert w1.result == (
        r"\sum_{k} \left(y_{k} - t_{k}\right) \, w^{(2)}_{ki} \, "
        r"\sigma'\left(z_{i}\right) \, x_{j}"
    )
    text = render_report(data, "md")
    assert "too long to print" not in text and "Kronecker" in text


def test_steps_show_the_jacobian_bridge() -> None:
    r = _cli("derive", "vector_mlp", "--notation", "index", "--steps", "--method", "backprop")
    assert r.returncode == 0, r.stderr
    assert "h̄_i = Σ_k ȳ_k ∂y_k/∂h_i = Σ_k ȳ_k w⁽²⁾_ki" in r.stdout


def test_standard_report_states_the_index_route_is_checked(tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "mlp.md"
    r = _cli("report", "vector_mlp", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "each gradient here equals backprop" in out.read_text(encoding="utf-8")


def test_softmax_jacobian_in_the_naive_route_is_refolded() -> None:
    """∂y_k/∂z… through softmax reads as the lectures write it, with y, not exponentials."""
    d = index_derivation(chainrule.load("tanh_mlp3"))
    w1 = next(g for g in d.naive if g.param == "W1")
    lines = [
        f"{index_unicode(s.lhs, d.lowercase)} = {index_unicode(s.rhs, d.lowercase)}"
        for s in w1.steps
    ]
    assert "∂y_k/∂w⁽¹⁾_ij = (∂z⁽³⁾_k/∂w⁽¹⁾_ij − Σ_ℓ y_ℓ ∂z⁽³⁾_ℓ/∂w⁽¹⁾_ij) y_k" in lines
    assert "exp" not in index_unicode(w1.result, d.lowercase)
