"""Per-student exercises: a template, a roster and a seed → one variant per student.

Assignment is balanced and deterministic. Students are ordered by SHA-256 of
(seed, id), the variants by SHA-256 of (seed, variant number), and the k-th student takes
the (k mod V)-th variant: with at least as many students as variants every variant is
used, and no two variants are used more than once apart. The same template, seed and
roster give byte-identical files on any machine; each student's point depends only on
the seed and their id. Writing into a folder whose ``exercise.json`` has the same
template and seed keeps every listed student's variant (a late student changes nobody
else's files) and gives each new student one of the least-used variants.

``exercise.json`` records the template text, the seed and every student's variant and
point, so ``chainrule grade --exercise DIR`` rebuilds each student's key without the
template file.
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..derive.records import Derivation
from ..symbolic.errors import ChainruleError, LimitError, ModelError, SourceSpan
from ..symbolic.program import Program
from .templates import Template, parse_template

FORMAT_VERSION = 1
MAX_STUDENTS = 100_000
_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,99}$")


@dataclass
class Student:
    """One roster row: the id (a file name) and the other columns, kept as read."""

    id: str
    fields: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------ rosters
def check_id(sid: str, span: SourceSpan) -> str:
    if not _ID_RE.match(sid) or sid.endswith(".") or ".." in sid:
        raise ModelError(
            f"student id {sid!r} cannot be a file name",
            span,
            "ids are letters, digits and _ . @ + - (up to 100 characters)",
        )
    return sid


def read_roster(path: str | Path) -> list[Student]:
    """The students of a CSV roster with an ``id`` column (UTF-8; other columns kept)."""
    path = Path(path)
    try:
        text = path.read_bytes()[: 64 * 1024 * 1024].decode("utf-8-sig")
    except OSError as exc:
        raise ModelError(f"cannot read roster: {exc.strerror}", SourceSpan(str(path))) from None
    except UnicodeDecodeError:
        raise ModelError("roster is not valid UTF-8", SourceSpan(str(path))) from None
    return parse_roster(text, str(path))


def parse_roster(text: str, filename: str = "<roster>") -> list[Student]:
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if not header or "id" not in [h.strip() for h in header]:
        raise ModelError("the roster needs an 'id' column", SourceSpan(filename, 1, 1))
    header = [h.strip() for h in header]
    col = header.index("id")
    students: list[Student] = []
    seen: dict[str, int] = {}
    for row in rows:
        line = rows.line_num
        if not any(cell.strip() for cell in row):
            continue
        span = SourceSpan(filename, line, 1, ",".join(row)[:200])
        if len(students) >= MAX_STUDENTS:
            raise LimitError(f"more than {MAX_STUDENTS:,} students", span)
        sid = check_id(row[col].strip() if col < len(row) else "", span)
        if sid in seen:
            raise ModelError(f"id '{sid}' is listed twice (first on line {seen[sid]})", span)
        seen[sid] = line
        extra = {h: (row[i] if i < len(row) else "") for i, h in enumerate(header) if i != col}
        students.append(Student(sid, extra))
    if not students:
        raise ModelError("the roster lists no students", SourceSpan(filename, 1, 1))
    return students


def numbered_students(count: int) -> list[Student]:
    """``v001``, ``v002``, … (``--count N`` without a roster)."""
    if not 1 <= count <= MAX_STUDENTS:
        raise ChainruleError(f"--count must be between 1 and {MAX_STUDENTS:,}")
    width = max(3, len(str(count)))
    return [Student(f"v{i:0{width}d}") for i in range(1, count + 1)]


# ------------------------------------------------------------------ assignment
def _rank(*key: object) -> str:
    return hashlib.sha256(":".join(str(k) for k in key).encode("utf-8")).hexdigest()


def assign_variants(
    n_variants: int, ids: list[str], seed: int, kept: dict[str, int] | None = None
) -> dict[str, int]:
    """Student id → variant index, balanced (see the module doc). Students in ``kept``
    (an earlier assignment) keep their variant; the others fill the least-used ones."""
    students = sorted(ids, key=lambda sid: (_rank(seed, "student", sid), sid))
    k = min(n_variants, len(students))
    # the first k variants in seeded order (a partial shuffle: only k hashes ranked)
    order = sorted(_variant_sample(n_variants, k, seed), key=lambda v: _rank(seed, "variant", v))
    wanted = set(ids)
    kept = {i: v for i, v in (kept or {}).items() if i in wanted and 0 <= v < n_variants}
    if not kept:
        return {sid: order[i % len(order)] for i, sid in enumerate(students)}
    out = dict(kept)
    position = {v: i for i, v in enumerate(order)}
    used = Counter(kept.values())
    heap = [(used[v], position[v], v) for v in order]
    heap += [(used[v], len(order) + v, v) for v in used if v not in position]
    heapq.heapify(heap)
    for sid in students:
        if sid not in out:
            count, pos, v = heapq.heappop(heap)
            out[sid] = v
            heapq.heappush(heap, (count + 1, pos, v))
    return out


def _variant_sample(n: int, k: int, seed: int) -> list[int]:
    if n <= 4 * k or n <= 100_000:
        return sorted(range(n), key=lambda v: _rank(seed, "variant", v))[:k]
    picked: set[int] = set()
    i = 0
    while len(picked) < k:  # many more variants than students: sample by hash
        picked.add(int(_rank(seed, "sample", i), 16) % n)
        i += 1
    return sorted(picked)


# ------------------------------------------------------------------ one student
@dataclass
class StudentVariant:
    """A student's variant: the program, its derivation, the point and the gradient."""

    student: Student
    index: int
    choices: dict[str, str]
    program: Program
    derivation: Derivation
    point: dict[str, Any]
    gradient: dict[str, Any]


