"""The house: no import circles, and every operation known in one place only."""

from __future__ import annotations

import ast
from pathlib import Path

import chainrule

ROOT = Path(__file__).resolve().parents[1]
PARTS = {
    "chainrule": ROOT / "chainrule",
    "chainrule.ops": ROOT / "ops",
    "chainrule.symbolic": ROOT / "symbolic",
    "chainrule.derive": ROOT / "derive",
    "chainrule.numeric": ROOT / "numeric",
    "chainrule.reports": ROOT / "reports",
    "chainrule.homework": ROOT / "homework",
}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package, folder in PARTS.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every chainrule module ``name`` imports, at the top or inside a function."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        found.update(c for c in candidates if c in modules and c != name)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circles_between_modules() -> None:
    modules = _modules()
    # a module importing a sibling through its package (``from . import grammar``) does
    # not depend on the package's ``__init__``
    graph = {
        m: {i for i in _imports(m, p, modules) if not m.startswith(i + ".")}
        for m, p in modules.items()
    }
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_swaps_its_class() -> None:
    for path in _modules().values():
        assert "__class__ =" not in path.read_text(encoding="utf-8"), path
    assert callable(chainrule.derivation)


# ------------------------------------------------------- one place per operation
#: Operation names that are also ordinary words elsewhere (reduction modes "sum"/"mean",
#: learning-rate schedules "step"/"exp", LaTeX's \sum, \dot and \sqrt, NumPy's names).
#: They are checked through node classes and printer methods instead of strings.
GENERIC = {
    "sum",
    "mean",
    "step",
    "exp",
    "log",
    "max",
    "min",
    "abs",
    "sign",
    "dot",
    "sqrt",
    "add",
    "diag",
    "transpose",
    "matmul",
    "elementwise",
    "broadcast",
    "H",
}


def _checked_names() -> tuple[set[str], set[str]]:
    """(spellings of every registered operation, node classes chainrule defines)."""
    from chainrule.ops import REGISTRY

    spellings: set[str] = set()
    classes: set[str] = set()
    for op in REGISTRY:
        spellings.update({op.name, *op.spellings, *op.answer_spellings, *op.latex_commands})
        node = op.node
        if isinstance(node, type) and node.__module__.startswith("chainrule.ops"):
            if op.in_language or op.kind == "scalar":
                classes.add(node.__name__)
    return spellings - GENERIC, classes - GENERIC


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def operation_listings(source: str, spellings: set[str], classes: set[str]) -> list[str]:
    """Places where a module lists operations: a name in a table or comparison, a
    function or printer method named after one, a reference to one's node class."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    found: list[str] = []

    def constant(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            return node.value
        return None

    for node in ast.walk(tree):
        items: list[ast.AST] = []
        if isinstance(node, ast.Dict):
            items = [k for k in node.keys if k is not None]
        elif isinstance(node, (ast.Set, ast.List, ast.Tuple)):
            items = list(node.elts)
        elif isinstance(node, ast.Compare):
            items = [node.left, *node.comparators]
        for item in items:
            text = constant(item)
            if text in spellings:
                found.append(f"line {item.lineno}: {text!r} listed")
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bare = node.name.removeprefix("_print_")
            if bare in classes or (node.name.startswith("_print_") and bare in spellings):
                found.append(f"line {node.lineno}: {node.name} defined")
        if isinstance(node, ast.ImportFrom):
            for a in node.names:
                if a.name in classes:
                    found.append(f"line {node.lineno}: imports {a.name}")
        if isinstance(node, ast.Attribute) and node.attr in classes:
            found.append(f"line {node.lineno}: uses .{node.attr}")
    return found


def test_the_listing_finder_finds_listings() -> None:
    src = 'T = {"softmax": 1}\nif f in ("relu", "x"): pass\ndef _print_Softmax(): pass\nM.Softmax\n'
    assert len(operation_listings(src, {"softmax", "relu"}, {"Softmax"})) == 4
    assert operation_listings('"""softmax"""\nx = "softmax is nice"\n', {"softmax"}, set()) == []


def test_no_module_outside_the_registry_lists_operations() -> None:
    spellings, classes = _checked_names()
    assert {"sigma", "softmax", "relu", "tanh"} <= spellings and "Softmax" in classes
    problems = {}
    for name, path in _modules().items():
        if name.startswith("chainrule.ops"):
            continue
        found = operation_listings(path.read_text(encoding="utf-8"), spellings, classes)
        if found:
            problems[name] = found
    assert problems == {}
