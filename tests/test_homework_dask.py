"""Grading on a (local) Dask cluster gives the same results as local grading."""

from __future__ import annotations

from pathlib import Path

import pytest

import chainrule
from chainrule.homework.check import Truth
from chainrule.homework.grading import find_submissions, grade
from chainrule.homework.sandbox import SandboxLimits

distributed = pytest.importorskip("dask.distributed")

ANSWERS = Path(__file__).resolve().parents[1] / "examples" / "answers"


@pytest.mark.slow
def test_dask_matches_local() -> None:
    from chainrule.homework.grading_dask import grade_on_dask

    subs = find_submissions(ANSWERS / "logistic_least_squares")
    limits = SandboxLimits(wall_seconds=10)
    truth = Truth(chainrule.load("logistic_least_squares"))
    local = grade(truth, subs, 1, limits)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        remote = grade_on_dask(
            cluster.scheduler_address,
            "logistic_least_squares",
            subs,
            limits,
            truth.n_points,
            truth.seed,
            2.0,
        )
    assert [r.to_dict() for r in remote] == [r.to_dict() for r in local]
