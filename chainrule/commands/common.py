"""Helpers shared by the subcommands: loading a model, the common options."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..symbolic import load_program
from ..symbolic.program import Program


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model", metavar="MODEL", help="a .chain model file (or the name of a shipped example)"
    )


def add_format_argument(
    parser: argparse.ArgumentParser, choices: tuple[str, ...] = ("text", "json")
) -> None:
    parser.add_argument(
        "--format",
        choices=choices,
        default=choices[0],
        help=f"output format (default: {choices[0]})",
    )


def load_model(spec: str) -> Program:
    """Load a model from a path, or a shipped example by its name (``xor``)."""
    from ..examples import example_path

    path = example_path(spec)
    return load_program(path if path is not None else spec)


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=_json_default)
    sys.stdout.write("\n")


def _json_default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, np.generic):
            return obj.item()
    except ImportError:  # pragma: no cover
        pass
    return str(obj)


def add_point_arguments(p: argparse.ArgumentParser) -> None:
    """``--at NAME=VALUE,…`` (repeatable) and ``--at-file POINT.json``."""
    p.add_argument(
        "--at",
        action="append",
        default=[],
        metavar="NAME=VALUE,...",
        help="values of inputs, parameters and constants (repeatable)",
    )
    p.add_argument(
        "--at-file",
        metavar="POINT.json",
        help="a JSON object of values (nested lists for vectors and matrices)",
    )
