"""HTTP routes and JSON shapes for account outcome groups, outcomes and outcome links.

Not in the seeds. Behaviour follows Canvas's public REST API documentation:
- Outcome Groups: https://developerdocs.instructure.com/services/canvas/resources/outcome_groups
  (root-group redirect, list groups and links, show/update/delete group, list/create subgroups,
  list linked outcomes, create/link an outcome, unlink an outcome)
- Outcomes: https://developerdocs.instructure.com/services/canvas/resources/outcomes
  (show and update an outcome)
Response shapes (abbreviated vs full forms) and the failure bodies follow the generated docs'
source, ``outcome_groups_api_controller.rb`` and ``lib/api/v1/outcome.rb`` in instructure/canvas-lms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from simulators.canvas.accounts import Account
from simulators.canvas.api import begin, style_param
from simulators.canvas.outcome_store import (
    ACTIVE,
    OutcomeGroupRecord,
    OutcomeLinkRecord,
    OutcomeRecord,
    OutcomeStore,
    text_param,
)
from simulators.canvas.paging import paginate
from simulators.canvas.params import to_bool
from simulators.canvas.responses import CanvasJSONResponse

if TYPE_CHECKING:
    from simulators.canvas.state import CanvasSimulator


# --- JSON rendering (lib/api/v1/outcome.rb shapes) -----------------------------------------------


def group_json(
    store: OutcomeStore, group: OutcomeGroupRecord, *, style: str, can_edit: bool,
) -> dict[str, Any]:
    """An OutcomeGroup; the abbreviated form drops import_url, parent, context and description."""
    base = f"/api/v1/accounts/{group.account_id}/outcome_groups/{group.id}"
    data: dict[str, Any] = {
        "id": group.id, "title": group.title, "vendor_guid": group.vendor_guid, "url": base,
        "subgroups_url": f"{base}/subgroups", "outcomes_url": f"{base}/outcomes", "can_edit": can_edit,
    }
    if style != "abbrev":
        data["import_url"] = f"{base}/import"
        parent = store.parent(group)
        if parent is not None:
            data["parent_outcome_group"] = group_json(store, parent, style="abbrev", can_edit=can_edit)
        data["context_id"] = group.account_id
        data["context_type"] = "Account"
        data["description"] = group.description
    return data


def outcome_json(outcome: OutcomeRecord, *, style: str, can_edit: bool) -> dict[str, Any]:
    """An Outcome; the abbreviated form drops description and the rubric fields."""
    data: dict[str, Any] = {
        "id": outcome.id, "context_type": "Account", "context_id": outcome.account_id,
        "vendor_guid": outcome.vendor_guid, "display_name": outcome.display_name, "title": outcome.title,
        "url": f"/api/v1/outcomes/{outcome.id}", "can_edit": can_edit, "has_updateable_rubrics": False,
    }
    if style != "abbrev":
        data["description"] = outcome.description
        data["calculation_method"] = outcome.calculation_method
        if outcome.calculation_method in ("decaying_average", "n_mastery", "weighted_average"):
            data["calculation_int"] = outcome.calculation_int
        data["points_possible"] = outcome.points_possible
        data["mastery_points"] = outcome.mastery_points
        data["ratings"] = outcome.ratings
        data["assessed"] = False
    return data


def link_json(
    store: OutcomeStore, link: OutcomeLinkRecord, *, outcome_style: str, group_style: str, can_edit: bool,
) -> dict[str, Any]:
    """An OutcomeLink with its group and outcome embedded."""
    group = store.group_record(link.group_id)
    outcome = store.outcome_record(link.outcome_id)
    data: dict[str, Any] = {
        "context_type": "Account", "context_id": link.account_id,
        "url": f"/api/v1/accounts/{link.account_id}/outcome_groups/{group.id}/outcomes/{outcome.id}",
        "outcome_group": group_json(store, group, style=group_style, can_edit=can_edit),
        "outcome": outcome_json(outcome, style=outcome_style, can_edit=can_edit),
        "assessed": False,
    }
    if link.workflow_state == ACTIVE:
        data["can_unlink"] = can_edit and store.can_unlink(link)
    return data


# --- routes --------------------------------------------------------------------------------------


class OutcomeRoutes:
    """HTTP handlers for the outcome group and outcome endpoints of one simulator."""

    def __init__(self, sim: CanvasSimulator) -> None:
        self.sim = sim

    @property
    def store(self) -> OutcomeStore:
        """The simulator's outcome store."""
        return self.sim.outcomes

    def routes(self) -> list[BaseRoute]:
        """The API routes, account-scoped plus ``/api/v1/outcomes/:id``."""
        acct = "/api/v1/accounts/{account_id}"
        grp = acct + "/outcome_groups/{group_id}"
        return [
            Route(acct + "/root_outcome_group", self.root_redirect, methods=["GET"]),
            Route(acct + "/outcome_groups", self.list_groups, methods=["GET"]),
            Route(acct + "/outcome_group_links", self.list_account_links, methods=["GET"]),
            Route(grp, self.show_group, methods=["GET"]),
            Route(grp, self.update_group, methods=["PUT"]),
            Route(grp, self.delete_group, methods=["DELETE"]),
            Route(grp + "/subgroups", self.list_subgroups, methods=["GET"]),
            Route(grp + "/subgroups", self.create_subgroup, methods=["POST"]),
            Route(grp + "/outcomes", self.list_group_links, methods=["GET"]),
            Route(grp + "/outcomes", self.create_outcome, methods=["POST"]),
            Route(grp + "/outcomes/{outcome_id}", self.link_outcome, methods=["PUT"]),
            Route(grp + "/outcomes/{outcome_id}", self.unlink_outcome, methods=["DELETE"]),
            Route("/api/v1/outcomes/{outcome_id}", self.show_outcome, methods=["GET"]),
            Route("/api/v1/outcomes/{outcome_id}", self.update_outcome, methods=["PUT"]),
        ]

    def control_routes(self) -> list[BaseRoute]:
        """``PUT /_sim/outcomes/{id}/alignment {"aligned": bool}`` to simulate aligned outcomes."""
        return [Route("/_sim/outcomes/{outcome_id}/alignment", self.set_alignment, methods=["PUT"])]

    def _account(self, request: Request) -> Account:
        return self.sim.accounts.resolve(request.path_params["account_id"])

    def _group(self, request: Request) -> tuple[Account, OutcomeGroupRecord]:
        account = self._account(request)
        return account, self.store.group(account, request.path_params["group_id"])

    def _link(self, link: OutcomeLinkRecord, params: dict[str, Any], can_edit: bool) -> dict[str, Any]:
        return link_json(
            self.store, link, outcome_style=style_param(params, "outcome_style"),
            group_style=style_param(params, "outcome_group_style"), can_edit=can_edit,
        )

    async def root_redirect(self, request: Request) -> Response:
        """Canvas redirects to the root group's URL."""
        await begin(request, self.sim.tokens)
        with self.sim.lock:
            account = self._account(request)
            root = self.store.root_group(account)
        base = str(request.base_url).rstrip("/")
        target = f"{base}/api/v1/accounts/{account.id}/outcome_groups/{root.id}"
        return RedirectResponse(target, status_code=302)

    async def list_groups(self, request: Request) -> Response:
        """Every outcome group of the account (full form)."""
        call = await begin(request, self.sim.tokens)
        with self.sim.lock:
            groups = self.store.groups(self._account(request))
            page, headers = paginate(request, groups, self.sim.paging)
            body = [group_json(self.store, g, style="full", can_edit=call.principal.can_manage) for g in page]
        return CanvasJSONResponse(body, headers=headers)

    async def list_account_links(self, request: Request) -> Response:
        """Every outcome link in the account, by link id."""
        call = await begin(request, self.sim.tokens)
        with self.sim.lock:
            links = self.store.account_links(self._account(request))
            page, headers = paginate(request, links, self.sim.paging)
            body = [self._link(link, call.params, call.principal.can_manage) for link in page]
        return CanvasJSONResponse(body, headers=headers)

    async def show_group(self, request: Request) -> Response:
        """One group, full form."""
        call = await begin(request, self.sim.tokens)
        with self.sim.lock:
            _, group = self._group(request)
            body = group_json(self.store, group, style="full", can_edit=call.principal.can_manage)
        return CanvasJSONResponse(body)

    async def update_group(self, request: Request) -> Response:
        """Update title/description/vendor_guid/parent."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            _, group = self._group(request)
            self.store.update_group(group, call.params)
            body = group_json(self.store, group, style="full", can_edit=True)
        return CanvasJSONResponse(body)

    async def delete_group(self, request: Request) -> Response:
        """Delete a group and everything under it; answers the deleted group."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            _, group = self._group(request)
            body = group_json(self.store, group, style="full", can_edit=call.principal.can_manage)
            self.store.delete_group(group)
        return CanvasJSONResponse(body)

    async def list_subgroups(self, request: Request) -> Response:
        """Immediate subgroups, abbreviated form, by title."""
        call = await begin(request, self.sim.tokens)
        with self.sim.lock:
            _, group = self._group(request)
            page, headers = paginate(request, self.store.subgroups(group), self.sim.paging)
            can_edit = call.principal.can_manage
            body = [group_json(self.store, g, style="abbrev", can_edit=can_edit) for g in page]
        return CanvasJSONResponse(body, headers=headers)

    async def create_subgroup(self, request: Request) -> Response:
        """A new subgroup (title required)."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            _, group = self._group(request)
            params = call.params
            child = self.store.create_subgroup(
                group, title=text_param(params, "title"), description=text_param(params, "description"),
                vendor_guid=text_param(params, "vendor_guid"),
            )
            body = group_json(self.store, child, style="full", can_edit=True)
        return CanvasJSONResponse(body)

    async def list_group_links(self, request: Request) -> Response:
        """Links of one group by outcome title; ``outcome_style=full`` adds descriptions."""
        call = await begin(request, self.sim.tokens)
        with self.sim.lock:
            _, group = self._group(request)
            page, headers = paginate(request, self.store.group_links(group), self.sim.paging)
            # This endpoint takes outcome_style only; groups stay abbreviated.
            params = {**call.params, "outcome_group_style": "abbrev"}
            body = [self._link(link, params, call.principal.can_manage) for link in page]
        return CanvasJSONResponse(body, headers=headers)

    async def create_outcome(self, request: Request) -> Response:
        """POST to the collection: create a new outcome (or link ``outcome_id``) in the group."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            account, group = self._group(request)
            if call.params.get("outcome_id") not in (None, ""):
                link = self.store.link_existing(
                    account, group, str(call.params["outcome_id"]), text_param(call.params, "move_from")
                )
            else:
                link = self.store.create_outcome(group, call.params)
            body = link_json(self.store, link, outcome_style="full", group_style="abbrev", can_edit=True)
        return CanvasJSONResponse(body)

    async def link_outcome(self, request: Request) -> Response:
        """PUT to the link URL: link an existing outcome (other params except move_from ignored)."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            account, group = self._group(request)
            link = self.store.link_existing(
                account, group, request.path_params["outcome_id"], text_param(call.params, "move_from")
            )
            body = link_json(self.store, link, outcome_style="full", group_style="abbrev", can_edit=True)
        return CanvasJSONResponse(body)

    async def unlink_outcome(self, request: Request) -> Response:
        """DELETE the link; answers the removed link."""
        await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            _, group = self._group(request)
            link = self.store.unlink(group, request.path_params["outcome_id"])
            body = link_json(self.store, link, outcome_style="abbrev", group_style="abbrev", can_edit=True)
        return CanvasJSONResponse(body)

    async def show_outcome(self, request: Request) -> Response:
        """GET /api/v1/outcomes/:id (full form)."""
        call = await begin(request, self.sim.tokens)
        with self.sim.lock:
            outcome = self.store.outcome(request.path_params["outcome_id"])
            body = outcome_json(outcome, style="full", can_edit=call.principal.can_manage)
        return CanvasJSONResponse(body)

    async def update_outcome(self, request: Request) -> Response:
        """PUT /api/v1/outcomes/:id: fields not given stay as they are."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            outcome = self.store.outcome(request.path_params["outcome_id"])
            self.store.update_outcome(outcome, call.params)
            body = outcome_json(outcome, style="full", can_edit=True)
        return CanvasJSONResponse(body)

    async def set_alignment(self, request: Request) -> Response:
        """Control: mark an outcome aligned (or not)."""
        data = await request.json()
        aligned = to_bool(data.get("aligned")) if isinstance(data, dict) else None
        with self.sim.lock:
            outcome = self.store.set_aligned(int(request.path_params["outcome_id"]), bool(aligned))
        return CanvasJSONResponse({"id": outcome.id, "aligned": outcome.aligned})
