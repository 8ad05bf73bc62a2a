"""Typed results of the AB Connect v4.1 client, parsed from JSON:API resources.

Field names are AB's own; ``Lnnnn`` points into seeds/002_465041200055f58b.txt (see
api/abconnect.md). Shapes the reference marks ambiguous (relationships, empty values) are read
tolerantly; types are strict: a number where the feed documents a string is a malformed answer,
never coerced and published. The parse functions raise ``MalformedResponseError`` naming the
missing or mistyped field, never a bare pydantic ``ValidationError`` or anything else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worker.clients.errors import MalformedResponseError, NotFoundError

SYSTEM = "abconnect"

# Relationship names that may carry the standard an event is about (schema L5985-6077). The
# first populated one wins; the event's ``standard_relationship`` says which it was.
EVENT_STANDARD_RELATIONSHIPS = ("standard", "deleted_standard", "nondeliverable_standard")


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


def _blank_to_none(value: str | None) -> str | None:
    return None if value is None or value == "" else value


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


class _Strict(BaseModel):
    """Raw JSON as AB sends it: strict types, unknown fields ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _RawAffected(_Strict):
    name: str
    previous_value: Any = None
    new_value: Any = None


class _RawEventAttributes(_Strict):
    seq: int
    date_utc: str
    change_type: str
    target: str
    document_guid: str | None = None
    section_guid: str | None = None
    affected_properties: list[_RawAffected] | None = None


class _RawDescribed(_Strict):
    guid: str | None = None
    descr: str | None = None


class _RawNumber(_Strict):
    raw: str | None = None
    enhanced: str | None = None
    prefix_enhanced: str | None = None


class _RawStatement(_Strict):
    descr: str | None = None
    combined_descr: str | None = None


class _RawCode(_Strict):
    code: str | None = None


class _RawLevels(_Strict):
    grades: list[_RawCode] | None = None


class _RawDisciplines(_Strict):
    subjects: list[_RawDescribed] | None = None


class _RawUtilization(_Strict):
    type: str | None = None


class _RawStandardAttributes(_Strict):
    guid: str | None = None
    status: str
    seq: int | None = None
    level: int | None = None
    label: str | None = None
    standard_type: str | None = None
    number: _RawNumber | None = None
    statement: _RawStatement | None = None
    education_levels: _RawLevels | None = None
    disciplines: _RawDisciplines | None = None
    utilizations: list[_RawUtilization] | None = None
    document: _RawDescribed | None = None
    section: _RawDescribed | None = None
    date_modified_utc: str | None = None
    date_deleted_utc: str | None = None


class _RawSection(_Strict):
    guid: str
    descr: str | None = None
    seq: int | None = None
    label: str | None = None
    number: str | None = None


class _RawAuthority(_Strict):
    descr: str | None = None


class _RawPublication(_Strict):
    descr: str | None = None
    authorities: list[_RawAuthority] | None = None


class _RawSubject(_Strict):
    descr: str | None = None


class _RawDocDisciplines(_Strict):
    primary_subject: _RawSubject | None = None


class _RawDocument(_Strict):
    guid: str
    descr: str | None = None
    adopt_year: str | None = None
    disciplines: _RawDocDisciplines | None = None
    publication: _RawPublication | None = None


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


def _relationships(item: dict[str, Any]) -> dict[str, Any]:
    rels = item.get("relationships")
    return rels if isinstance(rels, dict) else {}


