"""Enrollment terms of each root account (seed 002:L8124-8192, object L8384-8430; canvas.md §3.3).

Every root account has a "Default Term" (the term a course gets when no ``term_id`` is given; the
seed's "Terms support ``default``"). ``sis_term_id`` is unique per root account (typed 400 on a
clash) and is dropped silently without manage_sis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulators.canvas.accounts import Account, IdSequence
from simulators.canvas.clock import iso, normalise, now
from simulators.canvas.params import nested, text
from simulators.canvas.refs import parse_ref
from simulators.canvas.responses import CanvasHTTPError, not_found, taken
from simulators.canvas.stats import Stats
from simulators.canvas.user_store import sis_in_use

ACTIVE = "active"
DELETED = "deleted"
ENROLLMENT_TYPES = ("StudentEnrollment", "TeacherEnrollment", "TaEnrollment", "DesignerEnrollment")


@dataclass
class TermRecord:
    """An EnrollmentTerm."""

    id: int
    root_account_id: int
    name: str
    start_at: str | None = None
    end_at: str | None = None
    sis_term_id: str | None = None
    workflow_state: str = ACTIVE
    created_at: str | None = None
    overrides: dict[str, dict[str, str | None]] = field(default_factory=dict)
    is_default: bool = False


class TermStore:
    """Terms by id, one default term per root account."""

    def __init__(self, ids: IdSequence, stats: Stats) -> None:
        self._ids = ids
        self._stats = stats
        self.terms: dict[int, TermRecord] = {}

    def reset(self) -> None:
        """Drop every term (default terms come back on first use)."""
        self.terms = {}

    def default_term(self, root_id: int) -> TermRecord:
        """The root account's Default Term, created on first use."""
        for term in self.terms.values():
            if term.root_account_id == root_id and term.is_default:
                return term
        tid = self._ids.next("term")
        term = TermRecord(tid, root_id, "Default Term", created_at=iso(now()), is_default=True)
        self.terms[tid] = term
        return term

    def resolve(self, root_id: int, raw: str, *, include_deleted: bool = False) -> TermRecord:
        """A term from an id, ``sis_term_id:X`` or ``default``."""
        ref = parse_ref(raw)
        if ref.value == "default":
            return self.default_term(root_id)
        term: TermRecord | None = None
        if ref.kind == "sis_term_id":
            term = next((t for t in self.terms.values()
                         if t.root_account_id == root_id and t.sis_term_id == ref.value), None)
        else:
            term = self.terms.get(ref.as_int())
        if term is None or term.root_account_id != root_id or (term.workflow_state == DELETED and not include_deleted):
            raise not_found()
        return term

    def listing(self, root_id: int, states: list[str], term_name: str | None = None) -> list[TermRecord]:
        """Terms of the root account in ``states`` (default active), by start date then id."""
        self.default_term(root_id)
        wanted = set(states or [ACTIVE])
        found = [
            t for t in self.terms.values()
            if t.root_account_id == root_id and ("all" in wanted or t.workflow_state in wanted)
            and (not term_name or term_name.lower() in t.name.lower())
        ]
        return sorted(found, key=lambda t: (t.start_at or "", t.id))

    def _apply(self, term: TermRecord, params: dict[str, Any], can_manage_sis: bool) -> None:
        term_p = nested(params, "enrollment_term")
        name = text(term_p, "name")
        if name:
            term.name = name
        for attr in ("start_at", "end_at"):
            if attr in term_p:
                setattr(term, attr, normalise(term_p.get(attr)))
        sis = text(term_p, "sis_term_id")
        if sis is not None and can_manage_sis:
            sis = sis or None
            if sis and any(t.sis_term_id == sis and t.id != term.id and t.root_account_id == term.root_account_id
                           for t in self.terms.values()):
                raise taken("sis_source_id", sis_in_use(sis))
            term.sis_term_id = sis
        overrides = nested(term_p, "overrides")
        for kind, dates in overrides.items():
            if kind in ENROLLMENT_TYPES and isinstance(dates, dict):
                term.overrides[kind] = {"start_at": normalise(dates.get("start_at")),
                                        "end_at": normalise(dates.get("end_at"))}

    def create(self, account: Account, params: dict[str, Any], *, can_manage_sis: bool) -> TermRecord:
        """``POST /accounts/:id/terms``."""
        self.default_term(account.root_id)  # every root account has one, older than any other term
        tid = self._ids.next("term")
        term = TermRecord(tid, account.root_id, "Unnamed Term", created_at=iso(now()))
        self._apply(term, params, can_manage_sis)
        self.terms[tid] = term
        self._stats.record_create("term", term.sis_term_id)
        return term

    def update(self, term: TermRecord, params: dict[str, Any], *, can_manage_sis: bool) -> TermRecord:
        """``PUT /accounts/:id/terms/:id`` (fields not given stay)."""
        self._apply(term, params, can_manage_sis)
        return term

    def delete(self, term: TermRecord) -> TermRecord:
        """``DELETE``: the term becomes ``deleted``; the default term cannot be deleted."""
        if term.is_default:
            raise CanvasHTTPError(400, {"errors": {"workflow_state": [
                {"attribute": "workflow_state", "type": "invalid", "message": "Cannot delete the default term"}
            ]}})
        term.workflow_state = DELETED
        return term

    def counts(self) -> dict[str, int]:
        """Active terms (default terms included)."""
        return {"terms": sum(t.workflow_state == ACTIVE for t in self.terms.values())}
