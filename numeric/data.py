"""Data sets for training: XOR, CSV and ``.npz`` files, scikit-learn's bundled sets.

A :class:`Dataset` is a table of named columns plus which of them are the features and
which the target. :func:`model_data` hands the columns to a model's inputs: by default
``x`` (or ``x1 … xn``) takes the features and ``t`` (or ``t1 … tk``) the targets, with
class labels one-hot encoded when the model's target has one entry per class (softmax
outputs). ``--map name=column,…`` on the command line overrides that.

>>> ds = xor()
>>> ds.features.shape, ds.target.tolist()
((4, 2), [0.0, 1.0, 1.0, 0.0])
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..symbolic.errors import ChainruleError

SKLEARN_SETS = ("digits", "iris", "breast_cancer")
TARGET_NAMES = ("t", "target", "label", "labels", "y", "class")
MAX_ROWS = 5_000_000


class DataError(ChainruleError):
    """A data set cannot be read or does not fit the model."""


@dataclass
class Dataset:
    """Named columns (each one value per example) and the default feature/target split."""

    name: str
    columns: dict[str, np.ndarray]
    feature_names: list[str]
    target_names: list[str]
    classes: list[Any] | None = None  # class labels when the target is categorical
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(next(iter(self.columns.values())))

    @property
    def features(self) -> np.ndarray:
        return np.column_stack([self.columns[c] for c in self.feature_names])

    @property
    def target(self) -> np.ndarray:
        cols = [self.columns[c] for c in self.target_names]
        return cols[0] if len(cols) == 1 else np.column_stack(cols)

    def take(self, rows: np.ndarray) -> Dataset:
        return replace(self, columns={k: v[rows] for k, v in self.columns.items()})


def _table(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    feature_names: list[str] | None = None,
    classes: list[Any] | None = None,
    description: str = "",
) -> Dataset:
    X = np.asarray(X, dtype=np.float64)
    names = feature_names or [f"x{j + 1}" for j in range(X.shape[1])]
    cols = {n: X[:, j] for j, n in enumerate(names)}
    cols["target"] = np.asarray(y, dtype=np.float64)
    return Dataset(name, cols, names, ["target"], classes, description)


# ---------------------------------------------------------------- built-ins
def xor() -> Dataset:
    """The four XOR examples (targets 0/1)."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    return _table(
        "xor",
        X,
        np.array([0, 1, 1, 0]),
        classes=[0, 1],
        description="XOR truth table: 4 examples, 2 binary features, 2 classes",
    )


def load_sklearn(name: str) -> Dataset:
    """scikit-learn's bundled digits (pixels scaled to [0, 1]), iris or breast cancer
    (features standardized); these ship with scikit-learn, no download."""
    try:
        from sklearn import datasets
    except ImportError:
        raise DataError(
            f"the '{name}' data set needs scikit-learn: pip install 'chainrule[data]'"
        ) from None
    loader = {
        "digits": datasets.load_digits,
        "iris": datasets.load_iris,
        "breast_cancer": datasets.load_breast_cancer,
    }[name]
    bunch = loader()
    X = np.asarray(bunch.data, dtype=np.float64)
    if name == "digits":
        X = X / 16.0
        note = "8x8 images, pixels scaled to [0, 1]"
    else:
        X = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
        note = "features standardized to mean 0, variance 1"
    feats = [_column_name(str(f)) for f in getattr(bunch, "feature_names", [])] or None
    classes = sorted(np.unique(bunch.target).tolist())
    return _table(
        name,
        X,
        bunch.target,
        feats,
        classes,
        f"scikit-learn {name}: {X.shape[0]} examples, {X.shape[1]} features, "
        f"{len(classes)} classes ({note})",
    )


def _column_name(text: str) -> str:
    return re.sub(r"\W+", "_", text).strip("_") or "col"


