"""State of the AB Connect simulator: catalogue, per-partner delivery, event feed, buckets, stats.

Pure Python and thread-safe (one lock), so tests can drive it directly while the HTTP app
serves it from another thread.

Event kinds produced (``target`` / ``change_type``, api/abconnect.md §3.4):

- ``document`` / ``added`` | ``removed``: delivery of a whole document changed (documented, L1133-1135).
  ``section_guid`` carries the document's first section, reproducing the example's quirk (L1450).
- ``section`` / ``added`` | ``removed``: delivery of one section changed ("Delivery Events can occur
  on sections", exact values inferred).
- ``standard`` / ``added`` | ``modified`` (``relationships.standard``) and ``deleted``
  (``relationships.deleted_standard``): undocumented strings, chosen here.

Visibility follows L1138-1146: a standard event is visible only to partners for whom the
standard was deliverable when it happened; delivery events are per partner. Seq numbers are
global and advance by random steps (events of partners this simulator does not model), so
each partner sees unique, increasing, non-contiguous seqs.
"""

from __future__ import annotations

import bisect
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from simulators.abconnect.catalogue import (
    CatalogueGenerator,
    DocumentRec,
    SectionRec,
    StandardRec,
    ab_now,
)
from simulators.abconnect.query import Filter, dig, sort_records

MutationKind = Literal[
    "add_standard", "modify_standard", "delete_standard", "add_document", "remove_document",
    "add_section", "remove_section", "random",
]
_RANDOM_WEIGHTS: list[tuple[str, int]] = [
    ("modify_standard", 40), ("add_standard", 20), ("delete_standard", 20), ("add_section", 5),
    ("remove_section", 5), ("add_document", 5), ("remove_document", 5),
]


class SimConfig(BaseModel):
    """Behaviour switches for the places where the documentation is silent or ambiguous."""

    # Per-account token bucket (L102).
    rate_per_second: float = Field(default=5.0, gt=0)
    burst: float = Field(default=25.0, ge=1)
    # Wildcard fields[...]=* calls are throttled to 2/s (L2346).
    wildcard_rate_per_second: float = Field(default=2.0, gt=0)
    # The server counts a call when it handles it, the client when it sends it: a quarter token (50 ms
    # of refill) absorbs that jitter, so a client throttling at exactly the documented limit passes.
    rate_limit_slack: float = Field(default=0.25, ge=0, le=1)
    # AB documents no Retry-After (api/abconnect.md §1.6); off by default so clients don't rely on it.
    send_retry_after: bool = False
    # Page size when limit is absent (L173), and the answer to limit > 100 (undocumented, §2.1).
    default_limit: int = Field(default=10, ge=1, le=100)
    limit_over_cap: Literal["error", "clamp"] = "error"
    # Whether /events without fields[events] returns attributes (ambiguous, §3.5).
    events_attributes_by_default: bool = False
    # Event relationship data: the example's object, an array, or the schema's nested form (§3.3).
    relationship_shape: Literal["object", "list", "nested"] = "object"
    # Set section_guid on document events, as the example does (L1450).
    document_event_section_guid: bool = True
    default_standards_per_document: int = Field(default=100, ge=1)
    default_sections_per_document: int = Field(default=5, ge=1)


class SeedRequest(BaseModel):
    """Body of ``POST /_sim/seed``."""

    documents: int = Field(default=3, ge=0, le=500)
    standards_per_document: int = Field(default=100, ge=1, le=5000)
    sections_per_document: int = Field(default=5, ge=1, le=100)
    seed: int = 0


class MutateRequest(BaseModel):
    """Body of ``POST /_sim/mutate``; the optional GUIDs aim a mutation at a given entity."""

    kind: MutationKind = "random"
    count: int = Field(default=1, ge=1, le=10000)
    seed: int | None = None
    partner_id: str | None = Field(default=None, description="delivery changes for this partner only")
    document_guid: str | None = None
    section_guid: str | None = None
    standard_guid: str | None = None


class MutationError(ValueError):
    """A mutation that cannot apply (nothing to act on, unknown GUID)."""


