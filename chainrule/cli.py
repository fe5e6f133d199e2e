"""The ``chainrule`` command line.

Each subcommand lives in :mod:`chainrule.commands` as a module with a ``register``
function that adds its parser (help text with an example) and sets ``run``.
Errors in user input print as ``file:line:col: error: …`` and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .symbolic.errors import ChainruleError

#: Subcommand modules in :mod:`chainrule.commands`, in the order ``--help`` lists them.
COMMANDS = [
    "derive",
    "grad",
    "hessian",
    "codegen",
    "check_grad",
    "train",
    "report",
    "demo",
    "check",
    "grade",
    "exercise",
    "autograder",
]

EPILOG = """\
examples:
  chainrule derive examples/logistic_least_squares.chain
  chainrule derive model.chain --method backprop --steps
  chainrule grad model.chain --at w=0.5,b=0.1,x=2,t=1 --format json
  chainrule hessian model.chain --at w=0.5,b=0.1,x=2,t=1 --format json
  chainrule demo -o gallery/

A model is a text file, one assignment per line, as the lectures write it:

  param w, b
  input x, t
  z = w*x + b
  y = sigma(z)
  L = (y - t)^2 / 2
  loss L

Your own functions keep their names in every derivation (d swish(z)/dz is swish'(z)):

  def swish(z) = z*sigma(z)
  def phi(u) = log(1 + u^2), phi'(u) = 2*u/(1 + u^2)   # a declared derivative

Tensors take up to four axes; a CNN layer is conv2d (conv1d), then pooling and flatten
(the shipped example cnn_digits):

  param K[8, 1, 3, 3], b[8], V[10, 128], c[10]
  input X[1, 8, 8], t[10]
  Y = conv2d(X, K, b, padding=1)
  h = flatten(maxpool2d(relu(Y), 2))
  L = -sum(t * log(softmax(V @ h + c)))
  loss L
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chainrule",
        description="Derive neural-network gradients symbolically, naively and by "
        "error-signal backprop, and show the work.",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"chainrule.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"chainrule.commands.{name}":
                continue  # a command not built yet in this checkout
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except ChainruleError as exc:
        print(exc, file=sys.stderr)
        return 2
    except RecursionError:
        print("error: the model is nested too deeply to process", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
