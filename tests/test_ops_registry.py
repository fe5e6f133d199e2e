"""The operator registry: one entry per operation, extended at run time and by models.

A new elementwise function and a new tensor operation are added through the public API
and go through every route: derive, finite-difference check, generated code, one
training step, a report and a homework answer. Models define their own functions with
``def`` (differentiated through the body, or with a declared derivative).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import chainrule
from chainrule.cli import main
from chainrule.ops import REGISTRY, Op, Reduction, register
from chainrule.ops.algebra import hadamard, scale

# ------------------------------------------------------------ run-time additions
Z = sp.Symbol("z", real=True)


class CubeSum(Reduction):
    """Σᵢ vᵢ³ (a tensor operation defined by a test)."""

    name = "cubesum"


def _build(builder, name, vals):  # noqa: ANN001, ANN202
    (a,) = vals
    return builder.val(CubeSum(a.expr) if a.shape else a.expr**3, ())


def _cubes(p, code, state):  # noqa: ANN001, ANN202 - batched code: Σ over each example
    return p.reduce("sum", f"{p.wrap(code)}**3", state)


CUBESUM = Op(
    "cubesum",
    CubeSum,
    "tensor",
    "sum of cubes",
    arity=(1,),
    build_tensor=_build,
    vjp=lambda g, ans, i: scale(3 * g, hadamard(ans.args[0], ans.args[0])),
    unit_form=lambda x, e: sp.Add(*[v**3 for v in x(e.args[0])]),
    cost=lambda c, e: c.cost(muls=2 * c.rc(e.args[0])[0] * c.rc(e.args[0])[1]),
    evaluate=lambda ev, e, rec: ev.reduce(np.sum, np.asarray(rec(e.args[0])) ** 3),
    numpy_print=lambda p, e: f"np.sum({p.wrap(e.args[0])}**3)",
    batched=lambda p, e: _cubes(p, *p(e.args[0])),
    unicode="cubesum",
    latex=r"\operatorname{cubesum}",
)


@pytest.fixture(scope="module", autouse=True)
def _registered():
    if REGISTRY.get("softsign_t") is None:
        chainrule.primitive("softsign_t", Z, Z / (1 + sp.Abs(Z)) + Z**3 / 10)
    if REGISTRY.get("cubesum") is None:
        register(CUBESUM)
    yield


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.chain"
    path.write_text(text, encoding="utf-8")
    return str(path)


SCALAR_USER = """\
param w, b
input x, t
z = w*x + b
h = softsign_t(z)
L = (h - t)^2/2
loss L
"""

VECTOR_USER = """\
param W[m, n], b[m]
input x[n]
z = W @ x + b
L = cubesum(z)/10 + sum(z)
loss L
"""

SWISH = """\
# a swish unit
def swish(z) = z*sigma(z)
param w, b
input x, t
z = w*x + b
h = swish(z)
L = (h - t)^2/2
loss L
"""

PHI_RIGHT = """\
def phi(u) = log(1 + u^2), phi'(u) = 2*u/(1 + u^2)
param w
input x, t
L = (phi(w*x) - t)^2/2
loss L
"""


def _every_command(capsys, tmp_path: Path, model: str, point: str, answer: str) -> None:
    code, out, err = run(capsys, "derive", model)
    assert code == 0, err
    code, out, err = run(capsys, "check-grad", model)
    assert code == 0, out + err
    code, out, err = run(capsys, "codegen", model)
    assert code == 0, err
    assert "def loss_and_grad" in out
    code, out, err = run(capsys, "grad", model, "--at", point, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["gradient"]
    report = tmp_path / "r.md"
    code, out, err = run(capsys, "report", model, "-o", str(report))
    assert code == 0, err
    assert report.read_text(encoding="utf-8")
    ans = tmp_path / "a.txt"
    ans.write_text(answer, encoding="utf-8")
    code, out, err = run(capsys, "check", model, "--answer", str(ans), "--format", "json")
    assert code == 0, out + err
    assert json.loads(out)["verdict"] == "correct"
    data = tmp_path / "d.csv"
    rows = np.random.default_rng(1).normal(size=(16, 2))
    data.write_text("x,t\n" + "\n".join(f"{a},{b}" for a, b in rows), encoding="utf-8")
    code, out, err = run(
        capsys, "train", model, "--data", str(data), "--epochs", "2", "--seed", "0"
    )
    assert code == 0, out + err
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "good.txt").write_text(answer, encoding="utf-8")
    (subs / "bad.txt").write_text(answer.replace("'(z)", "(z)"), encoding="utf-8")
    grades = tmp_path / "grades.csv"
    code, out, err = run(capsys, "grade", model, str(subs), "-o", str(grades), "--no-progress")
    assert code == 0, out + err
    table = grades.read_text(encoding="utf-8")
    good = next(r for r in table.splitlines() if r.startswith("good"))
    bad = next(r for r in table.splitlines() if r.startswith("bad"))
    assert good.startswith("good.txt,correct,") and bad.startswith("bad.txt,incorrect,")
    assert "z_bar:incorrect" in bad


def test_runtime_elementwise_function_goes_everywhere(capsys, tmp_path) -> None:
    model = write(tmp_path, "user_scalar", SCALAR_USER)
    d = chainrule.derivation(model)
    assert "softsign_t'(z)" in str(d)
    answer = (
        "Lbar = 1\nhbar = Lbar*(h - t)\nzbar = hbar*softsign_t'(z)\nwbar = zbar*x\nbbar = zbar\n"
    )
    _every_command(capsys, tmp_path, model, "w=0.3,b=-0.2,x=1.5,t=0.5", answer)


def test_runtime_tensor_operation_goes_everywhere(capsys, tmp_path) -> None:
    model = write(tmp_path, "user_vector", VECTOR_USER)
    d = chainrule.derivation(model)
    assert d.agreement is not None and d.agreement.ok
    answer = "Lbar = 1\nzbar = Lbar*(3*z*z/10 + 1)\nWbar = zbar @ x.T\nbbar = zbar\n"
    point = json.dumps(
        {"W": [[0.1, -0.2], [0.3, 0.4], [0.5, -0.6]], "b": [0.1, 0.2, 0.3], "x": [1.0, -2.0]}
    )
    at = tmp_path / "p.json"
    at.write_text(point)
    code, out, err = run(capsys, "grad", model, "--at-file", str(at), "--format", "json")
    assert code == 0, err
    got = np.array(json.loads(out)["gradient"]["b"])
    W, b, x = np.array(json.loads(point)["W"]), np.array([0.1, 0.2, 0.3]), np.array([1.0, -2.0])
    assert np.allclose(got, 3 * (W @ x + b) ** 2 / 10 + 1)
    code, out, err = run(capsys, "check-grad", model)
    assert code == 0, out + err
    code, out, err = run(capsys, "codegen", model)
    assert code == 0, err
    assert "def loss_and_grad" in out
    data = tmp_path / "d.csv"
    rows = np.random.default_rng(0).normal(size=(8, 2))
    data.write_text("x1,x2\n" + "\n".join(f"{a},{b}" for a, b in rows), encoding="utf-8")
    code, out, err = run(
        capsys, "train", model, "--data", str(data), "--map", "x=x1+x2", "--epochs", "1"
    )
    assert code == 0, out + err
    ans = tmp_path / "a.txt"
    ans.write_text(answer, encoding="utf-8")
    code, out, err = run(capsys, "check", model, "--answer", str(ans), "--format", "json")
    assert code == 0, out + err
    assert json.loads(out)["verdict"] == "correct"
    report = tmp_path / "r.md"
    code, out, err = run(capsys, "report", model, "-o", str(report))
    assert code == 0, err
    assert "cubesum" in report.read_text(encoding="utf-8")


def test_model_def_keeps_the_name_and_its_defining_line(capsys, tmp_path) -> None:
    model = write(tmp_path, "swish", SWISH)
    code, out, err = run(capsys, "derive", model, "--method", "backprop")
    assert code == 0, err
    assert "z̄ = h̄ swish'(z)" in out
    assert "swish'(z) = " in out  # its defining line
    answer = "Lbar = 1\nhbar = Lbar*(h - t)\nzbar = hbar*swish'(z)\nwbar = zbar*x\nbbar = zbar\n"
    _every_command(capsys, tmp_path, model, "w=0.3,b=-0.2,x=1.5,t=0.5", answer)


def test_declared_derivative_is_used_and_checked(capsys, tmp_path) -> None:
    model = write(tmp_path, "phi", PHI_RIGHT)
    code, out, err = run(capsys, "check-grad", model)
    assert code == 0, out + err
    wrong = write(tmp_path, "phi_wrong", PHI_RIGHT.replace("2*u/(1 + u^2)", "u/(1 + u^2)"))
    code, out, err = run(capsys, "check-grad", wrong)
    assert code == 1
    assert "phi" in out + err and "declared derivative" in out + err


@pytest.mark.parametrize(
    "text, message",
    [
        ("def f(z) = z*q\nparam w\nL = f(w)\nloss L", "'q' is not a parameter of f"),
        ("def f(z) = z\ndef f(z) = 2*z\nparam w\nL = f(w)\nloss L", "already a name"),
        ("def f(z) = z^2, f'(u) = 2*u\nparam w\nL = f(w)\nloss L", "same parameter"),
        ("def f(a, b) = a*b, f'(a) = b\nparam w\nL = f(w, w)\nloss L", "one parameter"),
        ("def sigma(z) = z\nparam w\nL = sigma(w)\nloss L", "already a name"),
        ("def f(z) = z\nparam w\nL = f(w, w)\nloss L", "takes 1 argument"),
        ("def f(z) = __import__\nparam w\nL = f(w)\nloss L", "not a parameter"),
    ],
)
def test_bad_definitions_are_located_errors(capsys, tmp_path, text, message) -> None:
    code, out, err = run(capsys, "derive", write(tmp_path, "bad", text))
    assert code == 2
    assert message in err and "bad.chain:" in err


def test_a_definition_is_local_to_its_model() -> None:
    p = chainrule.parse(SWISH)
    assert p.functions.get("swish") is not None
    assert REGISTRY.get("swish") is None
    with pytest.raises(chainrule.symbolic.ModelError, match="unknown function 'swish'"):
        chainrule.parse("param w\nL = swish(w)\nloss L")


def test_every_entry_is_complete() -> None:
    for op in REGISTRY:
        if op.kind == "scalar":
            assert op.partials or op.node.fdiff, op.name
            assert op.numpy is not None, op.name
        else:
            assert op.unit_form is not None, op.name
            assert op.evaluate is not None, op.name
        if op.in_language:
            assert op.unicode and op.latex, op.name
