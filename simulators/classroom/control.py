"""The control API under ``/_sim/``: reset, seed, state, stats, config, faults, keys and deferred
promotion. Never faulted, throttled or counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from simulators.classroom.auth import ApiKey
from simulators.classroom.generator import SeedSpec
from simulators.control_http import invalid_request, json_response, read_body
from simulators.faults import faults_endpoint

if TYPE_CHECKING:
    from simulators.classroom.state import ClassSimulator


class ResetRequest(BaseModel):
    """POST /_sim/reset: optionally without the seed's example records."""

    model_config = ConfigDict(extra="forbid")

    examples: bool | None = None


class SeedRequest(BaseModel):
    """POST /_sim/seed: a generated organisation of ``size`` students."""

    model_config = ConfigDict(extra="forbid")

    size: int = Field(default=100, ge=0, le=500_000)
    students_per_class: int = Field(default=30, ge=0, le=1_000)
    seed: int = 1
    examples: bool | None = None


class KeysRequest(BaseModel):
    """PUT /_sim/keys adds or replaces keys (secret -> scopes, expiry) and removes others."""

    model_config = ConfigDict(extra="forbid")

    keys: dict[str, ApiKey] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)


class PromoteRequest(BaseModel):
    """POST /_sim/deferred/promote: one deferred record, or all of them."""

    model_config = ConfigDict(extra="forbid")

    class_deferred_id: int | None = None


def control_routes(sim: ClassSimulator) -> list[BaseRoute]:
    """The ``/_sim/`` routes of ``sim``."""

    async def reset(request: Request) -> Response:
        try:
            req = ResetRequest.model_validate(await read_body(request))
        except (ValidationError, orjson.JSONDecodeError) as exc:
            return invalid_request(exc)
        sim.reset(examples=req.examples)
        return json_response({"reset": True})

    async def seed(request: Request) -> Response:
        try:
            req = SeedRequest.model_validate(await read_body(request))
        except (ValidationError, orjson.JSONDecodeError) as exc:
            return invalid_request(exc)
        counts = sim.seed(SeedSpec(size=req.size, students_per_class=req.students_per_class, seed=req.seed),
                          examples=req.examples)
        return json_response({"counts": counts})

    async def state(request: Request) -> Response:
        counts_only = request.query_params.get("counts_only", "").lower() in ("1", "true")
        return json_response(sim.snapshot(counts_only=counts_only))

    async def stats(request: Request) -> Response:
        if request.method == "DELETE":
            sim.stats.reset()
        return json_response(sim.stats.snapshot(sim.faults.injected))

    async def config(request: Request) -> Response:
        if request.method in ("PUT", "POST"):
            try:
                sim.configure(await read_body(request))
            except (ValidationError, orjson.JSONDecodeError, TypeError) as exc:
                return invalid_request(exc)
        return json_response(sim.config.model_dump())

    async def faults(request: Request) -> Response:
        return await faults_endpoint(request, sim.faults)

    async def keys(request: Request) -> Response:
        if request.method in ("PUT", "DELETE"):
            try:
                req = KeysRequest.model_validate(await read_body(request))
            except (ValidationError, orjson.JSONDecodeError) as exc:
                return invalid_request(exc)
            with sim.lock:
                sim.keys.keys.update(req.keys)
                for secret in req.remove:
                    sim.keys.keys.pop(secret, None)
        return json_response({"keys": sim.keys.describe()})

    async def promote(request: Request) -> Response:
        try:
            req = PromoteRequest.model_validate(await read_body(request))
        except (ValidationError, orjson.JSONDecodeError) as exc:
            return invalid_request(exc)
        return json_response({"promoted": sim.promote_deferred(req.class_deferred_id)})

    return [
        Route("/_sim/reset", reset, methods=["POST"]),
        Route("/_sim/seed", seed, methods=["POST"]),
        Route("/_sim/state", state, methods=["GET"]),
        Route("/_sim/stats", stats, methods=["GET", "DELETE"]),
        Route("/_sim/config", config, methods=["GET", "PUT", "POST"]),
        Route("/_sim/faults", faults, methods=["GET", "PUT", "POST", "DELETE"]),
        Route("/_sim/keys", keys, methods=["GET", "PUT", "DELETE"]),
        Route("/_sim/deferred/promote", promote, methods=["POST"]),
    ]
