"""Array-API forms of the functions generated code calls: ONE table, one entry per function.

Every helper is written against the Python array API standard: it looks up the array
library of its argument (``array_namespace(z)``: NumPy, CuPy, PyTorch, JAX,
``array-api-strict``) and computes in the argument's dtype, so float32 in gives float32
out. The ``stable`` forms never overflow in any floating dtype:

* ``sigma`` is computed from ``e^-|z|`` (≤ 1), on both sides of 0;
* ``softplus`` is ``max(z, 0) + log1p(e^-|z|)``;
* ``softmax`` / ``log_softmax`` subtract the column maximum first (log-sum-exp).

``analytic`` forms are holomorphic (the plain formulas), for complex-step checks.

This table is the part the operator registry (``ops/``) will absorb: a new function's
generated form belongs here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArrayForm:
    """The generated source of one helper: its stable form, its analytic form (if it
    differs) and the helpers it calls."""

    stable: str
    analytic: str = ""
    needs: tuple[str, ...] = ()


ARRAY_FORMS: dict[str, ArrayForm] = {
    "sigma": ArrayForm(
        stable='''def sigma(z):
    """Logistic sigmoid 1/(1 + e^-z), from e^-|z| <= 1: no overflow in any dtype."""
    xp = array_namespace(z)
    e = xp.exp(-xp.abs(z))
    s = 1 / (1 + e)
    return xp.where(z >= 0, s, e * s)
''',
        analytic="""def sigma(z):
    xp = array_namespace(z)
    return 1 / (1 + xp.exp(-z))
""",
    ),
    "sigma_prime": ArrayForm(
        stable='''def sigma_prime(z):
    """σ'(z) = σ(z)(1 - σ(z))."""
    s = sigma(z)
    return s * (1 - s)
''',
        needs=("sigma",),
    ),
    "softplus": ArrayForm(
        stable='''def softplus(z):
    """log(1 + e^z) = max(z, 0) + log(1 + e^-|z|): no overflow in any dtype."""
    xp = array_namespace(z)
    return xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))
''',
        analytic="""def softplus(z):
    xp = array_namespace(z)
    return xp.log(1 + xp.exp(z))
""",
    ),
    "relu": ArrayForm(
        stable="""def relu(z):
    xp = array_namespace(z)
    return xp.maximum(z, 0.0)
"""
    ),
    "step": ArrayForm(
        stable='''def step(z):
    """Hard threshold; step(0) = 0, the convention relu'(0) = 0."""
    xp = array_namespace(z)
    return xp.astype(z > 0, z.dtype)
'''
    ),
    "leaky_relu": ArrayForm(
        stable="""def leaky_relu(z, a):
    xp = array_namespace(z)
    return xp.where(z > 0, z, a * z)
"""
    ),
    "elu": ArrayForm(
        stable="""def elu(z, a):
    xp = array_namespace(z)
    return xp.where(z > 0, z, a * xp.expm1(xp.minimum(z, 0.0)))
"""
    ),
    "leaky_relu_prime": ArrayForm(
        stable="""def leaky_relu_prime(z, a):
    xp = array_namespace(z)
    return xp.where(z > 0, 1.0, a * xp.ones_like(z))
"""
    ),
    "elu_prime": ArrayForm(
        stable="""def elu_prime(z, a):
    xp = array_namespace(z)
    return xp.where(z > 0, 1.0, a * xp.exp(xp.minimum(z, 0.0)))
"""
    ),
    "softmax": ArrayForm(
        stable='''def softmax(z):
    """Softmax of each column, stable (the column max is subtracted first)."""
    xp = array_namespace(z)
    e = xp.exp(z - xp.max(z, axis=0, keepdims=True))
    return e / xp.sum(e, axis=0, keepdims=True)
''',
        analytic="""def softmax(z):
    xp = array_namespace(z)
    e = xp.exp(z)
    return e / xp.sum(e, axis=0, keepdims=True)
""",
    ),
    "log_softmax": ArrayForm(
        stable='''def log_softmax(z):
    """log softmax of each column by log-sum-exp (no overflow, no log 0)."""
    xp = array_namespace(z)
    m = z - xp.max(z, axis=0, keepdims=True)
    return m - xp.log(xp.sum(xp.exp(m), axis=0, keepdims=True))
''',
        analytic="""def log_softmax(z):
    xp = array_namespace(z)
    return z - xp.log(xp.sum(xp.exp(z), axis=0, keepdims=True))
""",
    ),
}

#: The module-level helper every generated function starts with.
NAMESPACE_AND_DTYPE = '''def namespace_and_dtype(*groups):
    """The inputs' array library (NumPy for plain numbers and lists) and the type to
    compute in: the result type of the floating-point inputs (float64 if none)."""
    arrays = [v for group in groups for v in group.values() if hasattr(v, "dtype")]
    numpy_only = all(isinstance(a, (np.ndarray, np.generic)) for a in arrays)
    if numpy_only and hasattr(np, "isdtype"):
        xp = np  # NumPy 2 is itself an array-API namespace
    else:
        xp = array_namespace(*(arrays or [np.zeros(0)]))
    kinds = ("real floating", "complex floating")
    floats = [d for d in {a.dtype for a in arrays} if xp.isdtype(d, kinds)]
    return xp, (xp.result_type(*floats) if floats else xp.float64)
'''


def helper_source(name: str, analytic: bool = False) -> str:
    """The generated source of one helper (``analytic``: the holomorphic form)."""
    form = ARRAY_FORMS[name]
    return form.analytic if analytic and form.analytic else form.stable


def with_needs(names: set[str]) -> set[str]:
    """The helpers ``names`` call, themselves included."""
    out = set(names)
    for name in names:
        out |= set(ARRAY_FORMS[name].needs)
    return out
