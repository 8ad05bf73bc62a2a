"""The roster flow into MatrixLMS, end to end, under the simulator's time scale: Illuminate
simulator -> the real worker on the real broker -> the MatrixLMS simulator, compared with the
projection of Illuminate's state (``simulators/roster_convergence_matrixlms.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.roster_env import RosterEnv
from tests.roster_target_matrixlms import MatrixTarget

HANDLER = "roster_to_matrixlms"


@pytest.fixture
def env(kafka_bootstrap: str, tmp_path: Path, unique: str) -> Iterator[RosterEnv]:
    e = RosterEnv(kafka_bootstrap, tmp_path, unique, targets=[MatrixTarget()])
    try:
        yield e
    finally:
        e.close()


def _matrix(env: RosterEnv) -> MatrixTarget:
    target = env.targets[0]
    assert isinstance(target, MatrixTarget)
    return target


def test_initial_sync_merges_members_per_class_and_a_replay_only_reads(env: RosterEnv) -> None:
    env.start_worker()
    [first] = env.wait_converged(timeout=400)
    matrix = _matrix(env)
    calls = matrix.calls()
    sections = first.counts["classes"]
    # One class per section, created once; members merged: about one add per class, never one per row.
    assert calls["add_class"] == sections
    assert calls["add_students_to_class"] <= sections * 1.25, calls
    stats = matrix.stats()
    assert stats["lockouts"] == 0 and stats["refused"] == 0, stats
    assert stats["sites"]["demo"]["max_calls_in_any_window"] <= 100, stats

    # A rename reaches the MatrixLMS user (an upsert on the same account).
    env.mutate("rename", count=5, seed=3)
    env.mutate("random", count=300, seed=12)
    env.wait_converged(timeout=400)
    assert env.dead_letters(HANDLER) == []
    assert env.stop_worker() == 0

    writes = matrix.writes()
    before = sum(matrix.calls().values())
    proc = env.replay(HANDLER)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert matrix.writes() == writes, "the replay wrote to MatrixLMS"
    assert sum(matrix.calls().values()) - before <= 20, "the replay read MatrixLMS more than 20 times"
    assert all(r.ok for r in env.reports())