# ------------------------------------------------------------------- files
def load_csv(path: str | Path, target: str | None = None) -> Dataset:
    """A CSV file with a header row. The target is ``target`` or the column named
    t/target/label/y/class, else the last; non-numeric columns become class codes."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path}: empty CSV file")
            rows = []
            for k, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataError(f"{path}:{k}: {len(row)} fields, the header has {len(header)}")
                rows.append(row)
                if len(rows) > MAX_ROWS:
                    raise DataError(f"{path}: more than {MAX_ROWS} rows")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if not rows:
        raise DataError(f"{path}: no data rows")
    names = [h.strip() or f"col{j}" for j, h in enumerate(header)]
    columns: dict[str, np.ndarray] = {}
    categories: dict[str, list[str]] = {}
    for j, name in enumerate(names):
        raw = [r[j].strip() for r in rows]
        try:
            columns[name] = np.array([float(v) for v in raw])
        except ValueError:
            cats = sorted(set(raw))
            categories[name] = cats
            columns[name] = np.array([cats.index(v) for v in raw], dtype=float)
    tname = _pick_target(names, target, path)
    classes = categories.get(tname) or _labels_if_integer(columns[tname])
    return Dataset(
        path.stem,
        columns,
        [n for n in names if n != tname],
        [tname],
        classes,
        f"{path.name}: {len(rows)} examples",
    )


def load_npz(path: str | Path, target: str | None = None) -> Dataset:
    """An ``.npz`` archive: 1-D arrays are columns; a 2-D array named X/x/features is
    split into columns ``x1 …``; the target is ``target`` or an array named
    t/target/label/y."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in z.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    columns: dict[str, np.ndarray] = {}
    for k, a in arrays.items():
        if a.ndim == 1:
            columns[k] = a.astype(np.float64)
        elif a.ndim == 2 and k in ("X", "x", "features", "data"):
            for j in range(a.shape[1]):
                columns[f"x{j + 1}"] = a[:, j].astype(np.float64)
        elif a.ndim == 2:
            for j in range(a.shape[1]):
                columns[f"{k}{j + 1}"] = a[:, j].astype(np.float64)
        else:
            raise DataError(f"{path}: array '{k}' has {a.ndim} dimensions (1 or 2 expected)")
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise DataError(f"{path}: arrays have different numbers of rows {sorted(lengths)}")
    names = list(columns)
    tname = _pick_target(names, target, path)
    return Dataset(
        path.stem,
        columns,
        [n for n in names if n != tname],
        [tname],
        _labels_if_integer(columns[tname]),
        f"{path.name}: {lengths.pop()} examples",
    )


def _pick_target(names: list[str], target: str | None, path: Path) -> str:
    if target is not None:
        if target not in names:
            raise DataError(f"{path}: no column '{target}' (columns: {', '.join(names)})")
        return target
    for t in TARGET_NAMES:
        if t in names:
            return t
    return names[-1]


def _labels_if_integer(col: np.ndarray) -> list[Any] | None:
    if np.all(np.isfinite(col)) and np.all(col == np.round(col)) and len(np.unique(col)) <= 100:
        return sorted(int(v) for v in np.unique(col))
    return None


def load_dataset(spec: str, target: str | None = None) -> Dataset:
    """``xor``, ``digits``, ``iris``, ``breast_cancer``, or a ``.csv`` / ``.npz`` path."""
    if spec == "xor":
        return xor()
    if spec in SKLEARN_SETS or spec == "breast-cancer":
        return load_sklearn(spec.replace("-", "_"))
    path = Path(spec)
    if path.suffix.lower() == ".csv":
        return load_csv(path, target)
    if path.suffix.lower() == ".npz":
        return load_npz(path, target)
    raise DataError(
        f"unknown data set '{spec}': use xor, digits, iris, breast_cancer, or a .csv / .npz file"
    )


# ------------------------------------------------------------- split, map
def split(ds: Dataset, fraction: float, seed: int = 0) -> tuple[Dataset, Dataset | None]:
    """(train, validation) with ``fraction`` of the rows held out, shuffled by ``seed``."""
    if not fraction:
        return ds, None
    if not 0 < fraction < 1:
        raise DataError("the validation fraction must be between 0 and 1")
    order = np.random.default_rng(seed).permutation(ds.n)
    k = max(1, int(round(fraction * ds.n)))
    if k >= ds.n:
        raise DataError(f"{ds.n} examples are too few for a validation split")
    return ds.take(order[k:]), ds.take(order[:k])


