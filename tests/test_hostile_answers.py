"""Hostile answers: nothing runs, everything finishes within its limits, output is inert."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest

import chainrule
from chainrule.homework.check import Truth
from chainrule.homework.grading import Submission, check_file, grade
from chainrule.homework.results import grades_csv, result_json, result_text
from chainrule.homework.sandbox import SandboxLimits, SandboxPool

LIMITS = SandboxLimits(wall_seconds=10.0)


@pytest.fixture(scope="module")
def truth() -> Truth:
    return Truth(chainrule.load("logistic_least_squares")).prepare()


def grade_texts(
    truth: Truth,
    texts: dict[str, bytes],
    limits: SandboxLimits = LIMITS,
    symbolic: float | None = 2.0,
):
    subs = [Submission(name, data) for name, data in texts.items()]
    return dict(zip(texts, grade(truth, subs, 2, limits, symbolic), strict=True))


INJECTIONS = [
    "zbar = __import__('os').system('touch {s}')",
    "zbar = ().__class__.__mro__[1].__subclasses__()",
    "zbar = ().__class__.__bases__[0].__subclasses__()",
    "zbar = (lambda: __import__('os').system('touch {s}'))()",
    "zbar = lambda x: x",
    "zbar = ybar.__class__",
    "zbar = sigma.__globals__",
    "zbar = f\"{{__import__('os').system('touch {s}')}}\"",
    "zbar = eval(\"__import__('os').system('touch {s}')\")",
    "zbar = exec('import os')",
    "zbar = open('{s}', 'w')",
    "__import__('os').system('touch {s}') = 1",
    "zbar = ybar; import os",
    "zbar = `touch {s}`",
    "zbar = $(touch {s})",
    "\\bar{{z}} = \\input{{{s}}}",
    "\\bar{{z}} = \\immediate\\write18{{touch {s}}}",
    "\\bar{{z}} = \\bar{{y}}\\,\\sigma'(z) \\def\\x{{touch {s}}}",
    # the notation added for course answers (functions, NumPy calls, indicators, δ, prose)
    "zbar = np.__class__",
    "zbar = np.system('touch {s}')",
    "zbar = outer(ybar.__class__, x)",
    "zbar = ybar * [__import__('os') > 0]",
    "dW = __import__('os').system('touch {s}')",
    "delta_z = (lambda: 1)()",
    "\\bar{{z}} = \\operatorname{{__import__}}(os)",
    "\\bar{{z}} = \\mathbb{{1}}[\\input{{{s}}} > 0]",
    "\\bar{{z}} = \\tanh^{{\\write18{{touch {s}}}}}(z)",
    "Then $\\bar{{z}} = \\input{{{s}}}$ follows.",
]


def test_injection_is_unparseable_and_runs_nothing(truth: Truth, tmp_path: Path) -> None:
    sentinel = tmp_path / "PWNED"
    texts = {
        f"inj{i:02d}.txt": line.format(s=sentinel).encode() for i, line in enumerate(INJECTIONS)
    }
    results = grade_texts(truth, texts)
    for name, res in results.items():
        statuses = [r.status for r in res.lines]
        assert statuses == ["unparseable"], (name, res.lines)
    assert not sentinel.exists()


@pytest.mark.parametrize(
    "line",
    [
        "zbar = 9^9^9^9",
        "zbar = 9**9**9**9",
        "zbar = 10**100000",
        "zbar = 100000!",
        "zbar = factorial(100000)",
        "zbar = ((9^64)^64)^64",
        "zbar = 99999999999999999999999999999^64^64",
        "zbar = 1" + "0" * 5000,
        "zbar = " + "(" * 10_000 + "ybar" + ")" * 10_000,
        "zbar = " + "(" * 2_000 + "ybar" + ")" * 2_000,
        "zbar = " + "x" * 10_000_000,
        "zbar = " + "-" * 4_000 + "ybar",
        "\\bar{z} = 9^{9^{9^{9}}}",
        "\\bar{z} = " + "\\frac{" * 1_000 + "1" + "}{2}" * 1_000,
        "\\bar{z} = \\sum_{k=1}^{100000000} k",
        # new syntax: rewrites that grow, powers and nesting stay bounded
        "zbar = " + "sinh(" * 40 + "z" + ")" * 40,
        "zbar = " + "cosh(" * 30 + "sech(z)" + ")" * 30,
        "\\bar{z} = " + "\\sinh(" * 40 + "z" + ")" * 40,
        "\\bar{z} = \\tanh^{99999}(z)",
        "zbar = tanh^99999(z)",
        "zbar = sigma^9^9^9(z)",
        "zbar = " + "[z > " * 200 + "0" + "]" * 200,
        "zbar = " + "diag(" * 200 + "z" + ")" * 200,
        "\\bar{z} = " + "\\mathbb{1}[z > " * 200 + "0" + "]" * 200,
        "\\bar{z} = " + "\\hat{" * 200 + "y" + "}" * 200,
        "zbar = " + "z̄" * 3_000,
        "\\bar{z} = " + "\\frac{\\partial L}{\\partial y}" * 2_000,
    ],
)
def test_huge_inputs_are_refused_quickly(truth: Truth, line: str) -> None:
    start = time.monotonic()
    res = check_file_text(truth, line)
    assert time.monotonic() - start < LIMITS.wall_seconds
    (r,) = res.lines
    assert r.status == "unparseable"
    assert r.message


def check_file_text(truth: Truth, line: str):
    return grade(truth, [Submission("a.txt", line.encode())], 1, LIMITS)[0]


def test_non_finite_results_are_incorrect_or_refused(truth: Truth) -> None:
    res = grade_texts(
        truth,
        {
            "a": b"zbar = 1/0",
            "b": b"zbar = log(0)",
            "c": b"zbar = 1/(z - z)",
            "d": b"zbar = log(-1 - z^2)",
        },
    )
    for name in "abc":
        assert res[name].lines[0].status == "unparseable", res[name].lines
    assert res["d"].lines[0].status == "incorrect"
    assert "not finite" in res["d"].lines[0].message


def test_simplify_explosion_is_bounded(truth: Truth) -> None:
    """Numerically equal, but expanding it would take forever: the symbolic proof
    gives up at its bound and the line still gets a clear status."""
    bomb = "((x+1)*(w+1)*(b+1)*(t+1) - (x*w+x+w+1)*(b*t+b+t+1))^60"
    start = time.monotonic()
    res = grade(
        truth,
        [Submission("a.txt", f"zbar = ybar*sigma'(z) + {bomb}".encode())],
        1,
        LIMITS,
        symbolic_seconds=1.0,
    )[0]
    assert time.monotonic() - start < LIMITS.wall_seconds
    (r,) = res.lines
    assert r.status in ("correct", "incorrect", "timeout")
    if r.status == "correct":
        assert r.symbolic.startswith("not proved")


def test_wall_clock_kill_marks_the_rest_timeout(truth: Truth) -> None:
    """Without the in-process bound, the parent's kill still stops the worker."""
    bomb = "((x+1)*(w+1)*(b+1)*(t+1) - (x*w+x+w+1)*(b*t+b+t+1))^60"
    text = f"ybar = y - t\nzbar = ybar*sigma'(z) + {bomb}\nwbar = zbar*x\n".encode()
    start = time.monotonic()
    res = grade(
        truth,
        [Submission("a.txt", text)],
        1,
        SandboxLimits(wall_seconds=2.0),
        symbolic_seconds=None,
    )[0]
    assert time.monotonic() - start < 6
    assert [r.status for r in res.lines] == ["correct", "timeout", "timeout"]
    assert "wall-clock limit of 2 s" in res.lines[1].message


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "empty"),
        (b"\n\n   \n# only a comment\n", "empty"),
        (b"zbar = ybar\xff\xfe", "not valid UTF-8"),
        (b"zbar = ybar\x00*sigma'(z)", "NUL byte"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "NUL byte"),
    ],
)
def test_bad_files_give_clear_errors(truth: Truth, data: bytes, needle: str) -> None:
    res = grade(truth, [Submission("a.txt", data)], 1, LIMITS)[0]
    assert res.verdict == "error"
    assert needle in res.error


