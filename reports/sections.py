"""Report sections built on the numeric and vectorized parts of chainrule.

Each builder returns ``(section, "")`` or ``(None, why it is left out)``, so a report
built where a piece is missing (not installed, not applicable) omits that section
cleanly and says why in its notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..derive.records import Derivation
from .data import CodeSection, ReportOptions, TrainingSection
from .highlight import highlight_python


# ------------------------------------------------------------------- code
def generated_code(derivation: Derivation) -> str:
    """The NumPy module of :mod:`chainrule.numeric.codegen` for this derivation."""
    from ..numeric.codegen import generate

    return generate(derivation).source


def code_section(derivation: Derivation) -> tuple[CodeSection | None, str]:
    if derivation.backprop is None:
        return None, "generated code: left out because the backprop route was not derived"
    try:
        code = generated_code(derivation)
    except ImportError:
        return None, "generated code: not available in this build (numeric code generation)"
    except Exception as exc:  # noqa: BLE001 - a report notes it and goes on
        return None, f"generated code: the generator failed ({exc})"
    return CodeSection("python", code, highlight_python(code)), ""


# --------------------------------------------------------------- training
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


@dataclass
class TrainedRun:
    """A finished training run: its history, the trained parameters and the data set's
    first example (the model's inputs, evaluation-mode masks), for the feature maps."""

    history: dict[str, Any]
    params: dict[str, Any]
    example: dict[str, Any]
    data: str  # the data set as given (digits, a file)
    label: str = ""  # the first example's target ("0" for the first digit)


def train_run(derivation: Derivation, options: dict[str, Any]) -> TrainedRun:
    """Train with :mod:`chainrule.numeric.train`; ``options`` has ``data`` (xor, digits,
    iris, a file), optional ``map``/``target`` and any :class:`TrainConfig` field."""
    from ..numeric.data import load_dataset, parse_map
    from ..numeric.train import TrainConfig, train

    opts = dict(options)
    data = opts.pop("data", None)
    if data is None:
        raise ValueError("a training run needs a data set (data=xor|digits|iris|FILE)")
    mapping = parse_map(opts.pop("map", None))
    dataset = load_dataset(data, target=opts.pop("target", None))
    config = TrainConfig(**{k: v for k, v in opts.items() if v is not None})
    config.check()
    result = train(derivation, dataset, config, mapping)
    history = dict(result.history)
    history.setdefault("data", getattr(dataset, "description", str(data)))
    example, label = first_example(derivation.program, dataset, mapping)
    return TrainedRun(history, dict(result.params), example, str(data), label)


def first_example(program: Any, dataset: Any, mapping: Any) -> tuple[dict[str, Any], str]:
    """The data set's first example as the model's inputs in their declared shapes (the
    digits' 64 columns as [1, 8, 8]; masks in evaluation mode) and its target; ({}, "")
    where that is not one example's worth (a whole-minibatch program) or fails."""
    from ..numeric.data import example_shape, model_data
    from ..numeric.train import with_drawn_inputs

    if getattr(program, "batch", None) is not None:
        return {}, ""
    try:
        rows = model_data(program, dataset, mapping)
        first = with_drawn_inputs(program, {k: v[:1] for k, v in rows.items()})
        example = {
            k: np.reshape(np.asarray(v)[0], example_shape(program, program[k]))
            for k, v in first.items()
        }
        target = np.asarray(dataset.target)
    except Exception:  # noqa: BLE001 - the pictures fall back to the check point
        return {}, ""
    return example, _label(target[0]) if target.ndim == 1 and len(target) else ""


def _label(value: Any) -> str:
    """A target as a person writes it: 0.0 as 0, 0.25 as 0.25, a class name as is."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(v)) if v.is_integer() else f"{v:g}"


def run_training(derivation: Derivation, options: dict[str, Any]) -> dict[str, Any]:
    """The history of :func:`train_run`."""
    return train_run(derivation, options).history


def try_training(derivation: Derivation, options: ReportOptions) -> tuple[TrainedRun | None, str]:
    """The report's training run, or (None, why it failed)."""
    try:
        return train_run(derivation, dict(options.train or {})), ""
    except ImportError:
        return None, "training: not available in this build (numeric training)"
    except Exception as exc:  # noqa: BLE001
        return None, f"training: the run failed ({exc})"


def training_section(
    derivation: Derivation, options: ReportOptions, run: TrainedRun | None = None
) -> tuple[TrainingSection | None, str]:
    """The training section of ``options.history``, of ``run``, or of a run made here."""
    history = options.history
    if history is None and run is not None:
        history = run.history
    hyper = dict(options.train or {})
    if history is None:
        run, why = try_training(derivation, options)
        if run is None:
            return None, why
        history = run.history
    from .plots import learning_curves_latex, learning_curves_svg

    if isinstance(history.get("config"), dict):
        for k, v in history["config"].items():
            hyper.setdefault(k, v)
    hyper.pop("data", None)
    if history.get("data"):
        hyper = {"data": history["data"], **hyper}
    epochs = history.get("epochs", [])
    final = {k: _fmt(v) for k, v in (epochs[-1] if epochs else {}).items() if k != "epoch"}
    for k, v in history.items():
        if k not in ("epochs", "data", "model") and not isinstance(v, (list, dict)):
            hyper.setdefault(k, v)
    seed = str(hyper.pop("seed", history.get("seed", "")))
    keys = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    pick = epochs if len(epochs) <= 8 else epochs[:3] + epochs[-3:]
    rows = [{k: _fmt(e.get(k, "")) for k in keys} for e in pick]
    return TrainingSection(
        learning_curves_svg(history),
        final,
        {k: _fmt(v) for k, v in hyper.items()},
        seed,
        len(epochs),
        rows,
        curves_tex=learning_curves_latex(history),
    ), ""


# -------------------------------------------------------- vector agreement
#: Above this many parameter entries the unit-form expansion takes minutes; skipped.
AGREEMENT_ENTRY_LIMIT = 400


def _entries(program: Any) -> int:
    total = 0
    for p in program.params:
        n = 1
        for d in p.shape:
            n *= int(program.sizes.get(d, 3)) if isinstance(d, str) else int(d)
        total += n
    return total


def unit_form_agreement(derivation: Derivation) -> tuple[str, bool | None]:
    """The unit-form/vector-form agreement line and pass/fail (numeric helper's check)."""
    try:
        from ..numeric.agreement import unit_form_agreement as agreement
    except ImportError:
        return "", None
    program = derivation.program
    entries = _entries(program)
    if entries > AGREEMENT_ENTRY_LIMIT:
        return (
            f"not run: {entries} parameter entries make the unit form too large "
            f"(limit {AGREEMENT_ENTRY_LIMIT}); try the model with smaller sizes",
            None,
        )
    try:
        result = agreement(program, derivation.backprop)
    except Exception as exc:  # noqa: BLE001 - a report notes it and goes on
        return f"unit form check failed to run: {exc}", False
    return result.line(), bool(result.ok)
