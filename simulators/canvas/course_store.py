"""Courses and their workflow, with a course audit event for every write.

Seed 002:L18719-19400 (canvas.md §3.4, §5.7 item 6): create with ``offer`` and
``enable_sis_reactivation``; ``course[event]`` claim/offer/conclude/delete/undelete; DELETE with
``event=delete|conclude``; "All enrollments are deleted" on delete and are not recovered on
undelete; a deleted course is "The specified resource does not exist." unless
``include[]=all_courses``. Each write appends a CourseEvent (canvas.md §5.4 item 7): ``created``
with ``[null, new]`` pairs plus ``created_source``, ``updated`` with changed fields only, and
``published``/``unpublished``/``concluded``/``unconcluded``/``deleted``/``restored`` for events.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulators.canvas.accounts import Account, AccountRegistry, IdSequence
from simulators.canvas.audit_store import Actor, AuditStore
from simulators.canvas.clock import iso, normalise, now
from simulators.canvas.params import nested, text, text_list, to_bool
from simulators.canvas.refs import parse_ref
from simulators.canvas.responses import not_found, taken, validation_error
from simulators.canvas.stats import Stats
from simulators.canvas.term_store import TermStore
from simulators.canvas.user_store import sis_in_use

UNPUBLISHED = "unpublished"
AVAILABLE = "available"
COMPLETED = "completed"
DELETED = "deleted"
EVENTS = ("claim", "offer", "conclude", "delete", "undelete")
# Record attribute -> the Course model attribute Canvas's audit log names in event_data.
AUDITED = {
    "name": "name", "course_code": "course_code", "start_at": "start_at", "end_at": "conclude_at",
    "is_public": "is_public", "sis_course_id": "sis_source_id", "integration_id": "integration_id",
    "enrollment_term_id": "enrollment_term_id", "account_id": "account_id", "time_zone": "time_zone",
    "license": "license", "default_view": "default_view",
    "restrict_enrollments_to_course_dates": "restrict_enrollments_to_course_dates",
}
_BOOLS = ("is_public", "restrict_enrollments_to_course_dates")
_TEXTS = ("course_code", "time_zone", "license", "default_view")


@dataclass
class CourseRecord:
    """A Canvas course."""

    id: int
    account_id: int
    root_account_id: int
    name: str
    enrollment_term_id: int
    course_code: str | None = None
    sis_course_id: str | None = None
    integration_id: str | None = None
    start_at: str | None = None
    end_at: str | None = None
    is_public: bool = False
    time_zone: str | None = "America/Denver"
    license: str | None = "private"
    default_view: str | None = "modules"
    restrict_enrollments_to_course_dates: bool = False
    workflow_state: str = UNPUBLISHED
    uuid: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: str | None = None

    def audited(self) -> dict[str, Any]:
        """The audited attributes under their audit-log names."""
        return {log_name: getattr(self, attr) for attr, log_name in AUDITED.items()}


class CourseStore:
    """Courses by id, with the audit log every write feeds."""

    def __init__(
        self, accounts: AccountRegistry, terms: TermStore, audit: AuditStore, ids: IdSequence, stats: Stats,
    ) -> None:
        self._accounts = accounts
        self._terms = terms
        self._audit = audit
        self._ids = ids
        self._stats = stats
        self.courses: dict[int, CourseRecord] = {}
        # Set by the simulator: what deleting a course does to its enrollments, and whether a
        # course has graded submissions (which blocks unpublishing it).
        self.on_delete: list[Callable[[CourseRecord], None]] = []
        self.has_graded_submissions: Callable[[int], bool] = lambda course_id: False

    def reset(self) -> None:
        """Drop every course."""
        self.courses = {}

    # --- look-ups -----------------------------------------------------------------------------

    def resolve(self, raw: str, *, include_deleted: bool = False) -> CourseRecord:
        """A course from an id, ``sis_course_id:`` or ``sis_integration_id:``; deleted ones 404."""
        ref = parse_ref(raw)
        course: CourseRecord | None = None
        if ref.kind in ("sis_course_id", "sis_integration_id"):
            attr = "sis_course_id" if ref.kind == "sis_course_id" else "integration_id"
            candidates = [c for c in self.courses.values() if getattr(c, attr) == ref.value]
            # Prefer a live course when a deleted one still holds the same id.
            candidates.sort(key=lambda c: c.workflow_state == DELETED)
            course = candidates[0] if candidates else None
        else:
            course = self.courses.get(ref.as_int())
        if course is None or (course.workflow_state == DELETED and not include_deleted):
            raise not_found()
        return course

    def account_ids(self, course: CourseRecord) -> list[int]:
        """The course's account followed by its ancestors."""
        return self._accounts.chain(course.account_id)

    def in_account(self, account: Account, params: dict[str, Any]) -> list[CourseRecord]:
        """``GET /accounts/:id/courses``: courses in the account or below, by id.

        ``state[]`` (created, claimed, available, completed, deleted, all) defaults to all but deleted.
        """
        states = set(text_list(params, "state"))
        wanted: set[str] | None = None
        if states and "all" not in states:
            wanted = {UNPUBLISHED if s in ("created", "claimed", "unpublished") else s for s in states}
        published = to_bool(params.get("published"))
        term_raw = text(params, "enrollment_term_id")
        term_id = self._terms.resolve(account.root_id, term_raw).id if term_raw else None
        search = (text(params, "search_term") or "").lower()
        found = []
        for course in sorted(self.courses.values(), key=lambda c: c.id):
            if account.id not in self.account_ids(course):
                continue
            if wanted is None and course.workflow_state == DELETED and "all" not in states:
                continue
            if wanted is not None and course.workflow_state not in wanted:
                continue
            if published is not None and (course.workflow_state == AVAILABLE) != published:
                continue
            if term_id is not None and course.enrollment_term_id != term_id:
                continue
            haystack = f"{course.name} {course.course_code or ''} {course.sis_course_id or ''} {course.id}".lower()
            if search and search not in haystack:
                continue
            found.append(course)
        return found

    # --- writes -------------------------------------------------------------------------------

    def _record(self, course: CourseRecord, event_type: str, data: dict[str, Any], actor: Actor) -> None:
        self._audit.record_course(
            course_id=course.id, account_ids=self.account_ids(course), event_type=event_type,
            event_data=data, actor=actor,
        )

    def _check_sis(self, course: CourseRecord, sis: str | None) -> None:
        if sis and any(c.sis_course_id == sis and c.id != course.id and c.root_account_id == course.root_account_id
                       for c in self.courses.values()):
            raise taken("sis_source_id", sis_in_use(sis))

    def _apply(self, course: CourseRecord, course_p: dict[str, Any], can_manage_sis: bool) -> None:
        name = text(course_p, "name")
        if name:
            course.name = name
        for attr in _TEXTS:
            value = text(course_p, attr)
            if value is not None:
                setattr(course, attr, value or None)
        for attr in ("start_at", "end_at"):
            if attr in course_p:
                setattr(course, attr, normalise(course_p.get(attr)))
        for attr in _BOOLS:
            flag = to_bool(course_p.get(attr))
            if flag is not None:
                setattr(course, attr, flag)
        term_raw = text(course_p, "term_id") or text(course_p, "enrollment_term_id")
        if term_raw:
            course.enrollment_term_id = self._terms.resolve(course.root_account_id, term_raw).id
        account_raw = text(course_p, "account_id")
        if account_raw:
            target = self._accounts.resolve(account_raw)
            if target.root_id != course.root_account_id:
                raise validation_error("account_id", "invalid", "must be in the same root account")
            course.account_id = target.id
        # Canvas drops SIS fields silently for callers without manage_sis (FLOWS.md 2.3 trap 2).
        if can_manage_sis:
            sis = text(course_p, "sis_course_id")
            if sis is not None:
                self._check_sis(course, sis or None)
                course.sis_course_id = sis or None
            integration = text(course_p, "integration_id")
            if integration is not None:
                course.integration_id = integration or None

    def create(
        self, account: Account, params: dict[str, Any], actor: Actor, *, can_manage_sis: bool,
    ) -> CourseRecord:
        """``POST /accounts/:id/courses``: records ``created`` (and ``published`` with ``offer``)."""
        course_p = nested(params, "course")
        sis = text(course_p, "sis_course_id") if can_manage_sis else None
        if sis and to_bool(params.get("enable_sis_reactivation")):
            revived = next((c for c in self.courses.values() if c.sis_course_id == sis
                            and c.workflow_state == DELETED and c.root_account_id == account.root_id), None)
            if revived is not None:
                self._transition(revived, "undelete", actor)
                self.update(revived, {"course": {k: v for k, v in course_p.items() if k != "sis_course_id"}},
                            actor, can_manage_sis=can_manage_sis)
                if to_bool(params.get("offer")):
                    self._transition(revived, "offer", actor)
                return revived
        cid = self._ids.next("course")
        course = CourseRecord(
            cid, account.id, account.root_id, "Unnamed Course", self._terms.default_term(account.root_id).id,
            created_at=iso(now()),
        )
        self._apply(course, course_p, can_manage_sis)
        self.courses[cid] = course
        self._stats.record_create("course", course.sis_course_id)
        data: dict[str, Any] = {k: [None, v] for k, v in course.audited().items() if v not in (None, False)}
        data["created_source"] = actor.source
        self._record(course, "created", data, actor)
        if to_bool(params.get("offer")):
            self._transition(course, "offer", actor)
        return course

    def update(
        self, course: CourseRecord, params: dict[str, Any], actor: Actor, *, can_manage_sis: bool,
    ) -> CourseRecord:
        """``PUT /courses/:id``: ``updated`` with the changed fields, then any ``course[event]``."""
        course_p = nested(params, "course")
        event = text(course_p, "event")
        if event is not None and event not in EVENTS:
            raise validation_error("event", "inclusion", f"event must be one of {', '.join(EVENTS)}")
        before = course.audited()
        self._apply(course, course_p, can_manage_sis)
        after = course.audited()
        changed = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
        if changed:
            self._record(course, "updated", changed, actor)
        if event:
            self._transition(course, event, actor)
        return course

    def _transition(self, course: CourseRecord, event: str, actor: Actor) -> None:
        state = course.workflow_state
        if event == "claim" and state in (AVAILABLE, COMPLETED):
            if self.has_graded_submissions(course.id):
                raise validation_error(
                    "workflow_state", "invalid",
                    "A course cannot be unpublished if students have received graded submissions",
                )
            course.workflow_state = UNPUBLISHED
            self._record(course, "unpublished", {}, actor)
        elif event == "offer" and state == UNPUBLISHED:
            course.workflow_state = AVAILABLE
            self._record(course, "published", {}, actor)
        elif event == "offer" and state == COMPLETED:
            # Re-offering a concluded course is Canvas's "unconclude".
            course.workflow_state = AVAILABLE
            self._record(course, "unconcluded", {}, actor)
        elif event == "conclude" and state in (UNPUBLISHED, AVAILABLE):
            course.workflow_state = COMPLETED
            self._record(course, "concluded", {}, actor)
        elif event == "delete" and state != DELETED:
            course.workflow_state = DELETED
            self._record(course, "deleted", {}, actor)
            for hook in self.on_delete:
                hook(course)
        elif event == "undelete" and state == DELETED:
            # "The recovered course will be unpublished. Deleted enrollments will not be recovered."
            course.workflow_state = UNPUBLISHED
            self._record(course, "restored", {}, actor)

    def apply_event(self, course: CourseRecord, event: str, actor: Actor) -> CourseRecord:
        """A workflow event on its own (DELETE /courses/:id, the control API)."""
        if event not in EVENTS:
            raise validation_error("event", "inclusion", f"event must be one of {', '.join(EVENTS)}")
        self._transition(course, event, actor)
        return course

    def counts(self) -> dict[str, int]:
        """Courses that are not deleted."""
        return {"courses": sum(c.workflow_state != DELETED for c in self.courses.values())}
