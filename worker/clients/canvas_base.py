"""The Canvas client's transport: bearer auth (static or OAuth2), Link-header paging, throttling,
typed errors, request ids.

Cross-cutting behaviour follows /work/shared/api/canvas.md:
- §1.2: 401 *with* ``WWW-Authenticate`` means the token is invalid, deleted or expired
  (``AuthenticationError``; ``TokenExpiredError`` when the body says so, which an OAuth2 client
  answers with one refresh); 401 *without* it means the user lacks permission
  (``AccessDeniedError``). Both pause the component rather than dead-letter events.
- §1.3: follow ``rel="next"`` until it is absent; links are opaque and never built by hand.
- §1.4/§7.1: every response reports ``X-Request-Cost`` and ``X-Rate-Limit-Remaining``; throttling
  is answered as ``403 Forbidden (Rate Limit Exceeded)`` or as 429, and both are retried.
- §1.6: SIS ids in paths are UTF-8, then percent-escaped, ``.`` included (``CS/101.11é`` is
  ``CS%2F101%2E11%C3%A9``).
- A uniqueness clash (Canvas's ``{"errors": {attr: [{"type": "taken"}]}}``) is ``ConflictError``.
- Every response carries ``X-Request-Context-Id`` (PUBLIC: canvas-lms
  ``lib/request_context/generator.rb``); writes hand it back in ``Written.request_id``, because
  grade-change events record it as ``request_id`` (FLOWS.md 2.2 trap 5: the exact echo key).

Retries, deadlines and size caps are the shared HTTP layer's: a POST is retried only after a
throttled (or 401) answer, which Canvas gives before doing any work; any other failure of a
POST raises ``AmbiguousWriteError`` so the caller repeats its look-up-then-create.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import anyio
import httpx
import orjson
from pydantic import BaseModel, ValidationError

from worker.clients.canvas_errors import SisIdNotStoredError, TokenExpiredError
from worker.clients.canvas_oauth import OAuthCredentials, OAuthToken, StaticToken, TokenSource
from worker.clients.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConflictError,
    MalformedResponseError,
    UpstreamError,
)
from worker.clients.http import Answer, HTTPSettings, ResponseClassifier, UpstreamHTTP
from worker.metrics import UPSTREAM_THROTTLE_WAIT, watch_budget

SYSTEM = "canvas"
RATE_LIMIT_TEXT = "Rate Limit Exceeded"
REQUEST_ID_HEADER = "x-request-context-id"
# The objects canvas.md §1.6 lists as addressable by SIS id ("sis_course_id:A1234").
SIS_PREFIXES = frozenset({
    "sis_account_id", "sis_course_id", "sis_group_id", "sis_group_category_id", "sis_integration_id",
    "sis_login_id", "sis_section_id", "sis_term_id", "sis_user_id", "sis_assignment_id",
})

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


@dataclass(frozen=True)
class Written(Generic[T]):
    """What a write answered, and the request id Canvas gave the write (``X-Request-Context-Id``)."""

    value: T
    request_id: str | None


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
    requests: int = 0

    def observe(self, headers: httpx.Headers) -> None:
        """Record the quota headers of one response (absent when throttling is off upstream)."""
        self.requests += 1
        cost = _float_header(headers, "x-request-cost")
        if cost is not None:
            self.last_cost = cost
        remaining = _float_header(headers, "x-rate-limit-remaining")
        if remaining is not None:
            self.remaining = remaining
            self.high_water = max(self.high_water, remaining + (cost or 0.0))

    def use(self) -> float:
        """Share of the quota spent, as Canvas last reported it (0 before it reported any)."""
        if self.remaining is None or self.high_water <= 0:
            return 0.0
        return 1.0 - max(self.remaining, 0.0) / self.high_water

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


def _escape(value: str) -> str:
    # canvas.md §1.6: "encoded as UTF-8, and then escaped normally"; its example escapes "." too.
    return quote(value, safe="").replace(".", "%2E")


def seg(value: str | int) -> str:
    """One path segment: a Canvas id, ``self``, or ``<sis field>:<sis id>`` with the SIS id escaped."""
    text = str(value)
    head, sep, tail = text.partition(":")
    if sep and head in SIS_PREFIXES:
        return f"{head}:{_escape(tail)}"
    return quote(text, safe=":")


def sis(field: str, value: str) -> str:
    """A SIS reference such as ``sis("sis_course_id", "CS/101")`` for any ``:id`` argument."""
    if field not in SIS_PREFIXES:
        raise ValueError(f"unknown SIS field {field!r}; known: {sorted(SIS_PREFIXES)}")
    if not value:
        raise ValueError("empty SIS id")
    return f"{field}:{value}"


def request_id(response: httpx.Response) -> str | None:
    """The ``X-Request-Context-Id`` Canvas stamped on this response."""
    value: str | None = response.headers.get(REQUEST_ID_HEADER)
    return value


def _taken(body: Any) -> str | None:
    """The attribute a Canvas validation body says is already taken, if any."""
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("type") == "taken":
                return str(item.get("attribute") or "id")
            message = item.get("message")
            if isinstance(message, str) and ("is already in use" in message or "has already been taken" in message):
                return str(item.get("attribute") or "id")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


class CanvasClassifier(ResponseClassifier):
    """Canvas's meanings: throttling as 403 "Rate Limit Exceeded" too, the two kinds of 401, an
    expired token, and uniqueness clashes."""

    def classify(self, response: httpx.Response, where: str) -> UpstreamError | None:
        """The base classes, plus ``ConflictError`` for a 400/409/422 that says an id is taken."""
        error = super().classify(response, where)
        if error is not None and response.status_code in (400, 409, 422):
            try:
                attribute = _taken(orjson.loads(response.content))
            except orjson.JSONDecodeError:
                attribute = None
            if attribute is not None:
                return ConflictError(
                    self.system, f"{where}: {attribute} already in use: {self.detail(response)}",
                    status=response.status_code,
                )
        return error

    def throttled(self, response: httpx.Response) -> bool:
        """429, or 403 with Canvas's rate-limit text (§1.4)."""
        if response.status_code == 429:
            return True
        return response.status_code == 403 and RATE_LIMIT_TEXT in response.text

    def rejected(self, response: httpx.Response, message: str) -> UpstreamError:
        """401 with ``WWW-Authenticate``: the token itself; without: a permission (§1.2)."""
        if "www-authenticate" in response.headers:
            if "expired" in message.lower():
                return TokenExpiredError(SYSTEM, f"access token expired: {message}", status=response.status_code)
            return AuthenticationError(SYSTEM, f"access token rejected (invalid or expired): {message}",
                                       status=response.status_code)
        return AccessDeniedError(SYSTEM, f"the token's user lacks permission: {message}", status=response.status_code)


