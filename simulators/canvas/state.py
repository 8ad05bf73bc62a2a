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
from simulators.canvas.auth import TokenGrant, TokenRegistry
from simulators.canvas.outcome_store import OutcomeStore
from simulators.canvas.paging import PagingConfig
from simulators.canvas.stats import Stats
from simulators.canvas.throttle import Throttle, ThrottleConfig
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
    """An in-memory Canvas LMS: accounts, tokens, outcomes, throttling, faults and statistics.

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
            return {"accounts": accounts, "counts": counts}
