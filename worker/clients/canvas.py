"""Canvas LMS REST API client: one class, assembled from small modules with one job each.

- ``canvas_base``: transport (bearer or OAuth2 token, Link-header paging, throttling, typed
  errors, request ids, SIS-id escaping);
- ``canvas_roster``: accounts, users and logins, terms, courses, sections, enrollments;
- ``canvas_gradebook``: assignments, submissions and grading, Progress;
- ``canvas_audit``: the course audit log and the Grade Change Log;
- this module: account outcome groups and outcomes (the standards flow).

Outcome groups and outcomes are not in the seeds; those methods follow Canvas's public docs,
cited at each method. Retries, deadlines and size caps are the shared HTTP layer's: a POST is
retried only after a throttled answer (Canvas refuses those before doing any work); any other
failure of a POST raises ``AmbiguousWriteError`` so the caller repeats its look-up-then-create.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.clients.canvas_audit import CanvasAudit
from worker.clients.canvas_base import (
    RATE_LIMIT_TEXT,
    SYSTEM,
    CanvasClassifier,
    RateBudget,
    Written,
    parse_as,
    seg,
    sis,
)
from worker.clients.canvas_gradebook import CanvasGradebook, GradeInput
from worker.clients.canvas_models import Outcome, OutcomeGroup, OutcomeLink
from worker.clients.canvas_oauth import OAuthCredentials
from worker.clients.canvas_roster import CanvasRoster

__all__ = [
    "RATE_LIMIT_TEXT", "SYSTEM", "CanvasClassifier", "CanvasClient", "GradeInput", "OAuthCredentials", "Outcome",
    "OutcomeGroup", "OutcomeLink", "RateBudget", "Written", "parse_as", "sis",
]

# Fields the update endpoints accept (Canvas ignores others; we refuse them to catch typos).
GROUP_UPDATE_FIELDS = frozenset({"title", "description", "vendor_guid", "parent_outcome_group_id"})
OUTCOME_UPDATE_FIELDS = frozenset({
    "title", "display_name", "description", "vendor_guid", "mastery_points", "ratings",
    "calculation_method", "calculation_int",
})


class CanvasClient(CanvasAudit, CanvasGradebook, CanvasRoster):
    """Async client for one Canvas instance and one credential; share one per token (its quota)."""

    async def __aenter__(self) -> CanvasClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- outcome groups ------------------------------------------------------------------------
    # https://developerdocs.instructure.com/services/canvas/resources/outcome_groups

    def _groups(self, account_id: str) -> str:
        return f"/api/v1/accounts/{seg(account_id)}/outcome_groups"

    async def root_outcome_group(self, account_id: str) -> OutcomeGroup:
        """The account's root group (GET .../root_outcome_group redirects to it)."""
        return await self._get_model(OutcomeGroup, f"/api/v1/accounts/{seg(account_id)}/root_outcome_group")

    async def outcome_group(self, account_id: str, group_id: int) -> OutcomeGroup:
        """One group in full form (GET .../outcome_groups/:id)."""
        return await self._get_model(OutcomeGroup, f"{self._groups(account_id)}/{group_id}")

    async def account_outcome_groups(self, account_id: str) -> list[OutcomeGroup]:
        """Every group of the account in full form (GET /api/v1/accounts/:id/outcome_groups)."""
        return await self._collect(OutcomeGroup, self._groups(account_id))

    async def outcome_subgroups(self, account_id: str, group_id: int) -> list[OutcomeGroup]:
        """Immediate subgroups (abbreviated form: no description) with the parent id filled in."""
        groups = await self._collect(OutcomeGroup, f"{self._groups(account_id)}/{group_id}/subgroups")
        return [g.model_copy(update={"parent_outcome_group_id": group_id}) for g in groups]

    async def create_outcome_subgroup(
        self, account_id: str, parent_group_id: int, *, title: str, description: str = "",
        vendor_guid: str | None = None,
    ) -> OutcomeGroup:
        """POST .../outcome_groups/:id/subgroups."""
        body: dict[str, Any] = {"title": title, "description": description}
        if vendor_guid is not None:
            body["vendor_guid"] = vendor_guid
        return await self._write_model(
            OutcomeGroup, "POST", f"{self._groups(account_id)}/{parent_group_id}/subgroups", body
        )

    async def update_outcome_group(self, account_id: str, group_id: int, **fields: Any) -> OutcomeGroup:
        """PUT .../outcome_groups/:id with title, description, vendor_guid or parent_outcome_group_id."""
        _check_fields(fields, GROUP_UPDATE_FIELDS)
        return await self._write_model(OutcomeGroup, "PUT", f"{self._groups(account_id)}/{group_id}", fields)

    async def delete_outcome_group(self, account_id: str, group_id: int) -> None:
        """DELETE .../outcome_groups/:id: subgroups and links go too; outcomes left with no link go."""
        await self.request("DELETE", f"{self._groups(account_id)}/{group_id}")

    # --- outcome links -------------------------------------------------------------------------

    async def group_outcome_links(self, account_id: str, group_id: int) -> list[OutcomeLink]:
        """GET .../outcome_groups/:id/outcomes?outcome_style=full (descriptions included)."""
        return await self._collect(
            OutcomeLink, f"{self._groups(account_id)}/{group_id}/outcomes", {"outcome_style": "full"}
        )

    async def account_outcome_links(self, account_id: str) -> list[OutcomeLink]:
        """GET /api/v1/accounts/:id/outcome_group_links: every link in the account, full outcomes."""
        return await self._collect(
            OutcomeLink, f"/api/v1/accounts/{seg(account_id)}/outcome_group_links", {"outcome_style": "full"}
        )

    async def create_linked_outcome(
        self, account_id: str, group_id: int, *, title: str, description: str, vendor_guid: str,
        display_name: str | None = None,
    ) -> OutcomeLink:
        """POST .../outcome_groups/:id/outcomes: a new outcome owned by the account, linked here."""
        body: dict[str, Any] = {"title": title, "description": description, "vendor_guid": vendor_guid}
        if display_name is not None:
            body["display_name"] = display_name
        return await self._write_model(
            OutcomeLink, "POST", f"{self._groups(account_id)}/{group_id}/outcomes", body
        )

    async def link_outcome(
        self, account_id: str, group_id: int, outcome_id: int, *, move_from: int | None = None,
    ) -> OutcomeLink:
        """PUT .../outcome_groups/:id/outcomes/:outcome_id: link (or move) an existing outcome."""
        body = {"move_from": move_from} if move_from is not None else None
        return await self._write_model(
            OutcomeLink, "PUT", f"{self._groups(account_id)}/{group_id}/outcomes/{outcome_id}", body
        )

    async def unlink_outcome(self, account_id: str, group_id: int, outcome_id: int) -> None:
        """DELETE the link; Canvas deletes the outcome too when this was its last link."""
        await self.request("DELETE", f"{self._groups(account_id)}/{group_id}/outcomes/{outcome_id}")

    # --- outcomes ------------------------------------------------------------------------------
    # https://developerdocs.instructure.com/services/canvas/resources/outcomes

    async def get_outcome(self, outcome_id: int) -> Outcome:
        """GET /api/v1/outcomes/:id."""
        return await self._get_model(Outcome, f"/api/v1/outcomes/{outcome_id}")

    async def update_outcome(self, outcome_id: int, **fields: Any) -> Outcome:
        """PUT /api/v1/outcomes/:id; fields not given are left as they are."""
        _check_fields(fields, OUTCOME_UPDATE_FIELDS)
        return await self._write_model(Outcome, "PUT", f"/api/v1/outcomes/{outcome_id}", fields)


def _check_fields(fields: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValueError(f"unknown Canvas field(s) {unknown}; allowed: {sorted(allowed)}")
    if not fields:
        raise ValueError("no fields to update")
