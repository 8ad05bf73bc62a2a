"""Typed results of the AB Connect v4.1 client, parsed tolerantly from JSON:API resources.

Field names are AB's own; ``Lnnnn`` points into seeds/002_465041200055f58b.txt (see
api/abconnect.md). The parse functions raise ``MalformedResponseError`` with a message naming
the missing or mistyped field, never a bare pydantic ``ValidationError``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worker.clients.errors import MalformedResponseError

SYSTEM = "abconnect"

# Relationship names that may carry the standard an event is about (schema L5985-6077). The
# first populated one wins; the event's ``standard_relationship`` says which it was.
EVENT_STANDARD_RELATIONSHIPS = ("standard", "deleted_standard", "nondeliverable_standard")

_OUTCOME_TITLE_MAX = 255  # Canvas outcome titles are a short string column


def malformed(message: str) -> MalformedResponseError:
    """A ``MalformedResponseError`` for AB Connect."""
    return MalformedResponseError(SYSTEM, message)


def parse_ab_datetime(value: Any) -> datetime | None:
    """Parse AB's ``"YYYY-MM-DD HH:MM:SS"`` (UTC by name, L1447) or ISO 8601; ``None`` stays ``None``."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a date string, got {type(value).__name__}")
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def relationship_ids(relationship: Any) -> list[str]:
    """Ids in a relationship, whatever its shape.

    The reference flags the shape as ambiguous (api/abconnect.md §3.3, §4.3): the example has
    ``{"data": {}}`` when empty (L1453-1465) and an object for ``parent`` (L6709); the schema
    has an array, and for events a nested ``{"data": {"data": [...], "links": ...}}``
    (L6040-6060). ``null``, ``[]`` and a missing relationship all mean no ids.
    """
    data = relationship.get("data") if isinstance(relationship, dict) else relationship
    if isinstance(data, dict) and "id" not in data and "data" in data:
        data = data["data"]  # the schema's nested form
    items = data if isinstance(data, list) else [data]
    return [str(item["id"]) for item in items if isinstance(item, dict) and item.get("id")]


