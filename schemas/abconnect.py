"""AB Connect change events: one payload model, one versioned type per event target; and the
standards flow's periodic reconcile requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AffectedPropertyV1(BaseModel):
    """A property an AB Connect event says changed, with its old and new values."""

    name: str
    previous_value: Any = None
    new_value: Any = None


class ABConnectChangeV1(BaseModel):
    """One entry of the AB Connect events feed, as the partner saw it."""

    partner_id: str
    event_id: str = Field(description="AB Connect's own id of the event")
    seq: int = Field(description="unique, increasing, non-contiguous position in the feed")
    date_utc: datetime
    change_type: str = Field(description="added, removed, modified, deleted; unknown values are kept")
    target: str = Field(description="document, section or standard; unknown values are kept")
    document_guid: str | None = None
    section_guid: str | None = None
    standard_guid: str | None = None
    standard_relationship: str | None = None
    affected_properties: list[AffectedPropertyV1] = []


class ReconcileRequestedV1(BaseModel):
    """A periodic request to compare one document's Canvas outcomes with AB Connect in full,
    reading Canvas too (repairs changes made in Canvas by hand)."""

    partner_id: str
    document_guid: str
    requested_at: datetime = Field(description="when the reconcile poller asked; one request per document and period")


DOCUMENT_CHANGED = "edusync.abconnect.document.changed.v1"
SECTION_CHANGED = "edusync.abconnect.section.changed.v1"
STANDARD_CHANGED = "edusync.abconnect.standard.changed.v1"
# An event whose target the feed documents nowhere: published all the same (never lost) and
# dead-lettered by the handler with the reason.
OTHER_CHANGED = "edusync.abconnect.other.changed.v1"
RECONCILE_REQUESTED = "edusync.abconnect.reconcile.requested.v1"

TYPE_BY_TARGET = {"document": DOCUMENT_CHANGED, "section": SECTION_CHANGED, "standard": STANDARD_CHANGED}
EVENT_TYPES: dict[str, type[BaseModel]] = {
    DOCUMENT_CHANGED: ABConnectChangeV1, SECTION_CHANGED: ABConnectChangeV1, STANDARD_CHANGED: ABConnectChangeV1,
    OTHER_CHANGED: ABConnectChangeV1, RECONCILE_REQUESTED: ReconcileRequestedV1,
}