def parse_event(item: Any) -> ABEvent:
    """Build an ``ABEvent`` from one ``data[]`` entry of ``/events``."""
    rid, attrs = _resource(item, "event")
    for name in ("seq", "date_utc", "change_type", "target"):
        if attrs.get(name) is None:
            raise malformed(f"event {rid}: attribute '{name}' is missing")
    try:
        raw = _RawEventAttributes.model_validate(attrs)
        standard_guid = relationship_name = None
        for name in EVENT_STANDARD_RELATIONSHIPS:
            ids = relationship_ids(_relationships(item).get(name))
            if ids:
                standard_guid, relationship_name = ids[0], name
                break
        return ABEvent(
            id=rid, seq=raw.seq, date_utc=_required_date(raw.date_utc),
            change_type=raw.change_type, target=raw.target,
            document_guid=_blank_to_none(raw.document_guid), section_guid=_blank_to_none(raw.section_guid),
            standard_guid=standard_guid, standard_relationship=relationship_name,
            affected_properties=[AffectedProperty(**p.model_dump()) for p in raw.affected_properties or []],
            raw=item,
        )
    except (ValidationError, ValueError) as exc:
        raise malformed(f"event {rid}: {_first_error(exc)}") from exc


def parse_standard(item: Any) -> Standard:
    """Build a ``Standard`` from a ``standards`` resource; ``status`` is required (it drives ``deleted``)."""
    rid, attrs = _resource(item, "standard")
    if attrs.get("status") is None:
        raise malformed(f"standard {rid}: attribute 'status' is missing")
    try:
        raw = _RawStandardAttributes.model_validate(attrs)
        parents = relationship_ids(_relationships(item).get("parent"))
        number = raw.number or _RawNumber()
        statement = raw.statement or _RawStatement()
        document = raw.document or _RawDescribed()
        section = raw.section or _RawDescribed()
        grades = (raw.education_levels.grades if raw.education_levels else None) or []
        subjects = (raw.disciplines.subjects if raw.disciplines else None) or []
        return Standard(
            guid=raw.guid or rid, status=raw.status,
            document_guid=_blank_to_none(document.guid), document_descr=_blank_to_none(document.descr),
            section_guid=_blank_to_none(section.guid), section_descr=_blank_to_none(section.descr),
            statement=_blank_to_none(statement.descr), combined_statement=_blank_to_none(statement.combined_descr),
            number_enhanced=_blank_to_none(number.enhanced),
            number_prefix_enhanced=_blank_to_none(number.prefix_enhanced),
            number_raw=_blank_to_none(number.raw),
            label=_blank_to_none(raw.label), level=raw.level, seq=raw.seq,
            standard_type=_blank_to_none(raw.standard_type),
            grades=[g.code for g in grades if g.code is not None],
            subjects=[s.descr for s in subjects if s.descr],
            alignable=any(u.type == "alignable" for u in raw.utilizations or []),
            date_modified_utc=parse_ab_datetime(raw.date_modified_utc),
            date_deleted_utc=parse_ab_datetime(raw.date_deleted_utc),
            parent_guid=parents[0] if parents else None,
            raw=item,
        )
    except (ValidationError, ValueError, TypeError) as exc:
        raise malformed(f"standard {rid}: {_first_error(exc)}") from exc


def parse_section(facet_data: Any) -> Section | None:
    """A ``Section`` from a ``section`` facet detail's ``data`` (``guid``, ``descr``, ``seq``; L2820);
    ``None`` for an entry without a guid. A wrongly typed field is malformed."""
    if not isinstance(facet_data, dict) or not facet_data.get("guid"):
        return None
    try:
        raw = _RawSection.model_validate(facet_data)
    except ValidationError as exc:
        raise malformed(f"section facet: {_first_error(exc)}") from exc
    return Section(**raw.model_dump())


def parse_document(attrs: Any, sections: list[Section], count: int) -> Document:
    """A ``Document`` from one standard's ``document`` attribute plus its sections."""
    try:
        raw = _RawDocument.model_validate(attrs)
    except ValidationError as exc:
        raise malformed(f"document: {_first_error(exc)}") from exc
    authorities = (raw.publication.authorities if raw.publication else None) or []
    subject = raw.disciplines.primary_subject if raw.disciplines else None
    return Document(
        guid=raw.guid, descr=_blank_to_none(raw.descr), adopt_year=_blank_to_none(raw.adopt_year),
        subject=_blank_to_none(subject.descr) if subject else None,
        publication=_blank_to_none(raw.publication.descr) if raw.publication else None,
        authority=_blank_to_none(authorities[0].descr) if authorities else None,
        sections=sorted(sections, key=lambda s: (s.seq is None, s.seq or 0, s.guid)),
        standard_count=count, raw=attrs,
    )