def _dig(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def outcome_text(
    *, number: str | None, statement: str | None, combined_statement: str | None = None,
    label: str | None = None,
) -> tuple[str, str]:
    """(title, description) of the Canvas outcome for one standard.

    The title is the human code (``number.enhanced``, AB's recommended display form, L13951)
    or, for standards without a number, the start of the statement; the description is the
    full statement including addenda (``statement.combined_descr``), else ``statement.descr``.
    The simulator's ``/_sim/state`` uses this same function so tests can compare Canvas to it.
    """
    description = (combined_statement or statement or "").strip()
    title = (number or "").strip()
    if not title:
        title = (statement or label or "").strip()
    if len(title) > _OUTCOME_TITLE_MAX:
        title = title[: _OUTCOME_TITLE_MAX - 3].rstrip() + "..."
    return title, description


class AffectedProperty(BaseModel):
    """One entry of an event's ``affected_properties`` (values are of variant types, L1155)."""

    model_config = ConfigDict(frozen=True)

    name: str
    previous_value: Any = None
    new_value: Any = None


class ABEvent(BaseModel):
    """One entry of the events feed (schema L5985-6077, example L1441-1467).

    ``change_type`` and ``target`` stay plain strings: only ``added``/``removed`` and
    ``document``/``standard`` are documented (L1133-1137, L6030), so handlers must cope with
    values they do not know and can dead-letter ``raw``.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    seq: int  # attributes.seq: unique, increasing, non-contiguous (L1149)
    date_utc: datetime  # attributes.date_utc, "YYYY-MM-DD HH:MM:SS" (L1447)
    change_type: str  # attributes.change_type (L1448)
    target: str  # attributes.target (L1449)
    document_guid: str | None = None  # attributes.document_guid (L1451)
    section_guid: str | None = None  # attributes.section_guid (L1450); also set on document events
    # From relationships.standard, deleted_standard or nondeliverable_standard (L6040-6060).
    standard_guid: str | None = None
    standard_relationship: str | None = None  # which of those three carried standard_guid
    affected_properties: list[AffectedProperty] = Field(default_factory=list)  # L1452
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


class Section(BaseModel):
    """A section of a document: a grade or course grouping (L11198); nested in standards as ``section``."""

    model_config = ConfigDict(frozen=True)

    guid: str
    descr: str | None = None
    seq: int | None = None
    label: str | None = None
    number: str | None = None


class Document(BaseModel):
    """A standards document, assembled from the ``document`` attribute of its standards (L6585-6629)
    and the ``section`` facet; AB Connect has no documents endpoint (api/abconnect.md §4.1)."""

    model_config = ConfigDict(frozen=True)

    guid: str
    descr: str | None = None  # document.descr (L6599)
    adopt_year: str | None = None  # document.adopt_year (L6594)
    subject: str | None = None  # document.disciplines.primary_subject.descr (L6591)
    publication: str | None = None  # document.publication.descr (L6618)
    authority: str | None = None  # document.publication.authorities[0].descr (L6622)
    sections: list[Section] = Field(default_factory=list)  # from facet=section (L2590-2820)
    standard_count: int = 0  # meta.count of the document's active, deliverable standards
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


class Standard(BaseModel):
    """One academic standard (full example L6467-6738)."""

    model_config = ConfigDict(frozen=True)

    guid: str  # attributes.guid (L6667), equal to the JSON:API id (L317)
    status: str  # attributes.status: "active" or "deleted" (L6523, L13963)
    document_guid: str | None = None  # attributes.document.guid (L6597)
    document_descr: str | None = None  # attributes.document.descr (L6599)
    section_guid: str | None = None  # attributes.section.guid (L6636)
    section_descr: str | None = None  # attributes.section.descr (L6637)
    statement: str | None = None  # attributes.statement.descr (L6479)
    combined_statement: str | None = None  # attributes.statement.combined_descr (L6478)
    number_enhanced: str | None = None  # attributes.number.enhanced (L6514)
    number_prefix_enhanced: str | None = None  # attributes.number.prefix_enhanced (L6513)
    number_raw: str | None = None  # attributes.number.raw (L6512)
    label: str | None = None  # attributes.label, e.g. "Standard" (L6481)
    level: int | None = None  # attributes.level: depth below the section (L6665)
    seq: int | None = None  # attributes.seq: order among siblings (L6668)
    standard_type: str | None = None  # attributes.standard_type (L6678)
    grades: list[str] = Field(default_factory=list)  # attributes.education_levels.grades[].code (L6483)
    subjects: list[str] = Field(default_factory=list)  # attributes.disciplines.subjects[].descr (L6528)
    alignable: bool = False  # "alignable" in attributes.utilizations[].type (L6516, L13950)
    date_modified_utc: datetime | None = None  # attributes.date_modified_utc (L6666)
    date_deleted_utc: datetime | None = None  # attributes.date_deleted_utc (L6632)
    parent_guid: str | None = None  # relationships.parent: object in the example, array in the schema
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @property
    def deleted(self) -> bool:
        """True for a retired GUID; a fetch by GUID still returns it (L13963)."""
        return self.status.lower() == "deleted"

    @property
    def number(self) -> str | None:
        """The human code: ``number.enhanced``, else ``prefix_enhanced``, else ``raw``."""
        return self.number_enhanced or self.number_prefix_enhanced or self.number_raw

    def outcome_fields(self) -> tuple[str, str]:
        """(title, description) that the Canvas outcome for this standard is built from."""
        return outcome_text(
            number=self.number, statement=self.statement,
            combined_statement=self.combined_statement, label=self.label,
        )


class EventsPage(BaseModel):
    """One page of the events feed, sorted by ``seq`` ascending."""

    events: list[ABEvent]
    has_more: bool
    count: int | None = None  # meta.count: events matching the filter, when the server says

    @property
    def last_seq(self) -> int | None:
        """The cursor to store after processing this page, or ``None`` for an empty page."""
        return self.events[-1].seq if self.events else None


class StandardsPage(BaseModel):
    """One ``limit``/``offset`` page of the standards list."""

    standards: list[Standard]
    total: int | None  # meta.count (L1365)
    offset: int
    limit: int
    has_more: bool


def _resource(item: Any, what: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(item, dict):
        raise malformed(f"{what}: expected a JSON:API resource object, got {type(item).__name__}")
    rid = item.get("id")
    if not isinstance(rid, str) or not rid:
        raise malformed(f"{what}: resource without an 'id'")
    attrs = item.get("attributes")
    if not isinstance(attrs, dict):
        raise malformed(f"{what} {rid}: no 'attributes' (were fields[...] sent?)")
    return rid, attrs


def parse_event(item: Any) -> ABEvent:
    """Build an ``ABEvent`` from one ``data[]`` entry of ``/events``."""
    rid, attrs = _resource(item, "event")
    for name in ("seq", "date_utc", "change_type", "target"):
        if attrs.get(name) is None:
            raise malformed(f"event {rid}: attribute '{name}' is missing")
    rels = item.get("relationships") if isinstance(item.get("relationships"), dict) else {}
    standard_guid = relationship_name = None
    for name in EVENT_STANDARD_RELATIONSHIPS:
        ids = relationship_ids(rels.get(name))
        if ids:
            standard_guid, relationship_name = ids[0], name
            break
    try:
        return ABEvent(
            id=rid, seq=attrs["seq"], date_utc=_required_date(attrs["date_utc"]),
            change_type=str(attrs["change_type"]), target=str(attrs["target"]),
            document_guid=_str_or_none(attrs.get("document_guid")),
            section_guid=_str_or_none(attrs.get("section_guid")),
            standard_guid=standard_guid, standard_relationship=relationship_name,
            affected_properties=attrs.get("affected_properties") or [],
            raw=item,
        )
    except (ValidationError, ValueError) as exc:
        raise malformed(f"event {rid}: {_first_error(exc)}") from exc


def parse_standard(item: Any) -> Standard:
    """Build a ``Standard`` from a ``standards`` resource; ``status`` is required (it drives ``deleted``)."""
    rid, attrs = _resource(item, "standard")
    if not isinstance(attrs.get("status"), str):
        raise malformed(f"standard {rid}: attribute 'status' is missing")
    rels = item.get("relationships") if isinstance(item.get("relationships"), dict) else {}
    parents = relationship_ids(rels.get("parent"))
    grades = _dig(attrs, "education_levels", "grades") or []
    subjects = _dig(attrs, "disciplines", "subjects") or []
    utilizations = attrs.get("utilizations") or []
    try:
        return Standard(
            guid=str(attrs.get("guid") or rid), status=attrs["status"],
            document_guid=_str_or_none(_dig(attrs, "document", "guid")),
            document_descr=_str_or_none(_dig(attrs, "document", "descr")),
            section_guid=_str_or_none(_dig(attrs, "section", "guid")),
            section_descr=_str_or_none(_dig(attrs, "section", "descr")),
            statement=_str_or_none(_dig(attrs, "statement", "descr")),
            combined_statement=_str_or_none(_dig(attrs, "statement", "combined_descr")),
            number_enhanced=_str_or_none(_dig(attrs, "number", "enhanced")),
            number_prefix_enhanced=_str_or_none(_dig(attrs, "number", "prefix_enhanced")),
            number_raw=_str_or_none(_dig(attrs, "number", "raw")),
            label=_str_or_none(attrs.get("label")), level=attrs.get("level"), seq=attrs.get("seq"),
            standard_type=_str_or_none(attrs.get("standard_type")),
            grades=[str(g["code"]) for g in grades if isinstance(g, dict) and g.get("code") is not None],
            subjects=[str(s["descr"]) for s in subjects if isinstance(s, dict) and s.get("descr")],
            alignable=any(isinstance(u, dict) and u.get("type") == "alignable" for u in utilizations),
            date_modified_utc=parse_ab_datetime(attrs.get("date_modified_utc")),
            date_deleted_utc=parse_ab_datetime(attrs.get("date_deleted_utc")),
            parent_guid=parents[0] if parents else None,
            raw=item,
        )
    except (ValidationError, ValueError, TypeError) as exc:
        raise malformed(f"standard {rid}: {_first_error(exc)}") from exc


def parse_section(facet_data: Any) -> Section | None:
    """A ``Section`` from a ``section`` facet detail's ``data`` (``guid``, ``descr``, ``seq``; L2820)."""
    if not isinstance(facet_data, dict) or not facet_data.get("guid"):
        return None
    try:
        fields = ("guid", "descr", "seq", "label", "number")
        return Section.model_validate({k: facet_data.get(k) for k in fields})
    except ValidationError:
        return None


def parse_document(attrs: dict[str, Any], sections: list[Section], count: int) -> Document:
    """A ``Document`` from one standard's ``document`` attribute plus its sections."""
    authorities = _dig(attrs, "publication", "authorities") or []
    first_authority = authorities[0] if authorities and isinstance(authorities[0], dict) else {}
    try:
        return Document(
            guid=str(attrs["guid"]), descr=_str_or_none(attrs.get("descr")),
            adopt_year=_str_or_none(attrs.get("adopt_year")),
            subject=_str_or_none(_dig(attrs, "disciplines", "primary_subject", "descr")),
            publication=_str_or_none(_dig(attrs, "publication", "descr")),
            authority=_str_or_none(first_authority.get("descr")),
            sections=sorted(sections, key=lambda s: (s.seq is None, s.seq or 0, s.guid)),
            standard_count=count, raw=attrs,
        )
    except (ValidationError, KeyError) as exc:
        raise malformed(f"document: {_first_error(exc)}") from exc


def _required_date(value: Any) -> datetime:
    parsed = parse_ab_datetime(value)
    if parsed is None:
        raise ValueError("date_utc is empty")
    return parsed


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"field '{where}': {err['msg']}"
    return str(exc)
