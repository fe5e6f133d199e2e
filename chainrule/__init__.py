"""chainrule: derive neural-network gradients symbolically and show the work.

>>> import chainrule
>>> d = chainrule.derivation("param w\\ninput x, t\\ny = w*x\\nL = (y - t)^2/2\\nloss L")
>>> d.backprop.gradient("w")
y_bar*x
"""

__version__ = "0.2.0"

from .api import derivation, gradient_at, load, parse  # noqa: E402
from .ops import primitive  # noqa: E402

__all__ = ["__version__", "derivation", "gradient_at", "load", "parse", "primitive"]