def parse_map(text: str | None) -> dict[str, list[str]]:
    """``x1=a,x2=b,t=label`` → {input: [columns]}; ``x=f1+f2`` or ``x=f1:f8`` for vectors.

    >>> parse_map("x=a+b,t=label")
    {'x': ['a', 'b'], 't': ['label']}
    """
    out: dict[str, list[str]] = {}
    if not text:
        return out
    for part in text.split(","):
        if not part.strip():
            continue
        name, eq, cols = part.partition("=")
        if not eq or not name.strip() or not cols.strip():
            raise DataError(f"--map entry '{part}' is not name=column")
        out[name.strip()] = [c.strip() for c in cols.split("+")]
    return out


def _resolve_columns(ds: Dataset, specs: list[str]) -> list[str]:
    names = list(ds.columns)
    out: list[str] = []
    for s in specs:
        if s == "features":
            out += ds.feature_names
        elif s == "target":
            out += ds.target_names
        elif s in ds.columns:
            out.append(s)
        elif ":" in s:
            a, _, b = s.partition(":")
            if a not in ds.columns or b not in ds.columns:
                raise DataError(f"no columns '{a}' and '{b}' in {ds.name}")
            i, j = names.index(a), names.index(b)
            out += names[i : j + 1]
        elif s.isdigit() and int(s) < len(ds.feature_names):
            out.append(ds.feature_names[int(s)])
        else:
            raise DataError(
                f"no column '{s}' in {ds.name} (columns: "
                f"{', '.join(names[:12])}{', …' if len(names) > 12 else ''})"
            )
    return out


def target_groups(program: Any) -> list[list[str]]:
    """The model's target inputs: ``t`` (or t/target/label…) alone, or ``t1 … tk``.

    >>> from chainrule.symbolic import parse_program
    >>> target_groups(parse_program("param w\\ninput x, t1, t2\\nL = (w*x - t1)^2 + t2\\n"
    ...                             "loss L"))
    [['t1', 't2']]
    """
    names = [v.name for v in program.inputs]
    minibatch = getattr(program, "batch", None) is not None
    groups = [[n] for n in names if (n in TARGET_NAMES or minibatch and n == "T") and n != "y"]
    numbered = sorted((n for n in names if re.fullmatch(r"t\d+", n)), key=lambda n: int(n[1:]))
    if numbered:
        groups.append(numbered)
    return groups


def drawn_inputs(program: Any) -> dict[str, float]:
    """Inputs that training draws instead of reading data (a dropout mask), by name →
    the probability of a 1; an operation says so in its entry (``drawn_inputs``)."""
    import sympy as sp

    from ..ops import REGISTRY

    out: dict[str, float] = {}
    for a in program.assignments:
        for e in sp.preorder_traversal(a.expr):
            op = REGISTRY.for_node(e)
            draw = op.extra.get("drawn_inputs") if op is not None else None
            if draw is not None:
                out.update(draw(e))
    return out


def feature_group(program: Any) -> list[str]:
    names = [v.name for v in program.inputs]
    if "x" in names:
        return ["x"]
    if getattr(program, "batch", None) is not None and "X" in names:
        return ["X"]  # a minibatch program: X[B, n]
    if "X" in names and len(program["X"].shape) > 1:
        return ["X"]  # an image X[C, H, W]: each example's features, row-major
    return sorted((n for n in names if re.fullmatch(r"x\d+", n)), key=lambda n: int(n[1:]))


def leaf_shape(program: Any, v: Any) -> tuple[int, ...]:
    """A leaf's concrete shape: bound sizes, else the small defaults of the derivation."""
    sizes = dict(getattr(program, "sizes", {}) or {})
    if any(not isinstance(d, int) and d not in sizes for d in v.shape):
        from ..derive.vector import concrete_sizes

        sizes = concrete_sizes(program)
    return tuple(d if isinstance(d, int) else int(sizes[d]) for d in v.shape)