Derived = dict[int, tuple[Program, Derivation]]


def _derived(template: Template, index: int, cache: Derived) -> tuple[Program, Derivation]:
    if index not in cache:
        from ..api import derivation

        program = template.variant(index)
        cache[index] = (program, derivation(program, method="backprop"))
    return cache[index]


def student_variant(
    template: Template, student: Student, index: int, seed: int, cache: Derived | None = None
) -> StudentVariant:
    """Variant ``index`` for ``student``, with their point and the gradient there."""
    from .numeric import exercise_point

    program, d = _derived(template, index, {} if cache is None else cache)
    assert d.backprop is not None
    point, grads = exercise_point(program, d.backprop, seed, student.id)
    return StudentVariant(student, index, template.describe(index), program, d, point, grads)


# ------------------------------------------------------------------ exercise.json
@dataclass
class Exercise:
    """What ``exercise.json`` holds: the template, the seed, each student's variant."""

    template_name: str
    template_source: str
    seed: int
    n_variants: int
    students: list[dict[str, Any]]

    def template(self) -> Template:
        return parse_template(self.template_source, self.template_name)

    def by_id(self) -> dict[str, dict[str, Any]]:
        return {s["id"]: s for s in self.students}

    def to_json(self) -> str:
        obj = {
            "format": FORMAT_VERSION,
            "template": self.template_name,
            "template_sha256": hashlib.sha256(self.template_source.encode()).hexdigest(),
            "template_source": self.template_source,
            "seed": self.seed,
            "variants": self.n_variants,
            "students": self.students,
        }
        return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def student_record(sv: StudentVariant) -> dict[str, Any]:
    return {
        "id": sv.student.id,
        "roster": sv.student.fields,
        "variant": sv.index,
        "choices": sv.choices,
        "point": sv.point,
    }


def earlier_assignment(folder: str | Path, template_source: str, seed: int) -> dict[str, int]:
    """The variants ``folder/exercise.json`` gave, when it has this template and seed."""
    if not (Path(folder) / "exercise.json").is_file():
        return {}
    try:
        earlier = load_exercise(folder)
    except ModelError:
        return {}
    if earlier.template_source != template_source or earlier.seed != seed:
        return {}
    out: dict[str, int] = {}
    for s in earlier.students:
        if isinstance(s.get("id"), str) and isinstance(s.get("variant"), int):
            out[s["id"]] = s["variant"]
    return out


def load_exercise(folder: str | Path) -> Exercise:
    """Read ``DIR/exercise.json`` (written by ``chainrule exercise``)."""
    path = Path(folder) / "exercise.json"
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        if obj.get("format") != FORMAT_VERSION:
            raise ValueError("unknown format version")
        exercise = Exercise(
            str(obj["template"]),
            str(obj["template_source"]),
            int(obj["seed"]),
            int(obj["variants"]),
            list(obj["students"]),
        )
    except OSError as exc:
        raise ModelError(f"cannot read exercise: {exc.strerror}", SourceSpan(str(path))) from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(
            f"not an exercise.json written by chainrule ({exc})", SourceSpan(str(path))
        ) from None
    return exercise


def recorded_variants(
    exercise: Exercise, records: list[dict[str, Any]]
) -> dict[str, StudentVariant]:
    """Students' variants rebuilt from ``exercise.json`` (at their recorded points)."""
    import numpy as np

    from .numeric import _gradient

    template = exercise.template()
    cache: Derived = {}
    out: dict[str, StudentVariant] = {}
    for record in records:
        try:
            index, point = int(record["variant"]), dict(record["point"])
        except (KeyError, TypeError, ValueError):
            raise ChainruleError(f"exercise.json: a bad record for '{record.get('id')}'") from None
        if not 0 <= index < template.count:
            raise ChainruleError(f"exercise.json: no variant {index} for '{record['id']}'")
        program, d = _derived(template, index, cache)
        assert d.backprop is not None
        with np.errstate(all="ignore"):
            grads = _gradient(d.backprop, point)
        if grads is None:
            raise ChainruleError(f"exercise.json: the point of '{record['id']}' is not usable")
        student = Student(str(record["id"]), dict(record.get("roster", {})))
        out[student.id] = StudentVariant(
            student, index, template.describe(index), program, d, point, grads
        )
    return out
