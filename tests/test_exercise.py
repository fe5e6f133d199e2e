"""``chainrule exercise`` and ``grade --exercise``: templates, per-student variants,
determinism, keys judged correct, handouts without the solution, grading by variant."""

from __future__ import annotations

import csv
import doctest
import importlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import central_difference, rel_err

from chainrule.cli import main
from chainrule.homework.answers import parse_answer_text
from chainrule.homework.check import Truth, check_answer
from chainrule.homework.exercise import assign_variants, load_exercise, recorded_variants
from chainrule.homework.numeric import grade_numbers
from chainrule.homework.templates import parse_template
from chainrule.symbolic.errors import ModelError

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "examples" / "exercises" / "one_hidden_unit.chain"  # 3 x 2 x 3 = 18 variants

VECTOR_TEMPLATE = """\
# exercise: two layers, squared error or softmax cross-entropy
vary n in 2, 3
vary act in sigma, tanh, relu
vary E in sum((p - t)^2)/2, -sum(t * log(p))
param W1[2, n], b1[2], W2[3, 2], b2[3]
input x[n], t[3]
z = W1 @ x + b1
h = act(z)
y = W2 @ h + b2
p = softmax(y)
L = E
loss L
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def roster(path: Path, n: int) -> Path:
    rows = ["id,name,email"] + [f"s{i:03d},Student {i},s{i}@uni.example" for i in range(n)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def class40(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped 18-variant template for a 40-student roster."""
    tmp = tmp_path_factory.mktemp("class40")
    out = tmp / "hw"
    code = main(
        [
            "exercise",
            str(TEMPLATE),
            "--students",
            str(roster(tmp / "roster.csv", 40)),
            "--seed",
            "11",
            "-o",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    return out


def files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


# ------------------------------------------------------------------ templates
@pytest.mark.parametrize("name", ["templates", "key", "numeric", "exercise", "exercise_grading"])
def test_doctests(name: str) -> None:
    module = importlib.import_module(f"chainrule.homework.{name}")
    assert doctest.testmod(module).failed == 0


def test_template_variants_substitute_tokens() -> None:
    t = parse_template(TEMPLATE.read_text(), "t.chain")
    assert t.count == 18
    texts = {t.variant_text(i) for i in range(t.count)}
    assert len(texts) == 18 and t.distinct() == 18
    last = t.variant_text(17)
    assert "h = softplus(z)" in last and "y = tanh(w2*h + h)" in last and "0.5*(w1^2" in last
    assert "vary" not in last
    # a name that merely contains the placeholder is left alone
    t2 = parse_template("vary f in tanh\nparam w, ff\ninput x\ny = f(ff*w*x)\nloss y\n")
    assert "y = tanh(ff*w*x)" in t2.variant_text(0)


def test_template_sizes_numbers_and_expressions() -> None:
    t = parse_template(VECTOR_TEMPLATE, "v.chain")
    assert t.count == 12
    text = t.variant_text(t.count - 1)
    assert "param W1[2, 3]" in text and "input x[3]" in text
    assert "L = -sum(t * log(p))" in text and "h = relu(z)" in text
    neg = parse_template("vary c in -1, 2\nparam w\ninput x\ny = x*c^2*w\nloss y\n")
    assert "y = x*(-1)^2*w" in neg.variant_text(0)  # a negative number keeps its meaning


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("vary f in sigma, nosuch\nparam w\ninput x\ny = f(w*x)\nloss y\n", ":4:5:", "nosuch"),
        ("vary f in sigma,\nparam w\ny = f(w)\nloss y\n", ":1:", "choice"),
        ("vary loss in 1, 2\nparam w\ny = w\nloss y\n", ":1:6:", "keyword"),
        ("vary f in tanh, tanh\nparam w\ny = f(w)\nloss y\n", ":1:17:", "twice"),
        ("vary f in (1 +\nparam w\ny = w\nloss y\n", ":1:", "expected"),
        ("vary n in 2, 0\nparam W[n]\ny = sum(W)\nloss y\n", ":2:9:", "dimension"),
    ],
)
def test_template_errors_are_located(text: str, where: str, message: str) -> None:
    with pytest.raises(ModelError) as info:
        parse_template(text, "t.chain").validate()
    shown = str(info.value)
    assert f"t.chain{where}" in shown and message in shown


