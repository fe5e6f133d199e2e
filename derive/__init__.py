"""Derivations: naive differentiation, error-signal backprop, step records, op counts.

The module is callable: ``chainrule.derive(model)`` derives a model (a path, text or
:class:`~chainrule.symbolic.Program`) by both routes; see :func:`chainrule.api.derive`.
"""

from __future__ import annotations

import sys
import types

from .backprop import backprop
from .costs import backward_ops, cost_table, forward_ops
from .differentiate import Deadline, differentiate, local_derivative
from .naive import naive
from .opcount import CostRow, OpCount, count_after_cse, count_many, count_ops
from .records import (
    BackpropDerivation,
    BackpropStep,
    Contribution,
    Derivation,
    ErrorSignal,
    NaiveDerivation,
    NaiveGradient,
    RuleStep,
    error_signal,
)
from .rules import LOCAL_RULES, partial

__all__ = [
    "LOCAL_RULES",
    "BackpropDerivation",
    "BackpropStep",
    "Contribution",
    "CostRow",
    "Deadline",
    "Derivation",
    "ErrorSignal",
    "NaiveDerivation",
    "NaiveGradient",
    "OpCount",
    "RuleStep",
    "backprop",
    "backward_ops",
    "cost_table",
    "count_after_cse",
    "count_many",
    "count_ops",
    "differentiate",
    "error_signal",
    "forward_ops",
    "local_derivative",
    "naive",
    "partial",
]


class _CallableModule(types.ModuleType):
    """Lets ``chainrule.derive(model)`` work while ``chainrule.derive.backprop`` stays a
    module attribute (the notebook one-liner of the reports issue)."""

    def __call__(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN204
        from chainrule.api import derive as _derive

        return _derive(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
