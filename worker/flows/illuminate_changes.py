"""The Illuminate change flow: every snapshot entity and score endpoint of a tenant as change events.

Pollers only (handlers of other flows consume the topics): snapshot diff for students, staff,
sections, rosters, enrollments, courses and terms, and ``modified_after`` for assessment scores
(``worker/pollers/illuminate_*.py``). One client and one snapshot store per tenant.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from schemas.illuminate import EVENT_TYPES
from worker.poller_frame import PollerSpec
from worker.pollers.illuminate_wiring import illuminate_pollers, illuminate_source
from worker.pollers.snapshot_store import SnapshotStore
from worker.registry import Flow, FlowSettings, TenantContext
from worker.systems.illuminate import ILLUMINATE
from worker.topics import ILLUMINATE_ASSESSMENT_SCORES, ILLUMINATE_ENTITIES, TopicSpec, illuminate_topic

# Entities other flows join against in full (``worker/tables.py``): compacted, keyed by entity, so
# a record that never changes outlives the topic's retention. Rosters are keyed by section and
# enrollments are not joined, so they stay delete-policy event logs.
REFERENCE_ENTITIES = frozenset({"students", "staff", "sections", "courses", "terms"})

IlluminateEntity = Literal["students", "staff", "sections", "rosters", "enrollments", "courses", "terms"]
IlluminateScoreEndpoint = Literal[
    "AssessmentAggregateStudentResponses",
    "AssessmentAggregateStudentResponsesGroup",
    "AssessmentAggregateStudentResponsesStandard",
]
SNAPSHOT_ENTITIES: tuple[IlluminateEntity, ...] = get_args(IlluminateEntity)
# The whole-assessment aggregate is what the scores flow needs; Group and Standard are opt-in
# because they return two and three rows per score.
_DEFAULT_SCORE_ENDPOINTS: tuple[IlluminateScoreEndpoint, ...] = ("AssessmentAggregateStudentResponses",)


class IlluminateChangesSettings(FlowSettings):
    """How a tenant's Illuminate is polled: snapshot pollers walk every page of each entity and
    diff against ``edusync._snapshots``; score pollers use ``modified_after`` with an overlap plus a
    periodic reconciliation (api/illuminate.md section 6.2)."""

    poll_interval_seconds: float = Field(300.0, gt=0)
    poll_deadline_seconds: float = Field(600.0, gt=0, description="one poll (one page and its commit) at most")
    snapshot_entities: list[IlluminateEntity] = Field(
        default_factory=lambda: list(SNAPSHOT_ENTITIES),
        description="entities polled by snapshot diff, one poller each")
    snapshot_scope: Literal["session", "today"] = Field(
        "session", description="session: query the whole session so end-dated rows stay visible (ref 6.2 A.1); "
        "today: the API's default scope, where an end-dated row vanishes and becomes a delete")
    session_start: date | None = Field(None, description="override the session range (else from /Api/Terms/)")
    session_end: date | None = None
    max_delete_share: float = Field(
        0.1, gt=0, le=1, description="hold back every deletion of an entity when more than this share would go")
    deletion_guard_min_count: int = Field(
        10, ge=0, description="deletions up to this many are never held back (small entities such as terms)")
    score_endpoints: list[IlluminateScoreEndpoint] = Field(
        default_factory=lambda: list(_DEFAULT_SCORE_ENDPOINTS),
        description="modified_after endpoints polled, one poller and watermark each")
    overlap_days: int = Field(1, ge=0, le=30, description="modified_after = watermark - overlap_days")
    scores_reconcile_every: int = Field(
        96, ge=1, description="after this many incremental walks, walk every assessment in full (no "
        "modified_after) to find deleted scores")
    district_timezone: str = Field("UTC", description="IANA zone of the district: the watermark is a local date")

    @field_validator("snapshot_entities", "score_endpoints")
    @classmethod
    def _no_repeats(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("each entry may appear once")
        return values

    @field_validator("district_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _session_pair(self) -> IlluminateChangesSettings:
        if (self.session_start is None) != (self.session_end is None):
            raise ValueError("session_start and session_end go together")
        if self.session_start and self.session_end and self.session_start > self.session_end:
            raise ValueError("session_start is after session_end")
        return self


def _pollers(ctx: TenantContext, settings: IlluminateChangesSettings) -> Sequence[PollerSpec]:
    store = SnapshotStore(ctx.kafka.connection(), ctx.id)
    source = illuminate_source(ctx.settings(ILLUMINATE).base_url)
    pollers = illuminate_pollers(ctx.id, settings, ctx.client(ILLUMINATE), store, source=source)
    return [PollerSpec(p, settings.poll_interval_seconds, deadline=settings.poll_deadline_seconds) for p in pollers]


ILLUMINATE_CHANGES: Flow[IlluminateChangesSettings] = Flow(
    name="illuminate_changes",
    summary="Illuminate students, staff, sections, rosters, enrollments, courses and terms (snapshot "
            "diff) and assessment scores (modified_after) as change events",
    systems=(ILLUMINATE,),
    config=IlluminateChangesSettings,
    event_types=EVENT_TYPES,
    topics=(*(TopicSpec(illuminate_topic(e), compact=e in REFERENCE_ENTITIES) for e in ILLUMINATE_ENTITIES),
            TopicSpec(ILLUMINATE_ASSESSMENT_SCORES)),
    pollers=_pollers,
)
