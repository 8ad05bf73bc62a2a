"""Events edusync publishes for MatrixLMS itself: the roster reconcile's requests."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

RECONCILE_REQUESTED = "edusync.matrixlms.reconcile.requested.v1"


class MatrixReconcileRequestedV1(BaseModel):
    """A request to compare one slice of a tenant's MatrixLMS classes with the roster ledger, reading
    MatrixLMS, and repair what was changed there by hand. A round is ``slices`` requests spread
    over the reconcile interval, so reading every class costs a small, steady share of the budget."""

    model_config = ConfigDict(extra="forbid")

    round: int = Field(ge=0, description="the reconcile round since the flow first started")
    slice: int = Field(ge=0, description="which classes: those whose section id hashes to this slice")
    slices: int = Field(ge=1, description="slices in a round")
    requested_at: datetime = Field(description="when the reconcile poller asked")


EVENT_TYPES: dict[str, type[BaseModel]] = {RECONCILE_REQUESTED: MatrixReconcileRequestedV1}
