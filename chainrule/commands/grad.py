"""``chainrule grad MODEL --at …``: the loss and its gradient at a point."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..symbolic.errors import ChainruleError
from ..symbolic.program import Program, Variable
from .common import (
    add_format_argument,
    add_model_argument,
    add_point_arguments,
    load_model,
    print_json,
)

HELP = """\
Evaluate the loss and the gradient of every parameter at a point (inputs, parameters
and, optionally, constants), by the backprop program in float64.

Values are numbers or JSON arrays (rows first for matrices). Shipped examples carry
the lecture's values (vector ones without stated values take a random point, seed 0)
and need no --at.

examples:
  chainrule grad computation_graph
  chainrule grad model.chain --at w=0.5,b=0.1,x=2,t=1 --format json
  chainrule grad mlp.chain --at 'W1=[[0.1,0.2],[0.3,0.4]],b1=[0,0]' --at-file rest.json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "grad",
        help="evaluate the loss and gradient at a point",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_argument(p)
    add_point_arguments(p)
    add_format_argument(p)
    p.set_defaults(run=run)


def split_top_level(text: str) -> list[str]:
    """Split ``a=1,W=[[1,2],[3,4]]`` at the commas outside brackets."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_point(specs: list[str]) -> dict[str, Any]:
    """``["w=0.5,b=[1,2]"]`` → ``{"w": 0.5, "b": [1, 2]}`` (JSON values, never eval)."""
    point: dict[str, Any] = {}
    for spec in specs:
        for item in split_top_level(spec):
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise ChainruleError(f"--at expects NAME=VALUE, got {item!r}")
            point[name.strip()] = _value(name.strip(), value.strip())
    return point


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _value(name: str, text: str) -> Any:
    """A number as people type it (``.5``, ``+1``, ``1.``, ``-2e-3``) or a JSON array."""
    if len(text) > 10_000_000:
        raise ChainruleError(f"value of {name} is too long")
    if _NUMBER.match(text):
        value = float(text)
        if not np.isfinite(value):
            raise ChainruleError(f"value of {name} is not finite")
        return value
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ChainruleError(f"value of {name} is not a number or JSON array: {exc.msg}") from None
    _check_numeric(name, value)
    return value


def _check_numeric(name: str, value: Any) -> None:
    if _has_bool(value) or isinstance(value, str):
        raise ChainruleError(f"value of {name} must be a number or a (nested) list of numbers")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ChainruleError(
            f"value of {name} must be a number or a (nested) list of "
            "numbers with rows of equal length"
        ) from None
    if not np.all(np.isfinite(arr)):
        raise ChainruleError(f"value of {name} is not finite")


def _has_bool(value: Any) -> bool:
    if isinstance(value, list):
        return any(_has_bool(v) for v in value)
    return isinstance(value, bool)


def check_point(program: Program, point: dict[str, Any]) -> None:
    """Values go to leaves only, and a scalar leaf takes a number."""
    for name, value in point.items():
        if name not in program:
            continue  # the evaluator lists unknown names together
        item = program[name]
        if not isinstance(item, Variable):
            raise ChainruleError(
                f"{name} is computed by the model; --at gives values to parameters, inputs "
                "and constants only"
            )
        if not item.shape and np.ndim(value) > 0:
            raise ChainruleError(
                f"{name} is a scalar but was given an array of shape {np.shape(value)}"
            )


def load_point_file(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ChainruleError(f"{path}: cannot read: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ChainruleError(f"{path}: not a JSON object of values ({exc})") from None
    if not isinstance(data, dict):
        raise ChainruleError(f"{path}: expected a JSON object mapping names to values")
    for k, v in data.items():
        _check_numeric(k, v)
    return data


def point_of(program: Program, args: argparse.Namespace) -> dict[str, Any]:
    """The point ``--at``/``--at-file`` give, over a shipped example's own point, checked
    against the program (every leaf has a value)."""
    from ..examples import example_path, example_point

    point: dict[str, Any] = {}
    if example_path(args.model) is not None:
        point.update(example_point(args.model))
        if not point and not args.at_file and not args.at:
            from ..numeric.vector_eval import random_point

            point = random_point(program, seed=0) if program.is_vector else {}
            print(
                f"note: {args.model} states no values; at a random point (seed 0) — "
                "give --at name=value for your own",
                file=sys.stderr,
            )
    if args.at_file:
        point.update(load_point_file(args.at_file))
    point.update(parse_point(args.at))
    check_point(program, point)
    return point


def run(args: argparse.Namespace) -> int:
    from ..api import gradient_at

    program = load_model(args.model)
    point = point_of(program, args)
    with np.errstate(all="ignore"):
        loss, grads = gradient_at(program, point)
    result = {"loss": _plain(loss), "gradient": {k: _plain(v) for k, v in grads.items()}}
    finite = _all_finite(result)
    if not finite:
        print(
            "error: the loss or a gradient is not finite at this point (log of 0? overflow?); "
            "non-finite values are shown as null",
            file=sys.stderr,
        )
    if args.format == "json":
        print_json(result)
        return 0 if finite else 1
    from ..reports.notation import derivative_symbol, pretty_name

    vec = program.is_vector
    print(f"{pretty_name(program.loss, vec)} = {_show(result['loss'])}")
    for k, v in result["gradient"].items():
        print(f"{derivative_symbol(program.loss, k, vec)} = {_show(v)}")
    sys.stdout.flush()
    return 0 if finite else 1


def _plain(v: Any) -> Any:
    """Floats and nested lists for JSON; NaN and ±inf become None (JSON null)."""
    arr = np.asarray(v, dtype=float)
    return _nested(arr)


def _show(v: Any) -> str:
    if v is None:
        return "not finite"
    return f"{v:.10g}" if isinstance(v, float) else json.dumps(v)


def _nested(arr: np.ndarray) -> Any:
    if arr.ndim == 0:
        x = float(arr)
        return x if np.isfinite(x) else None
    return [_nested(a) for a in arr]


def _all_finite(obj: Any) -> bool:
    if isinstance(obj, dict):
        return all(_all_finite(v) for v in obj.values())
    if isinstance(obj, list):
        return all(_all_finite(v) for v in obj)
    return obj is not None
