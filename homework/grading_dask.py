"""Grading on a Dask cluster (optional: needs ``dask.distributed`` installed).

Each submission becomes one Dask task. The task rebuilds the model's truth once per
worker process (cached by model text), then checks the answer in the same sandboxed
worker process as local grading does, so the limits are identical. Answers travel as
bytes; workers need no shared file system.

Dask's worker processes are daemonic by default, and daemonic processes may not fork
the sandbox's children: start workers with ``--no-nanny`` or set
``DASK_DISTRIBUTED__WORKER__DAEMON=False`` (see docs/grading.md).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from ..symbolic.build import parse_program
from ..symbolic.errors import ChainruleError
from .check import CheckResult, Truth
from .grading import Submission, grade
from .sandbox import Outcome, SandboxLimits


@lru_cache(maxsize=8)
def _truth(model_text: str, filename: str, points: int, seed: int) -> Truth:
    return Truth(parse_program(model_text, filename), points, seed).prepare()


def _grade_one(
    model_text: str,
    filename: str,
    points: int,
    seed: int,
    sub: Submission,
    limits: SandboxLimits,
    symbolic: float | None,
) -> CheckResult:
    return grade(_truth(model_text, filename, points, seed), [sub], 1, limits, symbolic)[0]


def grade_on_dask(
    address: str,
    model: str,
    subs: list[Submission],
    limits: SandboxLimits,
    points: int,
    seed: int,
    symbolic: float | None,
    on_done: Callable[[int, Outcome], None] | None = None,
) -> list[CheckResult]:
    """Grade ``subs`` on the Dask scheduler at ``address``; results in input order."""
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise ChainruleError(
            "--scheduler needs dask.distributed: pip install 'dask[distributed]'"
        ) from None
    text, filename = _model_source(model)
    results: dict[int, CheckResult] = {}
    with Client(address) as client:
        futures = {
            client.submit(
                _grade_one, text, filename, points, seed, sub, limits, symbolic, pure=False
            ): i
            for i, sub in enumerate(subs)
        }
        for fut in as_completed(list(futures)):
            i = futures[fut]
            results[i] = fut.result()
            if on_done is not None:
                on_done(i, Outcome("ok"))
    return [results[i] for i in range(len(subs))]


def _model_source(model: str) -> tuple[str, str]:
    from pathlib import Path

    from ..examples import example_path

    path = example_path(model) or Path(model)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except OSError as exc:
        raise ChainruleError(f"cannot read model {model}: {exc.strerror}") from None
