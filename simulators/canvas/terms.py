"""HTTP routes for enrollment terms (seed 002:L8124-8192; canvas.md §3.3, §4 "Terms").

``GET /api/v1/accounts/:account_id/terms`` answers ``{"enrollment_terms": [...]}`` (seed 002:L8127)
with ``workflow_state[]`` (active|deleted|all, default active); ``GET .../terms/:id`` includes
overrides; POST/PUT take ``enrollment_term[...]``; DELETE answers the deleted term.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from simulators.canvas.api import begin
from simulators.canvas.paging import paginate
from simulators.canvas.params import text, text_list
from simulators.canvas.responses import CanvasJSONResponse
from simulators.canvas.term_store import TermRecord

if TYPE_CHECKING:
    from simulators.canvas.state import CanvasSimulator


def term_json(term: TermRecord, *, overrides: bool = True) -> dict[str, Any]:
    """An EnrollmentTerm."""
    data: dict[str, Any] = {
        "id": term.id, "sis_term_id": term.sis_term_id, "sis_import_id": None, "name": term.name,
        "start_at": term.start_at, "end_at": term.end_at, "workflow_state": term.workflow_state,
        "created_at": term.created_at, "grading_period_group_id": None,
    }
    if overrides:
        data["overrides"] = term.overrides
    return data


class TermRoutes:
    """Enrollment-term handlers of one simulator."""

    def __init__(self, sim: CanvasSimulator) -> None:
        self.sim = sim

    def routes(self) -> list[BaseRoute]:
        """The API routes."""
        base = "/api/v1/accounts/{account_id}/terms"
        return [
            Route(base, self.list_terms, methods=["GET"]),
            Route(base, self.create, methods=["POST"]),
            Route(base + "/{term_id}", self.show, methods=["GET"]),
            Route(base + "/{term_id}", self.update, methods=["PUT"]),
            Route(base + "/{term_id}", self.delete, methods=["DELETE"]),
        ]

    def _root(self, request: Request) -> int:
        return self.sim.accounts.resolve(request.path_params["account_id"]).root_id

    async def list_terms(self, request: Request) -> Response:
        """Terms of the root account, wrapped in ``enrollment_terms``."""
        call = await begin(request, self.sim.tokens)
        with self.sim.lock:
            terms = self.sim.terms.listing(self._root(request), text_list(call.params, "workflow_state"),
                                           text(call.params, "term_name"))
            page, headers = paginate(request, terms, self.sim.paging)
            with_overrides = "overrides" in text_list(call.params, "include")
            body = {"enrollment_terms": [term_json(t, overrides=with_overrides) for t in page]}
            return CanvasJSONResponse(body, headers=headers)

    async def show(self, request: Request) -> Response:
        """One term (by id, ``sis_term_id:`` or ``default``), overrides included."""
        await begin(request, self.sim.tokens)
        with self.sim.lock:
            term = self.sim.terms.resolve(self._root(request), request.path_params["term_id"])
            return CanvasJSONResponse(term_json(term))

    async def create(self, request: Request) -> Response:
        """A new term; a taken ``sis_term_id`` answers the typed 400."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            account = self.sim.accounts.resolve(request.path_params["account_id"])
            term = self.sim.terms.create(account, call.params, can_manage_sis=call.principal.can_manage_sis)
            return CanvasJSONResponse(term_json(term))

    async def update(self, request: Request) -> Response:
        """Change the given fields."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            term = self.sim.terms.resolve(self._root(request), request.path_params["term_id"])
            self.sim.terms.update(term, call.params, can_manage_sis=call.principal.can_manage_sis)
            return CanvasJSONResponse(term_json(term))

    async def delete(self, request: Request) -> Response:
        """Mark the term deleted and answer it."""
        await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            term = self.sim.terms.resolve(self._root(request), request.path_params["term_id"])
            return CanvasJSONResponse(term_json(self.sim.terms.delete(term)))
