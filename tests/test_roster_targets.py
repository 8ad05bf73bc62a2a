"""The roster flow into several targets at once: what one target cannot take is dead-lettered
for that target alone, and an adversarial order (every roster row before any student or
section) converges everywhere with no dead letter and no deadlock."""

from __future__ import annotations

import time
from pathlib import Path

from simulators.illuminate.state import unpack
from tests.roster_env import ClassTarget, RosterEnv
from tests.roster_target_matrixlms import MatrixTarget


def test_roster_rows_before_any_student_or_section_converge_without_dead_letters(
    kafka_bootstrap: str, tmp_path: Path, unique: str,
) -> None:
    classroom, matrix = ClassTarget(), MatrixTarget()
    env = RosterEnv(kafka_bootstrap, tmp_path, unique, targets=[classroom, matrix], entities=["rosters"])
    try:
        env.start_worker()
        # Only roster rows are published: every one waits for its class, none is dead-lettered.
        deadline = time.monotonic() + 120
        while min(env.metric("edusync_handler_events_total", handler=t.handler, outcome="deferred")
                  for t in env.targets) < 3000:
            assert time.monotonic() < deadline, env.log_tail()
            time.sleep(1)
        assert classroom.sim.store.classes == {} and matrix.writes() == 0
        assert env.stop_worker() == 0
        env.write_config()  # now every entity
        env.start_worker()
        env.wait_converged(timeout=400)
        for target in env.targets:
            assert env.dead_letters(target.handler) == [], target.handler
        assert env.stop_worker() == 0
    finally:
        env.close()


def test_a_section_class_cannot_take_is_dead_lettered_for_class_alone_with_reasons(
    kafka_bootstrap: str, tmp_path: Path, unique: str,
) -> None:
    classroom, matrix = ClassTarget(), MatrixTarget()
    env = RosterEnv(kafka_bootstrap, tmp_path, unique, targets=[classroom, matrix])
    try:
        d = env.illuminate.district
        section = d.sections.rows[d.sections.order()[0]]
        d.users.rows[section.user_id].has_email = False  # before the server sees any request
        unmappable = {str(s.section_id) for s in d.sections.rows.values() if s.user_id == section.user_id}
        rows = [k for k in d.roster.rows if str(unpack(k)[0]) in unmappable]
        env.start_worker()
        env.wait_converged(timeout=400)  # Class without those sections, MatrixLMS with them
        expected = len(unmappable) + len(rows)
        deadline = time.monotonic() + 120
        while len(letters := env.dead_letters(classroom.handler)) < expected:
            assert time.monotonic() < deadline, (len(letters), expected, env.log_tail())
            time.sleep(1)
        reasons = [d.reason.removeprefix("PermanentFailure: ") for d in letters]
        assert len(letters) == expected, reasons[:5]
        assert all("no instructor email" in r for r in reasons), reasons[:5]
        assert sum(r.startswith("roster row ") for r in reasons) == len(rows), reasons[:3]
        assert {r.split(":")[0].removeprefix("section ") for r in reasons if r.startswith("section ")} == unmappable
        assert env.dead_letters(matrix.handler) == []
        assert env.stop_worker() == 0
    finally:
        env.close()