class CanvasBase:
    """Transport for one Canvas instance and one credential; share one per token (its quota).

    ``token`` is a static access token; ``oauth`` instead gives a developer key and refresh
    token, and the client keeps an access token fresh itself.
    """

    def __init__(
        self, base_url: str, token: str | None = None, *, oauth: OAuthCredentials | None = None,
        http: HTTPSettings | None = None, per_page: int = 100, low_water: float = 0.2, max_pause: float = 2.0,
        concurrency: int = 1,
    ) -> None:
        if (token is None) == (oauth is None):
            raise ValueError("give a Canvas access token or OAuth2 credentials (one of the two)")
        self.budget = RateBudget(low_water=low_water, max_pause=max_pause)
        watch_budget(SYSTEM, self.budget.use)
        # canvas.md §6.2.9: one in-flight request per token unless told otherwise, because
        # parallel requests pay Canvas's pre-flight penalty.
        self._http = UpstreamHTTP(
            SYSTEM, base_url, settings=http, classifier=CanvasClassifier(SYSTEM),
            headers={"Accept": "application/json"}, pace=self._pace, observe=self._observe,
            limiter=anyio.CapacityLimiter(concurrency),
        )
        self.tokens: TokenSource
        if oauth is not None:
            self.tokens = OAuthToken(self._http, oauth)
        else:
            self.tokens = StaticToken(token or "")
        self._per_page = per_page

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

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

    async def _call(
        self, method: str, url: str, *, params: Any = None, json: Any = None, parse_json: bool = True,
    ) -> Answer:
        """One API call with the current token; an expired token is refreshed once and the call
        repeated (a 401 is refused before any work, so repeating a POST is safe)."""
        for attempt in (1, 2):
            await self.tokens.fresh()
            used: list[str] = []
            try:
                return await self._http.call(method, url, params=params, json=json, parse_json=parse_json,
                                             authorize=self._authorizer(used))
            except TokenExpiredError:
                if attempt == 2 or not self.tokens.refreshable:
                    raise
                await self.tokens.refresh(used[-1] if used else self.tokens.current())
        raise AssertionError("unreachable")

    def _authorizer(self, used: list[str]) -> Callable[[httpx.Request], None]:
        """Sets the current token on each attempt (a refresh by another request is picked up) and
        notes which one went out, so a 401 refreshes that token and no newer one."""

        def authorize(request: httpx.Request) -> None:
            token = self.tokens.current()
            used.append(token)
            request.headers["Authorization"] = f"Bearer {token}"

        return authorize

    async def request(self, method: str, url: str, *, params: Any = None, json: Any = None) -> httpx.Response:
        """Send one API call (pacing, retries, redirects); non-2xx answers raise typed errors."""
        return (await self._call(method, url, params=params, json=json, parse_json=False)).response

    async def _json(self, method: str, url: str, *, params: Any = None, json: Any = None) -> Any:
        return (await self._call(method, url, params=params, json=json)).body

    # --- parsing and paging --------------------------------------------------------------------

    def _model(self, model: type[M], data: Any) -> M:
        return parse_as(model, data)

    async def _get_model(self, model: type[M], path: str, params: Any = None) -> M:
        return self._model(model, await self._json("GET", path, params=params))

    async def _write_model(self, model: type[M], method: str, path: str, body: Any = None) -> M:
        return self._model(model, await self._json(method, path, json=body))

    async def _written(self, model: type[M], method: str, path: str, body: Any = None,
                       params: Any = None) -> Written[M]:
        answer = await self._call(method, path, json=body, params=params)
        return Written(self._model(model, answer.body), request_id(answer.response))

    async def walk(self, path: str, params: Mapping[str, Any] | None = None) -> AsyncIterator[Answer]:
        """Every answer of a paged endpoint, following ``rel="next"`` links until there is none."""
        query: Any = {**(params or {}), "per_page": self._per_page}
        url = path
        seen: set[str] = set()
        while True:
            answer = await self._call("GET", url, params=query)
            yield answer
            next_url = answer.response.links.get("next", {}).get("url")
            if not next_url:
                return
            if next_url in seen:
                raise MalformedResponseError(SYSTEM, f"pagination loop at {path}")
            seen.add(next_url)
            # The link carries every parameter (canvas.md §1.3): send it as is.
            url, query = next_url, None

    async def pages(
        self, path: str, params: Mapping[str, Any] | None = None, *, key: str | None = None,
    ) -> AsyncIterator[list[Any]]:
        """Every page of a list endpoint (the list under ``key`` when Canvas wraps it)."""
        async for answer in self.walk(path, params):
            body = answer.body
            if key is not None:
                body = body.get(key) if isinstance(body, dict) else None
            if not isinstance(body, list):
                raise MalformedResponseError(
                    SYSTEM, f"expected a JSON list{f' under {key!r}' if key else ''} from {path}",
                    status=answer.response.status_code,
                )
            yield body

    async def iterate(
        self, model: type[M], path: str, params: Mapping[str, Any] | None = None, *, key: str | None = None,
    ) -> AsyncIterator[M]:
        """Every item of a list endpoint, validated as ``model``."""
        async for page in self.pages(path, params, key=key):
            for item in page:
                yield self._model(model, item)

    async def _collect(
        self, model: type[M], path: str, params: Mapping[str, Any] | None = None, *, key: str | None = None,
    ) -> list[M]:
        return [item async for item in self.iterate(model, path, params, key=key)]


def require_sis(kind: str, field: str, sent: str | None, got: str | None, created_id: str) -> None:
    """Raise ``SisIdNotStoredError`` when Canvas answered without the SIS id we sent."""
    if sent is None:
        return
    if got != (sent or None):  # sending "" clears the id
        raise SisIdNotStoredError(
            SYSTEM, f"SIS id not stored: Canvas created {kind} {created_id} without {field} {sent!r} "
            f"(answered {got!r}); the token's user probably lacks manage_sis. The {kind} exists in Canvas "
            "without its SIS id and must be fixed or removed by hand",
        )


def compact(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that are set: Canvas leaves absent parameters alone, so ``None`` is not sent."""
    return {name: value for name, value in fields.items() if value is not None}
