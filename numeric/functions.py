"""NumPy implementations of the activation functions, numerically safe.

``sigma`` never overflows (``exp`` of a non-positive number only), ``softplus`` uses
``logaddexp``. These are the functions generated code and evaluators call by name.
"""

from __future__ import annotations

import numpy as np


def sigma(z):  # noqa: ANN001, ANN201 - works on scalars and arrays alike
    """Logistic sigmoid 1/(1 + e^-z): for z far below 0, e^-z overflows to inf and
    1/(1 + inf) is exactly the limit 0, so only the overflow warning is muted."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-np.asarray(z)))


def sigma_prime(z):  # noqa: ANN001, ANN201
    s = sigma(z)
    return s * (1.0 - s)


def relu(z):  # noqa: ANN001, ANN201
    return np.maximum(z, 0.0)


def step(z):  # noqa: ANN001, ANN201
    """Hard threshold with step(0) = 0 (the convention relu'(0) = 0)."""
    return (np.asarray(z) > 0).astype(
        np.result_type(z, np.float64) if not np.iscomplexobj(z) else np.float64
    )


def softplus(z):  # noqa: ANN001, ANN201
    return np.logaddexp(0.0, z)


def leaky_relu(z, a):  # noqa: ANN001, ANN201
    return np.where(np.asarray(z) > 0, z, a * np.asarray(z))


def elu(z, a):  # noqa: ANN001, ANN201
    z = np.asarray(z)
    return np.where(z > 0, z, a * np.expm1(np.minimum(z, 0.0)))


def leaky_relu_prime(z, a):  # noqa: ANN001, ANN201
    return np.where(np.asarray(z) > 0, 1.0, a * np.ones_like(np.asarray(z, dtype=float)))


def elu_prime(z, a):  # noqa: ANN001, ANN201
    """1 for z > 0, else a·e^z; e^z is taken of min(z, 0) only, so it never overflows."""
    z = np.asarray(z)
    return np.where(z > 0, 1.0, a * np.exp(np.minimum(z, 0.0)))


def sign(z):  # noqa: ANN001, ANN201
    return np.sign(z)


#: Name → implementation, for evaluators and ``lambdify`` namespaces.
NUMPY_FUNCTIONS = {
    "sigma": sigma,
    "sigma_prime": sigma_prime,
    "relu": relu,
    "step": step,
    "softplus": softplus,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "leaky_relu_prime": leaky_relu_prime,
    "elu_prime": elu_prime,
}
