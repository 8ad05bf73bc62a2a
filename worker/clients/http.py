"""The one HTTP layer under every API client: retries, deadlines, size caps, response classes.

A client describes its system (how to authorise a request, how to pace itself, which responses
mean what) and calls ``UpstreamHTTP.call``; this module does the rest the same way for all:

- every attempt, headers and whole body, finishes within ``request_deadline_seconds``: a body
  that trickles in a byte at a time is cut off, where httpx's read timeout alone would wait
  forever between bytes;
- a body over ``max_response_bytes`` is refused while streaming, before it is held in memory;
- retriable failures are retried with jittered backoff up to ``max_attempts``; a ``Retry-After``
  is honoured up to ``retry_after_cap_seconds`` and beyond it the request fails at once, naming
  the header, so a proxy asking for an hour cannot park a poller;
- a write that is not idempotent is never retried after it may have reached the server: the
  caller gets ``AmbiguousWriteError`` and looks the object up first;
- JSON is parsed here (HTML pages, also with status 200, and truncated bodies are
  ``MalformedResponseError``); validating it into typed models is the client's job, strictly.

Every sleep and wait here is cancellable, so a stop request ends a poll at once. Each attempt
counts in ``edusync_upstream_requests_total`` under the tenant whose work the calling task does
(``worker.metrics.current_tenant``, set by the poller and handler frames).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import anyio
import httpx
import orjson
import structlog
from pydantic import BaseModel, ConfigDict, Field

from worker.backoff import Backoff
from worker.clients.dry_run import RECORDING, is_write
from worker.clients.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ForbiddenError,
    MalformedResponseError,
    NotFoundError,
    PermanentUpstreamError,
    ResponseTooLargeError,
    ThrottledError,
    TransientUpstreamError,
    UpstreamError,
)
from worker.errors import RetriableError
from worker.metrics import UPSTREAM_REQUESTS, UPSTREAM_RETRIES, UPSTREAM_THROTTLE_WAIT, tenant_label
from worker.redaction import redact
from worker.upstream_retries import SUMMARY, current_tenant

log = structlog.get_logger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
MAX_REDIRECTS = 5
QueryValue = str | int | float | bool | Sequence[str]
Query = Mapping[str, QueryValue] | list[tuple[str, str | int | float | bool | None]]


class HTTPSettings(BaseModel):
    """How one system's client talks HTTP; every system's configuration section has one (``http:``)."""

    model_config = ConfigDict(extra="forbid")

    attempt_timeout_seconds: float = Field(
        30.0, gt=0, description="connect, write and read timeout of one attempt (read: between two chunks)")
    request_deadline_seconds: float = Field(
        60.0, gt=0, description="one attempt, headers and the whole body, must finish within this")
    max_attempts: int = Field(5, ge=1, le=20, description="attempts of one request, the first included")
    backoff_base_seconds: float = Field(0.5, gt=0)
    backoff_cap_seconds: float = Field(30.0, gt=0)
    retry_after_cap_seconds: float = Field(
        60.0, ge=0, description="a Retry-After beyond this fails the request at once instead of sleeping")
    max_response_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="larger bodies are refused unread")

    def backoff(self) -> Backoff:
        """The jittered backoff these settings describe."""
        return Backoff(base=self.backoff_base_seconds, cap=self.backoff_cap_seconds)


class ResponseClassifier:
    """Turns a response into ``None`` (success) or the typed error it means, for one system.

    The defaults follow HTTP: 429 throttled, 5xx transient (an HTML error page: malformed), 401
    credentials rejected, 403 forbidden, 404 not found, other 4xx permanent. A system overrides
    the methods whose meaning differs (Canvas throttles with a 403, MatrixLMS with a 400 message).
    """

    def __init__(self, system: str) -> None:
        self.system = system

    def classify(self, response: httpx.Response, where: str) -> UpstreamError | None:
        """The error ``response`` stands for, or ``None`` when it is a success."""
        status = response.status_code
        if self.throttled(response):
            return ThrottledError(self.system, f"rate limited on {where}: {self.detail(response)}", status=status,
                                  retry_after=retry_after_seconds(response))
        if 200 <= status < 300 or response.is_redirect:
            return None  # a redirect is followed (GET) or refused by ``call``
        message = f"{where}: {self.detail(response)}"
        if status >= 500:
            if is_html(response):
                return MalformedResponseError(
                    self.system, f"HTML page instead of JSON from {where}: {snippet(response.content)}", status=status)
            return TransientUpstreamError(self.system, f"server error: {message}", status=status)
        if status == 401:
            return self.rejected(response, message)
        if status == 403:
            return ForbiddenError(self.system, message, status=status)
        if status == 404:
            return NotFoundError(self.system, message, status=status)
        if 400 <= status < 500:
            return PermanentUpstreamError(self.system, message, status=status)
        return MalformedResponseError(self.system, f"unexpected HTTP status: {message}", status=status)

    def throttled(self, response: httpx.Response) -> bool:
        """Whether this is the system's rate-limit answer."""
        return response.status_code == 429

    def rejected(self, response: httpx.Response, message: str) -> UpstreamError:
        """The error for a 401."""
        return AuthenticationError(self.system, f"credentials rejected: {message}", status=response.status_code)

    def detail(self, response: httpx.Response) -> str:
        """A short human message from an error body."""
        if not response.content:
            return "(empty body)"
        if is_html(response):
            return "HTML error page"
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return snippet(response.content)
        return message_from(body)[:300]


