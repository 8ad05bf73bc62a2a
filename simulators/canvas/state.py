"""The simulator's whole in-memory state, usable directly from tests.

``CanvasSimulator`` composes the core (ids, accounts, users, tokens), the cross-cutting pieces
(throttle, paging, faults, stats) and one store per resource. A new resource (users, courses,
sections, enrollments, submissions, audit logs) adds a store module like ``outcome_store.py``
(exposing ``reset()``, ``account_snapshot(account)`` and ``counts()``) and a routes module like
``outcomes.py``, and registers the store here and the routes in ``app.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from simulators.canvas.accounts import Account, AccountRegistry, IdSequence
from simulators.canvas.assignment_store import AssignmentStore
from simulators.canvas.audit_store import AuditStore
from simulators.canvas.auth import TokenGrant, TokenRegistry
from simulators.canvas.course_store import CourseStore
from simulators.canvas.enrollment_store import EnrollmentStore
from simulators.canvas.oauth import OAuthRoutes
from simulators.canvas.outcome_store import OutcomeStore
from simulators.canvas.paging import PagingConfig
from simulators.canvas.progress_store import ProgressStore
from simulators.canvas.section_store import SectionStore
from simulators.canvas.stats import Stats
from simulators.canvas.submission_store import SubmissionStore
from simulators.canvas.term_store import TermStore
from simulators.canvas.throttle import Throttle, ThrottleConfig
from simulators.canvas.user_store import UserStore
from simulators.faults import FaultInjector

DEFAULT_TOKEN = "canvas-sim-token"

TokenSpec = int | TokenGrant | Mapping[str, Any]


def _grant(spec: TokenSpec) -> TokenGrant:
    if isinstance(spec, TokenGrant):
        return spec
    if isinstance(spec, int):
        return TokenGrant(user_id=spec)
    return TokenGrant.model_validate(dict(spec))


class CanvasSimulator:
    """An in-memory Canvas LMS: accounts, tokens, outcomes, roster, gradebook, audit logs and faults.

    ``tokens`` maps each accepted bearer token to a user id or a ``TokenGrant``; ``accounts`` maps
    account ids to names (each is a root account; the first is ``self``).
    """

    def __init__(
        self, *, tokens: Mapping[str, TokenSpec] | None = None, accounts: Mapping[int, str] | None = None,
        throttle: ThrottleConfig | None = None, paging: PagingConfig | None = None,
    ) -> None:
        grants = {token: _grant(spec) for token, spec in (tokens or {DEFAULT_TOKEN: 1}).items()}
        self._seed_accounts = dict(accounts or {1: "Test District"})
        self._seed_paging = paging or PagingConfig()
        # Route handlers run on the server's event loop thread while tests poke at the same
        # objects from their own thread, so every read-modify-write holds this lock.
        self.lock = threading.RLock()
        self.ids = IdSequence()
        self.stats = Stats()
        self.faults = FaultInjector()
        self.throttle = Throttle(throttle)
        self.paging = self._seed_paging
        self.tokens = TokenRegistry(grants)
        self.accounts = AccountRegistry(self.ids)
        self.outcomes = OutcomeStore(self.accounts, self.ids, self.stats)
        self.audit = AuditStore()
        self.users = UserStore(self.accounts, self.ids, self.stats)
        self.terms = TermStore(self.ids, self.stats)
        self.courses = CourseStore(self.accounts, self.terms, self.audit, self.ids, self.stats)
        self.sections = SectionStore(self.courses, self.ids, self.stats)
        self.enrollments = EnrollmentStore(self.ids, self.stats)
        self.assignments = AssignmentStore(self.ids, self.stats)
        self.submissions = SubmissionStore(self.enrollments, self.audit, self.ids)
        self.progress = ProgressStore(self.ids)
        self.oauth = OAuthRoutes(self)
        # Cross-store rules: a deleted course deletes its enrollments; graded submissions block
        # unpublishing; a section with enrollments cannot be deleted.
        self.courses.on_delete.append(self.enrollments.delete_course)
        self.courses.has_graded_submissions = self.submissions.has_graded
        self.sections.has_enrollments = self.enrollments.section_has_enrollments
        self.reset()

    def reset(self) -> None:
        """Back to the construction-time state: seed accounts, tokens, default configs, no data."""
        with self.lock:
            self.ids.reset()
            self.stats.reset()
            self.faults.clear()
            self.throttle.reset()
            self.paging = self._seed_paging
            self.tokens.reset()
            self.accounts.reset()
            self.outcomes.reset()
            for store in (
                self.audit, self.users, self.terms, self.courses, self.sections, self.enrollments,
                self.assignments, self.submissions, self.progress, self.oauth,
            ):
                store.reset()
            for account_id, name in self._seed_accounts.items():
                self.add_account(name, account_id=account_id)
            for grant in self.tokens.grants.values():
                self.accounts.add_user(grant.user_id, grant.user_name)

    def add_account(
        self, name: str, *, account_id: int | None = None, sis_account_id: str | None = None,
        parent_account_id: int | None = None,
    ) -> Account:
        """Create an account together with its root outcome group."""
        with self.lock:
            account = self.accounts.add(
                name, account_id=account_id, sis_account_id=sis_account_id,
                parent_account_id=parent_account_id,
            )
            self.outcomes.root_group(account)
            return account

    def add_token(self, token: str, spec: TokenSpec) -> TokenGrant:
        """Accept another token (until the next reset)."""
        with self.lock:
            grant = _grant(spec)
            self.tokens.grants[token] = grant
            self.accounts.add_user(grant.user_id, grant.user_name)
            return grant

    def snapshot(self) -> dict[str, Any]:
        """The JSON served by ``GET /_sim/state``."""
        with self.lock:
            accounts = [
                {**account.to_json(), **self.outcomes.account_snapshot(account)}
                for account in sorted(self.accounts.accounts.values(), key=lambda a: a.id)
            ]
            counts = {"accounts": len(accounts), "users": len(self.accounts.users), **self.outcomes.counts()}
            # Roster and audit counts sit beside "counts", whose keys the outcome tests pin down.
            roster: dict[str, int] = {}
            for store in (self.users, self.terms, self.courses, self.sections, self.enrollments,
                          self.assignments, self.submissions):
                roster.update(store.counts())
            return {"accounts": accounts, "counts": counts, "roster": roster, "audit": self.audit.counts()}
