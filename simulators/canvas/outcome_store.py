"""In-memory account outcome groups, outcomes and links, with Canvas's rules for each change.

Not in the seeds. Rules follow Canvas's public REST API documentation:
https://developerdocs.instructure.com/services/canvas/resources/outcome_groups and
https://developerdocs.instructure.com/services/canvas/resources/outcomes, e.g. "it may only be
linked into a particular group once", deleting a group deletes descendants and links, and
unlinking "only deletes the outcome itself if this was the last link to the outcome in any group
in any context. Aligned outcomes cannot be deleted".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulators.canvas.accounts import Account, AccountRegistry, IdSequence
from simulators.canvas.responses import CanvasHTTPError, bad_request, not_found, validation_error
from simulators.canvas.stats import Stats

ACTIVE = "active"
DELETED = "deleted"
MAX_TITLE = 255
CALCULATION_METHODS = ("weighted_average", "decaying_average", "n_mastery", "latest", "highest", "average")
# Canvas's error when the last link of an aligned outcome would go (ContentTag#destroy).
LAST_ALIGNED_LINK = "Link is the last link to an aligned outcome. Remove the alignment and then try again"


@dataclass
class OutcomeGroupRecord:
    """A learning outcome group owned by an account."""

    id: int
    account_id: int
    title: str
    description: str | None = None
    vendor_guid: str | None = None
    parent_id: int | None = None
    workflow_state: str = ACTIVE


@dataclass
class OutcomeRecord:
    """A learning outcome; its owning context is ``account_id``."""

    id: int
    account_id: int
    title: str
    display_name: str | None = None
    description: str | None = None
    vendor_guid: str | None = None
    calculation_method: str = "decaying_average"
    calculation_int: int | None = 65
    mastery_points: float | None = None
    points_possible: float | None = None
    ratings: list[dict[str, Any]] | None = None
    aligned: bool = False
    workflow_state: str = ACTIVE


@dataclass
class OutcomeLinkRecord:
    """An outcome linked into a group (a ContentTag in Canvas)."""

    id: int
    account_id: int
    group_id: int
    outcome_id: int
    workflow_state: str = ACTIVE


@dataclass
class _Tables:
    groups: dict[int, OutcomeGroupRecord] = field(default_factory=dict)
    outcomes: dict[int, OutcomeRecord] = field(default_factory=dict)
    links: dict[int, OutcomeLinkRecord] = field(default_factory=dict)
    roots: dict[int, int] = field(default_factory=dict)


def text_param(params: dict[str, Any], name: str) -> str | None:
    """A parameter as text, or None when absent."""
    value = params.get(name)
    return None if value is None else str(value)


def _number(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise validation_error(name, "not_a_number", "is not a number") from exc


def _check_title(title: str | None) -> str:
    if title is None or not title.strip():
        raise validation_error("title", "blank", "can't be blank")
    if len(title) > MAX_TITLE:
        raise validation_error("title", "too_long", f"is too long (maximum is {MAX_TITLE} characters)")
    return title


class OutcomeStore:
    """Groups, outcomes and links for every account, with Canvas's rules for each change."""

    def __init__(self, accounts: AccountRegistry, ids: IdSequence, stats: Stats) -> None:
        self._accounts = accounts
        self._ids = ids
        self._stats = stats
        self._t = _Tables()

    def reset(self) -> None:
        """Drop everything."""
        self._t = _Tables()

    # --- groups -------------------------------------------------------------------------------

    def _active_groups(self) -> list[OutcomeGroupRecord]:
        return [g for g in self._t.groups.values() if g.workflow_state == ACTIVE]

    def root_group(self, account: Account) -> OutcomeGroupRecord:
        """The account's root group, created on first use with the account's name as its title."""
        gid = self._t.roots.get(account.id)
        if gid is None:
            gid = self._ids.next("outcome_group")
            self._t.groups[gid] = OutcomeGroupRecord(gid, account.id, account.name)
            self._t.roots[account.id] = gid
        return self._t.groups[gid]

    def group(self, account: Account, group_id: str | int) -> OutcomeGroupRecord:
        """An active group of ``account`` or the Canvas 404."""
        try:
            group = self._t.groups.get(int(group_id))
        except ValueError:
            group = None
        if group is None or group.workflow_state != ACTIVE or group.account_id != account.id:
            raise not_found()
        return group

    def groups(self, account: Account) -> list[OutcomeGroupRecord]:
        """Every active group of the account, by id."""
        self.root_group(account)
        return [g for g in self._active_groups() if g.account_id == account.id]

    def subgroups(self, group: OutcomeGroupRecord) -> list[OutcomeGroupRecord]:
        """Immediate active children, ordered by title like Canvas."""
        children = [g for g in self._active_groups() if g.parent_id == group.id]
        return sorted(children, key=lambda g: (g.title.lower(), g.id))

    def parent(self, group: OutcomeGroupRecord) -> OutcomeGroupRecord | None:
        """The parent group, if any."""
        return None if group.parent_id is None else self._t.groups[group.parent_id]

    def create_subgroup(
        self, parent: OutcomeGroupRecord, *, title: str | None, description: str | None,
        vendor_guid: str | None,
    ) -> OutcomeGroupRecord:
        """A new empty subgroup. Canvas answers a bare ``"error"`` when the save fails."""
        if title is None or not title.strip() or len(title) > MAX_TITLE:
            raise bad_request()
        gid = self._ids.next("outcome_group")
        group = OutcomeGroupRecord(gid, parent.account_id, title, description, vendor_guid, parent.id)
        self._t.groups[gid] = group
        self._stats.record_create("outcome_group", vendor_guid)
        return group

    def _descendants(self, group: OutcomeGroupRecord) -> list[OutcomeGroupRecord]:
        found: list[OutcomeGroupRecord] = []
        stack = [group]
        while stack:
            current = stack.pop()
            found.append(current)
            stack.extend(self.subgroups(current))
        return found

    def update_group(self, group: OutcomeGroupRecord, params: dict[str, Any]) -> OutcomeGroupRecord:
        """Change title/description/vendor_guid and optionally move under a new parent."""
        if group.parent_id is None:
            raise bad_request()  # the root group cannot be edited
        title = _check_title(text_param(params, "title")) if "title" in params else group.title
        new_parent: OutcomeGroupRecord | None = None
        raw_parent = params.get("parent_outcome_group_id")
        if raw_parent not in (None, "") and str(raw_parent) != str(group.parent_id):
            account = self._accounts.accounts[group.account_id]
            new_parent = self.group(account, str(raw_parent))
            # No cycles: the new parent may not sit inside the moved group.
            if new_parent.id in {g.id for g in self._descendants(group)}:
                raise bad_request()
        group.title = title
        if "description" in params:
            group.description = text_param(params, "description")
        if "vendor_guid" in params:
            group.vendor_guid = text_param(params, "vendor_guid")
        if new_parent is not None:
            group.parent_id = new_parent.id
        return group

    def delete_group(self, group: OutcomeGroupRecord) -> OutcomeGroupRecord:
        """Delete the group, its descendants and their links; outcomes whose links all went go too."""
        if group.parent_id is None:
            raise bad_request()
        subtree = {g.id for g in self._descendants(group)}
        doomed = [link for link in self._active_links() if link.group_id in subtree]
        doomed_ids = {link.id for link in doomed}
        orphaned = {
            link.outcome_id for link in doomed
            if not any(
                other.outcome_id == link.outcome_id and other.id not in doomed_ids
                for other in self._active_links()
            )
        }
        if any(self._t.outcomes[oid].aligned for oid in orphaned):
            # Canvas renders the exception itself, which serialises as a JSON string.
            raise bad_request(LAST_ALIGNED_LINK)
        for link in doomed:
            link.workflow_state = DELETED
        for oid in orphaned:
            self._t.outcomes[oid].workflow_state = DELETED
        for gid in subtree:
            self._t.groups[gid].workflow_state = DELETED
        return group

    # --- outcomes and links -------------------------------------------------------------------

    def _active_links(self) -> list[OutcomeLinkRecord]:
        return [link for link in self._t.links.values() if link.workflow_state == ACTIVE]

    def outcome_record(self, outcome_id: int) -> OutcomeRecord:
        """The outcome behind a link, deleted or not."""
        return self._t.outcomes[outcome_id]

    def group_record(self, group_id: int) -> OutcomeGroupRecord:
        """A group by id, deleted or not."""
        return self._t.groups[group_id]

    def outcome(self, outcome_id: str | int) -> OutcomeRecord:
        """An active outcome or the Canvas 404."""
        try:
            outcome = self._t.outcomes.get(int(outcome_id))
        except ValueError:
            outcome = None
        if outcome is None or outcome.workflow_state != ACTIVE:
            raise not_found()
        return outcome

    def group_links(self, group: OutcomeGroupRecord) -> list[OutcomeLinkRecord]:
        """Active links of one group, ordered by outcome title like Canvas."""
        links = [link for link in self._active_links() if link.group_id == group.id]
        return sorted(links, key=lambda link: (self._t.outcomes[link.outcome_id].title.lower(), link.id))

    def account_links(self, account: Account) -> list[OutcomeLinkRecord]:
        """Every active link in the account, ordered by link id like Canvas."""
        return sorted(
            (link for link in self._active_links() if link.account_id == account.id), key=lambda link: link.id
        )

    def links_of(self, outcome_id: int) -> list[OutcomeLinkRecord]:
        """Active links to one outcome, in any account."""
        return [link for link in self._active_links() if link.outcome_id == outcome_id]

    def _apply_outcome_fields(self, outcome: OutcomeRecord, params: dict[str, Any]) -> None:
        for name in ("display_name", "description", "vendor_guid"):
            if name in params:
                setattr(outcome, name, text_param(params, name))
        method = params.get("calculation_method")
        if method is not None:
            if method not in CALCULATION_METHODS:
                raise validation_error(
                    "calculation_method", "inclusion",
                    f"calculation_method must be one of {', '.join(CALCULATION_METHODS)}",
                )
            outcome.calculation_method = str(method)
            outcome.calculation_int = 65 if method in ("decaying_average", "weighted_average") else None
        if params.get("calculation_int") not in (None, ""):
            outcome.calculation_int = int(_number(params["calculation_int"], "calculation_int"))
        ratings = params.get("ratings")
        if isinstance(ratings, list) and ratings:
            # Documented defaults: "No description" and 0 points for ratings that lack them.
            cleaned = [
                (str(r.get("description") or "No description"), _number(r.get("points") or 0, "ratings"))
                for r in ratings if isinstance(r, dict)
            ]
            outcome.ratings = [{"description": d, "points": p} for d, p in cleaned]
            outcome.points_possible = max(p for _, p in cleaned) if cleaned else None
            outcome.mastery_points = outcome.points_possible
        if params.get("mastery_points") not in (None, "") and outcome.ratings:
            outcome.mastery_points = _number(params["mastery_points"], "mastery_points")

    def create_outcome(self, group: OutcomeGroupRecord, params: dict[str, Any]) -> OutcomeLinkRecord:
        """A new outcome owned by the group's account, linked into the group."""
        title = _check_title(text_param(params, "title"))
        oid = self._ids.next("outcome")
        outcome = OutcomeRecord(oid, group.account_id, title)
        self._apply_outcome_fields(outcome, params)
        self._t.outcomes[oid] = outcome
        self._stats.record_create("outcome", outcome.vendor_guid)
        return self._add_link(group, outcome)

    def _add_link(self, group: OutcomeGroupRecord, outcome: OutcomeRecord) -> OutcomeLinkRecord:
        # "it may only be linked into a particular group once": linking again returns the link.
        for link in self._active_links():
            if link.group_id == group.id and link.outcome_id == outcome.id:
                return link
        lid = self._ids.next("outcome_link")
        link = OutcomeLinkRecord(lid, group.account_id, group.id, outcome.id)
        self._t.links[lid] = link
        return link

    def link_existing(
        self, account: Account, group: OutcomeGroupRecord, outcome_id: str, move_from: str | None,
    ) -> OutcomeLinkRecord:
        """Link an available outcome into the group, or move its link from ``move_from``."""
        if move_from not in (None, ""):
            old_group = self.group(account, str(move_from))
            for link in self._active_links():
                if link.group_id == old_group.id and str(link.outcome_id) == str(outcome_id):
                    link.group_id = group.id
                    return link
            raise bad_request()
        try:
            outcome = self._t.outcomes.get(int(outcome_id))
        except ValueError:
            outcome = None
        # Available means owned by this account or one of its ancestors.
        if (
            outcome is None or outcome.workflow_state != ACTIVE
            or outcome.account_id not in self._accounts.chain(account.id)
        ):
            raise bad_request()
        return self._add_link(group, outcome)

    def can_unlink(self, link: OutcomeLinkRecord) -> bool:
        """False for the last link to an aligned outcome."""
        outcome = self._t.outcomes[link.outcome_id]
        return not (outcome.aligned and len(self.links_of(outcome.id)) <= 1)

    def unlink(self, group: OutcomeGroupRecord, outcome_id: str) -> OutcomeLinkRecord:
        """Remove the link; the outcome itself goes when this was its last link anywhere."""
        matches = [lk for lk in self._active_links() if lk.group_id == group.id]
        link = next((lk for lk in matches if str(lk.outcome_id) == outcome_id), None)
        if link is None:
            raise not_found()
        if not self.can_unlink(link):
            raise CanvasHTTPError(400, {"message": LAST_ALIGNED_LINK})
        link.workflow_state = DELETED
        if not self.links_of(link.outcome_id):
            self._t.outcomes[link.outcome_id].workflow_state = DELETED
        return link

    def update_outcome(self, outcome: OutcomeRecord, params: dict[str, Any]) -> OutcomeRecord:
        """Change the given fields; unknown fields are ignored, as documented."""
        title = _check_title(text_param(params, "title")) if "title" in params else outcome.title
        self._apply_outcome_fields(outcome, params)
        outcome.title = title
        return outcome

    def set_aligned(self, outcome_id: int, aligned: bool) -> OutcomeRecord:
        """Mark an outcome as aligned to content (what blocks removing its last link)."""
        outcome = self.outcome(outcome_id)
        outcome.aligned = aligned
        return outcome

    # --- state dump ---------------------------------------------------------------------------

    def account_snapshot(self, account: Account) -> dict[str, Any]:
        """Groups of one account with the outcomes linked into each."""
        root = self.root_group(account)
        groups = []
        for group in sorted(self.groups(account), key=lambda g: g.id):
            outcomes = []
            for link in self.group_links(group):
                o = self._t.outcomes[link.outcome_id]
                outcomes.append({
                    "id": o.id, "link_id": link.id, "title": o.title, "display_name": o.display_name,
                    "description": o.description, "vendor_guid": o.vendor_guid,
                    "context_account_id": o.account_id, "aligned": o.aligned,
                })
            groups.append({
                "id": group.id, "title": group.title, "description": group.description,
                "vendor_guid": group.vendor_guid, "parent_outcome_group_id": group.parent_id,
                "outcomes": outcomes,
            })
        return {"root_outcome_group_id": root.id, "outcome_groups": groups}

    def counts(self) -> dict[str, int]:
        """Active groups, outcomes and links."""
        return {
            "outcome_groups": sum(g.workflow_state == ACTIVE for g in self._t.groups.values()),
            "outcomes": sum(o.workflow_state == ACTIVE for o in self._t.outcomes.values()),
            "outcome_links": len(self._active_links()),
        }
