"""Adversarial acceptance checks of the core (issue 2), as a newcomer would use it.

New unit-form models written the lectures' way (not the shipped examples) are checked
through the CLI contracts exactly as the issue spells them: ``chainrule grad MODEL --at
… --format json`` against an independent hand-written float64 evaluation differenced
centrally, and naive vs backprop gradients of ``chainrule.derive``. Hostile inputs must
give exit status 2 and a located message, never a traceback, and never execute code.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

import chainrule
from chainrule.cli import main
from chainrule.examples import example_path


def rel(a: float, b: float) -> float:
    """|a − b| / (|a| + |b|), two equal values (zeros included) agree."""
    return 0.0 if a == b else abs(a - b) / (abs(a) + abs(b))


def sig(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def softplus(z: float) -> float:
    return math.log1p(math.exp(-abs(z))) + max(z, 0.0)


def lrelu(z: float, a: float) -> float:
    return z if z > 0 else a * z


def elu(z: float, a: float) -> float:
    return z if z > 0 else a * (math.exp(z) - 1)


def fd(f, point: dict[str, float], name: str) -> float:  # noqa: ANN001
    """Central difference in one coordinate, float64."""
    x = point[name]
    h = 1e-6 * max(1.0, abs(x))
    up, dn = dict(point), dict(point)
    up[name], dn[name] = x + h, x - h
    return (f(up) - f(dn)) / (2 * h)


# name: (model text, point, independent loss function, params)
MODELS = {
    "tanh_relu": (
        "# tanh and relu units\nparam w1, w2, b, v\ninput x, t\nh = tanh(w1*x + b)\n"
        "g = relu(w2*x - b)\ny = v*h + g\nL = (y - t)^2/2\nloss L\n",
        dict(w1=0.3, w2=-0.7, b=0.2, v=1.3, x=1.1, t=0.4),
        lambda p: (
            (
                p["v"] * math.tanh(p["w1"] * p["x"] + p["b"])
                + max(p["w2"] * p["x"] - p["b"], 0)
                - p["t"]
            )
            ** 2
            / 2
        ),
        ["w1", "w2", "b", "v"],
    ),
    "softplus_leaky_elu_abs": (
        "param a, b, c\ninput x\nu = softplus(a*x)\nv = leaky_relu(b*x - 1, 0.1)\n"
        "w = elu(c*x - 2, 0.5)\nL = u*v + w^2 + abs(u - w)\nloss L\n",
        dict(a=0.5, b=-0.8, c=0.9, x=1.7),
        lambda p: (
            softplus(p["a"] * p["x"]) * lrelu(p["b"] * p["x"] - 1, 0.1)
            + elu(p["c"] * p["x"] - 2, 0.5) ** 2
            + abs(softplus(p["a"] * p["x"]) - elu(p["c"] * p["x"] - 2, 0.5))
        ),
        ["a", "b", "c"],
    ),
    "max_min": (
        "param p, q, r\nM = max(p*q, r)\nm = min(p, q + r)\nL = M*m + max(p, q, r)\nloss L\n",
        dict(p=0.7, q=1.9, r=-0.4),
        lambda p: (
            max(p["p"] * p["q"], p["r"]) * min(p["p"], p["q"] + p["r"])
            + max(p["p"], p["q"], p["r"])
        ),
        ["p", "q", "r"],
    ),
    "greek_and_capitals": (
        "# names the lectures use\nparam lambda, beta, gamma, alpha, E, I, N, S, Q, O\n"
        "input x\nconst eta = 0.5\nz = lambda*x + beta\n"
        "y = gamma*sigma(z) + alpha*E + I*N - S/Q + O^2 + eta*e + pi\nloss y\n",
        {
            "lambda": 0.3,
            "beta": 0.1,
            "gamma": 0.7,
            "alpha": -0.2,
            "E": 1.1,
            "I": 0.5,
            "N": 2.0,
            "S": 0.3,
            "Q": 1.5,
            "O": -0.6,
            "x": 2.0,
        },
        lambda p: (
            p["gamma"] * sig(p["lambda"] * p["x"] + p["beta"])
            + p["alpha"] * p["E"]
            + p["I"] * p["N"]
            - p["S"] / p["Q"]
            + p["O"] ** 2
            + 0.5 * math.e
            + math.pi
        ),
        ["lambda", "beta", "gamma", "alpha", "E", "I", "N", "S", "Q", "O"],
    ),
    "ssa_reassignment": (
        "param w\ninput x\nc = w*x\nc = c + 1\nc += w\nc *= c\nd = c - 3\nd -= w\nd /= 2\n"
        "L = d^2\nloss L\n",
        dict(w=0.4, x=1.3),
        lambda p: ((((p["w"] * p["x"] + 1) + p["w"]) ** 2 - 3 - p["w"]) / 2) ** 2,
        ["w"],
    ),
    "loss_not_last_line": (
        "param w, b\ninput x\nz = w*x + b\nL = z^2\nextra = L + 100*w\njunk = exp(extra)\nloss L\n",
        dict(w=0.5, b=-0.3, x=2.0),
        lambda p: (p["w"] * p["x"] + p["b"]) ** 2,
        ["w", "b"],
    ),
    "unused_param_and_input": (
        "param w, b, unused\ninput x, unused_input\nL = (w*x + b)^2\nloss L\n",
        dict(w=0.5, b=0.2, x=3.0),
        lambda p: (p["w"] * p["x"] + p["b"]) ** 2,
        ["w", "b", "unused"],
    ),
    "fan_out_weight_sharing": (
        "param w\ninput x1, x2\na = w*x1\nb = w*x2\nc = a*b + a\nL = sigma(c) + c*w\nloss L\n",
        dict(w=0.8, x1=0.3, x2=-1.2),
        lambda p: (
            sig(p["w"] ** 2 * p["x1"] * p["x2"] + p["w"] * p["x1"])
            + (p["w"] ** 2 * p["x1"] * p["x2"] + p["w"] * p["x1"]) * p["w"]
        ),
        ["w"],
    ),
    "softmax_unit_form_stable": (
        "# softmax, K = 2, cross-entropy\nparam w1, w2, b1, b2\ninput x, t1, t2\n"
        "z1 = w1*x + b1\nz2 = w2*x + b2\nm = max(z1, z2)\ns = exp(z1 - m) + exp(z2 - m)\n"
        "y1 = exp(z1 - m)/s\ny2 = exp(z2 - m)/s\nL = -(t1*log(y1) + t2*log(y2))\nloss L\n",
        dict(w1=0.3, w2=-0.5, b1=0.1, b2=0.2, x=1.4, t1=0.0, t2=1.0),
        lambda p: (
            -math.log(
                math.exp(p["w2"] * p["x"] + p["b2"])
                / (math.exp(p["w1"] * p["x"] + p["b1"]) + math.exp(p["w2"] * p["x"] + p["b2"]))
            )
        ),
        ["w1", "w2", "b1", "b2"],
    ),
    "deep_chain_mlp": (
        "param w1, w2, w3, w4, w5, b1, b2, b3, b4, b5\ninput x, t\nh1 = tanh(w1*x + b1)\n"
        "h2 = tanh(w2*h1 + b2)\nh3 = sigma(w3*h2 + b3)\nh4 = softplus(w4*h3 + b4)\n"
        "y = w5*h4 + b5\nL = (y - t)^2/2\nloss L\n",
        dict(
            w1=0.5,
            w2=-0.3,
            w3=0.8,
            w4=1.2,
            w5=-0.7,
            b1=0.1,
            b2=0.2,
            b3=-0.1,
            b4=0.05,
            b5=0.3,
            x=0.9,
            t=0.5,
        ),
        lambda p: (
            (
                p["w5"]
                * softplus(
                    p["w4"]
                    * sig(
                        p["w3"]
                        * math.tanh(p["w2"] * math.tanh(p["w1"] * p["x"] + p["b1"]) + p["b2"])
                        + p["b3"]
                    )
                    + p["b4"]
                )
                + p["b5"]
                - p["t"]
            )
            ** 2
            / 2
        ),
        ["w1", "w2", "w3", "w4", "w5", "b1", "b2", "b3", "b4", "b5"],
    ),
    "consts_and_powers": (
        "param w\ninput x\nconst k = 3, half = 0.5, big = 1e3\n"
        "y = (w*x)^k + w^half + sqrt(w) + big*w^-2 + 2^w + w**w\nloss y\n",
        dict(w=1.3, x=0.7),
        lambda p: (
            (p["w"] * p["x"]) ** 3
            + p["w"] ** 0.5
            + math.sqrt(p["w"])
            + 1000 * p["w"] ** -2
            + 2 ** p["w"]
            + p["w"] ** p["w"]
        ),
        ["w"],
    ),
    "log_exp_sin_cos": (
        "param a, b\nL = log(a^2 + 1) * exp(-b) + sin(a*b) - cos(a)/b\nloss L\n",
        dict(a=0.6, b=1.7),
        lambda p: (
            math.log(p["a"] ** 2 + 1) * math.exp(-p["b"])
            + math.sin(p["a"] * p["b"])
            - math.cos(p["a"]) / p["b"]
        ),
        ["a", "b"],
    ),
    "binary_cross_entropy_sigmoid_alias": (
        "param w, b\ninput x, t\ny = sigmoid(w*x + b)\n"
        "L = -t*log(y) - (1 - t)*log(1 - y)\nloss L\n",
        dict(w=0.7, b=-0.2, x=1.5, t=0.3),
        lambda p: (
            -p["t"] * math.log(sig(p["w"] * p["x"] + p["b"]))
            - (1 - p["t"]) * math.log(1 - sig(p["w"] * p["x"] + p["b"]))
        ),
        ["w", "b"],
    ),
    "logistic_and_sigma_prime": (
        "param w\ninput x\ny = logistic(w*x) + sigma'(w*x)\nloss y\n",
        dict(w=0.9, x=-0.4),
        lambda p: sig(p["w"] * p["x"]) * (2 - sig(p["w"] * p["x"])),
        ["w"],
    ),
    "unicode_pasted_from_slides": (
        "# pasted\nparam w, b, λ\ninput x, t\nz = w·x + b\ny = σ(z)\n"
        "L = (y − t)² / 2 + λ × w²\nloss L\n",
        {"w": 0.4, "b": 0.1, "x": 2.0, "t": 1.0, "lambda": 0.2},
        lambda p: (sig(p["w"] * p["x"] + p["b"]) - p["t"]) ** 2 / 2 + p["lambda"] * p["w"] ** 2,
        ["w", "b", "lambda"],
    ),
    "crlf_tabs_trailing_spaces_comments": (
        "# crlf\r\nparam\tw, b   \r\n\tinput x  # the data\r\n\r\n  z = w * x\t+ b   # c\r\n"
        "# a comment line\r\nL = z ^ 2   \r\nloss L  \r\n",
        dict(w=0.4, b=0.1, x=2.0),
        lambda p: (p["w"] * p["x"] + p["b"]) ** 2,
        ["w", "b"],
    ),
    "right_assoc_power_and_unary_minus": (
        "param x\ny = x**2**3\nz = -x^2\nL = y + z + (-x)^2 + x/2/4\nloss L\n",
        dict(x=1.1),
        lambda p: p["x"] ** 8 - p["x"] ** 2 + p["x"] ** 2 + p["x"] / 8,
        ["x"],
    ),
    "python_keyword_and_sympy_names": (
        "param if, in, None, class, nan, oo, zoo, Dummy_1\n"
        "input np, numpy, Abs, Heaviside, Max, sign, sigma_prime, x_bar\n"
        "y = if*np + in*numpy + None*Abs + class*Heaviside + nan*Max + oo*sign"
        " + zoo*sigma_prime + Dummy_1*x_bar^2\nloss y\n",
        {
            "if": 1.0,
            "in": 2.0,
            "None": 3.0,
            "class": 4.0,
            "nan": 5.0,
            "oo": 6.0,
            "zoo": 7.0,
            "Dummy_1": 8.0,
            "np": 0.1,
            "numpy": 0.2,
            "Abs": 0.3,
            "Heaviside": 0.4,
            "Max": 0.5,
            "sign": 0.6,
            "sigma_prime": 0.7,
            "x_bar": 0.8,
        },
        lambda p: (
            p["if"] * p["np"]
            + p["in"] * p["numpy"]
            + p["None"] * p["Abs"]
            + p["class"] * p["Heaviside"]
            + p["nan"] * p["Max"]
            + p["oo"] * p["sign"]
            + p["zoo"] * p["sigma_prime"]
            + p["Dummy_1"] * p["x_bar"] ** 2
        ),
        ["if", "in", "None", "class", "nan", "oo", "zoo", "Dummy_1"],
    ),
}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.chain"
    path.write_bytes(text.encode("utf-8"))
    return path


def cli(capsys, *argv: str) -> tuple[int, str, str]:  # noqa: ANN001
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def at_arg(point: dict[str, float]) -> str:
    return ",".join(f"{k}={v!r}" for k, v in point.items())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_grad_json_matches_independent_finite_differences(name, tmp_path, capsys):
    text, point, f, params = MODELS[name]
    path = write(tmp_path, name, text)
    code, out, err = cli(capsys, "grad", str(path), "--at", at_arg(point), "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert set(result) == {"loss", "gradient"}
    assert set(result["gradient"]) == set(params)
    assert rel(result["loss"], f(point)) < 1e-12
    for p in params:
        expected = fd(f, point, p) if p in point else 0.0
        assert rel(result["gradient"][p], expected) < 1e-6, (p, result["gradient"][p], expected)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_naive_and_backprop_agree_with_grad(name, tmp_path, capsys):
    text, point, _, params = MODELS[name]
    program = chainrule.load(write(tmp_path, name, text))
    d = chainrule.derivation(program, naive_budget=20)
    assert d.naive.complete
    subs = {program.symbol(k): v for k, v in point.items()}
    subs.update({v.symbol: v.value for v in program.variables if v.role == "const"})
    _, grads = chainrule.gradient_at(program, point)
    for p in params:
        naive = float(d.naive.gradients[p].gradient.subs(subs).evalf(30))
        back = float(d.gradient(p).subs(subs).evalf(30))
        assert rel(naive, back) < 1e-10, p
        assert rel(back, float(grads[p])) < 1e-10, p


def test_ssa_versions_and_gradient_of_unused_param(tmp_path, capsys):
    text = MODELS["ssa_reassignment"][0]
    program = chainrule.load(write(tmp_path, "ssa", text))
    names = [a.name for a in program.assignments]
    assert len(names) == len(set(names)) == 8
    assert names[:4] == ["c", "c_2", "c_3", "c_4"]
    _, grads = chainrule.gradient_at(
        write(tmp_path, "u", MODELS["unused_param_and_input"][0]), {"w": 1, "b": 2, "x": 3}
    )
    assert float(grads["unused"]) == 0.0


def test_declared_names_are_symbols_and_e_pi_are_constants(tmp_path):
    program = chainrule.load(write(tmp_path, "g", MODELS["greek_and_capitals"][0]))
    y = program.substituted()
    assert y.has(sp.E) and y.has(sp.pi)
    for name in ("lambda", "beta", "gamma", "alpha", "E", "I", "N", "S", "Q", "O"):
        sym = program.symbol(name)
        assert isinstance(sym, sp.Symbol) and sym.name == name
        assert y.has(sym)
    assert not y.has(sp.I)  # I is a symbol, never the imaginary unit
    assert {type(f).__name__ for f in y.atoms(sp.Function)} == {"sigma"}  # no SymPy gamma()


def test_derive_json_methods_and_budget(tmp_path, capsys):
    path = write(tmp_path, "deep", MODELS["deep_chain_mlp"][0])
    code, out, _ = cli(capsys, "derive", str(path), "--method", "backprop", "--format", "json")
    d = json.loads(out)
    assert code == 0 and "backprop" in d and "naive" not in d
    assert {s["node"] for s in d["backprop"]} >= {"L", "w1", "b5"}
    code, out, _ = cli(capsys, "derive", str(path), "--method", "naive", "--format", "json")
    d = json.loads(out)
    assert code == 0 and d["naive"]["complete"] and "backprop" not in d
    assert set(d["naive"]["gradients"]) == set(MODELS["deep_chain_mlp"][3])
    code, out, _ = cli(capsys, "derive", str(path), "--budget", "0", "--format", "json")
    d = json.loads(out)
    assert code == 0 and d["naive"]["complete"] is False and "budget" in d["naive"]["note"]
    routes = [row["route"] for row in d["costs"]]
    assert routes[0] == "forward" and "backprop" in routes


def test_derive_text_shows_fan_out_sum(tmp_path, capsys):
    path = write(tmp_path, "fan", MODELS["fan_out_weight_sharing"][0])
    code, out, _ = cli(capsys, "derive", str(path), "--steps")
    assert code == 0
    assert "w̄ =" in out and "fan-out 3" in out
    assert "σ'(c)" in out  # the derivative keeps its name


# ------------------------------------------------------------------ hostile input
BAD = [
    ("dangling_op", "param w\ny = w +\nloss y\n", 2, 8, "expected"),
    ("unclosed_paren", "param w\ny = (w + 1\nloss y\n", 2, 11, "')'"),
    ("stray_paren", "param w\ny = w ) + 1\nloss y\n", 2, 7, "unexpected ')'"),
    ("double_equals", "param w\ny == w\nloss y\n", 2, 4, "expected"),
    ("bad_char", "param w\ny = w $ 2\nloss y\n", 2, 7, "'$'"),
    ("implicit_product", "param w\ny = 2w\nloss y\n", 2, 5, "2*w"),
    ("trailing_comma_decl", "param w,\ny = w\nloss y\n", 1, 9, "expected a name"),
    ("loss_without_name", "param w\ny = w\nloss\n", 3, 1, "loss NAME"),
    ("loss_two_names", "param w\ny = w\nloss y z\n", 3, 1, "loss NAME"),
    ("wrong_arity", "param w\ny = sigma(w, w)\nloss y\n", 2, 5, "argument"),
    ("no_target", "param w\n= w\nloss y\n", 2, 1, "expected a statement"),
    ("unknown_name", "param w\ny = w + q\nloss y\n", 2, 9, "unknown name 'q'"),
    ("unknown_function", "param w\ny = sigmoidd(w)\nloss y\n", 2, 5, "did you mean 'sigmoid'"),
    ("use_before_def", "param w\ny = z + w\nz = w\nloss y\n", 2, 5, "before it is defined"),
    ("loss_is_param", "param w\ny = w\nloss w\n", 3, 6, "not a computed node"),
    ("loss_undefined", "param w\ny = w\nloss q\n", 3, 6, "not defined"),
    ("declared_twice", "param w, w\ny = w\nloss y\n", 1, 10, "declared twice"),
    ("assign_to_param", "param w\nw = 2\nloss w\n", 2, 1, "cannot be assigned"),
    ("function_as_value", "param w\ny = sigma + w\nloss y\n", 2, 5, "is a function"),
    ("keyword_in_expr", "param w\ny = param + w\nloss y\n", 2, 5, "keyword"),
    ("const_without_value", "param w\nconst k\ny = w\nloss y\n", 2, 7, "needs a value"),
    ("const_not_number", "param w\nconst k = w\ny = w\nloss y\n", 2, 11, "must be a number"),
    ("huge_exponent", "param w\ny = w^1000000\nloss y\n", 2, 6, "limit"),
    ("power_tower", "param w\ny = 9^9^9^9*w\nloss y\n", 2, 8, "exponent"),
    ("huge_number", "param w\ny = 1e999*w\nloss y\n", 2, 5, "out of range"),
    ("long_literal", "param w\ny = " + "1" * 40 + "*w\nloss y\n", 2, 5, "digits"),
    ("div_by_zero", "param w\ny = w/(w - w)\nloss y\n", 2, 6, "division by zero"),
    ("log_zero", "param w\ny = w + log(0)\nloss y\n", 2, 9, "not finite"),
    ("zero_negative_power", "param w\ny = w + 0^-1\nloss y\n", 2, 10, "negative power"),
    ("matmul_in_scalar", "param w\ny = w @ w\nloss y\n", 2, 7, "'@'"),
    ("transpose_in_scalar", "param w\ny = w.T\nloss y\n", 2, 6, "transpose"),
    ("array_in_scalar", "param w\ny = [w, w]\nloss y\n", 2, 5, "array"),
    ("cyrillic_lookalike", "param x\ny = х + x\nloss y\n", 2, 5, "CYRILLIC"),
    ("no_param", "input x\ny = x\nloss y\n", 1, 1, "no parameters"),
    ("no_loss", "param w\ny = w\n", 3, 1, "no loss"),
    ("only_comments", "\n\n   \n# only a comment\n", 5, 1, "no assignments"),
    ("assign_declared_e", "param w, e\ne = w*2\nloss e\n", 2, 1, "cannot be assigned"),
    ("deep_parens", "param w\ny = " + "(" * 120 + "w" + ")" * 120 + "\nloss y", 2, None, "nested"),
    ("many_minus", "param w\ny = " + "-" * 3000 + "w\nloss y\n", 2, None, "nested"),
    ("line_too_long", "param w\ny = " + "+".join(["w"] * 3000) + "\nloss y\n", 2, 1, "limit"),
]


@pytest.mark.parametrize(("name", "text", "line", "col", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_models_are_located_errors(name, text, line, col, words, tmp_path, capsys):
    path = write(tmp_path, name, text)
    for argv in (["derive", str(path)], ["grad", str(path), "--at", "w=1,x=1"]):
        code, out, err = cli(capsys, *argv)
        assert code == 2, (argv, out, err)
        assert "Traceback" not in err
        loc = f"{path}:{line}:" + (f"{col}:" if col is not None else "")
        assert err.startswith(loc), err
        assert ": error: " in err and words in err, err
        lines = err.splitlines()
        if col is not None and len(lines) >= 3 and not lines[1].startswith("    hint"):
            caret = lines[2]  # a caret under the offending column
            assert caret.strip() == "^" and len(caret) - 4 == col, err


def test_python_injection_never_executes(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    texts = [
        f'param w\ny = __import__("os").system("touch {marker}")\nloss y\n',
        "param w\ny = w.__class__\nloss y\n",
        "param w\nimport os\nloss y\n",
        "param w\ny = lambda x: x\nloss y\n",
        f"param w\nexec = open('{marker}', 'w')\nloss exec\n",
    ]
    for i, text in enumerate(texts):
        code, _, err = cli(capsys, "derive", str(write(tmp_path, f"inj{i}", text)))
        assert code == 2 and ": error: " in err
    assert not marker.exists()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"param w\ny = w\x00 + 1\nloss y\n", "NUL"),
        (b"param w\ny = w + \xff\nloss y\n", "UTF-8"),
        (b"", "empty"),
    ],
)
def test_binary_and_empty_files(data, words, tmp_path, capsys):
    path = tmp_path / "m.chain"
    path.write_bytes(data)
    code, _, err = cli(capsys, "grad", str(path), "--at", "w=1")
    assert code == 2 and words in err and err.startswith(str(path))


def test_directory_missing_file_and_bom(tmp_path, capsys):
    (tmp_path / "adir.chain").mkdir()
    for target in (tmp_path / "adir.chain", tmp_path / "missing.chain"):
        code, _, err = cli(capsys, "derive", str(target))
        assert code == 2 and "cannot read model" in err
    path = tmp_path / "bom.chain"
    path.write_bytes("\ufeffparam w\ny = w*w\nloss y\n".encode())
    code, out, _ = cli(capsys, "grad", str(path), "--at", "w=3", "--format", "json")
    assert code == 0 and json.loads(out) == {"loss": 9.0, "gradient": {"w": 6.0}}


@pytest.mark.parametrize(
    ("at", "words"),
    [
        ("w=0.5,b=0.1,x=2", "no value for t"),
        ("w=0.5,b=0.1,x=2,t=1,q=3", "unknown name"),
        ("w=nan,b=0.1,x=2,t=1", "not a number"),
        ("w=1e400,b=0.1,x=2,t=1", "not finite"),
        ("w=,b=0.1,x=2,t=1", "not a number"),
        ('w=__import__("os"),b=0.1,x=2,t=1', "not a number"),
        ("w", "NAME=VALUE"),
    ],
)
def test_grad_bad_points_exit_2(at, words, capsys):
    path = str(example_path("logistic_least_squares"))  # a path: no lecture values
    code, _, err = cli(capsys, "grad", path, "--at", at)
    assert code == 2 and words in err and "Traceback" not in err


def test_grad_point_spacing_and_repeats(capsys):
    code, out, _ = cli(
        capsys,
        "grad",
        "logistic_least_squares",
        "--at",
        "w = 9, b = 0.1 , x=2,t=1",
        "--at",
        "w=0.5",
        "--format",
        "json",
    )
    r = json.loads(out)
    y = sig(0.5 * 2 + 0.1)
    assert code == 0 and rel(r["loss"], (y - 1) ** 2 / 2) < 1e-14
    assert rel(r["gradient"]["b"], (y - 1) * y * (1 - y)) < 1e-13


def test_console_script_reports_errors_without_traceback(tmp_path):
    path = write(tmp_path, "bad", "param w\ny = w + q\nloss y\n")
    exe = Path(sys.executable).with_name("chainrule")
    r = subprocess.run([str(exe), "grad", str(path), "--at", "w=1"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{path}:2:9: error: unknown name 'q'" in r.stderr
