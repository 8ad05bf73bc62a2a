"""The control API under ``/_sim/``: reset, seed, state, stats, config, clock, faults, keys, sites
and assignments. Never rate limited, faulted or counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from simulators.control_http import invalid_request, json_response, read_body
from simulators.faults import faults_endpoint
from simulators.matrixlms.errors import MatrixError
from simulators.matrixlms.generator import SeedSpec
from simulators.matrixlms.keys import DEMO_SITE, KeyGrant
from simulators.matrixlms.records import Assignment
from simulators.matrixlms.render import assignment_info

if TYPE_CHECKING:
    from simulators.matrixlms.state import MatrixSimulator


class SeedRequest(BaseModel):
    """POST /_sim/seed: the generated district of one site (``size`` students)."""

    model_config = ConfigDict(extra="forbid")

    site: str = DEMO_SITE
    size: int = Field(default=100, ge=0, le=500_000)
    staff: int | None = Field(default=None, ge=1)
    classes: int | None = Field(default=None, ge=0)
    students_per_class: int = Field(default=30, ge=0, le=1_000)
    assignments_per_class: int = Field(default=3, ge=0, le=100)
    graded_share: float = Field(default=0.5, ge=0, le=1)
    twins: int | None = Field(default=None, ge=0, description="pairs sharing first, last name and birth date")
    examples: bool | None = Field(default=None, description="also load the seed's example records")
    seed: int = 1


class ClockRequest(BaseModel):
    """POST /_sim/clock: a new time scale and/or a jump forward."""

    model_config = ConfigDict(extra="forbid")

    scale: float | None = Field(default=None, ge=0)
    advance_seconds: float | None = Field(default=None, ge=0)


class KeysRequest(BaseModel):
    """PUT /_sim/keys adds keys; DELETE /_sim/keys removes them."""

    model_config = ConfigDict(extra="forbid")

    keys: dict[str, KeyGrant] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)


class SiteRequest(BaseModel):
    """PUT /_sim/sites: create a site or switch its API access (Admin/Api, seed 000:L13)."""

    model_config = ConfigDict(extra="forbid")

    site: str
    api_enabled: bool = True


class AssignmentRequest(BaseModel):
    """POST /_sim/assignments: what a teacher would create in the UI (the API cannot, A.6.7)."""

    model_config = ConfigDict(extra="forbid")

    site: str = DEMO_SITE
    class_id: int
    name: str
    type: str = "Freeform"
    points: float = 100.0


def control_routes(sim: MatrixSimulator) -> list[BaseRoute]:
    """The ``/_sim/`` routes of ``sim``."""

    async def reset(request: Request) -> Response:
        sim.reset()
        return json_response({"reset": True})

    async def seed(request: Request) -> Response:
        try:
            req = SeedRequest.model_validate(await read_body(request))
        except (ValidationError, orjson.JSONDecodeError) as exc:
            return invalid_request(exc)
        spec = SeedSpec(**req.model_dump(exclude={"site", "examples"}))
        counts = sim.seed(spec, req.site, examples=req.examples)
        return json_response({"site": req.site, "counts": counts})

    async def state(request: Request) -> Response:
        query = request.query_params
        counts_only = query.get("counts_only", "").lower() in ("1", "true")
        return json_response(sim.snapshot(query.get("site"), counts_only=counts_only))

    async def stats(request: Request) -> Response:
        if request.method == "DELETE":
            sim.stats.reset()
        return json_response(sim.stats.snapshot(sim.config.rate_limit.window_seconds, request.query_params.get("site")))

    async def config(request: Request) -> Response:
        if request.method in ("PUT", "POST"):
            try:
                sim.configure(await read_body(request))
            except (ValidationError, orjson.JSONDecodeError, TypeError) as exc:
                return invalid_request(exc)
        return json_response(sim.config.model_dump())

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            try:
                req = ClockRequest.model_validate(await read_body(request))
            except (ValidationError, orjson.JSONDecodeError) as exc:
                return invalid_request(exc)
            if req.scale is not None:
                sim.clock.set_scale(req.scale)
            if req.advance_seconds:
                sim.clock.advance(req.advance_seconds)
        return json_response(sim.clock.describe())

    async def faults(request: Request) -> Response:
        return await faults_endpoint(request, sim.faults)

    async def keys(request: Request) -> Response:
        if request.method in ("PUT", "DELETE"):
            try:
                req = KeysRequest.model_validate(await read_body(request))
            except (ValidationError, orjson.JSONDecodeError) as exc:
                return invalid_request(exc)
            for key, grant in req.keys.items():
                sim.add_key(key, grant)
            with sim.lock:
                for key in req.remove:
                    sim.keys.grants.pop(key, None)
        return json_response({"keys": sim.keys.describe()})

    async def sites(request: Request) -> Response:
        if request.method == "PUT":
            try:
                req = SiteRequest.model_validate(await read_body(request))
            except (ValidationError, orjson.JSONDecodeError) as exc:
                return invalid_request(exc)
            sim.site(req.site).api_enabled = req.api_enabled
        with sim.lock:
            return json_response({name: {"api_enabled": s.api_enabled, "counts": s.counts()}
                          for name, s in sorted(sim.sites.items())})

    async def assignments(request: Request) -> Response:
        try:
            req = AssignmentRequest.model_validate(await read_body(request))
            with sim.lock:
                store = sim.site(req.site)
                course = store.course(req.class_id)
                assignment = Assignment(id=store.next_id("assignment", store.assignments), class_id=course.id,
                                        name=req.name, type=req.type, points=req.points)
                store.assignments[assignment.id] = assignment
                return json_response(assignment_info(assignment, course))
        except (ValidationError, orjson.JSONDecodeError, MatrixError) as exc:
            return invalid_request(exc)

    return [
        Route("/_sim/reset", reset, methods=["POST"]),
        Route("/_sim/seed", seed, methods=["POST"]),
        Route("/_sim/state", state, methods=["GET"]),
        Route("/_sim/stats", stats, methods=["GET", "DELETE"]),
        Route("/_sim/config", config, methods=["GET", "PUT", "POST"]),
        Route("/_sim/clock", clock, methods=["GET", "POST"]),
        Route("/_sim/faults", faults, methods=["GET", "PUT", "POST", "DELETE"]),
        Route("/_sim/keys", keys, methods=["GET", "PUT", "DELETE"]),
        Route("/_sim/sites", sites, methods=["GET", "PUT"]),
        Route("/_sim/assignments", assignments, methods=["POST"]),
    ]