def parse_events_page(body: Any) -> EventsPage:
    """One ``/events`` answer, sorted by seq; ``has_more`` from ``links.next`` or ``meta.count``."""
    data = data_list(body, "events")
    events = sorted((parse_event(item) for item in data), key=lambda e: e.seq)
    count = meta_int(body, "count")
    has_more = bool(_links(body).get("next")) or (count is not None and count > len(data))
    return EventsPage(events=events, has_more=has_more and bool(data), count=count)


def parse_standards_page(body: Any, offset: int, limit: int) -> StandardsPage:
    """One ``/standards`` answer fetched with ``offset`` and ``limit``."""
    data = data_list(body, "standards")
    standards = [parse_standard(item) for item in data]
    total = meta_int(body, "count")
    by_links = bool(_links(body).get("next")) or len(data) == limit
    has_more = offset + len(data) < total if total is not None else by_links
    return StandardsPage(standards=standards, total=total, offset=offset, limit=limit,
                         has_more=has_more and bool(data))


def parse_document_answer(guid: str, body: Any) -> Document:
    """A ``Document`` from a ``/standards`` answer filtered to one document with ``facet=section``;
    ``NotFoundError`` when nothing of it is deliverable."""
    data = data_list(body, "standards")
    if not data:
        raise NotFoundError(SYSTEM, f"document {guid}: no deliverable standards", status=404)
    attrs = data[0].get("attributes") if isinstance(data[0], dict) else None
    doc_attrs = attrs.get("document") if isinstance(attrs, dict) else None
    if not isinstance(doc_attrs, dict) or not doc_attrs.get("guid"):
        raise malformed(f"document {guid}: standard without a 'document' attribute")
    sections = [s for s in (parse_section(d.get("data")) for d in facet_details(body, "section")) if s]
    return parse_document(doc_attrs, sections, meta_int(body, "count") or len(data))


def parse_document_guids(body: Any) -> list[str]:
    """The guids of a ``facet=document`` answer, sorted."""
    if not isinstance(body, dict):
        raise malformed(f"standards: top-level JSON is {type(body).__name__}, not an object")
    guids: set[str] = set()
    for detail in facet_details(body, "document"):
        data = detail.get("data")
        guid = data.get("guid") if isinstance(data, dict) else None
        if not isinstance(guid, str) or not guid:
            raise malformed("document facet: an entry without a string 'guid'")
        guids.add(guid)
    return sorted(guids)


def data_list(body: Any, what: str) -> list[Any]:
    """``body["data"]`` when it is a list, else ``MalformedResponseError``."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise malformed(f"{what}: 'data' is {type(data).__name__}, expected a list")
    return data


def _links(body: dict[str, Any]) -> dict[str, Any]:
    links = body.get("links")
    return links if isinstance(links, dict) else {}


def meta_int(body: dict[str, Any], name: str) -> int | None:
    """An integer of ``meta``; a non-integer is malformed, a missing one ``None``."""
    meta = body.get("meta")
    value = meta.get(name) if isinstance(meta, dict) else None
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise malformed(f"meta.{name} is {type(value).__name__}, expected an integer")
    return value


def facet_details(body: dict[str, Any], facet: str) -> list[dict[str, Any]]:
    """The ``details`` of one facet in ``meta.facets``."""
    meta = body.get("meta")
    facets = meta.get("facets") if isinstance(meta, dict) else None
    for entry in facets if isinstance(facets, list) else []:
        if isinstance(entry, dict) and entry.get("facet") == facet and isinstance(entry.get("details"), list):
            return [d for d in entry["details"] if isinstance(d, dict)]
    return []


def _required_date(value: str) -> datetime:
    parsed = parse_ab_datetime(value)
    if parsed is None:
        raise ValueError("date_utc is empty")
    return parsed


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"field '{where}': {err['msg']} (got {type(err.get('input')).__name__})"
    return str(exc)
