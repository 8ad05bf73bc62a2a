"""The roster flow into Class: a key without a scope pauses the handler. (Sync, renames, change
streams and replay of every target are in ``test_roster_targets.py``.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from simulators.classroom import ALL_SCOPES
from tests.roster_env import TINY_DISTRICT, ClassTarget, RosterEnv
from worker.tenant_slots import handler_component_name

pytestmark = pytest.mark.slow(20)

HANDLER = "roster_to_class"


def test_a_class_key_without_a_write_scope_pauses_the_handler_and_dead_letters_nothing(
    kafka_bootstrap: str, tmp_path: Path, unique: str,
) -> None:
    scopes = [s for s in ALL_SCOPES if s != "class:write"]
    env = RosterEnv(kafka_bootstrap, tmp_path, unique, targets=[ClassTarget(scopes)])
    try:
        env.start_worker()
        deadline = time.monotonic() + 120
        while env.metric("edusync_component_paused", component=handler_component_name(HANDLER, env.tenant)) < 1:
            assert time.monotonic() < deadline, env.log_tail()
            time.sleep(1)
        assert env.dead_letters(HANDLER) == []
        assert isinstance(target := env.targets[0], ClassTarget) and target.sim.store.classes == {}
        assert env.stop_worker() == 0
    finally:
        env.close()


def test_an_enrolment_removed_from_class_by_hand_is_enrolled_again_at_its_students_next_change(
    kafka_bootstrap: str, tmp_path: Path, unique: str,
) -> None:
    # The ledger says the enrolment is there, Class answers 404 to its rename: enrol again, with
    # the new names, rather than dead-letter the change (bench/chaos met such 404s).
    target = ClassTarget()
    env = RosterEnv(kafka_bootstrap, tmp_path, unique, targets=[target], seed=TINY_DISTRICT)
    try:
        env.start_worker()
        env.wait_converged(timeout=120)
        assert env.stop_worker() == 0
        with target.sim.lock:
            removed = {(c.ext_class_id, e.ext_person_id): e for c in target.sim.store.classes.values()
                       for e in c.enrollments if e.role == "student"}
            for record in target.sim.store.classes.values():
                record.enrollments[:] = [e for e in record.enrollments if e.role != "student"]
        renamed = env.mutate("rename", count=3, seed=5)["upserted"]["students"]
        district = env.illuminate.district
        persons = {str(district.students.rows[int(k)].district_student_id) for k in renamed}
        expected = {k for k in removed if k[1] in persons}
        assert expected, "the renamed students had enrolments"
        env.start_worker()
        deadline = time.monotonic() + 120
        while True:
            with target.sim.lock:
                back = {(c.ext_class_id, e.ext_person_id): e for c in target.sim.store.classes.values()
                        for e in c.enrollments if e.role == "student"}
            if set(back) >= expected:
                break
            assert time.monotonic() < deadline, f"not enrolled again: {expected - set(back)}\n{env.log_tail()}"
            time.sleep(1)
        for k in expected:
            student = district.students.rows[district.by_district_id[int(k[1])]]
            assert back[k].last_name == student.last_name, "enrolled again with the new name"
        assert set(back) <= set(removed), "nothing else enrolled"
        assert env.dead_letters(HANDLER) == []
        assert env.stop_worker() == 0
    finally:
        env.close()