@dataclass(frozen=True)
class Answer:
    """A successful response, its body read (within the cap), and the parsed JSON when asked for."""

    response: httpx.Response
    body: Any = None


class UpstreamHTTP:
    """An ``httpx.AsyncClient`` for one system and credential, with the behaviour described above.

    ``pace`` runs before every attempt (a token bucket, a quota pause); ``observe`` sees every
    response (quota headers); ``limiter`` bounds requests in flight (Canvas: one per token).
    """

    def __init__(
        self, system: str, base_url: str, *, settings: HTTPSettings | None = None,
        classifier: ResponseClassifier | None = None, headers: Mapping[str, str] | None = None,
        pace: Callable[[], Awaitable[None]] | None = None, observe: Callable[[httpx.Response], None] | None = None,
        limiter: anyio.CapacityLimiter | None = None,
    ) -> None:
        self.system = system
        self.settings = settings or HTTPSettings()
        self.classifier = classifier or ResponseClassifier(system)
        self._pace = pace
        self._observe = observe
        self._limiter = limiter
        self._backoff = self.settings.backoff()
        timeout = self.settings.attempt_timeout_seconds
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=20),
        )
        self._origin = httpx.URL(base_url)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()

    async def call(
        self, method: str, target: str | Callable[[], str], *, params: Query | None = None, json: Any = None,
        content: bytes | None = None, headers: Mapping[str, str] | None = None, idempotent: bool | None = None,
        parse_json: bool = True, authorize: Callable[[httpx.Request], None] | None = None,
        writes: bool | None = None,
    ) -> Answer:
        """Send one API call with the retry policy; returns the answer or raises a typed error.

        ``target`` is a path or URL, or a function giving a fresh one per attempt (for signatures
        in the query string); ``authorize`` may set headers on each attempt's request. ``writes``
        says whether the call changes the target, where its method does not tell (dry runs).
        """
        method = method.upper()
        dry = RECORDING.get()
        if dry is not None and is_write(method, writes):
            planned = httpx.URL(target() if callable(target) else target)
            raise dry.stop(self.system, self._origin.host, method, planned.path, json)
        idempotent = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        attempt = 0
        redirects = 0
        while True:
            url = target() if callable(target) else target
            request = self.client.build_request(method, url, params=params, json=json, content=content,
                                                headers=headers)
            self._check_origin(request.url)
            if authorize is not None:
                authorize(request)
            where = f"{method} {request.url.path}"
            outcome = await self._attempt(request, where, parse_json)
            if isinstance(outcome, Answer):
                if not outcome.response.is_redirect:
                    return outcome
                location = outcome.response.headers.get("location")
                if method != "GET" or not location or redirects >= MAX_REDIRECTS:
                    raise MalformedResponseError(self.system, f"unexpected or endless redirect from {where}",
                                                 status=outcome.response.status_code)
                target, params, redirects = str(request.url.join(location)), None, redirects + 1
                continue
            error, sent = outcome
            attempt += 1
            self._give_up_unless_retriable(error, where, attempt, idempotent, sent)
            delay = self._delay(error, attempt)
            reason = retry_reason(error)
            UPSTREAM_RETRIES.labels(self.system, reason).inc()
            # A warning a minute per system, host and tenant counts the retries by reason; the first
            # retry of each reason in that minute is an info line with its cause, the others debug.
            first = SUMMARY.record(self.system, request.url.host, reason)
            (log.info if first else log.debug)(
                "upstream.retry", system=self.system, host=request.url.host, tenant=current_tenant(),
                request=redact(where), attempt=attempt, reason=reason, status=error.status,
                error=redact(str(error)), retry_in=round(delay, 3))
            await anyio.sleep(delay)

    def _give_up_unless_retriable(
        self, error: UpstreamError, where: str, attempt: int, idempotent: bool, sent: bool,
    ) -> None:
        if not isinstance(error, RetriableError):
            raise error
        if isinstance(error, ThrottledError):
            cap = self.settings.retry_after_cap_seconds
            if error.retry_after is not None and error.retry_after > cap:
                raise ThrottledError(
                    self.system, f"{where}: Retry-After {error.retry_after:.0f}s is beyond the configured cap "
                    f"of {cap:.0f}s; not waiting that long", status=error.status, retry_after=error.retry_after,
                ) from error
        elif not idempotent and sent:
            # The write may have been applied: only the caller can find out (look up, then retry).
            raise AmbiguousWriteError(self.system, f"{where}: outcome unknown: {error}", status=error.status) from error
        if attempt >= self.settings.max_attempts:
            raise error

    def _delay(self, error: UpstreamError, attempt: int) -> float:
        floor = 0.0
        if isinstance(error, ThrottledError):
            floor = min(error.retry_after or 0.0, self.settings.retry_after_cap_seconds)
        delay = self._backoff.delay(attempt - 1, floor=floor)
        if isinstance(error, ThrottledError):
            UPSTREAM_THROTTLE_WAIT.labels(self.system).inc(delay)
        return delay

    async def _attempt(
        self, request: httpx.Request, where: str, parse_json: bool,
    ) -> Answer | tuple[UpstreamError, bool]:
        """One attempt: an ``Answer``, or the error and whether the request may have reached the server."""
        deadline = self.settings.request_deadline_seconds
        try:
            if self._limiter is not None:
                async with self._limiter:
                    response = await self._paced_send(request, deadline)
            else:
                response = await self._paced_send(request, deadline)
        except TimeoutError:
            UPSTREAM_REQUESTS.labels(self.system, tenant_label(current_tenant()), "error").inc()
            return TransientUpstreamError(
                self.system, f"{where}: no complete answer within {deadline:g}s (stalled or trickling body)"), True
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            UPSTREAM_REQUESTS.labels(self.system, tenant_label(current_tenant()), "error").inc()
            return TransientUpstreamError(self.system, f"{where}: cannot connect: {type(exc).__name__}"), False
        except httpx.TimeoutException as exc:
            UPSTREAM_REQUESTS.labels(self.system, tenant_label(current_tenant()), "error").inc()
            return TransientUpstreamError(self.system, f"{where}: timed out ({type(exc).__name__})"), True
        except httpx.TransportError as exc:
            UPSTREAM_REQUESTS.labels(self.system, tenant_label(current_tenant()), "error").inc()
            return TransientUpstreamError(self.system, f"{where}: connection failed: {type(exc).__name__}"), True
        UPSTREAM_REQUESTS.labels(self.system, tenant_label(current_tenant()), str(response.status_code)).inc()
        if self._observe is not None:
            self._observe(response)
        error = self.classifier.classify(response, where)
        if error is not None:
            return error, True
        if not parse_json or response.is_redirect or response.status_code == 204:
            return Answer(response)
        try:
            return Answer(response, self.parse_json(response, where))
        except MalformedResponseError as exc:
            return exc, True

    async def _paced_send(self, request: httpx.Request, deadline: float) -> httpx.Response:
        # Waiting for the budget is not part of the deadline: only the exchange itself is.
        if self._pace is not None:
            await self._pace()
        with anyio.fail_after(deadline):
            return await self._send_capped(request)

    async def _send_capped(self, request: httpx.Request) -> httpx.Response:
        """Send and read the body, refusing it as soon as it passes the size cap."""
        cap = self.settings.max_response_bytes
        where = f"{request.method} {request.url.path}"
        response = await self.client.send(request, stream=True)
        try:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise ResponseTooLargeError(
                    self.system, f"{where}: body of {int(declared):,} bytes is over the cap of {cap:,}",
                    status=response.status_code)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > cap:
                    raise ResponseTooLargeError(
                        self.system, f"{where}: body passed the cap of {cap:,} bytes; stopped reading",
                        status=response.status_code)
                chunks.append(chunk)
        finally:
            await response.aclose()
        # The body is decoded already: the rebuilt response must not decode it again.
        kept = [(k, v) for k, v in response.headers.multi_items()
                if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
        return httpx.Response(response.status_code, headers=kept, content=b"".join(chunks), request=request)

    def parse_json(self, response: httpx.Response, where: str = "") -> Any:
        """The JSON body; HTML pages (whatever the status), truncated or empty bodies raise
        ``MalformedResponseError`` naming what came instead."""
        where = where or f"{response.request.method} {response.request.url.path}"
        if is_html(response):
            raise MalformedResponseError(
                self.system, f"HTML page instead of JSON from {where}: {snippet(response.content)}",
                status=response.status_code)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise MalformedResponseError(
                self.system, f"unparseable JSON from {where} ({exc}): {snippet(response.content)}",
                status=response.status_code) from exc

    def _check_origin(self, url: httpx.URL) -> None:
        # Never send credentials to another host, whatever a Link or Location header says.
        if url.is_absolute_url and (url.scheme, url.host, url.port) != (
            self._origin.scheme, self._origin.host, self._origin.port,
        ):
            raise MalformedResponseError(self.system, f"refusing to follow a link to another host: {url.host}")


def retry_reason(error: UpstreamError) -> str:
    """The ``reason`` label of a retried attempt: one of a few fixed words."""
    if isinstance(error, ThrottledError):
        return "throttled"
    if isinstance(error, ResponseTooLargeError):
        return "too_large"
    if isinstance(error, MalformedResponseError):
        return "malformed"
    return "transient"


def is_html(response: httpx.Response) -> bool:
    """True for an HTML page (by content type, or by its first bytes when the type lies)."""
    if "html" in response.headers.get("content-type", ""):
        return True
    head = response.content[:64].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def snippet(body: bytes, limit: int = 120) -> str:
    """The start of a body, for error messages."""
    text = body[:limit].decode("utf-8", "replace").replace("\n", " ")
    return repr(text + ("..." if len(body) > limit else ""))


def message_from(body: Any) -> str:
    """The human message of the common JSON error shapes (``errors`` lists or maps, ``message``, ``error``)."""
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            return "; ".join(_error_text(e) for e in errors)
        if isinstance(errors, dict):
            parts = []
            for attribute, problems in errors.items():
                for p in problems if isinstance(problems, list) else [problems]:
                    parts.append(f"{attribute} {p.get('message', p) if isinstance(p, dict) else p}")
            return "; ".join(parts)
        for key in ("message", "error"):
            if key in body:
                value = body[key]
                return message_from(value) if isinstance(value, dict) else str(value)
    return str(body)


def _error_text(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    parts = [str(error.get(k)) for k in ("title", "detail", "message") if error.get(k)]
    source = error.get("source")
    if isinstance(source, dict) and source.get("parameter"):
        parts.append(f"(parameter {source['parameter']})")
    return " ".join(parts) or str(error)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
