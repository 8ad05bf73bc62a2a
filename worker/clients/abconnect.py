"""AB Connect v4.1 client: signed GETs, limit/offset paging, the account's token bucket.

Reference: /work/shared/api/abconnect.md (``Lnnnn`` = line in seeds/002_465041200055f58b.txt).
Every request is signed in the query string (L8335-8601) with a read-only (``GET``) signature,
as in the documented worked example, afresh for each attempt; all requests of one account share
one ``TokenBucket`` (5 tokens/s, burst 25, L102), so share one client per account. Retries,
deadlines and size caps are the shared HTTP layer's (``worker.clients.http``); parsing is strict
(``worker.clients.abconnect_models``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
import structlog

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
    parse_document_answer,
    parse_document_guids,
    parse_events_page,
    parse_standard,
    parse_standards_page,
)
from worker.clients.http import HTTPSettings, UpstreamHTTP
from worker.clients.rate_limit import TokenBucket
from worker.replica_share import BudgetShare

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
        bucket: TokenBucket | None = None, http: HTTPSettings | None = None, signature_ttl: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        base = base_url.rstrip("/")
        # The documented base URL ends in /rest/v4.1/ (api/abconnect.md §0); accept it with or without.
        self._prefix = "" if base.endswith(API_PREFIX) else API_PREFIX
        self.bucket = bucket if bucket is not None else default_bucket()
        self._http = UpstreamHTTP(SYSTEM, base, settings=http, pace=self.bucket.acquire, observe=self._observe)
        self.partner_id = partner_id
        self._key = partner_key  # never logged, never in an error message
        self.user_id = user_id
        # "about 1 h for reads" (L8603-8607); signed afresh per attempt, so it never expires mid-run.
        self.signature_ttl = signature_ttl
        self._clock = clock

    def share_budget(self, share: BudgetShare) -> None:
        """Pace this partner account by ``share`` of its budget (the replicas that spend it)."""
        self.bucket.share_with(share)

    async def __aenter__(self) -> ABConnectClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def _observe(self, response: httpx.Response) -> None:
        if response.status_code == 429:
            # Our bucket and the server's disagree: start ours from empty again.
            self.bucket.drain()

    # ------------------------------------------------------------------ public API

    async def events(self, after_seq: int, limit: int = PAGE_CAP) -> EventsPage:
        """One page of events with ``seq > after_seq`` in ascending seq order (L1468).

        Keyset paging: call again with ``page.last_seq`` while ``page.has_more``; offsets are
        unsafe while new events arrive (api/abconnect.md §7).
        """
        body = await self._get("events", [
            ("filter[events]", f"seq GT {int(after_seq)}"),
            ("sort[events]", "seq"),
            ("fields[events]", EVENT_FIELDS),
            ("limit", str(_clamp_limit(limit))),
        ])
        page = parse_events_page(body)
        fresh = [e for e in page.events if e.seq > after_seq]
        if len(fresh) != len(page.events):
            # A server bug, not ours to replay: the cursor must never move backwards.
            log.warning("abconnect.events.stale_seq", after_seq=after_seq, dropped=len(page.events) - len(fresh))
            page = page.model_copy(update={"events": fresh})
        return page

    async def standards_page(
        self, *, document_guid: str | None = None, section_guid: str | None = None, offset: int = 0,
        limit: int = PAGE_CAP, include_deleted: bool = False, guid_filter: str | None = None,
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
        flt = _standards_filter(document_guid, section_guid, include_deleted, guid_filter)
        if flt:
            params.insert(0, ("filter[standards]", flt))
        return parse_standards_page(await self._get("standards", params), offset, limit)

    async def iter_standards(
        self, *, document_guid: str | None = None, section_guid: str | None = None,
        include_deleted: bool = False,
    ) -> AsyncIterator[Standard]:
        """Every deliverable standard of the document/section, each once, walking all pages.

        Pages are keyed on the GUID (``guid gt '<last one>'``), not on an offset: AB warns that
        paging while the catalogue changes skips or repeats items (L1263), and a GUID sort alone
        does not help when standards are added or deleted before the offset (bench/chaos: a
        reconcile met one standard on two pages and created its outcome twice). Text comparisons
        are alphabetical (L630-674); paging by key on them is [INFERRED].
        """
        after: str | None = None
        while True:
            page = await self.standards_page(
                document_guid=document_guid, section_guid=section_guid, include_deleted=include_deleted,
                guid_filter=None if after is None else f"guid gt {quote_literal(after)}",
            )
            for standard in page.standards:
                if after is not None and standard.guid.lower() <= after.lower():
                    raise malformed(f"standards after {after}: the answer holds {standard.guid}, which is not after "
                                    "it (the guid filter or the sort was ignored)")
                after = standard.guid
                yield standard
            if not page.has_more or not page.standards:
                return

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

    async def standards_by_guid(self, guids: Iterable[str]) -> dict[str, Standard]:
        """Many standards in one request per 100 GUIDs (``guid in (...)``, L943), deleted ones
        included, keyed by lower-case GUID. A GUID missing from the answer is not deliverable
        to this partner or unknown; ask ``standard()`` to tell which."""
        wanted = sorted({g.lower() for g in guids})
        found: dict[str, Standard] = {}
        for start in range(0, len(wanted), PAGE_CAP):
            chunk = wanted[start:start + PAGE_CAP]
            literals = ",".join(quote_literal(g) for g in chunk)
            page = await self.standards_page(guid_filter=f"guid in ({literals})", limit=PAGE_CAP,
                                             include_deleted=True)
            found.update((std.guid.lower(), std) for std in page.standards)
        return found

    async def document_guids(self) -> list[str]:
        """Every document with deliverable standards, from the ``document`` facet (L2590-2820)."""
        body = await self._get("standards", [("fields[standards]", "guid"), ("facet", "document"), ("limit", "1")])
        return parse_document_guids(body)

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
        return parse_document_answer(guid, body)

    # ------------------------------------------------------------------ transport

    def _signed_url(self, resource: str, params: list[tuple[str, str]]) -> str:
        expires = int(self._clock()) + self.signature_ttl
        # Read-only signature ("<expires>\n<user>\nGET"), the worked example's form (L8598).
        signature = sign(self._key, expires, user_id=self.user_id, method="GET")
        auth = auth_params(self.partner_id, signature, expires, user_id=self.user_id)
        query = encode_query([*params, *auth])
        return f"{self._prefix}/{resource}?{query}"

    async def _get(self, resource: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        """A signed GET through the shared HTTP layer; returns the JSON object."""
        answer = await self._http.call("GET", lambda: self._signed_url(resource, params))
        if not isinstance(answer.body, dict):
            raise malformed(f"{resource}: top-level JSON is {type(answer.body).__name__}, not an object")
        return answer.body


def _clamp_limit(limit: int) -> int:
    # The server's answer to limit > 100 is undocumented (400 or clamp, §2.1): never send one.
    return max(1, min(PAGE_CAP, int(limit)))


def _standards_filter(
    document_guid: str | None, section_guid: str | None, include_deleted: bool, extra: str | None = None,
) -> str:
    # document.guid rather than the follow-up example's document.id (L1468): see §3.7.
    clauses = [extra] if extra else []
    if document_guid:
        clauses.append(f"document.guid eq {quote_literal(document_guid)}")
    if section_guid:
        clauses.append(f"section.guid eq {quote_literal(section_guid)}")
    if include_deleted:
        clauses.append("status in ('active','deleted')")
    return " and ".join(clauses)
