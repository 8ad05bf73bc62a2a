"""This replica's share of every upstream account's rate budget.

Each replica's clients pace themselves; N replicas of one configuration would together spend N
times an account's documented budget. The poller-ownership group (worker/ownership.py) tells
every member how many live replicas the group holds at each rebalance, and the budgets divide
by it: a token bucket's rate and burst, a MatrixLMS site's calls per window. Every replica runs
every handler (handler partitions spread over all of them), so every live replica may use every
account: the share is one N-th. Canvas paces from its own ``X-Rate-Limit-Remaining`` header,
which already counts what the other replicas spend.
"""

from __future__ import annotations

import structlog

from worker.metrics import REPLICAS_LIVE

log = structlog.get_logger(__name__)


class ReplicaShare:
    """How many live replicas share the accounts; 1 until the ownership group says otherwise."""

    def __init__(self) -> None:
        self.members = 1

    def update(self, members: int) -> None:
        """The group's membership changed: ``members`` live replicas now share each budget."""
        members = max(1, members)
        if members != self.members:
            log.info("rate budgets split across replicas", replicas=members, previous=self.members)
        self.members = members
        REPLICAS_LIVE.set(members)

    def of(self, amount: float) -> float:
        """This replica's share of ``amount``."""
        return amount / self.members


REPLICAS = ReplicaShare()
