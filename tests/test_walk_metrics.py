"""Walk and initial-sync progress read from the snapshot pollers' real cursor models, and the
bound on ``tenant`` label values."""

from __future__ import annotations

from worker.metrics import UNATTRIBUTED, know_tenants, tenant_label, total
from worker.pollers.illuminate_scores import ScoresCursor
from worker.pollers.illuminate_snapshot import SnapshotCursor
from worker.walk_progress import record_walk


def _gauges(tenant: str, poller: str) -> tuple[float, float, float, float]:
    labels = {"tenant": tenant, "poller": poller}
    return (total("edusync_walk_page", **labels), total("edusync_walk_pages", **labels),
            total("edusync_walks_completed", **labels), total("edusync_initial_sync_in_progress", **labels))


def test_the_first_walk_is_the_initial_sync_and_its_pages_show() -> None:
    first = SnapshotCursor(phase="walk", walk=1, page=3, num_pages=20, completed_walks=0)
    record_walk("w1", "illuminate.students", first.model_dump(mode="json"))
    assert _gauges("w1", "illuminate.students") == (3, 20, 0, 1)
    done = first.model_copy(update={"phase": "idle", "completed_walks": 1})
    record_walk("w1", "illuminate.students", done.model_dump(mode="json"))
    assert _gauges("w1", "illuminate.students") == (0, 0, 1, 0)


def test_scores_cursors_report_too_and_other_cursors_are_ignored() -> None:
    cursor = ScoresCursor(phase="incremental", page=2, num_pages=3, completed_walks=4)
    record_walk("w2", "illuminate.scores", cursor.model_dump(mode="json"))
    assert _gauges("w2", "illuminate.scores") == (2, 3, 4, 0)
    record_walk("w2", "abconnect.events", {"seq": 17})
    record_walk("w2", "abconnect.events", None)
    assert _gauges("w2", "abconnect.events") == (0, 0, 0, 0)


def test_tenant_labels_are_configured_tenants_or_unattributed() -> None:
    know_tenants(["district-7"])
    assert tenant_label("district-7") == "district-7"
    assert tenant_label("Robert'); DROP TABLE students;--") == UNATTRIBUTED
    assert tenant_label(None) == UNATTRIBUTED
