"""AB Connect change events: one payload model, one versioned type per event target."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from schemas.registry import register


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


DOCUMENT_CHANGED = register("edusync.abconnect.document.changed.v1", ABConnectChangeV1)
SECTION_CHANGED = register("edusync.abconnect.section.changed.v1", ABConnectChangeV1)
STANDARD_CHANGED = register("edusync.abconnect.standard.changed.v1", ABConnectChangeV1)
# An event whose target the feed documents nowhere: published all the same (never lost) and
# dead-lettered by the handler with the reason.
OTHER_CHANGED = register("edusync.abconnect.other.changed.v1", ABConnectChangeV1)

TYPE_BY_TARGET = {"document": DOCUMENT_CHANGED, "section": SECTION_CHANGED, "standard": STANDARD_CHANGED}
