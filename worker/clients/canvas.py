"""Canvas LMS REST API client: bearer auth, Link-header paging, throttling, typed errors.

Cross-cutting behaviour follows /work/shared/api/canvas.md:
- §1.2: 401 *with* ``WWW-Authenticate`` means the token is invalid, deleted or expired
  (``AuthenticationError``); 401 *without* it means the user lacks permission
  (``AccessDeniedError``). Both pause the component rather than dead-letter events.
- §1.3: follow ``rel="next"`` until it is absent; links are opaque and never built by hand.
- §1.4/§7.1: every response reports ``X-Request-Cost`` and ``X-Rate-Limit-Remaining``; throttling
  is answered as ``403 Forbidden (Rate Limit Exceeded)`` or as 429, and both are retried.

Outcome groups and outcomes are not in the seeds; those methods follow Canvas's public docs,
cited at each method. Retries, deadlines and size caps are the shared HTTP layer's: a POST is
retried only after a throttled answer (Canvas refuses those before doing any work); any other
failure of a POST raises ``AmbiguousWriteError`` so the caller repeats its look-up-then-create.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import httpx
from pydantic import BaseModel, ValidationError

from worker.clients.canvas_models import Outcome, OutcomeGroup, OutcomeLink
from worker.clients.errors import AccessDeniedError, AuthenticationError, MalformedResponseError, UpstreamError
from worker.clients.http import HTTPSettings, Query, ResponseClassifier, UpstreamHTTP
from worker.metrics import UPSTREAM_THROTTLE_WAIT

__all__ = ["CanvasClient", "Outcome", "OutcomeGroup", "OutcomeLink", "RateBudget"]

SYSTEM = "canvas"
RATE_LIMIT_TEXT = "Rate Limit Exceeded"

M = TypeVar("M", bound=BaseModel)

# Fields the update endpoints accept (Canvas ignores others; we refuse them to catch typos).
GROUP_UPDATE_FIELDS = frozenset({"title", "description", "vendor_guid", "parent_outcome_group_id"})
OUTCOME_UPDATE_FIELDS = frozenset({
    "title", "display_name", "description", "vendor_guid", "mastery_points", "ratings",
    "calculation_method", "calculation_int",
})


@dataclass
class RateBudget:
    """The throttle quota as Canvas reports it, and how long to pause before the next request.

    Canvas does not publish the quota size, so the largest ``X-Rate-Limit-Remaining`` seen stands
    in for it. Below ``low_water`` of that, the client pauses in proportion to the shortfall, up
    to ``max_pause`` seconds when the quota is gone.
    """

    low_water: float = 0.2
    max_pause: float = 2.0
    remaining: float | None = None
    last_cost: float | None = None
    high_water: float = 0.0
    paused_seconds: float = 0.0
    throttled: int = 0

    def observe(self, headers: httpx.Headers) -> None:
        """Record the quota headers of one response (absent when throttling is off upstream)."""
        cost = _float_header(headers, "x-request-cost")
        if cost is not None:
            self.last_cost = cost
        remaining = _float_header(headers, "x-rate-limit-remaining")
        if remaining is not None:
            self.remaining = remaining
            self.high_water = max(self.high_water, remaining + (cost or 0.0))

    def pause(self) -> float:
        """Seconds to wait before the next request; 0 while the quota is comfortable."""
        if self.remaining is None or self.high_water <= 0:
            return 0.0
        threshold = self.low_water * self.high_water
        if self.remaining >= threshold:
            return 0.0
        shortfall = (threshold - max(self.remaining, 0.0)) / threshold
        return self.max_pause * min(1.0, shortfall)


def _float_header(headers: httpx.Headers, name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def parse_as(model: type[M], data: Any) -> M:
    """``data`` validated as the Canvas object ``model``, or ``MalformedResponseError`` naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise MalformedResponseError(
            SYSTEM, f"unexpected {model.__name__} shape: {where}: {first['msg']} ({exc.error_count()} errors)"
        ) from exc


def _seg(value: str | int) -> str:
    """One path segment; SIS ids such as ``sis_account_id:A/B`` are percent-encoded (§1.6)."""
    return quote(str(value), safe=":")


class CanvasClassifier(ResponseClassifier):
    """Canvas's meanings: throttling as 403 "Rate Limit Exceeded" too, and the two kinds of 401."""

    def throttled(self, response: httpx.Response) -> bool:
        """429, or 403 with Canvas's rate-limit text (§1.4)."""
        if response.status_code == 429:
            return True
        return response.status_code == 403 and RATE_LIMIT_TEXT in response.text

    def rejected(self, response: httpx.Response, message: str) -> UpstreamError:
        """401 with ``WWW-Authenticate``: the token itself; without: a permission (§1.2)."""
        if "www-authenticate" in response.headers:
            return AuthenticationError(SYSTEM, f"access token rejected (invalid or expired): {message}",
                                       status=response.status_code)
        return AccessDeniedError(SYSTEM, f"the token's user lacks permission: {message}", status=response.status_code)