def input_size(program: Any, name: str) -> int:
    """How many numbers one example gives the input (1 for a scalar)."""
    v = program[name]
    return int(np.prod(example_shape(program, v))) if v.shape else 1


def example_shape(program: Any, v: Any) -> tuple[int, ...]:
    """One example's part of an input: its shape, less the batch axis of a minibatch
    program (``X[B, n]`` → ``(n,)``: the rows are the examples)."""
    shape = leaf_shape(program, v)
    if getattr(program, "batch", None) is not None and v.shape and v.shape[0] == program.batch:
        return shape[1:]
    return shape


def one_hot(labels: np.ndarray, classes: list[Any] | None, k: int) -> np.ndarray:
    """Class labels → one-hot rows with ``k`` columns."""
    values = classes if classes is not None else sorted(np.unique(labels).tolist())
    if len(values) > k:
        raise DataError(
            f"the data has {len(values)} classes but the model's target has {k} entries"
        )
    index = {float(v) if not isinstance(v, str) else float(i): i for i, v in enumerate(values)}
    codes = np.array([index.get(float(v), -1) for v in labels])
    if np.any(codes < 0):
        raise DataError("a label is not among the classes")
    return np.eye(k)[codes]


def model_data(
    program: Any, ds: Dataset, mapping: dict[str, list[str]] | None = None
) -> dict[str, np.ndarray]:
    """Arrays for the model's inputs, one row per example (see the module docstring)."""
    mapping = dict(mapping or {})
    unknown = [k for k in mapping if k not in program or program[k].role != "input"]
    if unknown:
        raise DataError(
            f"--map names {', '.join(unknown)}, which the model does not declare as input"
        )
    needed = program.needed_by_loss()
    out: dict[str, np.ndarray] = {}
    targets = [g for g in target_groups(program) if not any(n in mapping for n in g)]
    feats = [n for n in feature_group(program) if n not in mapping]
    for name, specs in mapping.items():
        out[name] = _columns_for(program, ds, name, _resolve_columns(ds, specs))
    if feats in (["x"], ["X"]):
        out[feats[0]] = _columns_for(program, ds, feats[0], ds.feature_names)
    elif feats:
        if len(feats) != len(ds.feature_names):
            raise DataError(
                f"the model has inputs {', '.join(feats)} but {ds.name} has "
                f"{len(ds.feature_names)} features; use --map"
            )
        for n, col in zip(feats, ds.feature_names, strict=True):
            out[n] = ds.columns[col]
    for group in targets:
        if len(group) == 1:
            out[group[0]] = _columns_for(program, ds, group[0], ds.target_names)
        else:
            hot = _targets_as(ds, len(group))
            for j, n in enumerate(group):
                out[n] = hot[:, j]
    drawn = drawn_inputs(program)
    missing = [
        v.name
        for v in program.inputs
        if v.name in needed and v.name not in out and v.name not in drawn
    ]
    if missing:
        raise DataError(
            f"no data for input(s) {', '.join(missing)}: name their columns with --map name=column"
        )
    return out


def _targets_as(ds: Dataset, k: int) -> np.ndarray:
    t = ds.target
    if t.ndim == 2 and t.shape[1] == k:
        return t
    if t.ndim == 1 and k > 1:
        return one_hot(t, ds.classes, k)
    if k == 1:
        return t.reshape(-1, 1)
    raise DataError(f"the target of {ds.name} does not fit {k} model targets")


def _columns_for(program: Any, ds: Dataset, name: str, cols: list[str]) -> np.ndarray:
    size = input_size(program, name)
    arr = np.column_stack([ds.columns[c] for c in cols])
    if arr.shape[1] == size:
        return arr[:, 0] if size == 1 and not program[name].shape else arr
    if arr.shape[1] == 1 and size > 1:
        return one_hot(arr[:, 0], ds.classes if cols == ds.target_names else None, size)
    raise DataError(
        f"input '{name}' takes {size} number(s) per example but "
        f"{len(cols)} column(s) of {ds.name} were given to it; use --map"
    )
