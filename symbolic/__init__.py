"""Model programs: named assignments over SymPy expressions, shapes, and parsing."""

from .build import load_program, parse_program
from .errors import BudgetExceeded, ChainruleError, LimitError, ModelError, SourceSpan
from .functions import (
    elu,
    expand_derivatives,
    expand_fully,
    leaky_relu,
    relu,
    sigma,
    sigma_prime,
    softplus,
    step,
)
from .grammar import Limits
from .program import Assignment, Program, ProgramBuilder, Variable, program_from_expr

__all__ = [
    "Assignment",
    "BudgetExceeded",
    "ChainruleError",
    "LimitError",
    "Limits",
    "ModelError",
    "Program",
    "ProgramBuilder",
    "SourceSpan",
    "Variable",
    "elu",
    "expand_derivatives",
    "expand_fully",
    "leaky_relu",
    "load_program",
    "parse_program",
    "program_from_expr",
    "relu",
    "sigma",
    "sigma_prime",
    "softplus",
    "step",
]