@dataclass
class EventRec:
    """One event in the global feed."""

    guid: str
    seq: int
    date_utc: str
    change_type: str
    target: str
    document_guid: str | None
    section_guid: str | None
    standard_guid: str | None = None
    relationship: str | None = None  # standard / deleted_standard / nondeliverable_standard
    affected_properties: list[dict[str, Any]] = field(default_factory=list)
    visible_to: frozenset[str] = frozenset()

    def attributes(self) -> dict[str, Any]:
        """Event attributes as in the schema (L5985-6077)."""
        return {
            "seq": self.seq, "guid": self.guid, "date_utc": self.date_utc, "change_type": self.change_type,
            "target": self.target, "document_guid": self.document_guid, "section_guid": self.section_guid,
            "affected_properties": self.affected_properties,
        }

    def summary(self) -> dict[str, Any]:
        """What the control API reports for a produced event."""
        return {
            "seq": self.seq, "id": self.guid, "change_type": self.change_type, "target": self.target,
            "document_guid": self.document_guid, "section_guid": self.section_guid,
            "standard_guid": self.standard_guid, "partners": sorted(self.visible_to),
        }


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class StandardAccessError(Exception):
    """A GUID lookup that fails: ``status`` 404 (unknown) or 403 (not deliverable)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class ABConnectSimulator:
    """The simulated AB Connect account space: catalogue, deliveries, events, rate limits and stats."""

    def __init__(
        self, partners: dict[str, str], *, config: SimConfig | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not partners:
            raise ValueError("the simulator needs at least one partner id -> key")
        self.partners = dict(partners)
        self.config = config or SimConfig()
        self._monotonic = monotonic
        self._lock = threading.RLock()
        self.reset()

    # ------------------------------------------------------------------ control

    def reset(self) -> None:
        """Forget the catalogue, events, deliveries, buckets and stats (config and partners stay)."""
        with self._lock:
            self.documents: dict[str, DocumentRec] = {}
            self.sections: dict[str, SectionRec] = {}
            self.standards: dict[str, StandardRec] = {}
            self._order: list[str] = []  # standard guids in creation order: the default "relevance" order
            self._events: list[EventRec] = []
            self._feeds: dict[str, list[EventRec]] = {p: [] for p in self.partners}
            self._feed_seqs: dict[str, list[int]] = {p: [] for p in self.partners}
            self._docs_delivered: dict[str, set[str]] = {p: set() for p in self.partners}
            self._sections_delivered: dict[str, set[str]] = {p: set() for p in self.partners}
            self._seq = 0
            self._rng = random.Random(0)
            self._gen = CatalogueGenerator(self._rng)
            self._std_per_doc = self.config.default_standards_per_document
            self._sections_per_doc = self.config.default_sections_per_document
            self.reset_buckets()
            self.reset_stats()

    def reset_buckets(self) -> None:
        """Refill every partner's buckets."""
        with self._lock:
            now = self._monotonic()
            self._buckets = {p: _Bucket(self.config.burst, now) for p in self.partners}
            wild = self.config.wildcard_rate_per_second
            self._wild_buckets = {p: _Bucket(wild, now) for p in self.partners}

    def reset_stats(self) -> None:
        """Zero the request counters."""
        with self._lock:
            self._by_status: Counter[str] = Counter()
            self._by_resource: Counter[str] = Counter()
            self._by_partner: Counter[str] = Counter()
            self._throttled = 0
            self._auth_failures = 0

    def seed(self, req: SeedRequest) -> dict[str, Any]:
        """Replace everything with a generated catalogue delivered to every partner, announced as events."""
        with self._lock:
            self.reset()
            self._rng.seed(req.seed)
            self._std_per_doc = req.standards_per_document
            self._sections_per_doc = req.sections_per_document
            docs = [self._create_document() for _ in range(req.documents)]
            events: list[EventRec] = []
            for doc in docs:
                for partner in self.partners:
                    events.append(self._deliver_document(partner, doc))
            return {
                "documents": len(self.documents), "sections": len(self.sections),
                "standards": len(self.standards), "events": len(events), "max_seq": self._seq,
            }

    def mutate(self, req: MutateRequest) -> dict[str, Any]:
        """Apply ``count`` changes of ``kind``; returns the events produced (visible or not)."""
        with self._lock:
            rng = random.Random(req.seed) if req.seed is not None else self._rng
            produced: list[EventRec] = []
            for _ in range(req.count):
                kind = req.kind
                if kind == "random":
                    kinds, weights = zip(*_RANDOM_WEIGHTS, strict=True)
                    kind = rng.choices(kinds, weights)[0]
                try:
                    produced.extend(self._apply(kind, req, rng))
                except MutationError:
                    if req.kind != "random":
                        raise  # a random mix just skips what has nothing to act on
            return {"events": [e.summary() for e in produced], "max_seq": self._seq}

    def update_config(self, changes: dict[str, Any]) -> SimConfig:
        """Merge ``changes`` into the configuration (validated)."""
        with self._lock:
            self.config = SimConfig.model_validate({**self.config.model_dump(), **changes})
            return self.config

    # ------------------------------------------------------------------ mutations

    def _apply(self, kind: str, req: MutateRequest, rng: random.Random) -> list[EventRec]:
        partners = self._target_partners(req.partner_id)
        if kind == "add_standard":
            return [self._add_standard(req.section_guid, rng)]
        if kind == "modify_standard":
            return [self._modify_standard(req.standard_guid, rng)]
        if kind == "delete_standard":
            return [self._delete_standard(req.standard_guid, rng)]
        if kind == "add_document":
            return self._add_document(req.document_guid, partners)
        if kind == "remove_document":
            return self._remove_document(req.document_guid, partners, rng)
        if kind == "add_section":
            return self._add_section(req.document_guid, req.section_guid, partners, rng)
        if kind == "remove_section":
            return self._remove_section(req.section_guid, partners, rng)
        raise MutationError(f"unknown mutation kind {kind!r}")

    def _target_partners(self, partner_id: str | None) -> list[str]:
        if partner_id is None:
            return list(self.partners)
        if partner_id not in self.partners:
            raise MutationError(f"unknown partner {partner_id!r}")
        return [partner_id]

    def _create_document(self) -> DocumentRec:
        doc, sections, standards = self._gen.document(self._sections_per_doc, self._std_per_doc)
        self.documents[doc.guid] = doc
        for section in sections:
            self.sections[section.guid] = section
        for standard in standards:
            self._add_record(standard)
        return doc

    def _add_record(self, standard: StandardRec) -> None:
        self.standards[standard.guid] = standard
        self._order.append(standard.guid)

    def _pick_standard(self, guid: str | None, rng: random.Random, *, leaf: bool) -> StandardRec:
        if guid is not None:
            rec = self.standards.get(guid.upper())
            if rec is None:
                raise MutationError(f"unknown standard {guid}")
            return rec
        # Prefer standards someone can see, so random changes show up in the feeds.
        pool = [
            s for s in self.standards.values()
            if s.status == "active" and (not leaf or s.deepest) and self._visible_partners(s)
        ]
        if not pool:
            raise MutationError("no deliverable active standard to change")
        return rng.choice(sorted(pool, key=lambda s: s.guid))

    def _add_standard(self, section_guid: str | None, rng: random.Random) -> EventRec:
        if section_guid is not None:
            section = self.sections.get(section_guid.upper())
            if section is None:
                raise MutationError(f"unknown section {section_guid}")
        else:
            delivered = set().union(*self._sections_delivered.values())
            pool = [s for s in self.sections.values() if s.guid in delivered]
            if not pool:
                raise MutationError("no delivered section to add a standard to")
            section = rng.choice(sorted(pool, key=lambda s: s.guid))
        parents = [
            self.standards[g] for g in section.standard_guids
            if self.standards[g].standard_type == "organizational" and self.standards[g].status == "active"
        ]
        if parents:
            standard = self._gen.child(rng.choice(parents))
        else:  # an empty section: the new standard becomes a top-level one
            standard = self._gen.top_level(self.documents[section.document_guid], section)
        self._add_record(standard)
        return self._event("added", "standard", standard.document_guid, standard.section_guid,
                           standard=standard, relationship="standard")

    def _modify_standard(self, guid: str | None, rng: random.Random) -> EventRec:
        standard = self._pick_standard(guid, rng, leaf=False)
        if standard.status == "deleted":
            raise MutationError(f"standard {standard.guid} is deleted; its GUID is retired")
        old, new = standard.statement, self._gen.statement()
        while new == old:
            new = self._gen.statement()
        standard.statement = new
        standard.date_modified_utc = ab_now()
        standard.touch()
        changes = [
            {"name": "statement.descr", "previous_value": old, "new_value": new},
            {"name": "statement.combined_descr", "previous_value": old, "new_value": new},
        ]
        return self._event("modified", "standard", standard.document_guid, standard.section_guid,
                           standard=standard, relationship="standard", affected=changes)

    def _delete_standard(self, guid: str | None, rng: random.Random) -> EventRec:
        standard = self._pick_standard(guid, rng, leaf=True)
        if standard.status == "deleted":
            raise MutationError(f"standard {standard.guid} is already deleted")
        standard.status = "deleted"
        standard.date_deleted_utc = standard.date_modified_utc = ab_now()
        standard.touch()
        changes = [{"name": "status", "previous_value": "active", "new_value": "deleted"}]
        return self._event("deleted", "standard", standard.document_guid, standard.section_guid,
                           standard=standard, relationship="deleted_standard", affected=changes)

    def _add_document(self, guid: str | None, partners: list[str]) -> list[EventRec]:
        if guid is not None:
            doc = self.documents.get(guid.upper())
            if doc is None:
                raise MutationError(f"unknown document {guid}")
            partners = [p for p in partners if doc.guid not in self._docs_delivered[p]]
            if not partners:
                raise MutationError(f"document {guid} is already delivered")
        else:
            doc = self._create_document()
        return [self._deliver_document(p, doc) for p in partners]

    def _remove_document(self, guid: str | None, partners: list[str], rng: random.Random) -> list[EventRec]:
        if guid is None:
            pool = sorted({d for p in partners for d in self._docs_delivered[p]})
            if not pool:
                raise MutationError("no delivered document to remove")
            guid = rng.choice(pool)
        guid = guid.upper()
        holders = [p for p in partners if guid in self._docs_delivered[p]]
        if not holders:
            raise MutationError(f"document {guid} is not delivered")
        doc = self.documents[guid]
        events = []
        for partner in holders:
            self._docs_delivered[partner].discard(guid)
            self._sections_delivered[partner].difference_update(doc.section_guids)
            events.append(self._event("removed", "document", guid, self._doc_section(doc),
                                      visible_to=frozenset({partner})))
        return events

    def _add_section(
        self, doc_guid: str | None, section_guid: str | None, partners: list[str], rng: random.Random,
    ) -> list[EventRec]:
        if section_guid is not None:  # re-deliver an existing section
            section = self.sections.get(section_guid.upper())
            if section is None:
                raise MutationError(f"unknown section {section_guid}")
            holders = [p for p in partners if section.guid not in self._sections_delivered[p]]
        else:
            if doc_guid is None:
                pool = sorted({d for p in partners for d in self._docs_delivered[p]})
                if not pool:
                    raise MutationError("no delivered document to add a section to")
                doc_guid = rng.choice(pool)
            doc = self.documents.get(doc_guid.upper())
            if doc is None:
                raise MutationError(f"unknown document {doc_guid}")
            section, standards = self._gen.section(doc, max(1, self._std_per_doc // self._sections_per_doc))
            self.sections[section.guid] = section
            for standard in standards:
                self._add_record(standard)
            holders = [p for p in partners if doc.guid in self._docs_delivered[p]]
        if not holders:
            raise MutationError("no partner to deliver the section to")
        events = []
        for partner in holders:
            self._sections_delivered[partner].add(section.guid)
            self._docs_delivered[partner].add(section.document_guid)
            events.append(self._event("added", "section", section.document_guid, section.guid,
                                      visible_to=frozenset({partner})))
        return events

    def _remove_section(self, guid: str | None, partners: list[str], rng: random.Random) -> list[EventRec]:
        if guid is None:
            pool = sorted({s for p in partners for s in self._sections_delivered[p]})
            if not pool:
                raise MutationError("no delivered section to remove")
            guid = rng.choice(pool)
        guid = guid.upper()
        holders = [p for p in partners if guid in self._sections_delivered[p]]
        if not holders:
            raise MutationError(f"section {guid} is not delivered")
        section = self.sections[guid]
        events = []
        for partner in holders:
            self._sections_delivered[partner].discard(guid)
            events.append(self._event("removed", "section", section.document_guid, guid,
                                      visible_to=frozenset({partner})))
        return events

    def _deliver_document(self, partner: str, doc: DocumentRec) -> EventRec:
        self._docs_delivered[partner].add(doc.guid)
        self._sections_delivered[partner].update(doc.section_guids)
        return self._event("added", "document", doc.guid, self._doc_section(doc),
                           visible_to=frozenset({partner}))

    def _doc_section(self, doc: DocumentRec) -> str | None:
        if self.config.document_event_section_guid and doc.section_guids:
            return doc.section_guids[0]
        return None

    def _visible_partners(self, standard: StandardRec) -> frozenset[str]:
        return frozenset(p for p, secs in self._sections_delivered.items() if standard.section_guid in secs)

    def _event(
        self, change_type: str, target: str, document_guid: str | None, section_guid: str | None, *,
        standard: StandardRec | None = None, relationship: str | None = None,
        affected: list[dict[str, Any]] | None = None, visible_to: frozenset[str] | None = None,
    ) -> EventRec:
        # Seq advances by a random step: other partners' events take the numbers in between.
        self._seq += self._rng.randint(1, 7)
        if visible_to is None:
            # Visibility is decided at event time (L1138-1141).
            visible_to = self._visible_partners(standard) if standard is not None else frozenset()
        event = EventRec(
            guid=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)), seq=self._seq, date_utc=ab_now(),
            change_type=change_type, target=target, document_guid=document_guid, section_guid=section_guid,
            standard_guid=standard.guid if standard is not None else None, relationship=relationship,
            affected_properties=affected or [], visible_to=visible_to,
        )
        self._events.append(event)
        for partner in visible_to:
            self._feeds[partner].append(event)
            self._feed_seqs[partner].append(event.seq)
        return event

    # ------------------------------------------------------------------ request side

    def take_token(self, partner: str, *, wildcard: bool = False) -> float | None:
        """Spend one token of ``partner``'s bucket; ``None`` if allowed, else seconds until one refills."""
        with self._lock:
            cfg = self.config
            result = self._spend(self._buckets[partner], cfg.rate_per_second, cfg.burst)
            if result is None and wildcard:
                rate = cfg.wildcard_rate_per_second
                result = self._spend(self._wild_buckets[partner], rate, rate)
            return result

    def _spend(self, bucket: _Bucket, rate: float, burst: float) -> float | None:
        now = self._monotonic()
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.tokens >= 1.0 - self.config.rate_limit_slack:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate

    def record(self, *, status: int, resource: str, partner: str | None) -> None:
        """Count one answered API request."""
        with self._lock:
            self._by_status[str(status)] += 1
            self._by_resource[resource] += 1
            if partner:
                self._by_partner[partner] += 1
            if status == 429:
                self._throttled += 1
            elif status == 401:
                self._auth_failures += 1

    def list_events(
        self, partner: str, flt: Filter | None, sort: list[tuple[str, bool]], offset: int, limit: int,
    ) -> tuple[list[EventRec], int]:
        """A page of ``partner``'s visible events and the total matching count."""
        with self._lock:
            feed = self._feeds[partner]
            start = 0
            if flt is not None:
                bound = flt.lower_bound("seq")
                if bound is not None:  # the polling query: bisect instead of scanning the feed
                    seqs = self._feed_seqs[partner]
                    start = (bisect.bisect_left if bound[1] else bisect.bisect_right)(seqs, bound[0])
            matched = [e for e in feed[start:] if flt is None or flt.matches(e, _resolve_event)]
            if sort:
                matched = sort_records(matched, sort, _resolve_event)
            return matched[offset:offset + limit], len(matched)

    def get_event(self, partner: str, guid: str) -> EventRec | None:
        """One visible event by id."""
        with self._lock:
            return next((e for e in self._feeds[partner] if e.guid == guid.lower()), None)

    def list_standards(
        self, partner: str, flt: Filter | None, sort: list[tuple[str, bool]],
    ) -> list[StandardRec]:
        """Every deliverable standard matching ``flt``; deleted ones only if the filter names ``status``."""
        with self._lock:
            delivered = self._sections_delivered[partner]
            candidates = self._candidates(flt)
            include_deleted = flt is not None and "status" in flt.refs
            out = [
                s for s in candidates
                if s.section_guid in delivered and (include_deleted or s.status != "deleted")
                and (flt is None or flt.matches(s, _resolve_standard))
            ]
            return sort_records(out, sort, _resolve_standard) if sort else out

    def _candidates(self, flt: Filter | None) -> list[StandardRec]:
        # Index lookups for the common document/section filters; everything else scans.
        if flt is not None:
            eqs = flt.top_level_equalities()
            for path in ("section.guid", "section.id"):
                if path in eqs:
                    return [self.standards[g] for s in sorted(eqs[path]) if s in self.sections
                            for g in self.sections[s].standard_guids]
            for path in ("document.guid", "document.id"):
                if path in eqs:
                    return [self.standards[g] for d in sorted(eqs[path]) if d in self.documents
                            for sec in self.documents[d].section_guids
                            for g in self.sections[sec].standard_guids]
        return [self.standards[g] for g in self._order]

    def get_standard(self, partner: str, guid: str) -> StandardRec:
        """A standard by GUID, deleted ones included; 404 unknown, 403 not deliverable (L14037)."""
        with self._lock:
            standard = self.standards.get(guid.upper())
            if standard is None:
                raise StandardAccessError(404, f"No standard with GUID {guid}.")
            if standard.section_guid not in self._sections_delivered[partner]:
                raise StandardAccessError(
                    403, f"Standard {standard.guid} is not in your license or delivery settings "
                         f"(document {standard.document_guid}, section {standard.section_guid}). "
                         "Contact AB Support to add it.",
                )
            return standard

    def deliverable(self, partner: str, guid: str) -> bool:
        """Whether ``partner`` may read the standard now."""
        with self._lock:
            standard = self.standards.get(guid.upper())
            return standard is not None and standard.section_guid in self._sections_delivered[partner]

    # ------------------------------------------------------------------ inspection

    def snapshot(self, partner: str | None = None) -> dict[str, Any]:
        """The catalogue deliverable to ``partner`` (default: the first), for ``GET /_sim/state``."""
        with self._lock:
            partner = partner or next(iter(self.partners))
            if partner not in self.partners:
                raise MutationError(f"unknown partner {partner!r}")
            delivered = self._sections_delivered[partner]
            documents = []
            for doc_guid in sorted(self._docs_delivered[partner]):
                doc = self.documents[doc_guid]
                sections = [self.sections[s] for s in doc.section_guids if s in delivered]
                documents.append({
                    "guid": doc.guid, "descr": doc.descr, "adopt_year": doc.adopt_year,
                    "sections": [{"guid": s.guid, "descr": s.descr, "seq": s.seq} for s in sections],
                })
            standards = []
            for guid in self._order:
                s = self.standards[guid]
                if s.section_guid not in delivered:
                    continue
                standards.append({
                    "guid": s.guid, "document_guid": s.document_guid, "section_guid": s.section_guid,
                    "parent_guid": s.parent_guid, "level": s.level, "seq": s.seq, "label": s.label,
                    "number": s.number_enhanced, "statement": s.statement, "status": s.status,
                    "deleted": s.status == "deleted", "section_descr": self.sections[s.section_guid].descr,
                    "document_descr": self.documents[s.document_guid].descr,
                })
            feed = self._feeds[partner]
            return {
                "partner_id": partner, "max_seq": feed[-1].seq if feed else 0, "events": len(feed),
                "documents": documents, "standards": standards,
            }

    def stats(self) -> dict[str, Any]:
        """Request counters for ``GET /_sim/stats``."""
        with self._lock:
            return {
                "requests": sum(self._by_status.values()), "throttled": self._throttled,
                "auth_failures": self._auth_failures, "by_status": dict(self._by_status),
                "by_resource": dict(self._by_resource), "by_partner": dict(self._by_partner),
                "events_total": len(self._events), "max_seq": self._seq,
                "standards_total": len(self.standards),
            }


def _resolve_standard(rec: StandardRec, path: str) -> list[Any]:
    p = path.lower()
    if p in ("id", "guid"):
        return [rec.guid]
    if p in ("document.guid", "document.id"):  # document.id: the follow-up example's spelling (L1468)
        return [rec.document_guid]
    if p in ("section.guid", "section.id"):
        return [rec.section_guid]
    if p == "parent.id":
        return [rec.parent_guid] if rec.parent_guid else []
    if p == "ancestors.id":
        return list(rec.ancestors)
    if p == "children.id":
        return list(rec.children)
    return dig(rec.attributes(), path)


def _resolve_event(rec: EventRec, path: str) -> list[Any]:
    p = path.lower()
    if p in ("id", "guid"):
        return [rec.guid]
    if p in ("standard.id", "deleted_standard.id", "nondeliverable_standard.id"):
        return [rec.standard_guid] if rec.relationship == p.split(".")[0] else []
    if p in ("document.guid", "document.id"):
        return [rec.document_guid]
    if p in ("section.guid", "section.id"):
        return [rec.section_guid]
    return dig(rec.attributes(), path)
