"""Transitional re-exports (being removed): tensor operations live in :mod:`chainrule.ops`."""

from ..ops.algebra import (  # noqa: F401
    U,
    Verbatim,
    is_matrix,
    mat_add,
    mat_mul,
    scale,
    scale_of_ones,
    split_scalar,
)
from ..ops.tensor import (  # noqa: F401
    Broadcast,
    ColumnwiseOp,
    Diag,
    Dot,
    Elementwise,
    LogSoftmax,
    MatSum,
    Mean,
    Norm2,
    Reduction,
    Softmax,
    SumCols,
    SumRows,
    elementwise,
)

_Reduction = Reduction
_ColumnwiseOp = ColumnwiseOp
MATRIX_OPS = (
    Elementwise,
    MatSum,
    Mean,
    Dot,
    Norm2,
    Softmax,
    LogSoftmax,
    SumCols,
    SumRows,
    Diag,
    Broadcast,
)
