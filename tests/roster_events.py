"""Illuminate roster events as the pollers publish them, for handler tests that feed a batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.envelope import CloudEvent, make_event
from schemas.illuminate import DELETED, UPSERTED, DeletedV1, RosterUpsertedV1
from schemas.illuminate_records import RosterRecordV1


def enrol_then_delete(tenant: str, section: str, student: str, district: str) -> tuple[CloudEvent, CloudEvent]:
    """A student's enrolment in ``section`` (as Nora White), then the row deleted upstream a walk later."""
    subject = f"{tenant}/roster/{section}/{student}"
    t0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    enrol = make_event(tenant=tenant, source="illuminate", type=UPSERTED["roster"], subject=subject,
                       version="new>1@1", time=t0, data=RosterUpsertedV1(
                           natural_key=f"{section}/{student}", key_parts=[section, student], content_hash="1",
                           record=RosterRecordV1(student_id=student, district_student_id=district, first_name="Nora",
                                                 last_name="White", section_id=section)))
    delete = make_event(tenant=tenant, source="illuminate", type=DELETED["roster"], subject=subject,
                        version="1>gone@2", time=t0 + timedelta(minutes=5), data=DeletedV1(
                            natural_key=f"{section}/{student}", key_parts=[section, student], last_content_hash="1",
                            detected_by="snapshot_diff", walk=2))
    return enrol, delete