def test_missing_file(truth: Truth, tmp_path: Path) -> None:
    res = check_file(truth, tmp_path / "nope.txt", limits=LIMITS)
    assert res.verdict == "error" and "cannot read" in res.error


def test_look_alikes_are_normalized_or_refused(truth: Truth) -> None:
    res = grade_texts(
        truth,
        {
            "full": "zbar = ｙbar*sigma'(z)".encode(),
            "cyr": "zbar = \u0443bar*sigma'(z)".encode(),
            "rtl": "zbar = ybar\u202e*sigma'(z)".encode(),
        },
    )
    assert res["full"].lines[0].status == "correct"
    assert res["cyr"].lines[0].status == "unparseable"
    assert "look-alike" in res["cyr"].lines[0].message
    assert res["rtl"].lines[0].status == "unparseable"


HTML = [
    "zbar = <script>alert(1)</script>",
    "<img src=x onerror=alert(1)> = ybar",
    "zbar = ybar # </textarea><script>alert(1)</script>",
    '=HYPERLINK("http://x") = 1',
    "zbar = ybar\x1b]0;pwned\x07\x1b[2J",
]


def test_html_and_control_characters_are_inert(truth: Truth) -> None:
    texts = {f"h{i}.txt": line.encode() for i, line in enumerate(HTML)}
    texts['=cmd|"/C calc"!A0.txt'] = b"zbar = <b>"
    results = list(grade_texts(truth, texts).values())
    for res in results:
        j = result_json(res)
        json.loads(j)
        assert "<" not in j and ">" not in j
        t = result_text(res)
        assert "\x1b" not in t and "\x07" not in t
    table = grades_csv(results, ["z_bar"])
    for row in csv.reader(io.StringIO(table)):
        for cell in row:
            assert cell[:1] not in ("=", "+", "-", "@"), cell
            assert "\x1b" not in cell


