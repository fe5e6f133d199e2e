"""A Gradescope autograder bundle: ``setup.sh``, ``run_autograder``, the model, a rubric.

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` once to build
the image, then ``run_autograder`` per submission: it checks the answer file found in
``/autograder/submission`` with ``chainrule check --format gradescope`` and writes
``/autograder/results/results.json``. ``CHAINRULE_AUTOGRADER_ROOT`` moves the root (a dry
run in a temporary folder) and ``CHAINRULE`` the command (default ``chainrule``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope image setup: install chainrule {version} from the package index.
set -euo pipefail
apt-get update -qq && apt-get install -y -qq python3 python3-pip > /dev/null || true
python3 -m pip install --quiet "chainrule=={version}"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Check the submitted answer against model.chain; write results/results.json.
set -uo pipefail
ROOT="${CHAINRULE_AUTOGRADER_ROOT:-/autograder}"
CHAINRULE="${CHAINRULE:-chainrule}"
SOURCE="$ROOT/source"
RESULTS="$ROOT/results"
mkdir -p "$RESULTS"
answer=""
for f in "$ROOT"/submission/*.tex "$ROOT"/submission/*.txt "$ROOT"/submission/*.md \
         "$ROOT"/submission/*; do
  if [ -f "$f" ] && [ ! -L "$f" ]; then answer="$f"; break; fi
done
fail() {  # results.json with no points and a message for the student
  printf '{"score": 0, "max_score": 0, "output": "%s", "visibility": "visible", "tests": []}\n' \
    "$1" > "$RESULTS/results.json"
}
if [ -z "$answer" ]; then
  fail "no answer file was submitted (a .tex or .txt file, one target = expression a line)"
  exit 0
fi
rubric=()
if [ -f "$SOURCE/rubric.toml" ]; then rubric=(--rubric "$SOURCE/rubric.toml"); fi
$CHAINRULE check "$SOURCE/model.chain" --answer "$answer" --format gradescope \
  "${rubric[@]}" > "$RESULTS/results.json.tmp" 2> "$RESULTS/stderr.txt"
status=$?
if [ "$status" -le 1 ] && [ -s "$RESULTS/results.json.tmp" ]; then
  mv "$RESULTS/results.json.tmp" "$RESULTS/results.json"
else
  fail "the autograder could not check this answer; ask the course staff"
fi
exit 0
"""


def build_bundle(model_text: str, output: str | Path, rubric_text: str | None = None) -> Path:
    """Write the autograder zip (scripts executable) and return its path."""
    from chainrule import __version__

    out = Path(output)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in (
            ("setup.sh", SETUP_SH.format(version=__version__)),
            ("run_autograder", RUN_AUTOGRADER),
        ):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text)
        z.writestr("model.chain", model_text)
        if rubric_text is not None:
            z.writestr("rubric.toml", rubric_text)
    return out
