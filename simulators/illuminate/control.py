"""The control API under ``/_sim/``: reset, seed, mutate, clock, config, faults, state."""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from simulators.control_http import invalid_request, json_response, read_body
from simulators.faults import faults_endpoint
from simulators.illuminate import render
from simulators.illuminate.generator import SeedSpec
from simulators.illuminate.mutate import KINDS, MutationError
from simulators.illuminate.state import unpack

if TYPE_CHECKING:
    from simulators.illuminate.app import IlluminateSimulator


class SeedRequest(BaseModel):
    """POST /_sim/seed: the size of the generated district."""

    model_config = ConfigDict(extra="forbid")

    sites: int = Field(default=3, ge=1, le=1_000)
    students: int = Field(default=100, ge=0, le=2_000_000)
    staff: int = Field(default=20, ge=1, le=200_000)
    courses: int = Field(default=10, ge=0, le=100_000)
    sections_per_course: int = Field(default=2, ge=0, le=100)
    students_per_section: int = Field(default=20, ge=0, le=1_000)
    assessments: int = Field(default=3, ge=0, le=10_000)
    seed: int = 1


class MutateRequest(BaseModel):
    """POST /_sim/mutate: ``kind`` applied ``count`` times; ``mode`` hard|soft overrides the
    kind's default (drop and transfer: hard; departed_staff: soft)."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    count: int = Field(default=1, ge=1, le=100_000)
    seed: int | None = None
    mode: Literal["hard", "soft"] | None = None


class ClockRequest(BaseModel):
    """POST /_sim/clock: set the date, or move it by some days."""

    model_config = ConfigDict(extra="forbid")

    date: dt.date | None = None
    advance_days: int | None = None


async def reset(sim: IlluminateSimulator, request: Request) -> Response:
    """POST /_sim/reset: an empty district, today's clock, no faults, default config."""
    sim.reset()
    return json_response({"ok": True, "clock": sim.district.today})


async def seed(sim: IlluminateSimulator, request: Request) -> Response:
    """POST /_sim/seed: replace the district with a generated one; returns counts and timing."""
    try:
        spec = SeedRequest.model_validate(await read_body(request))
    except (ValidationError, orjson.JSONDecodeError) as exc:
        return invalid_request(exc)
    started = time.perf_counter()
    sim.seed(SeedSpec(**spec.model_dump()))
    return json_response({"ok": True, "seconds": round(time.perf_counter() - started, 3),
                  "clock": sim.district.today, "counts": sim.district.counts()})


async def mutate(sim: IlluminateSimulator, request: Request) -> Response:
    """POST /_sim/mutate: apply changes, return the natural keys upserted and deleted."""
    try:
        req = MutateRequest.model_validate(await read_body(request))
        changes = sim.mutate(req.kind, req.count, seed=req.seed, mode=req.mode)
    except (ValidationError, orjson.JSONDecodeError, MutationError) as exc:
        return invalid_request(exc)
    return json_response({"kind": req.kind, "count": req.count, "mode": req.mode, "clock": sim.district.today,
                  **changes})


async def clock(sim: IlluminateSimulator, request: Request) -> Response:
    """GET shows, POST sets (``date``) or moves (``advance_days``) the simulator's date."""
    if request.method == "POST":
        try:
            req = ClockRequest.model_validate(await read_body(request))
        except (ValidationError, orjson.JSONDecodeError) as exc:
            return invalid_request(exc)
        if req.date is not None:
            sim.set_clock(req.date)
        if req.advance_days:
            sim.set_clock(sim.district.clock + dt.timedelta(days=req.advance_days))
    d = sim.district
    return json_response({"date": d.today, "academic_year": d.academic_year, "session_start": d.session_start,
                  "session_end": d.session_end})


async def config(sim: IlluminateSimulator, request: Request) -> Response:
    """GET shows, POST updates (partially) the quirk and strictness configuration."""
    if request.method == "POST":
        try:
            sim.configure(**(await read_body(request)))
        except (ValidationError, orjson.JSONDecodeError, TypeError) as exc:
            return invalid_request(exc)
    return json_response(sim.config.model_dump())


async def faults(sim: IlluminateSimulator, request: Request) -> Response:
    """GET/POST/PUT/DELETE /_sim/faults (shared fault injector)."""
    return await faults_endpoint(request, sim.faults)


async def credentials(sim: IlluminateSimulator, request: Request) -> Response:
    """GET /_sim/credentials: the simulator's (fake) OAuth credentials, for demos and tests."""
    return json_response([{"consumer_key": c.consumer_key, "consumer_secret": c.consumer_secret,
                   "token": c.token, "token_secret": c.token_secret,
                   "sites": sorted(c.sites) if c.sites is not None else None} for c in sim.credentials])


_ENTITIES = ("sites", "students", "staff", "courses", "terms", "sections", "enrollments", "rosters",
             "assessments", "assessment_scores")


async def state(sim: IlluminateSimulator, request: Request) -> Response:
    """GET /_sim/state: counts; with ``?entity=students&offset=0&limit=100`` also the records
    as the API renders them (scores add the hidden ``_modified`` date)."""
    d = sim.district
    body: dict[str, Any] = {"clock": d.today, "version": d.version, "counts": d.counts()}
    entity = request.query_params.get("entity")
    if entity is None:
        return json_response(body)
    entity = {"users": "staff", "roster": "rosters", "enrollment": "enrollments"}.get(entity, entity)
    if entity not in _ENTITIES:
        return json_response({"error": f"unknown entity {entity!r}", "entities": list(_ENTITIES)}, 404)
    try:
        offset = int(request.query_params.get("offset", "0"))
        limit = int(request.query_params.get("limit", "1000"))
    except ValueError as exc:
        return invalid_request(exc)
    body["entity"] = entity
    body["records"] = _records(sim, entity, offset, limit)
    return json_response(body)


def _records(sim: IlluminateSimulator, entity: str, offset: int, limit: int) -> list[dict[str, Any]]:
    d = sim.district
    window = slice(max(0, offset), max(0, offset) + max(0, limit))
    typos = sim.config.doc_typos
    if entity == "sites":
        return [render.site(d.sites.rows[k]) for k in d.sites.order()[window]]
    if entity == "students":
        return [{**render.student(d, d.students.rows[k], homeroom=True, programs=False, typos=typos),
                 "_site_id": d.students.rows[k].site_id} for k in d.students.order()[window]]
    if entity == "staff":
        return [render.user(d.users.rows[k]) for k in d.users.order()[window]]
    if entity == "courses":
        return [render.course(d.courses.rows[k]) for k in d.courses.order()[window]]
    if entity == "terms":
        return [render.term(d.terms.rows[k]) for k in d.terms.order()[window]]
    if entity == "sections":
        return [render.section(d, d.sections.rows[k]) for k in d.sections.order()[window]]
    if entity == "enrollments":
        return [render.enrollment(d, d.enrollments.rows[k]) for k in d.enrollments.order()[window]]
    if entity == "rosters":
        return [render.roster(d, k, d.roster.rows[k]) for k in d.roster.order()[window]]
    if entity == "assessments":
        return [{**render.assessment(d, d.assessments.rows[k]), "_site_id": d.assessments.rows[k].site_id}
                for k in d.assessments.order()[window]]
    return [{**render.score(d, k, d.scores.rows[k]), "_modified": d.scores.rows[k].modified,
             "_student_id": unpack(k)[1]} for k in d.scores.order()[window]]


__all__ = ["KINDS", "ClockRequest", "MutateRequest", "SeedRequest"]
