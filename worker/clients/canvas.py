"""Canvas LMS REST API client: bearer auth, Link-header paging, throttling, typed errors.

Cross-cutting behaviour follows /work/shared/api/canvas.md:
- §1.2: 401 *with* ``WWW-Authenticate`` means the token is invalid, deleted or expired
  (``AuthenticationError``); 401 *without* it means the user lacks permission (``ForbiddenError``).
- §1.3: follow ``rel="next"`` until it is absent; links are opaque and never built by hand.
- §1.4/§7.1: every response reports ``X-Request-Cost`` and ``X-Rate-Limit-Remaining``; throttling
  is answered as ``403 Forbidden (Rate Limit Exceeded)`` or as 429, and both are retried.

Outcome groups and outcomes are not in the seeds; those methods follow Canvas's public docs,
cited at each method.

A request that may have been applied upstream is not retried blindly: POSTs are retried only
after a throttled answer (Canvas refuses those before doing any work). A 5xx or timeout on a POST
raises ``TransientUpstreamError`` at once so the caller repeats its look-up-then-create step.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import httpx
import orjson
from pydantic import BaseModel, ValidationError

from worker.backoff import Backoff
from worker.clients.canvas_models import Outcome, OutcomeGroup, OutcomeLink
from worker.clients.errors import (
    AuthenticationError,
    ForbiddenError,
    MalformedResponseError,
    NotFoundError,
    PermanentUpstreamError,
    ThrottledError,
    TransientUpstreamError,
    UpstreamError,
)
from worker.clients.http import UpstreamHTTP
from worker.metrics import UPSTREAM_THROTTLE_WAIT

__all__ = ["CanvasClient", "Outcome", "OutcomeGroup", "OutcomeLink", "RateBudget"]

SYSTEM = "canvas"
RATE_LIMIT_TEXT = "Rate Limit Exceeded"
MAX_REDIRECTS = 5

M = TypeVar("M", bound=BaseModel)
QueryValue = str | int | float | bool | Sequence[str]
Query = Mapping[str, QueryValue]

# Fields the update endpoints accept (Canvas ignores others; we refuse them to catch typos).
GROUP_UPDATE_FIELDS = frozenset({"title", "description", "vendor_guid", "parent_outcome_group_id"})
OUTCOME_UPDATE_FIELDS = frozenset({
    "title", "display_name", "description", "vendor_guid", "mastery_points", "ratings",
    "calculation_method", "calculation_int",
})
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


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


def _seg(value: str | int) -> str:
    """One path segment; SIS ids such as ``sis_account_id:A/B`` are percent-encoded (§1.6)."""
    return quote(str(value), safe=":")


def _error_message(response: httpx.Response) -> str:
    """The human message from any of Canvas's error bodies, shortened."""
    if "html" in response.headers.get("content-type", ""):
        return "HTML error page"
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.content[:200].decode("utf-8", "replace").strip() or response.reason_phrase
    return _message_from(body)[:300]


def _message_from(body: Any) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            return "; ".join(
                str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors
            )
        if isinstance(errors, dict):
            # Validation errors: {"errors": {"title": [{"attribute", "type", "message"}]}}
            parts = []
            for attribute, problems in errors.items():
                items = problems if isinstance(problems, list) else [problems]
                for p in items:
                    parts.append(f"{attribute} {p.get('message', p) if isinstance(p, dict) else p}")
            return "; ".join(parts)
        for key in ("message", "error"):
            if key in body:
                return str(body[key])
    return str(body)


def _is_throttled(response: httpx.Response) -> bool:
    if response.status_code == 429:
        return True
    return response.status_code == 403 and RATE_LIMIT_TEXT in response.text


