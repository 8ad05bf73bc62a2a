"""This replica's share of every upstream account's rate budget.

Each replica's clients pace themselves; N replicas spending one account would together spend N
times its documented budget. A tenant's pollers and handlers run on one replica at a time, the
owner of its slot (worker/ownership.py), so the replicas that spend an account are the owners of
the slots of the tenants that use it. At every rebalance the group's leader tells each member who
owns which slot; an account's budget (a token bucket's rate and burst, a MatrixLMS site's calls
per window) is then divided by the number of distinct owners of its tenants: one tenant's AB
Connect partner gets its whole 5 requests/s on the replica that runs it, a partner shared by
tenants on two replicas gets half on each. Until the first assignment, or for an account no
tenant registered, the share is one N-th of the live replicas. Canvas paces from its own
``X-Rate-Limit-Remaining`` header, which already counts what the other replicas spend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import structlog

from worker.kafka.tenant_partitions import tenant_partition
from worker.metrics import REPLICAS_LIVE

log = structlog.get_logger(__name__)


class BudgetShare(Protocol):
    """What a rate budget asks: how much of an account-wide amount this replica may spend, and
    whether the assignment changed since it last looked (``epoch``)."""

    @property
    def epoch(self) -> int: ...

    def of(self, amount: float) -> float: ...


class ReplicaShare:
    """The live membership and slot owners; 1 replica until the ownership group says otherwise."""

    def __init__(self) -> None:
        self.members = 1
        self._owners: dict[int, str] | None = None  # slot -> replica id, from the last assignment
        self._slots = 0
        self._accounts: dict[str, set[str]] = {}  # account -> tenants that use it
        self._logged: dict[str, int] = {}
        # Bumped at every assignment: an account that moved here may have been spent just now by
        # its last owner, which the upstream still counts, so its budget must not start full.
        self.epoch = 0

    def update(self, members: int, owners: Mapping[str, Sequence[int]] | None = None, slots: int = 0) -> None:
        """The group's membership changed: ``members`` live replicas, ``owners`` the slots of each."""
        members = max(1, members)
        self.epoch += 1
        if members != self.members:
            log.info("rate budgets split across replicas", replicas=members, previous=self.members)
        self.members = members
        REPLICAS_LIVE.set(members)
        if owners is None or slots < 1:
            self._owners, self._slots = None, 0
        else:
            self._owners = {slot: replica for replica, held in owners.items() for slot in held}
            self._slots = slots
        self._log_accounts()

    def use(self, account: str, tenant: str) -> None:
        """``tenant`` spends ``account``'s budget (called as tenants get their clients)."""
        self._accounts.setdefault(account, set()).add(tenant)

    def users(self, account: str | None = None) -> int:
        """How many replicas spend ``account`` now (every live one when that is not known)."""
        tenants = self._accounts.get(account or "")
        if not tenants or self._owners is None:
            return self.members
        owners = {self._owners.get(tenant_partition(t, self._slots)) for t in tenants} - {None}
        return max(1, len(owners))

    def of(self, amount: float) -> float:
        """One live replica's share of ``amount`` (for a budget not tied to a known account)."""
        return amount / self.members

    def account(self, account: str) -> AccountShare:
        """The share of one account, for the rate budget that paces it."""
        return AccountShare(self, account)

    def _log_accounts(self) -> None:
        for account in sorted(self._accounts):
            users = self.users(account)
            if self._logged.get(account) != users:
                self._logged[account] = users
                log.info("rate budget shared", account=account, replicas=users)


class AccountShare:
    """This replica's share of one account: divided by the replicas that own its tenants."""

    def __init__(self, replicas: ReplicaShare, account: str) -> None:
        self.replicas = replicas
        self.name = account

    @property
    def epoch(self) -> int:
        """The replica share's assignment count."""
        return self.replicas.epoch

    def of(self, amount: float) -> float:
        """This replica's share of the account-wide ``amount``."""
        return amount / self.replicas.users(self.name)


REPLICAS = ReplicaShare()
