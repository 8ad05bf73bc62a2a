"""The roster flow under SIGKILL and lost answers: five kills during the initial sync, five during
a change stream, with 1% of the Class, MatrixLMS and Canvas answers lost after the call was
applied. Every target still converges exactly: one MatrixLMS class per section, no Class class
twice, no Canvas object without its SIS id or made twice (the checkers count both), no dead
letter."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from simulators.illuminate.generator import SeedSpec
from tests.roster_env import ClassTarget, RosterEnv
from tests.roster_target_canvas import CanvasTarget
from tests.roster_target_matrixlms import MatrixTarget

pytestmark = pytest.mark.slow(105)

# Under a third of the suite's district: the kills, not the size, are what this test is about.
DISTRICT = SeedSpec(sites=3, students=600, staff=30, courses=8, sections_per_course=7, students_per_section=30,
                    assessments=1, seed=8)


def _kill_five_times(env: RosterEnv, rng: random.Random, low: float, high: float) -> None:
    for _ in range(5):
        time.sleep(rng.uniform(low, high))
        env.kill_worker()
        env.start_worker()


def test_kills_and_lost_answers_leave_one_class_per_section_and_no_dead_letters(
    kafka_bootstrap: str, tmp_path: Path, unique: str,
) -> None:
    classroom, matrix, canvas = ClassTarget(), MatrixTarget(), CanvasTarget()
    env = RosterEnv(kafka_bootstrap, tmp_path, unique, targets=[classroom, matrix, canvas], seed=DISTRICT)
    rng = random.Random(5)
    try:
        classroom.set_faults(lost_response_rate=0.01, seed=1)
        matrix.set_faults(lost_response_rate=0.01, seed=2)
        canvas.set_faults(lost_response_rate=0.01, seed=3)
        env.start_worker()
        _kill_five_times(env, rng, 2.5, 6.0)
        env.wait_converged(timeout=600)

        env.mutate("random", count=200, seed=21)
        for step in range(5):
            env.mutate("random", count=20, seed=100 + step)
            time.sleep(rng.uniform(2.0, 5.0))
            env.kill_worker()
            env.start_worker()
        reports = env.wait_converged(timeout=600)
        # The checkers count duplicates as differences; say it here too, for the reader.
        assert all(r.ok for r in reports), [r.summary() for r in reports]
        creates = classroom.sim.stats.snapshot(0)["class_creates_by_ext_class_id"]
        assert all(n == 1 for n in creates.values()), {k: n for k, n in creates.items() if n > 1}
        assert matrix.sim.stats.snapshot(60.0)["lockouts"] == 0
        for target in env.targets:
            letters = env.dead_letters(target.handler)
            assert letters == [], [(d.reason, d.original.key) for d in letters[:5]]
        assert env.stop_worker() == 0
    finally:
        env.close()
