"""Train a derived model with its generated NumPy gradient.

Gradient descent (``batch`` ≥ the data size) or minibatch SGD, optional momentum and
L2 weight decay, a learning-rate schedule and early stopping on a validation split
(the lectures' practice: keep the parameters of the best validation epoch).

Initialization is seeded: weight matrices Xavier-style (Gaussian with variance
2/(fan_in + fan_out)), scalars and vectors small Gaussians. Never all zeros: if every
weight starts equal, every hidden unit of a layer computes the same value and gets
the same error signal, hence the same update — the units stay identical forever and
the layer is no wider than one unit (and with zero weights and sigmoid/tanh units the
hidden error signals ``h̄ = Wᵀ ȳ`` are exactly zero, so nothing before the last layer
learns at all). Random weights break that symmetry.

>>> import chainrule
>>> from chainrule.numeric.data import xor
>>> r = train("xor", xor(), TrainConfig(epochs=5, lr=0.5, batch=4, seed=0))
>>> len(r.history["epochs"]), sorted(r.params)[:2]
(5, ['b1', 'b2'])
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..symbolic.errors import ChainruleError
from ..symbolic.program import Assignment, Program
from .data import Dataset, drawn_inputs, example_shape, model_data, split, target_groups

SCHEDULES = ("constant", "step", "exp", "inverse")


class TrainingDiverged(ChainruleError):
    """The loss or a gradient became NaN or infinite."""


@dataclass
class TrainConfig:
    """Settings of one training run (the ``chainrule train`` flags)."""

    epochs: int = 50
    lr: float = 0.1
    batch: int = 32
    seed: int = 0
    momentum: float = 0.0
    weight_decay: float = 0.0  # L2: adds weight_decay * p to each gradient
    schedule: str = "constant"  # constant | step | exp | inverse
    lr_decay: float = 0.5  # factor (step, exp) or rate (inverse)
    decay_every: int = 10  # epochs between step decays
    val_split: float = 0.0  # fraction held out for validation
    patience: int | None = None  # early stopping: epochs without val improvement
    dtype: str = "float64"
    init_scale: float = 1.0  # std of scalar/vector parameters
    reduction: str = "mean"
    init: str = "auto"  # auto | he | xavier | normal | zeros (see init_params)

    def check(self) -> None:
        if self.epochs < 1 or self.batch < 1:
            raise ChainruleError("--epochs and --batch must be at least 1")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise ChainruleError("--lr must be a positive number")
        if not 0 <= self.momentum < 1:
            raise ChainruleError("--momentum must be in [0, 1)")
        if self.weight_decay < 0:
            raise ChainruleError("--weight-decay must be non-negative")
        if self.schedule not in SCHEDULES:
            raise ChainruleError(f"--schedule must be one of {', '.join(SCHEDULES)}")
        if self.patience is not None and self.patience < 1:
            raise ChainruleError("--patience must be at least 1")
        if self.init not in INITS:
            raise ChainruleError(f"--init must be one of {', '.join(INITS)}")

    def lr_at(self, epoch: int) -> float:
        """The learning rate of a 1-based epoch."""
        k = epoch - 1
        if self.schedule == "step":
            return self.lr * self.lr_decay ** (k // max(self.decay_every, 1))
        if self.schedule == "exp":
            return self.lr * self.lr_decay**k
        if self.schedule == "inverse":
            return self.lr / (1 + self.lr_decay * k)
        return self.lr


@dataclass
class TrainResult:
    params: dict[str, np.ndarray]
    history: dict[str, Any]
    stopped: str = "completed"
    best_epoch: int | None = None
    seconds: float = 0.0


# ------------------------------------------------------------------ init
#: The initializations ``--init`` offers.
INITS = ("auto", "he", "xavier", "normal", "zeros")

ZEROS_WARNING = (
    "warning: --init zeros makes every hidden unit of a layer compute the same value and "
    "receive the same error signal, so the units stay identical however long you train "
    "(the symmetry is never broken; jhu-601-471). Use --init auto (random, scaled by fan-in)."
)


def fan_in(program: Program, name: str) -> int | None:
    """How many inputs each output of the layer reading parameter ``name`` sums over:
    n for ``W[m, n]`` in ``W @ x``, the kernel size (C·kh·kw) for a conv kernel
    (an entry says so with ``extra["fan_in"]``); None when no layer reads it."""
    import sympy as sp

    from ..ops import REGISTRY
    from .data import leaf_shape

    v = program[name]
    for a in program.assignments:
        for e in sp.preorder_traversal(a.expr):
            op = REGISTRY.for_node(e)
            rule = op.extra.get("fan_in") if op is not None else None
            if rule is not None and v.symbol in getattr(e, "operands", e.args):
                n = rule(e, v.symbol)
                if n is not None:
                    shape = leaf_shape(program, v)
                    return int(np.prod(shape)) if n == "all" else int(n)
    shape = leaf_shape(program, v)
    return shape[1] if len(shape) == 2 else None


def init_params(
    program: Program,
    seed: int = 0,
    scale: float = 1.0,
    dtype: str = "float64",
    init: str = "auto",
) -> dict[str, np.ndarray]:
    """Seeded random parameters by layer kind.

    ``auto``: Xavier for weight matrices (std √(2/(fan_in + fan_out))), √(1/fan_in) for
    conv kernels (fan-in C·kh·kw), N(0, (0.1·scale)²) for vectors, N(0, scale²) for
    scalars; ``he``: std √(2/fan_in) for weights and kernels (relu layers); ``xavier``:
    √(1/fan_in); ``normal``: N(0, scale²) everywhere; ``zeros``: all 0 (see
    :data:`ZEROS_WARNING`).
    """
    from .data import leaf_shape

    rng = np.random.default_rng(seed)
    out = {}
    for v in program.params:
        shape = leaf_shape(program, v)
        k = fan_in(program, v.name)
        if init == "zeros":
            std = 0.0
        elif init == "normal":
            std = scale
        elif init in ("he", "xavier") and k:
            std = math.sqrt((2.0 if init == "he" else 1.0) / k)
        elif len(shape) == 2 and min(shape) > 1:
            std = math.sqrt(2.0 / (shape[0] + shape[1]))
        elif k and len(shape) >= 1:  # a conv kernel read by a layer with a fan-in
            std = math.sqrt(1.0 / k)
        elif len(shape) >= 1:
            std = 0.1 * scale
        else:
            std = scale
        out[v.name] = np.asarray(std * rng.standard_normal(shape), dtype=dtype)
    return out


# -------------------------------------------------------------- accuracy
def output_nodes(program: Program) -> list[str]:
    """The nodes compared with the targets: those the first target-reading line uses."""
    targets = {program.symbol(n) for g in target_groups(program) for n in g}
    for a in program.assignments:
        used = a.expr.free_symbols
        if used & targets:
            items = [program.item_of(s) for s in used]
            names = {i.name for i in items if isinstance(i, Assignment)}
            return [b.name for b in program.assignments if b.name in names]
    return []


def accuracy(program: Program, values: Mapping[str, Any], data: Mapping[str, Any]) -> float | None:
    """Fraction of examples classified right, or None for a regression target."""
    outs = output_nodes(program)
    groups = target_groups(program)
    if not outs or not groups:
        return None
    t = _stack([data[n] for n in groups[0]])
    y = _stack([values[n] for n in outs])
    if t.shape[0] != y.shape[0] or not np.all(np.isfinite(t)) or np.any(t != np.round(t)):
        return None
    if t.shape[1] > 1 and y.shape[1] == t.shape[1]:
        return float(np.mean(np.argmax(y, axis=1) == np.argmax(t, axis=1)))
    if t.shape[1] == 1 and y.shape[1] == 1:
        levels = set(np.unique(t).tolist())
        cut = 0.0 if levels <= {-1.0, 1.0} and -1.0 in levels else 0.5
        pred = np.where(y[:, 0] > cut, max(levels), min(levels))
        return float(np.mean(pred == t[:, 0]))
    return None


def _stack(cols: list[Any]) -> np.ndarray:
    arrs = [np.asarray(c, dtype=np.float64) for c in cols]
    if len(arrs) == 1:
        a = arrs[0]
        return a.reshape(len(a), -1) if a.ndim else a.reshape(1, 1)
    return np.column_stack([a.reshape(-1) for a in arrs])


# ------------------------------------------------------------------ loop
def evaluate(
    code: Any,
    program: Program,
    params: Mapping[str, Any],
    data: Mapping[str, Any],
    reduction: str = "mean",
) -> tuple[float, float | None]:
    """(loss, accuracy) on a whole data set."""
    values = code.forward(params, with_drawn_inputs(program, data))
    loss_vals = np.asarray(values[program.loss], dtype=np.float64)
    n = _rows(data)
    loss = float(np.sum(loss_vals)) if loss_vals.size == n else float(loss_vals.sum()) * n
    if reduction == "mean":
        loss /= n
    return loss, accuracy(program, values, data)


def with_drawn_inputs(
    program: Program, data: Mapping[str, Any], rng: np.random.Generator | None = None
) -> dict[str, Any]:
    """``data`` plus the inputs training draws (dropout masks): with ``rng``, a fresh
    0/1 mask per example (1 with probability keep = 1 − p); without, evaluation mode:
    the constant keep, so that h ∘ m / (1 − p) is h itself."""
    drawn = drawn_inputs(program)
    if not drawn:
        return dict(data)
    out = {k: v for k, v in data.items() if k not in drawn}
    n = _rows(out)
    for name, keep in drawn.items():
        shape = (n, *example_shape(program, program[name]))
        out[name] = (rng.random(shape) < keep).astype(float) if rng else np.full(shape, keep)
    return out


def _rows(data: Mapping[str, Any]) -> int:
    return len(next(iter(data.values()))) if data else 1


def _take(data: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[rows] for k, v in data.items()}


def _check_finite(loss: float, grads: Mapping[str, Any], epoch: int, batch: int, lr: float) -> None:
    bad = None
    if not math.isfinite(loss):
        bad = f"the loss became {loss}"
    else:
        for k, g in grads.items():
            if not np.all(np.isfinite(g)):
                bad = f"the gradient of '{k}' became non-finite"
                break
    if bad:
        raise TrainingDiverged(
            f"training stopped at epoch {epoch}, batch {batch}: {bad} "
            f"(learning rate {lr:g} too large? try a smaller --lr)"
        )


def train(
    model: Any,
    dataset: Dataset | Mapping[str, np.ndarray],
    config: TrainConfig | None = None,
    mapping: dict[str, list[str]] | None = None,
    params: Mapping[str, Any] | None = None,
    progress: Callable[..., None] | None = None,
) -> TrainResult:
    """Train ``model`` on a :class:`Dataset` (or a dict of input arrays).

    ``progress(epoch, record)`` is called after every epoch. Raises
    :class:`TrainingDiverged` on NaN/inf; its ``partial`` attribute holds the result so
    far.
    """
    from .codegen import _derivation, compiled

    config = config or TrainConfig()
    config.check()
    derivation = _derivation(model)
    program = derivation.program
    code = compiled(derivation, reduction=config.reduction)  # computes in its inputs' dtype
    train_raw, val_raw = _datasets(program, dataset, config, mapping)
    train_data = _in_dtype(train_raw, config.dtype)
    val_data = _in_dtype(val_raw, config.dtype) if val_raw is not None else None
    p = {
        k: np.array(v, dtype=config.dtype)
        for k, v in (
            params
            or init_params(program, config.seed, config.init_scale, config.dtype, config.init)
        ).items()
    }
    velocity = {k: np.zeros_like(v) for k, v in p.items()}
    history: dict[str, Any] = {
        "epochs": [],
        "config": asdict(config),
        "model": program.title or program.filename,
    }
    rng = np.random.default_rng(config.seed + 1)
    n = _rows(train_data)
    best: tuple[float, int, dict[str, np.ndarray]] | None = None
    start = time.perf_counter()
    result = TrainResult(p, history)
    for epoch in range(1, config.epochs + 1):
        lr = config.lr_at(epoch)
        t0 = time.perf_counter()
        order = rng.permutation(n)
        try:
            for b, lo in enumerate(range(0, n, config.batch), start=1):
                batch = _take(train_data, order[lo : lo + config.batch]) if train_data else {}
                batch = with_drawn_inputs(program, batch, rng)  # fresh dropout masks
                with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                    loss, grads = code.function(p, batch, config.reduction)
                _check_finite(float(loss), grads, epoch, b, lr)
                _update(p, velocity, grads, lr, config)
        except TrainingDiverged as exc:
            result.stopped = "diverged"
            exc.partial = result  # type: ignore[attr-defined]
            raise
        record = _epoch_record(
            code, program, p, train_data, val_data, epoch, lr, config, time.perf_counter() - t0
        )
        history["epochs"].append(record)
        if progress is not None:
            progress(epoch, record)
        if not math.isfinite(record["loss"]):
            result.stopped = "diverged"
            exc2 = TrainingDiverged(
                f"training stopped at epoch {epoch}: the loss became "
                f"{record['loss']} (try a smaller --lr)"
            )
            exc2.partial = result  # type: ignore[attr-defined]
            raise exc2
        if val_data is not None:
            vl = record["val_loss"]
            if best is None or vl < best[0]:
                best = (vl, epoch, {k: v.copy() for k, v in p.items()})
            elif config.patience is not None and epoch - best[1] >= config.patience:
                result.stopped = (
                    f"early stopping: no validation improvement for {config.patience} epochs"
                )
                break
    if best is not None and config.patience is not None:
        result.params = best[2]
        result.best_epoch = best[1]
    result.seconds = time.perf_counter() - start
    history["stopped"] = result.stopped
    history["best_epoch"] = result.best_epoch
    history["seconds"] = result.seconds
    return result


def _datasets(
    program: Program,
    dataset: Dataset | Mapping[str, np.ndarray],
    config: TrainConfig,
    mapping: dict[str, list[str]] | None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    if isinstance(dataset, Dataset):
        tr, va = split(dataset, config.val_split, config.seed)
        return model_data(program, tr, mapping), (
            model_data(program, va, mapping) if va is not None else None
        )
    data = {k: np.asarray(v) for k, v in dataset.items()}
    if config.val_split:
        n = _rows(data)
        order = np.random.default_rng(config.seed).permutation(n)
        k = max(1, int(round(config.val_split * n)))
        return _take(data, order[k:]), _take(data, order[:k])
    return data, None


def _in_dtype(data: dict[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    """Floating-point data in the training dtype, once (integer labels stay integers)."""
    return {
        k: v.astype(dtype) if np.issubdtype(v.dtype, np.floating) else v for k, v in data.items()
    }


def _update(
    p: dict[str, np.ndarray],
    velocity: dict[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    lr: float,
    config: TrainConfig,
) -> None:
    for k, g in grads.items():
        if config.weight_decay:
            g = g + config.weight_decay * p[k]
        if config.momentum:
            v = velocity[k]
            v *= config.momentum
            v -= lr * g
            p[k] += v
        else:
            p[k] -= lr * g


def _epoch_record(
    code: Any,
    program: Program,
    p: Mapping[str, np.ndarray],
    train_data: Mapping[str, np.ndarray],
    val_data: Mapping[str, np.ndarray] | None,
    epoch: int,
    lr: float,
    config: TrainConfig,
    seconds: float,
) -> dict[str, Any]:
    loss, acc = evaluate(code, program, p, train_data, config.reduction)
    record: dict[str, Any] = {"epoch": epoch, "loss": loss, "accuracy": acc}
    if val_data is not None:
        vl, va = evaluate(code, program, p, val_data, config.reduction)
        record.update(val_loss=vl, val_accuracy=va)
    record.update(lr=lr, seconds=seconds)
    return record


# ----------------------------------------------------------------- output
def write_history(history: Mapping[str, Any], path: str) -> None:
    """JSON (``{"epochs": […]}``) or CSV (one row per epoch) by the file's suffix."""
    import csv
    import json

    if path.lower().endswith(".csv"):
        rows = history["epochs"]
        keys = list(rows[0]) if rows else ["epoch", "loss", "accuracy"]
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            for r in rows:
                w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in keys})
        return
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(_jsonable(history), fh, indent=2)
        fh.write("\n")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    return obj


def save_params(params: Mapping[str, np.ndarray], path: str) -> None:
    """``.npz`` with one array per parameter name."""
    arrays: dict[str, Any] = {k: np.asarray(v) for k, v in params.items()}
    np.savez(path, **arrays)
