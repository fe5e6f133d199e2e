"""Model programs: named assignments over SymPy expressions, shapes, and parsing."""

from .build import load_program, parse_program
from .errors import BudgetExceeded, ChainruleError, LimitError, ModelError, SourceSpan
from .expand import expand_derivatives, expand_fully
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
    "expand_derivatives",
    "expand_fully",
    "load_program",
    "parse_program",
    "program_from_expr",
]
