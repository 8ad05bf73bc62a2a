"""AB Connect v4.1 client: signed GETs, limit/offset paging, client-side token bucket, retries.

Reference: /work/shared/api/abconnect.md (``Lnnnn`` = line in seeds/002_465041200055f58b.txt).
Every request is signed in the query string (L8335-8601) with a read-only (``GET``) signature,
as in the documented worked example; all requests of one account share one ``TokenBucket``
(5 tokens/s, burst 25, L102). Throttling (429) and server failures are retried here with
jittered backoff a bounded number of times; everything else maps to the typed errors of
``worker.clients.errors``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import orjson
import structlog

from worker.backoff import Backoff
from worker.clients.abconnect_auth import auth_params, encode_query, quote_literal, sign
from worker.clients.abconnect_models import (
    SYSTEM,
    ABEvent,
    Document,
    EventsPage,
    Section,
    Standard,
    StandardsPage,
    malformed,
    parse_document,
    parse_event,
    parse_section,
    parse_standard,
)
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
from worker.clients.rate_limit import TokenBucket
from worker.metrics import UPSTREAM_THROTTLE_WAIT

__all__ = [
    "ABConnectClient", "ABEvent", "Document", "EventsPage", "Section", "Standard", "StandardsPage",
    "default_bucket",
]

log = structlog.get_logger(__name__)

API_PREFIX = "/rest/v4.1"
PAGE_CAP = 100  # "page sizes are capped at 100 objects per page" (L174)
RATE_PER_SECOND = 5.0  # "The system adds 5 tokens to an account's bucket every second" (L102)
BURST = 25.0  # "the bucket can hold up to 25 tokens" (L102)

# Without fields[...] AB answers with id and type only (L2310), so every call names what it
# needs. Relationships are requested through fields too (L2360-2367).
EVENT_FIELDS = (
    "seq,guid,date_utc,change_type,target,document_guid,section_guid,affected_properties,"
    "standard,deleted_standard,nondeliverable_standard"
)
STANDARD_FIELDS = (
    "guid,status,seq,level,label,standard_type,number,statement,education_levels,disciplines,"
    "utilizations,document.guid,document.descr,section.guid,section.descr,"
    "date_modified_utc,date_deleted_utc,parent"
)
DOCUMENT_FIELDS = "document"


def default_bucket() -> TokenBucket:
    """A bucket at the documented per-account limits; share one per AB partner account."""
    return TokenBucket(RATE_PER_SECOND, BURST, system=SYSTEM)


class ABConnectClient:
    """Async client for the AB Connect v4.1 events and standards endpoints of one partner account."""

    def __init__(
        self, base_url: str, partner_id: str, partner_key: str, *, user_id: str | None = None,
        bucket: TokenBucket | None = None, timeout: float = 30.0, max_retries: int = 5,
        backoff: Backoff | None = None, signature_ttl: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        base = base_url.rstrip("/")
        # The documented base URL ends in /rest/v4.1/ (api/abconnect.md §0); accept it with or without.
        self._prefix = "" if base.endswith(API_PREFIX) else API_PREFIX
        self._http = UpstreamHTTP(SYSTEM, base, timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))
        self.partner_id = partner_id
        self._key = partner_key  # never logged, never in an error message
        self.user_id = user_id
        self.bucket = bucket if bucket is not None else default_bucket()
        self.max_retries = max(0, max_retries)
        # One token refills every 200 ms, so the first 429 retry waits about that long (§1.6).
        self.backoff = backoff if backoff is not None else Backoff(base=0.25, cap=15.0)
        # "about 1 h for reads" (L8603-8607); signed afresh per request, so it never expires mid-run.
        self.signature_ttl = signature_ttl
        self._clock = clock

    async def __aenter__(self) -> ABConnectClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # ------------------------------------------------------------------ public API

    async def events(self, after_seq: int, limit: int = PAGE_CAP) -> EventsPage:
        """One page of events with ``seq > after_seq`` in ascending seq order (L1468).

        Keyset paging: call again with ``page.last_seq`` while ``page.has_more``; offsets are
        unsafe while new events arrive (api/abconnect.md §7).
        """
        limit = _clamp_limit(limit)
        body = await self._get("events", [
            ("filter[events]", f"seq GT {int(after_seq)}"),
            ("sort[events]", "seq"),
            ("fields[events]", EVENT_FIELDS),
            ("limit", str(limit)),
        ])
        data = _data_list(body, "events")
        events = sorted((parse_event(item) for item in data), key=lambda e: e.seq)
        fresh = [e for e in events if e.seq > after_seq]
        if len(fresh) != len(events):
            # A server bug, not ours to replay: the cursor must never move backwards.
            log.warning("abconnect.events.stale_seq", after_seq=after_seq, dropped=len(events) - len(fresh))
        count = _meta_int(body, "count")
        has_more = bool(_links(body).get("next")) or (count is not None and count > len(data))
        return EventsPage(events=fresh, has_more=has_more and bool(data), count=count)

    async def standards_page(
        self, *, document_guid: str | None = None, section_guid: str | None = None, offset: int = 0,
        limit: int = PAGE_CAP, include_deleted: bool = False,
    ) -> StandardsPage:
        """One page of deliverable standards, optionally of one document and/or section.

        Sorted by GUID so pages stay stable while the catalogue changes (L1263). Deleted
        standards are excluded unless ``include_deleted`` (L13964).
        """
        limit = _clamp_limit(limit)
        offset = max(0, offset)
        params = [
            ("sort[standards]", "guid"),
            ("fields[standards]", STANDARD_FIELDS),
            ("limit", str(limit)),
            ("offset", str(offset)),
        ]
        flt = _standards_filter(document_guid, section_guid, include_deleted)
        if flt:
            params.insert(0, ("filter[standards]", flt))
        body = await self._get("standards", params)
        data = _data_list(body, "standards")
        standards = [parse_standard(item) for item in data]
        total = _meta_int(body, "count")
        if total is not None:
            has_more = offset + len(data) < total
        else:
            has_more = bool(_links(body).get("next")) or len(data) == limit
        return StandardsPage(
            standards=standards, total=total, offset=offset, limit=limit, has_more=has_more and bool(data),
        )

    async def iter_standards(
        self, *, document_guid: str | None = None, section_guid: str | None = None,
        include_deleted: bool = False,
    ) -> AsyncIterator[Standard]:
        """Every deliverable standard of the document/section, walking all pages."""
        offset = 0
        while True:
            page = await self.standards_page(
                document_guid=document_guid, section_guid=section_guid, offset=offset,
                include_deleted=include_deleted,
            )
            for standard in page.standards:
                yield standard
            if not page.has_more:
                return
            offset += len(page.standards)

    async def standard(self, guid: str) -> Standard:
        """One standard by GUID, deleted ones included (``.deleted``; L13963).

        Raises ``ForbiddenError`` when the GUID exists but is not deliverable (L14037): for a
        change event that is the documented "silently skip" case (L1139).
        """
        body = await self._get(f"standards/{quote(guid, safe='')}", [("fields[standards]", STANDARD_FIELDS)])
        data = body.get("data")
        if not isinstance(data, dict):
            raise malformed(f"standards/{guid}: 'data' is not a resource object")
        return parse_standard(data)

    async def document(self, guid: str) -> Document:
        """A document's descriptive fields and sections.

        AB Connect has no documents endpoint (api/abconnect.md §4.1): this reads the
        ``document`` attribute of one of its standards and the ``section`` facet of all of
        them, in one call. ``NotFoundError`` when nothing of the document is deliverable.
        """
        body = await self._get("standards", [
            ("filter[standards]", f"document.guid eq {quote_literal(guid)}"),
            ("fields[standards]", DOCUMENT_FIELDS),
            ("facet", "section"),
            ("limit", "1"),
        ])
        data = _data_list(body, "standards")
        if not data:
            raise NotFoundError(SYSTEM, f"document {guid}: no deliverable standards", status=404)
        attrs = data[0].get("attributes") if isinstance(data[0], dict) else None
        doc_attrs = attrs.get("document") if isinstance(attrs, dict) else None
        if not isinstance(doc_attrs, dict) or not doc_attrs.get("guid"):
            raise malformed(f"document {guid}: standard without a 'document' attribute")
        sections = [s for s in (parse_section(d.get("data")) for d in _facet_details(body, "section")) if s]
        return parse_document(doc_attrs, sections, _meta_int(body, "count") or len(data))

    # ------------------------------------------------------------------ transport

    def _signed_url(self, resource: str, params: list[tuple[str, str]]) -> str:
        expires = int(self._clock()) + self.signature_ttl
        # Read-only signature ("<expires>\n<user>\nGET"), the worked example's form (L8598).
        signature = sign(self._key, expires, user_id=self.user_id, method="GET")
        auth = auth_params(self.partner_id, signature, expires, user_id=self.user_id)
        query = encode_query([*params, *auth])
        return f"{self._prefix}/{resource}?{query}"

    async def _get(self, resource: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        """GET with signing, the token bucket, bounded retries and error mapping; returns the JSON body."""
        path = f"{self._prefix}/{resource}"
        attempt = 0
        while True:
            error = await self._attempt(resource, params, path)
            if isinstance(error, dict):
                return error
            if attempt >= self.max_retries:
                raise error
            log.info("abconnect.retry", path=path, attempt=attempt + 1, status=error.status, error=str(error))
            await self._sleep_before_retry(attempt, error)
            attempt += 1

    async def _attempt(
        self, resource: str, params: list[tuple[str, str]], path: str,
    ) -> dict[str, Any] | UpstreamError:
        """One signed request: the body, a retryable error to return, or a permanent error raised."""
        await self.bucket.acquire()
        request = self._http.client.build_request("GET", self._signed_url(resource, params))
        try:
            response = await self._http.send(request)
        except TransientUpstreamError as exc:  # timeout or connection failure
            return exc
        status = response.status_code
        if status == 429:
            # Our bucket and the server's disagree: start ours from empty again.
            self.bucket.drain()
            return ThrottledError(
                SYSTEM, f"rate limited on {path}: {_error_detail(response)}", status=429,
                retry_after=_retry_after(response),
            )
        if status >= 500:
            return _server_error(response, path)
        if not 200 <= status < 300:
            raise _client_error(response, path)
        try:
            body = self._http.json(response)
        except MalformedResponseError as exc:  # a truncated body is a transport glitch: retry it
            return exc
        if not isinstance(body, dict):
            raise malformed(f"{path}: top-level JSON is {type(body).__name__}, not an object")
        return body

    async def _sleep_before_retry(self, attempt: int, last: UpstreamError) -> None:
        if isinstance(last, ThrottledError):
            # Retry-After is undocumented for AB; honour it as a floor when a proxy sends one.
            delay = self.backoff.delay(attempt, floor=last.retry_after or 0.0)
            UPSTREAM_THROTTLE_WAIT.labels(SYSTEM).inc(delay)
        else:
            delay = self.backoff.delay(attempt)
        await anyio.sleep(delay)


def _clamp_limit(limit: int) -> int:
    # The server's answer to limit > 100 is undocumented (400 or clamp, §2.1): never send one.
    return max(1, min(PAGE_CAP, int(limit)))


def _standards_filter(document_guid: str | None, section_guid: str | None, include_deleted: bool) -> str:
    # document.guid rather than the follow-up example's document.id (L1468): see §3.7.
    clauses = []
    if document_guid:
        clauses.append(f"document.guid eq {quote_literal(document_guid)}")
    if section_guid:
        clauses.append(f"section.guid eq {quote_literal(section_guid)}")
    if include_deleted:
        clauses.append("status in ('active','deleted')")
    return " and ".join(clauses)


def _data_list(body: dict[str, Any], what: str) -> list[Any]:
    data = body.get("data")
    if not isinstance(data, list):
        raise malformed(f"{what}: 'data' is {type(data).__name__}, expected a list")
    return data


def _links(body: dict[str, Any]) -> dict[str, Any]:
    links = body.get("links")
    return links if isinstance(links, dict) else {}


def _meta_int(body: dict[str, Any], name: str) -> int | None:
    meta = body.get("meta")
    value = meta.get(name) if isinstance(meta, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _facet_details(body: dict[str, Any], facet: str) -> list[dict[str, Any]]:
    meta = body.get("meta")
    facets = meta.get("facets") if isinstance(meta, dict) else None
    for entry in facets if isinstance(facets, list) else []:
        if isinstance(entry, dict) and entry.get("facet") == facet and isinstance(entry.get("details"), list):
            return [d for d in entry["details"] if isinstance(d, dict)]
    return []


def _error_detail(response: httpx.Response) -> str:
    """The first entry of the documented ``errors`` body (L145-162), or a short body snippet."""
    try:
        body = orjson.loads(response.content)
        err = body["errors"][0]
        parts = [str(err.get("title") or ""), str(err.get("detail") or "")]
        param = (err.get("source") or {}).get("parameter")
        if param:
            parts.append(f"(parameter {param})")
        text = " ".join(p for p in parts if p)
        if text:
            return text
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        pass
    snippet = response.content[:160].decode("utf-8", "replace").replace("\n", " ")
    return repr(snippet) if snippet else "(empty body)"


def _server_error(response: httpx.Response, path: str) -> UpstreamError:
    status = response.status_code
    if "html" in response.headers.get("content-type", ""):
        snippet = response.content[:120].decode("utf-8", "replace").replace("\n", " ")
        return MalformedResponseError(
            SYSTEM, f"{path}: HTML page instead of JSON: {snippet!r}", status=status,
        )
    return TransientUpstreamError(SYSTEM, f"{path}: server error: {_error_detail(response)}", status=status)


def _client_error(response: httpx.Response, path: str) -> UpstreamError:
    status = response.status_code
    detail = f"{path}: {_error_detail(response)}"
    if status == 401:
        return AuthenticationError(SYSTEM, detail, status=status)
    if status == 403:
        return ForbiddenError(SYSTEM, detail, status=status)
    if status == 404:
        return NotFoundError(SYSTEM, detail, status=status)
    if 400 <= status < 500:
        return PermanentUpstreamError(SYSTEM, detail, status=status)
    return MalformedResponseError(SYSTEM, f"unexpected HTTP status: {detail}", status=status)


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (undocumented for AB, honoured if present)."""
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
