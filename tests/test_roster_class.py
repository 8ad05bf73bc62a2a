"""The roster flow into Class, end to end: Illuminate simulator -> the real worker (pollers and the
``roster_to_class`` handler) on the real broker -> the Class simulator, compared with the projection
of Illuminate's state (``simulators/roster_convergence_class.py``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.classroom import ALL_SCOPES
from simulators.illuminate.state import unpack
from tests.roster_env import ClassTarget, RosterEnv

HANDLER = "roster_to_class"


@pytest.fixture
def env(kafka_bootstrap: str, tmp_path: Path, unique: str) -> Iterator[RosterEnv]:
    e = RosterEnv(kafka_bootstrap, tmp_path, unique, targets=[ClassTarget()])
    try:
        yield e
    finally:
        e.close()


def _classroom(env: RosterEnv) -> ClassTarget:
    target = env.targets[0]
    assert isinstance(target, ClassTarget)
    return target


def _student_with_sections(env: RosterEnv) -> tuple[int, str, int]:
    """A student in at least two sections: (internal id, district id, sections)."""
    d = env.illuminate.district
    counts: dict[int, int] = {}
    for key in d.roster.rows:
        student = unpack(key)[1]
        counts[student] = counts.get(student, 0) + 1
    sid = next(s for s, n in sorted(counts.items()) if n >= 2)
    return sid, str(d.students.rows[sid].district_student_id), counts[sid]


def test_initial_sync_and_a_change_stream_converge_and_a_replay_writes_nothing(env: RosterEnv) -> None:
    env.start_worker()
    [first] = env.wait_converged()
    assert first.counts["classes"] > 100 and first.counts["student enrolments"] > 3000, first.summary()

    # A rename reaches every Class enrolment of the student.
    student_id, district_id, sections = _student_with_sections(env)
    student = env.illuminate.district.students.rows[student_id]
    old_last = student.last_name
    student.last_name = "Renamedottir"  # a single assignment: safe beside the server thread
    env.illuminate.district.touch()
    env.wait_converged()
    enrolled = [e for c in _classroom(env).sim.store.classes.values() for e in c.enrollments
                if e.ext_person_id == district_id]
    assert len(enrolled) == sections >= 2
    assert {e.last_name for e in enrolled} == {"Renamedottir"} != {old_last}

    # A stream of random enrols, drops, transfers, renames and staff changes.
    env.mutate("random", count=300, seed=11)
    [after] = env.wait_converged()
    assert env.dead_letters(HANDLER) == []
    assert env.stop_worker() == 0

    # Replaying every roster topic through a fresh group writes nothing to Class.
    writes = env.writes()
    proc = env.replay(HANDLER)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert env.writes() == writes, "the replay wrote to Class"
    assert all(r.ok for r in env.reports()), after.summary()


def test_a_class_key_without_a_write_scope_pauses_the_handler_and_dead_letters_nothing(
    kafka_bootstrap: str, tmp_path: Path, unique: str,
) -> None:
    scopes = [s for s in ALL_SCOPES if s != "class:write"]
    env = RosterEnv(kafka_bootstrap, tmp_path, unique, targets=[ClassTarget(scopes)])
    try:
        env.start_worker()
        deadline = time.monotonic() + 120
        while env.metric("edusync_component_paused", component=f"handler:{HANDLER}") < 1:
            assert time.monotonic() < deadline, env.log_tail()
            time.sleep(1)
        assert env.dead_letters(HANDLER) == []
        assert _classroom(env).sim.store.classes == {}
        assert env.stop_worker() == 0
    finally:
        env.close()
