"""The AB Connect simulator's HTTP face: ``/rest/v4.1/...`` API routes and the ``/_sim/`` control API.

Every API request is checked in the documented order of concerns: known partner, the
partner's token bucket (429), the signature (401), then the resource. Bodies follow
JSON:API as AB Connect shapes it (``links``, ``data``, ``meta``; errors as ``errors[]``,
L145-162) with ``Content-Type: application/json; charset=utf-8`` (L149).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from simulators.abconnect.auth import AuthFailure, resource_of, verify
from simulators.abconnect.catalogue import StandardRec
from simulators.abconnect.query import (
    FieldTree,
    Filter,
    FilterError,
    dig,
    parse_fields,
    parse_filter,
    prune,
    sort_key_paths,
)
from simulators.abconnect.state import (
    ABConnectSimulator,
    EventRec,
    MutateRequest,
    MutationError,
    SeedRequest,
    StandardAccessError,
)
from simulators.faults import FaultInjector, FaultMiddleware, faults_endpoint

PREFIX = "/rest/v4.1"
JSON_TYPE = "application/json; charset=utf-8"
PAGE_CAP = 100
_AUTH_PARAMS = frozenset({"partner.id", "auth.signature", "auth.expires", "user.id"})
_TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 429: "Too Many Requests",
}
_EVENT_RELATIONSHIPS = ("standard", "deleted_standard", "nondeliverable_standard")
_STANDARD_RELATIONSHIPS = ("parent", "children", "ancestors")
_FACET_KEYS = {"section": ("guid", "descr", "seq"), "document": ("guid", "descr", "adopt_year")}
_KNOWN_FACETS = ("document", "section", "education_levels.grades", "disciplines.subjects")


class _BadRequest(Exception):
    def __init__(self, detail: str, parameter: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.parameter = parameter


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response with AB's content type."""
    return Response(orjson.dumps(body), status_code=status, media_type=JSON_TYPE, headers=headers)


def error_response(
    status: int, detail: str, *, parameter: str | None = None, headers: dict[str, str] | None = None,
) -> Response:
    """The documented ``errors`` body (L145-162): status as a string, title as the HTTP status title."""
    err: dict[str, Any] = {"status": str(status), "title": _TITLES.get(status, "Error"), "detail": detail}
    if parameter:
        err["source"] = {"parameter": parameter}
    return json_response({"errors": [err]}, status, headers)


