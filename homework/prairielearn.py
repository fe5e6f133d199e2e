"""An exercise template as a PrairieLearn question directory.

``chainrule exercise TEMPLATE --prairielearn DIR`` writes ``info.json``,
``question.html``, ``server.py`` and ``template.chain``. PrairieLearn calls
``server.py``'s ``generate(data)`` once per question variant (its ``random`` module is
seeded per variant): :func:`generate_params` picks a variant of the template and a point
and stores them, the handout and the key in ``data["params"]``. The student types the
answer into a file editor (``answer.txt``, the format of ``chainrule check``);
``grade(data)`` calls :func:`grade_text`, which checks the backward pass in a sandboxed
worker and the numeric answers at the variant's point. The score is the mean of the two
parts, as in ``chainrule grade --exercise``. The course's Python needs chainrule
installed (``pip install chainrule``, e.g. in a custom workspace or grader image).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from .exercise import Student, StudentVariant, student_variant
from .templates import Template, parse_template

#: The id every PrairieLearn variant's point is drawn for (the seed varies instead).
PL_ID = "prairielearn"

QUESTION_HTML = """\
<pl-question-panel>
{{{params.handout}}}
</pl-question-panel>
<pl-file-editor file-name="answer.txt" ace-mode="ace/mode/text"></pl-file-editor>
<pl-submission-panel>
<pl-file-preview></pl-file-preview>
<pre>{{feedback.report}}</pre>
</pl-submission-panel>
<pl-answer-panel>
<pre>{{params.key}}</pre>
</pl-answer-panel>
"""

SERVER_PY = '''\
"""A chainrule backprop exercise (made by `chainrule exercise --prairielearn`).

Each PrairieLearn variant is one variant of template.chain with its own point; answers
are graded by chainrule (backward pass line by line, then the numeric answers).
"""

import base64
import random
from pathlib import Path

from chainrule.homework.prairielearn import generate_params, grade_text

TEMPLATE = Path(__file__).with_name("template.chain")


def generate(data):
    seed = random.randrange(2**31)  # PrairieLearn seeds random for each variant
    data["params"].update(generate_params(TEMPLATE.read_text(encoding="utf-8"), seed))


def grade(data):
    text = ""
    for f in data["submitted_answers"].get("_files") or []:
        if f.get("name") == "answer.txt":
            text = base64.b64decode(f["contents"]).decode("utf-8", "replace")
    template = TEMPLATE.read_text(encoding="utf-8")
    score, report = grade_text(template, data["params"], text)
    data["score"] = score
    data["feedback"]["report"] = report
'''


def _variant(template: Template, seed: int) -> StudentVariant:
    return student_variant(template, Student(PL_ID), seed % template.count, seed)


def generate_params(template_text: str, seed: int) -> dict[str, Any]:
    """``data["params"]`` of one PrairieLearn variant (JSON-serializable)."""
    from .exercise_docs import answer_key, handout_fragment

    template = parse_template(template_text, "template.chain")
    sv = _variant(template, seed)
    return {
        "seed": seed,
        "variant": sv.index,
        "choices": sv.choices,
        "point": sv.point,
        "handout": handout_fragment(sv, template.count),
        "key": answer_key(sv),
    }


def grade_text(template_text: str, params: dict[str, Any], text: str) -> tuple[float, str]:
    """(score in [0, 1], a readable report) of an answer to the variant in ``params``."""
    from .exercise import Exercise, recorded_variants
    from .exercise_grading import grade_exercise
    from .grading import Submission
    from .sandbox import SandboxLimits

    template = parse_template(template_text, "template.chain")
    record = {"id": PL_ID, "variant": int(params["variant"]), "point": params["point"]}
    exercise = Exercise(
        "template.chain", template_text, int(params["seed"]), template.count, [record]
    )
    recorded_variants(exercise, [record])  # a bad record raises here, before any worker
    sub = Submission(f"{PL_ID}.txt", text.encode("utf-8"))
    (gr,) = grade_exercise(exercise, [sub], 1, SandboxLimits(wall_seconds=8.0))
    lines = [f"score {gr.total:.2f} (backward pass {gr.score:.2f}, numbers {gr.numeric_score:.2f})"]
    if gr.result is not None:
        from .results import result_text

        lines.append(result_text(gr.result).rstrip())
    lines += [f"  {r.param or f'line {r.line}'}: {r.status} ({r.message})" for r in gr.numeric]
    return gr.total, "\n".join(lines)


def export_question(template_path: str | Path, folder: str | Path, title: str = "") -> list[Path]:
    """Write the question directory; the files written."""
    text = Path(template_path).read_text(encoding="utf-8")
    template = parse_template(text, str(template_path))
    template.validate()
    _variant(template, 0)  # a variant with a usable point exists
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    info = {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"chainrule-exercise:{digest}")),
        "title": title or _title(text) or "Backpropagation exercise",
        "topic": "Backpropagation",
        "tags": ["chainrule", "backprop"],
        "type": "v3",
    }
    files = {
        "info.json": json.dumps(info, indent=2) + "\n",
        "question.html": QUESTION_HTML,
        "server.py": SERVER_PY,
        "template.chain": text,
    }
    for name, content in files.items():
        (out / name).write_text(content, encoding="utf-8")
    return [out / name for name in files]


def _title(text: str) -> str:
    for line in text.splitlines():
        if line.strip().startswith("#"):
            return line.strip().lstrip("#").strip()
        if line.strip():
            break
    return ""
