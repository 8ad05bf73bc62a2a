"""The control API under ``/_sim/``: reset, state and stats dumps, faults, throttle, paging, auth.

Control routes are never throttled, faulted or counted in the stats.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from simulators.canvas.auth import AuthConfig
from simulators.canvas.paging import PagingConfig
from simulators.canvas.responses import CanvasJSONResponse
from simulators.canvas.throttle import ThrottleConfig
from simulators.faults import faults_endpoint

if TYPE_CHECKING:
    from simulators.canvas.state import CanvasSimulator

M = TypeVar("M", bound=BaseModel)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = await request.json()
    return data if isinstance(data, dict) else {}


def _merged(model: type[M], current: M, changes: dict[str, Any]) -> M:
    """Partial update: fields not given keep their current value."""
    return model.model_validate({**current.model_dump(), **changes})


def _invalid(exc: ValidationError) -> Response:
    errors = exc.errors(include_url=False, include_context=False)
    return CanvasJSONResponse({"errors": errors}, status_code=422)


def control_routes(sim: CanvasSimulator) -> list[BaseRoute]:
    """Routes of the control API for ``sim``."""

    async def reset(request: Request) -> Response:
        sim.reset()
        return CanvasJSONResponse({"reset": True})

    async def state(request: Request) -> Response:
        return CanvasJSONResponse(sim.snapshot())

    async def stats(request: Request) -> Response:
        return CanvasJSONResponse(sim.stats.snapshot())

    async def faults(request: Request) -> Response:
        return await faults_endpoint(request, sim.faults)

    async def throttle(request: Request) -> Response:
        if request.method == "PUT":
            try:
                sim.throttle.configure(_merged(ThrottleConfig, sim.throttle.config, await _body(request)))
            except ValidationError as exc:
                return _invalid(exc)
        return CanvasJSONResponse(sim.throttle.describe())

    async def paging(request: Request) -> Response:
        if request.method == "PUT":
            try:
                sim.paging = _merged(PagingConfig, sim.paging, await _body(request))
            except ValidationError as exc:
                return _invalid(exc)
        return CanvasJSONResponse(sim.paging.model_dump())

    async def auth(request: Request) -> Response:
        if request.method == "PUT":
            body = await _body(request)
            try:
                tokens = body.pop("tokens", None) or {}
                config = _merged(AuthConfig, sim.tokens.config, body)
                for token, spec in tokens.items():
                    sim.add_token(str(token), spec)
            except ValidationError as exc:
                return _invalid(exc)
            sim.tokens.config = config
        return CanvasJSONResponse(sim.tokens.describe())

    async def accounts(request: Request) -> Response:
        body = await _body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            return CanvasJSONResponse({"errors": [{"message": "name is required"}]}, status_code=422)
        try:
            account = sim.add_account(
                name, account_id=body.get("id"), sis_account_id=body.get("sis_account_id"),
                parent_account_id=body.get("parent_account_id"),
            )
        except ValueError as exc:
            return CanvasJSONResponse({"errors": [{"message": str(exc)}]}, status_code=422)
        with sim.lock:
            root = sim.outcomes.root_group(account)
        return CanvasJSONResponse({**account.to_json(), "root_outcome_group_id": root.id})

    return [
        Route("/_sim/reset", reset, methods=["POST"]),
        Route("/_sim/state", state, methods=["GET"]),
        Route("/_sim/stats", stats, methods=["GET"]),
        Route("/_sim/faults", faults, methods=["GET", "PUT", "POST", "DELETE"]),
        Route("/_sim/throttle", throttle, methods=["GET", "PUT"]),
        Route("/_sim/paging", paging, methods=["GET", "PUT"]),
        Route("/_sim/auth", auth, methods=["GET", "PUT"]),
        Route("/_sim/accounts", accounts, methods=["POST"]),
    ]
