"""Examples in docs are run: every module's doctests and the README's Python blocks."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def all_modules() -> list[str]:
    packages = [
        "chainrule",
        "chainrule.symbolic",
        "chainrule.derive",
        "chainrule.numeric",
        "chainrule.reports",
        "chainrule.examples",
        "chainrule.homework",
        "chainrule.ops",
    ]
    names = set(packages)
    for package in packages:  # each maps to its own folder (setuptools package-dir)
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            names.add(info.name)
    return sorted(n for n in names if not n.endswith("__main__"))


@pytest.mark.parametrize("name", all_modules())
def test_module_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_python_examples_run(monkeypatch):
    monkeypatch.chdir(ROOT)
    blocks = readme_python_blocks()
    assert blocks, "README.md should show the Python API"
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # our own docs, not user text


def test_readme_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    commands = [line.strip() for line in lines[:12] if line.startswith("    ")]
    assert any("chainrule demo" in c for c in commands)
    assert any("pytest" in c for c in commands)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pytest" in ci and "README.md" in ci
