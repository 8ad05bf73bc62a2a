"""Typed Canvas objects returned by ``CanvasClient``.

Shapes follow Canvas's REST API documentation (not in the seeds):
https://developerdocs.instructure.com/services/canvas/resources/outcome_groups (OutcomeGroup,
OutcomeLink) and https://developerdocs.instructure.com/services/canvas/resources/outcomes (Outcome).
Canvas has an abbreviated and a full form of each; fields only in the full form are optional
here and ``None`` when the abbreviated form was returned.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class CanvasModel(BaseModel):
    """Base: unknown fields are ignored so new Canvas fields never break parsing."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class OutcomeGroupRef(CanvasModel):
    """The abbreviated OutcomeGroup: what Canvas embeds as a parent or in a link."""

    id: int
    title: str | None = None
    vendor_guid: str | None = None
    url: str | None = None
    subgroups_url: str | None = None
    outcomes_url: str | None = None
    can_edit: bool | None = None


class OutcomeGroup(OutcomeGroupRef):
    """An outcome group. ``description`` and the context are absent in the abbreviated form."""

    description: str | None = None
    context_id: int | None = None
    context_type: str | None = None
    parent_outcome_group: OutcomeGroupRef | None = None
    import_url: str | None = None
    # Subgroup listings use the abbreviated form, which has no parent; the client fills this in
    # from the group it listed so callers always know the parent id.
    parent_outcome_group_id: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _parent_id(cls, data: Any) -> Any:
        """Derive ``parent_outcome_group_id`` from the embedded parent when Canvas sent one."""
        if isinstance(data, dict) and data.get("parent_outcome_group_id") is None:
            parent = data.get("parent_outcome_group")
            if isinstance(parent, dict) and "id" in parent:
                return {**data, "parent_outcome_group_id": parent["id"]}
        return data


class Outcome(CanvasModel):
    """A learning outcome. ``description`` and the rubric fields are absent in the abbreviated form."""

    id: int
    title: str
    display_name: str | None = None
    description: str | None = None
    vendor_guid: str | None = None
    context_id: int | None = None
    context_type: str | None = None
    url: str | None = None
    can_edit: bool | None = None
    calculation_method: str | None = None
    calculation_int: int | None = None
    points_possible: float | None = None
    mastery_points: float | None = None
    ratings: list[dict[str, Any]] | None = None
    assessed: bool | None = None
    has_updateable_rubrics: bool | None = None


class OutcomeLink(CanvasModel):
    """An outcome linked into a group, with both embedded."""

    url: str | None = None
    context_id: int | None = None
    context_type: str | None = None
    outcome_group: OutcomeGroupRef
    outcome: Outcome
    assessed: bool | None = None
    can_unlink: bool | None = None

    @property
    def group_id(self) -> int:
        """Id of the group holding the link."""
        return self.outcome_group.id

    @property
    def outcome_id(self) -> int:
        """Id of the linked outcome."""
        return self.outcome.id
