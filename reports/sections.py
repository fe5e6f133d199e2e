"""Report sections built on the numeric and vectorized parts of chainrule.

Each builder returns ``(section, "")`` or ``(None, why it is left out)``, so a report
built where a piece is missing (not installed, not applicable) omits that section
cleanly and says why in its notes.
"""

from __future__ import annotations

from typing import Any

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


def run_training(derivation: Derivation, options: dict[str, Any]) -> dict[str, Any]:
    """Train with :mod:`chainrule.numeric.train`; returns its history dict."""
    from ..numeric import train  # type: ignore[attr-defined]

    fn = getattr(train, "train", None)
    if fn is None:
        raise ImportError("chainrule.numeric.train has no train function")
    result = fn(derivation.program, **options)
    history = getattr(result, "history", result)
    if hasattr(history, "as_dict"):
        history = history.as_dict()
    if not isinstance(history, dict):
        raise TypeError("training returned no history")
    return history


def training_section(
    derivation: Derivation, options: ReportOptions
) -> tuple[TrainingSection | None, str]:
    history = options.history
    hyper = dict(options.train or {})
    if history is None:
        try:
            history = run_training(derivation, hyper)
        except ImportError:
            return None, "training: not available in this build (numeric training)"
        except Exception as exc:  # noqa: BLE001
            return None, f"training: the run failed ({exc})"
    from .plots import learning_curves_svg

    epochs = history.get("epochs", [])
    final = {k: _fmt(v) for k, v in (epochs[-1] if epochs else {}).items() if k != "epoch"}
    for k, v in history.items():
        if k not in ("epochs",) and not isinstance(v, (list, dict)):
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
    ), ""


# -------------------------------------------------------- vector agreement
def unit_form_agreement(derivation: Derivation) -> tuple[str, bool | None]:
    """The vector helper's unit-form/vector-form agreement, as a line and pass/fail."""
    try:
        from ..derive import vector
    except ImportError:
        return "", None
    fn = None
    for name in ("unit_form_agreement", "check_unit_form", "unit_form_agrees"):
        fn = getattr(vector, name, None)
        if fn is not None:
            break
    if fn is None:
        return "", None
    try:
        result = fn(derivation.program)
    except Exception as exc:  # noqa: BLE001
        return f"unit form check failed to run: {exc}", False
    ok = bool(getattr(result, "agrees", getattr(result, "passed", result)))
    text = str(getattr(result, "message", "")) or (
        "unit form agrees with the vector form" if ok else "unit form DISAGREES"
    )
    return text, ok