class CanvasClient:
    """Async client for one Canvas instance and one access token; share one per token (its quota)."""

    def __init__(
        self, base_url: str, token: str, *, http: HTTPSettings | None = None, per_page: int = 100,
        low_water: float = 0.2, max_pause: float = 2.0, concurrency: int = 1,
    ) -> None:
        if not token:
            raise ValueError("a Canvas access token is required")
        self.budget = RateBudget(low_water=low_water, max_pause=max_pause)
        # canvas.md §6.2.9: one in-flight request per token unless told otherwise, because
        # parallel requests pay Canvas's pre-flight penalty.
        self._http = UpstreamHTTP(
            SYSTEM, base_url, settings=http, classifier=CanvasClassifier(SYSTEM),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            pace=self._pace, observe=self._observe, limiter=anyio.CapacityLimiter(concurrency),
        )
        self._per_page = per_page

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> CanvasClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- transport ---------------------------------------------------------------------------

    async def _pace(self) -> None:
        seconds = self.budget.pause()
        if seconds > 0:
            self.budget.paused_seconds += seconds
            UPSTREAM_THROTTLE_WAIT.labels(SYSTEM).inc(seconds)
            await anyio.sleep(seconds)

    def _observe(self, response: httpx.Response) -> None:
        self.budget.observe(response.headers)
        if self._http.classifier.throttled(response):
            self.budget.throttled += 1

    async def request(
        self, method: str, url: str, *, params: Query | None = None, json: Any = None,
    ) -> httpx.Response:
        """Send one API call (pacing, retries, redirects); non-2xx answers raise typed errors."""
        return (await self._http.call(method, url, params=params, json=json, parse_json=False)).response

    async def _json(self, method: str, url: str, *, params: Query | None = None, json: Any = None) -> Any:
        return (await self._http.call(method, url, params=params, json=json)).body

    # --- parsing and paging --------------------------------------------------------------------

    def _model(self, model: type[M], data: Any) -> M:
        return parse_as(model, data)

    async def _get_model(self, model: type[M], path: str, params: Query | None = None) -> M:
        return self._model(model, await self._json("GET", path, params=params))

    async def _write_model(self, model: type[M], method: str, path: str, body: Any = None) -> M:
        return self._model(model, await self._json(method, path, json=body))

    async def pages(self, path: str, params: Mapping[str, Any] | None = None) -> AsyncIterator[list[Any]]:
        """Every page of a list endpoint, following ``rel="next"`` links until there is none."""
        query: Query | None = {**(params or {}), "per_page": self._per_page}
        url = path
        seen: set[str] = set()
        while True:
            answer = await self._http.call("GET", url, params=query)
            if not isinstance(answer.body, list):
                raise MalformedResponseError(
                    SYSTEM, f"expected a JSON list from {path}", status=answer.response.status_code
                )
            yield answer.body
            next_url = answer.response.links.get("next", {}).get("url")
            if not next_url:
                return
            if next_url in seen:
                raise MalformedResponseError(SYSTEM, f"pagination loop at {path}")
            seen.add(next_url)
            # The link carries every parameter (canvas.md §1.3): send it as is.
            url, query = next_url, None

    async def iterate(self, model: type[M], path: str, params: Mapping[str, Any] | None = None) -> AsyncIterator[M]:
        """Every item of a list endpoint, validated as ``model``."""
        async for page in self.pages(path, params):
            for item in page:
                yield self._model(model, item)

    async def _collect(self, model: type[M], path: str, params: Mapping[str, Any] | None = None) -> list[M]:
        return [item async for item in self.iterate(model, path, params)]

    # --- outcome groups ------------------------------------------------------------------------
    # https://developerdocs.instructure.com/services/canvas/resources/outcome_groups

    def _groups(self, account_id: str) -> str:
        return f"/api/v1/accounts/{_seg(account_id)}/outcome_groups"

    async def root_outcome_group(self, account_id: str) -> OutcomeGroup:
        """The account's root group (GET .../root_outcome_group redirects to it)."""
        return await self._get_model(OutcomeGroup, f"/api/v1/accounts/{_seg(account_id)}/root_outcome_group")

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
            OutcomeLink, f"/api/v1/accounts/{_seg(account_id)}/outcome_group_links", {"outcome_style": "full"}
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
