"""Mass deletions the snapshot guard held back, and an operator's decision on them.

A held walk leaves a ``HoldSummary`` in the poller's cursor (entity, count, share, a sample of
record ids: natural keys are upstream ids, never names). ``edusync holds approve|reject`` writes a
``HoldDecision`` on the control topic, keyed by the poller and carrying the summary's
fingerprint (a hash of every held key). The poller acts on it at the end of its next complete
walk, and only if that walk holds back exactly the same keys: so an approval publishes exactly
the deletions the operator saw, once (they are gone from the snapshot afterwards), and a stale
decision does nothing. A rejection marks the keys kept in the snapshot store, with their hashes:
that is where the poller looks when it picks deletion candidates, it survives restarts with the
rest of the snapshot, and the mark goes by itself when upstream shows the record again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ValidationError

from worker.controls import ControlView

SAMPLE_SIZE = 10


def hold_key(component: str) -> str:
    """The control-topic key of the decision on ``component``'s held deletions."""
    return f"hold/{component}"


def fingerprint(keys: Sequence[str]) -> str:
    """A short hash of a set of natural keys."""
    digest = hashlib.sha256()
    for key in sorted(keys):
        digest.update(key.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:32]


class HoldSummary(BaseModel):
    """What one complete walk held back."""

    entity: str
    count: int
    stored: int
    share: float
    walk: int
    fingerprint: str
    sample: list[str]


def summarize(entity: str, candidates: Sequence[str], stored: int, walk: int) -> HoldSummary:
    """The summary of ``candidates`` held out of ``stored`` records in walk ``walk``."""
    return HoldSummary(entity=entity, count=len(candidates), stored=stored,
                       share=round(len(candidates) / max(stored, 1), 4), walk=walk,
                       fingerprint=fingerprint(candidates), sample=sorted(candidates)[:SAMPLE_SIZE])


class HoldDecision(BaseModel):
    """An operator's approval or rejection of one held set of deletions."""

    decision: Literal["approve", "reject"]
    fingerprint: str
    count: int
    requested_at: datetime
    requested_by: str


def decision_for(view: ControlView, component: str) -> HoldDecision | None:
    """The decision on ``component``'s held deletions, if the control topic has one."""
    raw = view.get(hold_key(component))
    if raw is None:
        return None
    try:
        return HoldDecision.model_validate(raw)
    except ValidationError:
        return None
