"""The MatrixLMS roster flow's periodic reconcile, against the real worker: after the initial sync a
person changes MatrixLMS by hand (a student removed from a class, a stranger added to another, a
teacher removed from a third, a fourth class moved to the trash); the next reconcile round reads
every class once (spread over its slices) and puts MatrixLMS back to the ledger's picture,
counting each repair. Replaying the
handler afterwards writes nothing: stale reconcile requests are skipped, not re-read."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators.matrixlms import DEMO_API_KEY
from tests.roster_env import TINY_DISTRICT, RosterEnv
from tests.roster_target_matrixlms import MatrixTarget

pytestmark = pytest.mark.slow(36)

INTERVAL = 6.0  # a round every 6 s, in 2 slices, acting 2 s after the last write


def _by_hand(url: str, function: str, **args: Any) -> None:
    """A MatrixLMS call as an administrator would make it (ids as a JSON array, A.4)."""
    params = {"api_key": DEMO_API_KEY, **{k: str(v).replace(" ", "") for k, v in args.items()}}
    response = httpx.get(f"{url}/api/{function}", params=params, timeout=10)
    response.raise_for_status()


def test_hand_edits_in_matrixlms_are_repaired_by_the_next_round_and_a_replay_writes_nothing(
    kafka_bootstrap: str, tmp_path: Path,
) -> None:
    matrix = MatrixTarget(flow_settings=f"{{reconcile_interval_seconds: {INTERVAL:g}, reconcile_slices: 2, "
                                        "reconcile_quiet_seconds: 2}")
    env = RosterEnv(kafka_bootstrap, tmp_path, uuid.uuid4().hex[:10], targets=[matrix], seed=TINY_DISTRICT)
    try:
        env.start_worker()
        env.wait_converged(timeout=180)
        site = matrix.sim.site("demo")
        with matrix.sim.lock:
            classes = sorted(site.live_classes(), key=lambda c: c.id)
            first, second, third, fourth = (c.id for c in classes[:4])
            enrolled = [e.user_id for e in site.class_enrollments(first) if e.active]
            in_second = {e.user_id for e in site.class_enrollments(second) if e.active}
            stranger = next(e.user_id for e in site.class_enrollments(first) if e.user_id not in in_second)
            teacher = next(iter(site.teachers[third]))
        _by_hand(matrix.server.url, "remove_students_from_class", class_id=first, user_ids=[enrolled[0]])
        _by_hand(matrix.server.url, "add_students_to_class", class_id=second, user_ids=[stranger])
        _by_hand(matrix.server.url, "remove_teachers_from_class", class_id=third, user_ids=[teacher])
        _by_hand(matrix.server.url, "delete_classes", class_ids=[fourth])
        # (No check that the simulator now differs: a reconcile slice may already be repairing it.
        # The repair counters below show each edit was found.)
        reads_before = matrix.calls().get("get_students_for_class", 0)
        env.wait_converged(timeout=120)
        reads = matrix.calls().get("get_students_for_class", 0) - reads_before
        assert reads >= 1
        for kind in ("student_added", "student_removed", "teacher_added", "class_restored"):
            assert env.metric("edusync_reconcile_repairs_total", handler=matrix.handler, kind=kind) >= 1, kind
        # A whole round reads each class once, within the site's budget.
        time.sleep(INTERVAL + 1)
        assert matrix.calls().get("get_students_for_class", 0) - reads_before >= len(classes)
        stats = matrix.stats()
        assert stats["lockouts"] == 0 and stats["refused"] == 0, stats
        assert env.dead_letters(matrix.handler) == []
        assert env.stop_worker() == 0

        time.sleep(INTERVAL)  # every request published is now stale
        writes, calls = matrix.writes(), sum(matrix.calls().values())
        proc = env.replay(matrix.handler)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert matrix.writes() == writes, "a replay wrote to MatrixLMS"
        assert sum(matrix.calls().values()) - calls <= 20, "stale reconcile requests were read again"
        assert env.reports()[0].ok
    finally:
        env.close()