class CanvasClient:
    """Async client for one Canvas instance and one access token."""

    def __init__(
        self, base_url: str, token: str, *, timeout: float = 30.0, max_retries: int = 5,
        per_page: int = 100, backoff: Backoff | None = None, low_water: float = 0.2,
        max_pause: float = 2.0, concurrency: int = 1,
    ) -> None:
        if not token:
            raise ValueError("a Canvas access token is required")
        self._http = UpstreamHTTP(
            SYSTEM, base_url, timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        self._origin = httpx.URL(base_url)
        self._max_retries = max_retries
        self._per_page = per_page
        self._backoff = backoff or Backoff(base=0.5, cap=30.0)
        self.budget = RateBudget(low_water=low_water, max_pause=max_pause)
        # canvas.md §6.2.9: one in-flight request per token unless told otherwise, because
        # parallel requests pay Canvas's pre-flight penalty.
        self._limiter = anyio.CapacityLimiter(concurrency)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> CanvasClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- transport ---------------------------------------------------------------------------

    def _check_origin(self, url: httpx.URL) -> None:
        # Never send the bearer token to another host, whatever a Link or Location header says.
        if url.is_absolute_url and (url.scheme, url.host, url.port) != (
            self._origin.scheme, self._origin.host, self._origin.port,
        ):
            raise MalformedResponseError(SYSTEM, f"refusing to follow a link to another host: {url.host}")

    async def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.budget.paused_seconds += seconds
            UPSTREAM_THROTTLE_WAIT.labels(SYSTEM).inc(seconds)
            await anyio.sleep(seconds)

    async def request(
        self, method: str, url: str, *, params: Query | None = None, json: Any = None,
    ) -> httpx.Response:
        """Send one API call with pacing, retries and redirects; non-2xx answers raise typed errors."""
        idempotent = method in _IDEMPOTENT
        attempt = 0
        redirects = 0
        while True:
            request = self._http.client.build_request(method, url, params=params, json=json)
            self._check_origin(request.url)
            async with self._limiter:
                await self._wait(self.budget.pause())
                try:
                    response = await self._http.send(request)
                except TransientUpstreamError:
                    if not idempotent or attempt >= self._max_retries:
                        raise
                    await anyio.sleep(self._backoff.delay(attempt))
                    attempt += 1
                    continue
            self.budget.observe(response.headers)
            if _is_throttled(response):
                self.budget.throttled += 1
                delay = self._backoff.delay(attempt, floor=self.budget.pause())
                if attempt >= self._max_retries:
                    raise ThrottledError(
                        SYSTEM, f"rate limit exceeded after {attempt + 1} attempts: "
                        f"{method} {request.url.path}", status=response.status_code, retry_after=delay,
                    )
                await self._wait(delay)
                attempt += 1
                continue
            if response.status_code >= 500:
                if idempotent and attempt < self._max_retries:
                    await anyio.sleep(self._backoff.delay(attempt))
                    attempt += 1
                    continue
                raise self._server_error(method, request.url.path, response)
            if response.is_redirect and method == "GET":
                location = response.headers.get("location")
                if not location or redirects >= MAX_REDIRECTS:
                    raise MalformedResponseError(SYSTEM, f"bad redirect from {request.url.path}")
                url, params, redirects = str(request.url.join(location)), None, redirects + 1
                continue
            if response.status_code >= 400:
                raise self._client_error(method, request.url.path, response)
            return response

    def _server_error(self, method: str, path: str, response: httpx.Response) -> UpstreamError:
        if "html" in response.headers.get("content-type", ""):
            return MalformedResponseError(
                SYSTEM, f"HTML error page from {method} {path}", status=response.status_code
            )
        return TransientUpstreamError(
            SYSTEM, f"{method} {path}: {_error_message(response)}", status=response.status_code
        )

    def _client_error(self, method: str, path: str, response: httpx.Response) -> UpstreamError:
        status = response.status_code
        message = f"{method} {path}: {_error_message(response)}"
        if status == 401:
            if "www-authenticate" in response.headers:
                return AuthenticationError(SYSTEM, f"access token rejected (invalid or expired): {message}",
                                           status=status)
            return ForbiddenError(SYSTEM, message, status=status)
        if status == 403:
            return ForbiddenError(SYSTEM, message, status=status)
        if status == 404:
            return NotFoundError(SYSTEM, message, status=status)
        return PermanentUpstreamError(SYSTEM, message, status=status)

    # --- parsing and paging --------------------------------------------------------------------

    def _model(self, model: type[M], data: Any) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise MalformedResponseError(
                SYSTEM, f"unexpected {model.__name__} shape: {exc.error_count()} errors"
            ) from exc

    async def _get_model(self, model: type[M], path: str, params: Query | None = None) -> M:
        response = await self.request("GET", path, params=params)
        return self._model(model, self._http.json(response))

    async def _write_model(self, model: type[M], method: str, path: str, body: Any = None) -> M:
        response = await self.request(method, path, json=body)
        return self._model(model, self._http.json(response))

    async def pages(self, path: str, params: Query | None = None) -> AsyncIterator[list[Any]]:
        """Every page of a list endpoint, following ``rel="next"`` links until there is none."""
        query: Query | None = {**(params or {}), "per_page": self._per_page}
        url = path
        seen: set[str] = set()
        while True:
            response = await self.request("GET", url, params=query)
            body = self._http.json(response)
            if not isinstance(body, list):
                raise MalformedResponseError(
                    SYSTEM, f"expected a JSON list from {path}", status=response.status_code
                )
            yield body
            next_url = response.links.get("next", {}).get("url")
            if not next_url:
                return
            if next_url in seen:
                raise MalformedResponseError(SYSTEM, f"pagination loop at {path}")
            seen.add(next_url)
            # The link carries every parameter (canvas.md §1.3): send it as is.
            url, query = next_url, None

    async def iterate(self, model: type[M], path: str, params: Query | None = None) -> AsyncIterator[M]:
        """Every item of a list endpoint, validated as ``model``."""
        async for page in self.pages(path, params):
            for item in page:
                yield self._model(model, item)

    async def _collect(self, model: type[M], path: str, params: Query | None = None) -> list[M]:
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
