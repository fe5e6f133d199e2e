"""The .chain grammar: meaning of names, SSA, and clear located errors for bad input."""

from __future__ import annotations

import time

import pytest
import sympy as sp

from chainrule.ops.scalar import sigma
from chainrule.symbolic import LimitError, ModelError, load_program, parse_program


def err(text: str) -> ModelError:
    with pytest.raises(ModelError) as info:
        parse_program(text, "m.chain")
    return info.value


def test_power_operators_and_comments():
    a = parse_program("param w  # weight\ninput x\ny = w^2 + x**3  # two powers\nloss y")
    w, x = sp.symbols("w x", real=True)
    assert a.loss_assignment.expr == w**2 + x**3


@pytest.mark.parametrize("name", ["lambda", "beta", "gamma", "alpha", "E", "I", "N", "S", "Q", "O"])
def test_lecture_names_are_ordinary_symbols(name):
    p = parse_program(f"param {name}\ninput x\ny = {name}*x\nloss y")
    sym = p.symbol(name)
    assert isinstance(sym, sp.Symbol) and sym.name == name
    assert p.loss_assignment.expr == sym * p.symbol("x")


def test_undeclared_e_and_pi_are_constants():
    p = parse_program("param w\ny = e^w + pi*w\nloss y")
    w = p.symbol("w")
    assert p.loss_assignment.expr == sp.exp(w) + sp.pi * w


def test_declared_e_is_a_symbol():
    p = parse_program("param e\ny = e*2\nloss y")
    assert p.loss_assignment.expr == 2 * p.symbol("e")


def test_function_names_are_never_split_and_aliases_work():
    p = parse_program("param w\nz = sigmoid(w) + logistic(w) + sigma(w)\nloss z")
    assert p.loss_assignment.expr == 3 * sigma(p.symbol("w"))
    p = parse_program("param ab, c\ny = ab*c\nloss y")
    assert {s.name for s in p.loss_assignment.expr.free_symbols} == {"ab", "c"}


def test_sigma_prime_in_text():
    p = parse_program("param z\ny = sigma'(z)\nloss y")
    assert (
        p.loss_assignment.expr == sp.Function("sigma_prime")(p.symbol("z"))
        or str(p.loss_assignment.expr) == "sigma_prime(z)"
    )


def test_literals_are_exact():
    p = parse_program("param w\ny = 0.5*w + 1e-2\nloss y")
    w = p.symbol("w")
    assert p.loss_assignment.expr == sp.Rational(1, 2) * w + sp.Rational(1, 100)


@pytest.mark.parametrize(
    "text, line, col, words",
    [
        ("param w\ny = w + q\nloss y", 2, 9, "unknown name 'q'"),
        ("param w\ny = sigmoidd(w)\nloss y", 2, 5, "unknown function 'sigmoidd'"),
        ("param w\ny = z + w\nz = w\nloss y", 2, 5, "used before it is defined"),
        ("param w\ny = w*2\n", 3, 1, "no loss"),
        ("param w\ny = w*\nloss y", 2, 7, "expected a number"),
        ("param w\ny = (w + 1\nloss y", 2, 11, "')'"),
        ("param w\ny = 2w\nloss y", 2, 5, "number followed by a name"),
        ("param w\ny = \u0445 + w\nloss y", 2, 5, "CYRILLIC"),
        ("param w\nw = 3\nloss w", 2, 1, "is a param"),
        ("param w\ninput w\ny = w\nloss y", 2, 7, "declared twice"),
        ("param w\ny = w\nloss q", 3, 6, "loss 'q' is not defined"),
        ("param w\ny = w\nloss w", 3, 6, "not a computed node"),
        ("param sigma\ny = sigma\nloss y", 1, 7, "function name"),
        ("param w\ny = w @ w\nloss y", 2, 7, "needs vectors or matrices"),
        ("param w\ny = w / 0\nloss y", 2, 7, "division by zero"),
        ("param w\ny = leaky_relu(w, 1, 2)\nloss y", 2, 5, "takes"),
        ("param w\ny = w $ 2\nloss y", 2, 7, "unexpected character"),
        ("input x\ny = x\nloss y", 1, 1, "no parameters"),
    ],
)
def test_errors_name_file_line_column(text, line, col, words):
    e = err(text)
    assert words in str(e)
    assert (e.span.file, e.span.line, e.span.column) == ("m.chain", line, col)
    rendered = str(e).splitlines()
    assert rendered[0].startswith(f"m.chain:{line}:{col}: error:")
    if e.span.text:
        caret_line = rendered[2]
        assert caret_line.index("^") - 4 == col - 1


@pytest.mark.parametrize(
    "expr, words",
    [
        ("9^9^9^9", "exponent"),
        ("10**100000", "exponent"),
        ("w^1000", "exponent"),
        ("(" * 10_000 + "w" + ")" * 10_000, ""),
        ("1" * 50, "number literal"),
        ("1e999999", "out of range"),
    ],
)
def test_limits_keep_parsing_bounded(expr, words):
    start = time.perf_counter()
    with pytest.raises(LimitError) as info:
        parse_program(f"param w\ny = {expr}\nloss y", "m.chain")
    assert words in str(info.value)
    assert time.perf_counter() - start < 1.0


def test_huge_input_is_refused_quickly():
    start = time.perf_counter()
    with pytest.raises(LimitError):
        parse_program("param w\ny = " + "w+" * 5_000_000 + "w\nloss y")
    assert time.perf_counter() - start < 1.0


def test_python_injection_is_a_syntax_error_and_runs_nothing(tmp_path):
    sentinel = tmp_path / "pwned"
    attacks = [
        f"__import__('os').system('touch {sentinel}')",
        "().__class__.__bases__[0].__subclasses__()",
        "(lambda: 1)()",
        "w.__class__",
        "f'{w}'",
    ]
    for attack in attacks:
        with pytest.raises(ModelError):
            parse_program(f"param w\ny = {attack}\nloss y")
    assert not sentinel.exists()


def test_bad_files(tmp_path):
    empty = tmp_path / "empty.chain"
    empty.write_text("")
    with pytest.raises(ModelError, match="empty"):
        load_program(empty)
    binary = tmp_path / "bin.chain"
    binary.write_bytes(b"param w\n\xff\xfe y = w\n")
    with pytest.raises(ModelError, match="UTF-8") as info:
        load_program(binary)
    assert info.value.span.line == 2
    nul = tmp_path / "nul.chain"
    nul.write_bytes(b"param w\ny = w\x00\nloss y")
    with pytest.raises(ModelError, match="NUL"):
        load_program(nul)
    with pytest.raises(ModelError, match="cannot read"):
        load_program(tmp_path / "missing.chain")


def test_unicode_from_slides_is_understood():
    p = parse_program("param w, b\ninput x, t\nz = w·x + b\ny = σ(z)\nL = (y − t)²/2\nloss L")
    assert str(p.loss_assignment.expr) == "(-t + y)**2/2"
    assert p["y"].expr == sigma(p.symbol("z"))


def test_fullwidth_letters_normalize_to_ascii():
    p = parse_program("param w\ny = \uff57*2\nloss y")  # fullwidth w
    assert p.loss_assignment.expr == 2 * p.symbol("w")


def test_title_is_the_leading_comment():
    assert parse_program("# My net\nparam w\ny = w\nloss y").title == "My net"