def test_bad_template_exits_2_without_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.chain"
    bad.write_text("vary f in sigma, nosuch\nparam w\ninput x\ny = f(w*x)\nloss y\n")
    code, _, err = run(capsys, "exercise", str(bad), "--count", "2", "-o", str(tmp_path / "o"))
    assert code == 2
    assert "bad.chain:4:5: error" in err and "Traceback" not in err


def test_needs_students_or_count(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "exercise", str(TEMPLATE), "-o", str(tmp_path / "o"))
    assert code == 2 and "--students" in err and "--count" in err
    many = "vary c in " + ", ".join(str(i) for i in range(1, 102)) + "\nparam w\ny = c*w\nloss y\n"
    with pytest.raises(ModelError, match="more than 100 choices"):
        parse_template(many, "t.chain")


def test_few_variants_warn(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    tpl = tmp_path / "two.chain"
    tpl.write_text("vary f in sigma, tanh\nparam w\ninput x, t\ny = f(w*x)\nL = (y-t)^2\nloss L\n")
    code, out, err = run(capsys, "exercise", str(tpl), "--count", "3", "--preview")
    assert code == 0
    assert "warning: 2 distinct variants for 3 students" in err
    assert out.startswith("# v001: variant") and "numeric:" in out and "y = " in out


# ------------------------------------------------------------------ assignment
def test_assignment_balanced_and_every_variant_used() -> None:
    ids = [f"s{i:03d}" for i in range(40)]
    a = assign_variants(18, ids, seed=11)
    counts = np.bincount(list(a.values()), minlength=18)
    assert counts.min() == 2 and counts.max() == 3  # each of the 18 used, spread evenly
    assert a == assign_variants(18, list(reversed(ids)), seed=11)  # roster order is irrelevant
    assert a != assign_variants(18, ids, seed=12)


def test_class_of_40_uses_all_18_variants(class40: Path) -> None:
    ex = json.loads((class40 / "exercise.json").read_text())
    assert ex["variants"] == 18 and ex["seed"] == 11 and ex["template"] == TEMPLATE.name
    assert len(ex["students"]) == 40
    assert {s["variant"] for s in ex["students"]} == set(range(18))
    assert ex["students"][3]["roster"] == {"name": "Student 3", "email": "s3@uni.example"}
    models = {(class40 / s["id"] / "model.chain").read_text() for s in ex["students"]}
    assert len(models) == 18
    for s in ex["students"]:
        names = {p.name for p in (class40 / s["id"]).iterdir()}
        assert {"model.chain", "handout.md", "handout.html", "handout.tex", "solution.md",
                "solution.html", "answer_key.txt"} <= names  # fmt: skip


def test_determinism_identical_bytes(class40: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    code = main(
        [
            "exercise",
            str(TEMPLATE),
            "--students",
            str(roster(tmp_path / "r.csv", 40)),
            "--seed",
            "11",
            "-o",
            str(again),
            "--no-progress",
        ]
    )
    assert code == 0
    first, second = files(class40), files(again)
    assert first.keys() == second.keys() and len(first) == 40 * 7 + 1
    assert all(first[k] == second[k] for k in first)
    for k, data in first.items():  # no machine-specific paths in any file
        assert str(class40).encode() not in data and str(ROOT).encode() not in data, k


def test_late_student_changes_no_one_elses_files(
    capsys: pytest.CaptureFixture[str], class40: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "hw"
    shutil.copytree(class40, folder)
    before = files(folder)
    longer = roster(tmp_path / "r.csv", 40)
    longer.write_text(longer.read_text() + "late1,Late Student,late@uni.example\n")
    code, _, err = run(
        capsys, "exercise", str(TEMPLATE), "--students", str(longer), "--seed", "11",
        "-o", str(folder), "--no-progress",
    )  # fmt: skip
    assert code == 0 and "40 students keep their variants" in err
    after = files(folder)
    assert all(after[k] == v for k, v in before.items() if k != "exercise.json")
    ex = json.loads((folder / "exercise.json").read_text())
    counts = np.bincount([s["variant"] for s in ex["students"][:40]], minlength=18)
    late = ex["students"][40]
    assert late["id"] == "late1" and counts[late["variant"]] == counts.min() == 2
    assert (folder / "late1" / "answer_key.txt").is_file()


# ------------------------------------------------------------------ keys and handouts
def test_every_key_correct_for_its_own_variant(class40: Path) -> None:
    exercise = load_exercise(class40)
    first_of_variant: dict[int, dict] = {}
    for s in exercise.students:
        first_of_variant.setdefault(s["variant"], s)
    students = recorded_variants(exercise, list(first_of_variant.values()))
    assert len(students) == 18
    for sid, sv in students.items():
        key = (class40 / sid / "answer_key.txt").read_text()
        res = check_answer(Truth(sv.program), parse_answer_text(key, "k", sv.program), None)
        assert res.verdict == "correct" and not res.missing, sid
        numbers = grade_numbers(key, "k", sv.program, sv.gradient)
        assert [r.status for r in numbers] == ["correct"] * 3, sid


def test_key_checked_by_the_cli(capsys: pytest.CaptureFixture[str], class40: Path) -> None:
    folder = class40 / "s005"
    code, out, _ = run(
        capsys,
        "check",
        str(folder / "model.chain"),
        "--answer",
        str(folder / "answer_key.txt"),
        "--format",
        "json",
    )
    assert code == 0 and json.loads(out)["verdict"] == "correct"


def test_numeric_answers_match_finite_differences(class40: Path) -> None:
    from chainrule.numeric.evaluate import forward

    exercise = load_exercise(class40)
    for sid, sv in recorded_variants(exercise, exercise.students[:6]).items():
        point = {k: float(v) for k, v in sv.point.items()}
        for v in sv.program.consts:
            point[v.name] = float(v.value)  # type: ignore[arg-type]

        def loss(p: dict[str, float], prog=sv.program) -> float:
            return float(forward(prog, p)[prog.loss_assignment.symbol])

        for p in sv.program.params:
            fd = central_difference(loss, point, p.name)
            assert rel_err(sv.gradient[p.name], fd) < 1e-6, (sid, p.name)


def test_handouts_hold_no_solution(class40: Path) -> None:
    for sid in (s["id"] for s in load_exercise(class40).students):
        key = (class40 / sid / "answer_key.txt").read_text().splitlines()
        numbers = [line.split("= ", 1)[1] for line in key[key.index("numeric:") + 1 :]]
        signals = [line for line in key if "_bar = " in line and not line.startswith("L_bar")]
        solution = (class40 / sid / "solution.md").read_text()
        assert all(n in solution for n in numbers)  # the solution has them ...
        for fmt in ("md", "html", "tex"):
            handout = (class40 / sid / f"handout.{fmt}").read_text()
            handout = re.sub(
                r"<svg.*?</svg>|data:image/svg\+xml;base64,[A-Za-z0-9+/=]+", "", handout, flags=re.S
            )
            assert sid in handout
            assert not any(n in handout for n in numbers), (sid, fmt)  # ... the handout not
            assert not any(s in handout for s in signals), (sid, fmt)
            assert "sigma'" not in handout and "\\sigma'" not in handout and "σ'" not in handout
            assert "Backpropagation" not in handout and "numeric:" in handout


# ------------------------------------------------------------------ grading
def test_grade_exercise(capsys: pytest.CaptureFixture[str], class40: Path, tmp_path: Path) -> None:
    ex = json.loads((class40 / "exercise.json").read_text())
    variant = {s["id"]: s["variant"] for s in ex["students"]}
    other = next(s for s in variant if variant[s] != variant["s000"])
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(class40 / "s000" / "answer_key.txt", subs / "s000.txt")
    shutil.copy(class40 / "s000" / "answer_key.txt", subs / f"{other}.txt")  # not their variant
    key = (class40 / "s001" / "answer_key.txt").read_text()
    head, _, _ = key.partition("numeric:")
    (subs / "s001.txt").write_text(head + "numeric:\ndL/dw1 = 12345\ndL/db = oops(1)\n")
    (subs / "intruder.txt").write_text("y_bar = y - t\n")
    key3 = (class40 / "s003" / "answer_key.txt").read_text()
    (subs / "s003.md").write_text(f"## My answer\n\n```text\n{key3}```\n")
    out = tmp_path / "grades.csv"
    code, _, err = run(
        capsys, "grade", "--exercise", str(class40), str(subs), "-o", str(out), "--jobs", "2",
        "--json", str(tmp_path / "g.json"), "--no-progress",
    )  # fmt: skip
    assert code == 0
    assert (
        "unknown id: intruder.txt" in err and "missing: s002" in err and "missing: s003" not in err
    )
    rows = {r["submission"] or r["id"]: r for r in csv.DictReader(out.open())}
    assert rows["s000.txt"]["verdict"] == "correct" and rows["s000.txt"]["total"] == "1.0000"
    assert rows["s000.txt"]["variant"] == str(variant["s000"] + 1)
    assert rows[f"{other}.txt"]["verdict"] != "correct"
    assert float(rows[f"{other}.txt"]["total"]) < 1
    assert rows["s001.txt"]["score"] == "1.0000" and rows["s001.txt"]["verdict"] == "incorrect"
    assert rows["s001.txt"]["numeric"] == "line13:unparseable w1:incorrect w2:missing b:missing"
    assert rows["s003.md"]["verdict"] == "correct"  # Markdown fences and headings skipped
    assert rows["intruder.txt"]["verdict"] == "unknown id"
    assert "not in the exercise's roster" in rows["intruder.txt"]["error"]
    assert rows["s002"]["verdict"] == "missing"
    assert len(rows) == 5 + 36  # 4 students answered, 36 did not
    data = json.loads((tmp_path / "g.json").read_text())
    first = data["submissions"][0]
    assert {"id", "variant", "verdict", "score", "numeric_score", "total", "numeric"} <= set(first)


def test_grade_exercise_needs_only_submissions(
    capsys: pytest.CaptureFixture[str], class40: Path, tmp_path: Path
) -> None:
    code, _, err = run(capsys, "grade", "--exercise", str(class40), "-o", str(tmp_path / "g.csv"))
    assert code == 2 and "SUBMISSIONS_DIR" in err
    code, _, err = run(capsys, "grade", "--exercise", str(tmp_path), str(tmp_path), "-o", "x.csv")
    assert code == 2 and "exercise.json" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,email\nAnn,a@x\n", "roster.csv:1:1: error: the roster needs an 'id' column"),
        ("id\ns1\ns2\ns1\n", "roster.csv:4:1: error: id 's1' is listed twice"),
        ("id\n../etc\n", "roster.csv:2:1: error: student id '../etc' cannot be a file name"),
        ("id\n\n", "the roster lists no students"),
    ],
)
def test_roster_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "roster.csv").write_text(text)
    code, _, err = run(
        capsys, "exercise", str(TEMPLATE), "--students", str(tmp_path / "roster.csv"),
        "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_latex_numeric_answers() -> None:
    prog = parse_template(TEMPLATE.read_text(), "t.chain").variant(0)
    grads = {"w1": 0.2972, "w2": -1.5, "b": -0.06699}
    text = (
        "\\bar{L} = 1\nnumeric:\n$\\frac{\\partial L}{\\partial w_1} = 2.972 \\cdot 10^{-1}$\n"
        "$\\bar{w}_2 = -1.5$ % comment\n$\\bar{b} = -6.699 \\times 10^{-2}$\n"
    )
    res = grade_numbers(text, "a.tex", prog, grads, "latex")
    assert [(r.param, r.status) for r in res] == [(p, "correct") for p in ("w1", "w2", "b")]


def test_numeric_tolerance_and_hostile_numbers() -> None:
    t = parse_template(TEMPLATE.read_text(), "t.chain")
    prog = t.variant(0)
    grads = {"w1": 0.123456, "w2": -2.0, "b": 0.0}
    text = "numeric:\ndL/dw1 = 0.1235\nw2_bar = -2.003\ndL/db = 9^9^9\n"
    res = {r.param: r.status for r in grade_numbers(text, "a.txt", prog, grads)}
    assert res == {"": "unparseable", "w1": "correct", "w2": "incorrect", "b": "missing"}
    res2 = grade_numbers("numeric:\ndL/db = 1e-12\ndL/dx = 1\n", "a", prog, grads)
    assert {r.param: r.status for r in res2}["b"] == "correct"  # below the absolute floor
    assert "parameters only" in res2[0].message


# ------------------------------------------------------------------ vector templates
def test_vector_template(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    tpl = tmp_path / "vec.chain"
    tpl.write_text(VECTOR_TEMPLATE)
    out = tmp_path / "vex"
    code, _, _ = run(capsys, "exercise", str(tpl), "--count", "12", "--seed", "2", "-o", str(out))
    assert code == 0
    exercise = load_exercise(out)
    assert {s["variant"] for s in exercise.students} == set(range(12))
    students = recorded_variants(exercise, exercise.students)
    ce = [sv for sv in students.values() if sv.choices["E"].startswith("-sum")]
    assert ce and all(sorted(np.ravel(sv.point["t"])) == [0, 0, 1] for sv in ce)  # one-hot
    for sid, sv in students.items():
        key = (out / sid / "answer_key.txt").read_text()
        assert "W2_bar = " in key and "dL/dW1 = [[" in key
        res = check_answer(Truth(sv.program), parse_answer_text(key, "k", sv.program), None)
        assert res.verdict == "correct", sid
        nums = grade_numbers(key, "k", sv.program, sv.gradient)
        assert all(r.status == "correct" for r in nums) and len(nums) == 4
        if sv.choices["E"].startswith("-sum"):  # softmax-CE: the lecture's z̄ = y − t form
            assert "y_bar = L_bar*(p - t)" in key
    sv = next(iter(students.values()))
    swapped = (out / sv.student.id / "answer_key.txt").read_text().replace("@ h.T", "@ h")
    res = check_answer(Truth(sv.program), parse_answer_text(swapped, "k", sv.program), None)
    assert res.verdict == "incorrect"


# ------------------------------------------------------------------ PrairieLearn
def test_prairielearn_question(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import base64
    import importlib.util
    import random

    folder = tmp_path / "q"
    code, _, _ = run(capsys, "exercise", "one_hidden_unit", "--prairielearn", str(folder))
    assert code == 0
    assert {p.name for p in folder.iterdir()} == {
        "info.json", "question.html", "server.py", "template.chain"
    }  # fmt: skip
    info = json.loads((folder / "info.json").read_text())
    assert info["type"] == "v3" and info["title"].startswith("exercise: one hidden unit")
    assert 'file-name="answer.txt"' in (folder / "question.html").read_text()
    spec = importlib.util.spec_from_file_location("pl_server", folder / "server.py")
    assert spec is not None and spec.loader is not None
    server = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(server)  # our own generated file, as PrairieLearn runs it

    def fresh() -> dict:
        return {"params": {}, "correct_answers": {}, "submitted_answers": {}, "feedback": {}}

    random.seed(4)
    data = fresh()
    server.generate(data)
    random.seed(4)
    again = fresh()
    server.generate(again)
    assert json.dumps(data, sort_keys=True) == json.dumps(again, sort_keys=True)
    params = data["params"]
    assert "<html" not in params["handout"] and "numeric:" in params["handout"]
    assert params["key"].split("numeric:")[1].split()[2] not in params["handout"]

    def submit(text: str) -> float:
        data["submitted_answers"]["_files"] = [
            {"name": "answer.txt", "contents": base64.b64encode(text.encode()).decode()}
        ]
        server.grade(data)
        return float(data["score"])

    assert submit(params["key"]) == 1.0
    assert "score 1.00" in data["feedback"]["report"]
    head, _, tail = params["key"].partition("numeric:")
    assert submit(head.replace("z_bar = ", "z_bar = 2*") + "numeric:" + tail) < 1.0
    assert "factor of 2" in data["feedback"]["report"]
    assert submit(head) == 0.5  # no numbers: half the score
    assert submit("") == 0.0


def test_template_with_a_defined_function(tmp_path: Path) -> None:
    t = parse_template(
        "vary a in 1, 2\ndef swish(z) = z*sigma(a*z)\nparam w, b\ninput x, t\n"
        "y = swish(w*x + b)\nL = (y - t)^2/2\nloss L\n",
        "swish.chain",
    )
    from chainrule.homework.exercise import Student, student_variant
    from chainrule.homework.exercise_docs import answer_key

    for index in range(t.count):
        sv = student_variant(t, Student("s1"), index, seed=3)
        key = answer_key(sv)
        res = check_answer(Truth(sv.program), parse_answer_text(key, "k", sv.program), None)
        assert res.verdict == "correct" and "swish_prime" in key
        assert all(r.status == "correct" for r in grade_numbers(key, "k", sv.program, sv.gradient))