def create_app(sim: ABConnectSimulator, injector: FaultInjector | None = None) -> ASGIApp:
    """The ASGI app serving ``sim``, wrapped in fault injection (``/_sim/faults``)."""
    faults = injector or FaultInjector()
    api = _Api(sim)

    async def faults_route(request: Request) -> Response:
        return await faults_endpoint(request, faults)

    async def reset(request: Request) -> Response:
        sim.reset()
        faults.clear()
        return json_response({"ok": True})

    async def seed(request: Request) -> Response:
        try:
            req = SeedRequest.model_validate(await _body(request))
        except ValueError as exc:
            return json_response({"error": str(exc)}, 422)
        return json_response(sim.seed(req))

    async def mutate(request: Request) -> Response:
        try:
            return json_response(sim.mutate(MutateRequest.model_validate(await _body(request))))
        except MutationError as exc:  # before ValueError, its base class
            return json_response({"error": str(exc)}, 409)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 422)

    async def state(request: Request) -> Response:
        try:
            return json_response(sim.snapshot(request.query_params.get("partner_id")))
        except MutationError as exc:
            return json_response({"error": str(exc)}, 404)

    async def stats(request: Request) -> Response:
        if request.method == "DELETE":
            sim.reset_stats()
        return json_response(sim.stats())

    async def config(request: Request) -> Response:
        if request.method in ("PUT", "POST"):
            try:
                sim.update_config(await _body(request))
            except ValueError as exc:
                return json_response({"error": str(exc)}, 422)
            sim.reset_buckets()
        return json_response(sim.config.model_dump())

    routes = [
        Route(f"{PREFIX}/events", api.wrap("events", api.events)),
        Route(f"{PREFIX}/events/{{guid}}", api.wrap("events", api.event)),
        Route(f"{PREFIX}/standards", api.wrap("standards", api.standards)),
        Route(f"{PREFIX}/standards/{{guid}}", api.wrap("standards", api.standard)),
        Route(f"{PREFIX}/standards/{{guid}}/{{relationship}}", api.wrap("standards", api.related)),
        Route(f"{PREFIX}/{{rest:path}}", api.wrap("other", api.not_found)),
        Route("/_sim/faults", faults_route, methods=["GET", "PUT", "POST", "DELETE"]),
        Route("/_sim/reset", reset, methods=["POST"]),
        Route("/_sim/seed", seed, methods=["POST"]),
        Route("/_sim/mutate", mutate, methods=["POST"]),
        Route("/_sim/state", state, methods=["GET"]),
        Route("/_sim/stats", stats, methods=["GET", "DELETE"]),
        Route("/_sim/config", config, methods=["GET", "PUT", "POST"]),
    ]
    return FaultMiddleware(Starlette(routes=routes), faults)


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object body of a control request; ``ValueError`` (incl. pydantic's) if it is not one."""
    raw = await request.body()
    if not raw.strip():
        return {}
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


Handler = Callable[[Request, str], Response]


class _Api:
    """The ``/rest/v4.1`` resources of one simulator."""

    def __init__(self, sim: ABConnectSimulator) -> None:
        self.sim = sim

    def wrap(self, resource: str, handler: Handler) -> Callable[[Request], Any]:
        """Add partner lookup, rate limiting, signature check, timing and stats around ``handler``."""
        sim = self.sim

        async def endpoint(request: Request) -> Response:
            partner_id = request.query_params.get("partner.id")
            partner = partner_id if partner_id in sim.partners else None
            response = self._gate(request, partner, handler)
            sim.record(status=response.status_code, resource=resource, partner=partner)
            return response

        return endpoint

    def _gate(self, request: Request, partner: str | None, handler: Handler) -> Response:
        sim = self.sim
        query = request.query_params
        if request.method != "GET":
            return error_response(405, "Only GET is supported by this simulator.")
        if partner is not None:
            wildcard = any(k.startswith("fields[") and v.strip() == "*" for k, v in query.multi_items())
            wait = sim.take_token(partner, wildcard=wildcard)
            if wait is not None:
                # Optional and off by default: AB documents no Retry-After (api/abconnect.md §1.6).
                retry_after = str(max(1, round(wait + 0.5)))
                headers = {"Retry-After": retry_after} if sim.config.send_retry_after else None
                return error_response(
                    429, "Rate limit exceeded: the account's token bucket is empty. Slow down and retry.",
                    headers=headers,
                )
        try:
            partner = verify(
                sim.partners, query, method=request.method, path=request.url.path, now=time.time(),
            )
        except AuthFailure as exc:
            return error_response(401, exc.detail, parameter=exc.parameter)
        try:
            response = handler(request, partner)
        except _BadRequest as exc:
            return error_response(400, exc.detail, parameter=exc.parameter)
        return response

    # --------------------------------------------------------------- events

    def events(self, request: Request, partner: str) -> Response:
        """``GET /events``: the partner's visible feed, filtered, sorted and paged."""
        q = request.query_params
        flt = _filter(q.get("filter[events]"), "filter[events]")
        offset, limit = self._paging(q)
        started = time.perf_counter()
        page, count = self.sim.list_events(partner, flt, sort_key_paths(q.get("sort[events]")), offset, limit)
        tree = parse_fields(q.get("fields[events]"))
        if tree is None and self.sim.config.events_attributes_by_default:
            tree = {"*": {}}
        base = _api_base(request)
        data = [self._event(e, tree, base) for e in page]
        return json_response(_list_body(request, data, count, offset, limit, self.sim.config.default_limit,
                                         started))

    def event(self, request: Request, partner: str) -> Response:
        """``GET /events/{guid}``: one visible event [INFERRED endpoint, L1147]."""
        started = time.perf_counter()
        event = self.sim.get_event(partner, request.path_params["guid"])
        if event is None:
            return error_response(404, f"No event with id {request.path_params['guid']}.")
        tree = parse_fields(request.query_params.get("fields[events]"))
        data = self._event(event, tree, _api_base(request))
        return json_response({"links": {"self": _self_link(request)}, "data": data, "meta": _took(started)})

    def _event(self, event: EventRec, tree: FieldTree | None, base: str) -> dict[str, Any]:
        resource: dict[str, Any] = {"id": event.guid, "type": "events"}
        if tree is None:
            return resource  # sparse default: id and type only (L2310)
        resource["attributes"] = prune(event.attributes(), tree)
        shape = self.sim.config.relationship_shape
        rels = {}
        for name in _EVENT_RELATIONSHIPS:
            if "*" in tree or name in tree:
                guid = event.standard_guid if event.relationship == name else None
                rels[name] = _relationship(guid, shape, f"{base}/standards/{guid}" if guid else None)
        if rels:
            resource["relationships"] = rels
        return resource

    # --------------------------------------------------------------- standards

    def standards(self, request: Request, partner: str) -> Response:
        """``GET /standards``: deliverable standards, filtered, sorted, faceted and paged."""
        q = request.query_params
        flt = _filter(q.get("filter[standards]"), "filter[standards]")
        offset, limit = self._paging(q)
        started = time.perf_counter()
        matched = self.sim.list_standards(partner, flt, sort_key_paths(q.get("sort[standards]")))
        tree = parse_fields(q.get("fields[standards]"))
        base = _api_base(request)
        data = [_standard(s, tree, base) for s in matched[offset:offset + limit]]
        body = _list_body(request, data, len(matched), offset, limit, self.sim.config.default_limit, started)
        facets = _facets(matched, q.get("facet"), q.get("facet_summary"))
        if facets is not None:
            body["meta"]["facets"] = facets
        return json_response(body)

    def standard(self, request: Request, partner: str) -> Response:
        """``GET /standards/{guid}``: deleted standards too (L13963); 403 if not deliverable (L14037)."""
        started = time.perf_counter()
        try:
            rec = self.sim.get_standard(partner, request.path_params["guid"])
        except StandardAccessError as exc:
            return error_response(exc.status, exc.detail)
        tree = parse_fields(request.query_params.get("fields[standards]"))
        data = _standard(rec, tree, _api_base(request))
        return json_response({"links": {"self": _self_link(request)}, "data": data, "meta": _took(started)})

    def related(self, request: Request, partner: str) -> Response:
        """``GET /standards/{guid}/{relationship}`` for parent, children and ancestors (L2352-2358)."""
        name = request.path_params["relationship"]
        if name not in _STANDARD_RELATIONSHIPS:
            return error_response(404, f"Unknown or unsupported relationship {name!r}.")
        started = time.perf_counter()
        try:
            rec = self.sim.get_standard(partner, request.path_params["guid"])
        except StandardAccessError as exc:
            return error_response(exc.status, exc.detail)
        guids = {"parent": [rec.parent_guid] if rec.parent_guid else [], "children": rec.children,
                 "ancestors": rec.ancestors}[name]
        related = [self.sim.standards[g] for g in guids if self.sim.deliverable(partner, g)]
        offset, limit = self._paging(request.query_params)
        tree = parse_fields(request.query_params.get("fields[standards]"))
        base = _api_base(request)
        data = [_standard(s, tree, base) for s in related[offset:offset + limit]]
        return json_response(_list_body(request, data, len(related), offset, limit,
                                        self.sim.config.default_limit, started))

    def not_found(self, request: Request, partner: str) -> Response:
        """Any other path under ``/rest/v4.1``."""
        return error_response(404, f"Unknown resource {resource_of(request.url.path)!r}.")

    def _paging(self, q: Any) -> tuple[int, int]:
        cfg = self.sim.config
        try:
            limit = int(q.get("limit", cfg.default_limit))
        except ValueError:
            raise _BadRequest("limit must be an integer.", "limit") from None
        try:
            offset = int(q.get("offset", 0))
        except ValueError:
            raise _BadRequest("offset must be an integer.", "offset") from None
        if limit < 0 or offset < 0:
            raise _BadRequest("limit and offset must not be negative.", "limit" if limit < 0 else "offset")
        if limit > PAGE_CAP:
            if cfg.limit_over_cap == "error":
                raise _BadRequest("limit must be 100 or less.", "limit")  # wording of L1365
            limit = PAGE_CAP
        return offset, limit


def _filter(text: str | None, parameter: str) -> Filter | None:
    if text is None or not text.strip():
        return None
    try:
        return parse_filter(text)
    except FilterError as exc:
        raise _BadRequest(f"Invalid filter statement: {exc}.", parameter) from None


def _relationship(guid: str | None, shape: str, related: str | None) -> dict[str, Any]:
    ref = {"type": "standards", "id": guid} if guid else None
    if shape == "list":
        return {"data": [ref] if ref else []}
    if shape == "nested":  # the schema's form (L6040-6060)
        return {"data": {"data": [ref] if ref else [], "links": {"related": related} if related else {}}}
    out: dict[str, Any] = {"data": ref or {}}  # the example's form: {} when empty (L1453-1465)
    if related:
        out["links"] = {"related": related}
    return out


def _standard(rec: StandardRec, tree: FieldTree | None, base: str) -> dict[str, Any]:
    resource: dict[str, Any] = {"type": "standards", "id": rec.guid}
    if tree is None:
        return resource  # sparse default: id and type only (L2310)
    resource["attributes"] = prune(rec.attributes(), tree)
    rels: dict[str, Any] = {}
    link = f"{base}/standards/{rec.guid}"
    if "*" in tree or "parent" in tree:
        # An object, as in the real example (L6709), not the schema's array.
        ref = {"type": "standards", "id": rec.parent_guid} if rec.parent_guid else None
        rels["parent"] = {"data": ref, "links": {"related": f"{link}/parent"}}
    for name, guids in (("children", rec.children), ("ancestors", rec.ancestors)):
        if "*" in tree or name in tree:
            rels[name] = {"data": [{"type": "standards", "id": g} for g in guids],
                          "links": {"related": f"{link}/{name}"}}
    if rels:
        resource["relationships"] = rels
    return resource


def _facets(
    matched: list[StandardRec], facet: str | None, summary: str | None,
) -> list[dict[str, Any]] | None:
    """``meta.facets`` for ``facet=`` (details, counts) or ``facet_summary=`` (counts only, L2222-2239)."""
    if not facet and not summary:
        return None
    out: list[dict[str, Any]] = []
    names = [f.strip() for f in (facet or "").split(",") if f.strip()]
    for name in names:
        buckets = _facet_buckets(matched, name)
        details = [{"data": data, "count": n} for data, n in buckets.values()]
        out.append({"facet": name, "count": len(details), "details": details})
    if summary:
        wanted = _KNOWN_FACETS if summary.strip() == "*" else tuple(
            f.strip() for f in summary.split(",") if f.strip()
        )
        out.extend({"facet": name, "count": len(_facet_buckets(matched, name))} for name in wanted)
    return out


def _facet_buckets(matched: list[StandardRec], name: str) -> dict[str, tuple[dict[str, Any], int]]:
    keys = _FACET_KEYS.get(name)
    buckets: dict[str, tuple[dict[str, Any], int]] = {}
    for rec in matched:
        for value in dig(rec.attributes(), name):
            if not isinstance(value, dict) or not value.get("guid"):
                continue
            guid = value["guid"]
            data, n = buckets.get(guid, (None, 0))
            if data is None:
                data = {k: value.get(k) for k in keys} if keys else {
                    k: v for k, v in value.items() if not isinstance(v, dict | list)
                }
            buckets[guid] = (data, n + 1)
    return buckets


def encode_query(params: list[tuple[str, str]]) -> str:
    """Query strings of the links the server writes, as the documented examples show them:
    brackets and parentheses literal, spaces as %20 (L261-279, L524-555)."""
    return urlencode(params, quote_via=quote, safe="()[],")


def _api_base(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}{PREFIX}"


def _public_params(request: Request) -> list[tuple[str, str]]:
    # Links never carry credentials: a client re-signs every call.
    return [(k, v) for k, v in request.query_params.multi_items() if k not in _AUTH_PARAMS]


def _self_link(request: Request) -> str:
    params = _public_params(request)
    url = f"{str(request.base_url).rstrip('/')}{request.url.path}"
    return f"{url}?{encode_query(params)}" if params else url


def _page_link(request: Request, offset: int, limit: int, default_limit: int) -> str:
    params = [(k, v) for k, v in _public_params(request) if k not in ("limit", "offset")]
    # Like the examples (L261-279): limit only when not the default, offset only when not 0.
    if limit != default_limit:
        params.append(("limit", str(limit)))
    if offset:
        params.append(("offset", str(offset)))
    url = f"{str(request.base_url).rstrip('/')}{request.url.path}"
    return f"{url}?{encode_query(params)}" if params else url


def _list_body(
    request: Request, data: list[dict[str, Any]], count: int, offset: int, limit: int, default_limit: int,
    started: float,
) -> dict[str, Any]:
    links: dict[str, str] = {"self": _self_link(request)}
    if limit > 0 and count > 0:
        last = ((count - 1) // limit) * limit  # consistent with the documented example (L261-279)
        if offset > 0:
            links["first"] = _page_link(request, 0, limit, default_limit)
            links["prev"] = _page_link(request, max(0, offset - limit), limit, default_limit)
        if offset + limit < count:
            links["next"] = _page_link(request, offset + limit, limit, default_limit)
        links["last"] = _page_link(request, last, limit, default_limit)
    meta = {"offset": offset, "limit": limit, "count": count, **_took(started)}
    return {"links": links, "meta": meta, "data": data}


def _took(started: float) -> dict[str, int]:
    return {"took": int((time.perf_counter() - started) * 1000)}
