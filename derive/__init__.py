"""Derivations: naive differentiation, error-signal backprop, step records, op counts.

To derive a model (a path, text or :class:`~chainrule.symbolic.Program`) by both routes,
call :func:`chainrule.derivation`.
"""

from __future__ import annotations

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
from .rules import partial

__all__ = [
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