def test_sandbox_limits_each_task() -> None:
    def task(kind: str, send) -> None:  # noqa: ANN001
        send("started")
        if kind == "loop":
            while True:
                pass
        if kind == "memory":
            send(bytearray(4 * 2**30))
        if kind == "crash":
            import os

            os._exit(3)
        send("done")

    start = time.monotonic()
    pool = SandboxPool(task, jobs=2, limits=SandboxLimits(wall_seconds=1.5))
    out = dict(pool.map(["ok", "loop", "memory", "crash", "ok"]))
    assert time.monotonic() - start < 5
    assert [out[i].status for i in range(5)] == ["ok", "timeout", "memory", "crashed", "ok"]
    assert out[1].messages == ["started"]


def test_random_notation_soup_never_crashes() -> None:
    """Random mixtures of the answer notation (LaTeX, Unicode, code styles) are judged or
    refused line by line; nothing raises."""
    import random

    from chainrule.homework.answers import parse_answer_text
    from chainrule.homework.check import check_answer

    atoms = [
        *(
            r"\bar{y} \bar{z} h x t W^{(2)} W^{(1)} \sigma \tanh ^2 ^ _ { } ( ) [ ] \top ' \circ"
            r" + - \frac \partial L \mathbb{1} \hat \delta ^{(1)} ^{[2]} > 0 1 \left( \right)"
            r" \sinh \operatorname{sech} &= \\ $ \nabla_ dW a = , \geq \otimes \mathsf{T}"
        ).split(),
        *"ᵀ z̄ ⁽²⁾ σ' ∘ np.outer( sum( * @ .T x' e diag( [z>0] ŷ δ⁽¹⁾ 𝟙".split(),
    ]
    targets = [r"\bar{z}", "zbar", r"\bar{W}^{(1)}", "W2bar", r"\delta^{(2)}", "a", "dW1"]
    rng = random.Random(12)
    program = chainrule.load("vector_mlp")
    truth = Truth(program)
    for _ in range(300):
        text = "\n".join(
            f"{rng.choice(targets)} = " + " ".join(rng.choices(atoms, k=rng.randint(1, 12)))
            for _ in range(rng.randint(1, 3))
        )
        res = check_answer(truth, parse_answer_text(text, "soup", program), symbolic_seconds=0.2)
        assert all(r.status in ("correct", "incorrect", "unparseable") for r in res.lines)


def test_shorthands_cannot_nest_or_grow_without_bound(truth: Truth) -> None:
    deep = ["a0 = x"] + [f"a{i} = " + "-" * 90 + f"a{i - 1}" for i in range(1, 30)]
    wide = ["b0 = x"] + [f"b{i} = b{i - 1} + b{i - 1}" for i in range(1, 40)]
    for lines, last in ((deep, "a29"), (wide, "b39")):
        start = time.monotonic()
        res = check_file_text(truth, "\n".join([*lines, f"zbar = {last}"]))
        assert time.monotonic() - start < LIMITS.wall_seconds
        assert res.verdict != "error"
        assert res.lines[-1].status == "unparseable"
        assert any("once your own names are written out" in r.message for r in res.lines)
