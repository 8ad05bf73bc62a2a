"""Illuminate Education REST API client: OAuth 1 signing, paging, retries, typed records.

Reference: ``/work/shared/api/illuminate.md`` ("ref Lnnn"), sections 1, 2, 5, 6 and 7.

- Auth (ref L96-L183): two-legged OAuth 1.0, HMAC-SHA1, consumer key+secret plus a
  pre-issued user token+secret, parameters only in the ``Authorization`` header (ref L116).
  Signed with oauthlib, as the document itself recommends (ref L106).
- Paging (ref L42, L295-L313): ``page`` (1-based) and ``limit`` (max 1000, Students2 30,000) over
  the ``{page, num_pages, num_results, results}`` envelope. Sort order is undocumented, so a
  walk is only trustworthy if the totals stay put: :meth:`IlluminateClient.pages` raises
  ``MalformedResponseError`` when they shift, and the poller must then not compute deletes
  (ref L3424-L3425).
- Errors (ref L41, L210-L227): status code with an empty body. 401 -> ``AuthenticationError``
  (the component pauses), 403 -> ``ForbiddenError``, 404 -> ``NotFoundError``, 400/405 ->
  ``PermanentUpstreamError``; 5xx, timeouts, truncated or HTML bodies are retried by the shared
  HTTP layer (``worker.clients.http``), then raised as retriable errors.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit

import httpx
import orjson
import structlog
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_AUTH_HEADER
from oauthlib.oauth1 import Client as OAuth1Client
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from pydantic import ValidationError

from worker.clients.errors import AuthenticationError, MalformedResponseError, UpstreamError
from worker.clients.http import HTTPSettings, ResponseClassifier, UpstreamHTTP, snippet
from worker.clients.illuminate_coerce import coerce_count, coerce_record, coerce_results
from worker.clients.illuminate_models import (
    Assessment,
    AssessmentGroupScore,
    AssessmentScore,
    AssessmentStandardScore,
    Course,
    Enrollment,
    IlluminateRecord,
    RosterRow,
    ScoreSubmission,
    ScoreSubmissionResult,
    Section,
    Site,
    Student,
    Term,
    User,
)

log = structlog.get_logger(__name__)

SYSTEM = "illuminate"

# ref L299: "How many records to return per page. Max: 1000"; Students2 "Max: 30,000".
MAX_LIMIT = 1000
MAX_LIMIT_BY_ENDPOINT = {"Students2": 30_000}

# Bare JSON arrays, never paged (ref L271, L313).
ARRAY_ENDPOINTS = frozenset({"Sites", "GradeLevels", "Attendance/Flags", "CourseRequirementChecks"})

T = TypeVar("T")
R = TypeVar("R", bound=IlluminateRecord)


class ScoreEndpoint(StrEnum):
    """The three endpoints with ``modified_after`` (ref L374-L386), named exactly as documented."""

    AGGREGATE = "AssessmentAggregateStudentResponses"
    GROUP = "AssessmentAggregateStudentResponsesGroup"
    STANDARD = "AssessmentAggregateStudentResponsesStandard"


SCORE_MODELS: dict[ScoreEndpoint, type[AssessmentScore | AssessmentGroupScore | AssessmentStandardScore]] = {
    ScoreEndpoint.AGGREGATE: AssessmentScore,
    ScoreEndpoint.GROUP: AssessmentGroupScore,
    ScoreEndpoint.STANDARD: AssessmentStandardScore,
}


def endpoint_path(endpoint: str) -> str:
    """``"Students"`` -> ``"/Api/Students/"`` (documented trailing slash, ref L72-L74);
    a value starting with "/" is taken as a path below the base URL as is."""
    if endpoint.startswith("/"):
        return endpoint
    return f"/Api/{endpoint.strip('/')}/"


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a walk: the envelope counts and this page's records."""

    endpoint: str
    page: int
    num_pages: int
    num_results: int
    records: list[T]

    @property
    def is_last(self) -> bool:
        """True for the final page of the walk."""
        return self.page >= self.num_pages


class OAuth1Signer:
    """Signs requests with OAuth 1.0 HMAC-SHA1 in the Authorization header (ref L96-L183)."""

    def __init__(self, consumer_key: str, consumer_secret: str, token: str, token_secret: str) -> None:
        self._consumer_key = consumer_key
        self._consumer_secret = consumer_secret
        self._token = token
        self._token_secret = token_secret

    def __repr__(self) -> str:
        # Never show the secrets.
        return f"OAuth1Signer(consumer_key={self._consumer_key!r})"

    def authorization(
        self, method: str, url: str, *, nonce: str | None = None, timestamp: str | None = None,
    ) -> str:
        """The ``Authorization`` header value for ``method url`` (query included in ``url``).
        A JSON body is not part of the base string (RFC 5849 3.4.1.3.1, ref L182)."""
        client = OAuth1Client(
            self._consumer_key, client_secret=self._consumer_secret,
            resource_owner_key=self._token, resource_owner_secret=self._token_secret,
            signature_method=SIGNATURE_HMAC_SHA1, signature_type=SIGNATURE_TYPE_AUTH_HEADER,
            nonce=nonce, timestamp=timestamp,
        )
        _, headers, _ = client.sign(url, http_method=method.upper())
        return str(headers["Authorization"])


def oauth_base_string(method: str, url: str, authorization: str) -> str:
    """The RFC 5849 signature base string of a signed request, built by oauthlib: what the
    server recomputes. Exposed to test the documented worked example (ref L131-L150)."""
    parts = urlsplit(url)
    params = oauth_signature.collect_parameters(
        uri_query=parts.query, headers={"Authorization": authorization}, exclude_oauth_signature=True,
    )
    base_uri = oauth_signature.base_string_uri(f"{parts.scheme}://{parts.netloc}{parts.path}")
    return str(oauth_signature.signature_base_string(
        method.upper(), base_uri, oauth_signature.normalize_parameters(params)
    ))


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _query(
    params: Mapping[str, str] | None, as_of: date | None, start_date: date | None, end_date: date | None,
) -> dict[str, str]:
    """Date scope parameters merged with caller parameters (the caller's win)."""
    return {**_scope_params(as_of, start_date, end_date), **(params or {})}


def _scope_params(
    as_of: date | None, start_date: date | None, end_date: date | None,
) -> dict[str, str]:
    """The documented date scope parameters (ref L254-L257), YYYY-MM-DD (ref L236)."""
    out = {"date": _iso(as_of), "start_date": _iso(start_date), "end_date": _iso(end_date)}
    return {k: v for k, v in out.items() if v is not None}


class IlluminateClient:
    """Async client for one Illuminate instance and one set of OAuth 1 credentials.

    ``base_url`` ends in ``rest_server.php``, e.g. ``https://demo.illuminateed.com/live/rest_server.php``.
    """

    def __init__(
        self, base_url: str, consumer_key: str, consumer_secret: str, token: str, token_secret: str,
        *, http: HTTPSettings | None = None, page_limit: int = MAX_LIMIT, students2_page_limit: int = 10_000,
    ) -> None:
        if page_limit < 1 or students2_page_limit < 1:
            raise ValueError("page limits must be positive")
        self.base_url = base_url.rstrip("/")
        self.page_limit = page_limit
        # 30,000 is allowed (ref L555) but a page of that size is ~30 MB of JSON; 10,000
        # keeps memory per page bounded while cutting round trips tenfold.
        self.students2_page_limit = students2_page_limit
        self._signer = OAuth1Signer(consumer_key, consumer_secret, token, token_secret)
        self._http = UpstreamHTTP(SYSTEM, self.base_url, settings=http or HTTPSettings(request_deadline_seconds=120),
                                  classifier=IlluminateClassifier(SYSTEM))

    async def __aenter__(self) -> IlluminateClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # -- one request --------------------------------------------------------------------

    def _authorize(self, request: httpx.Request) -> None:
        # A fresh nonce and timestamp on every attempt: a retry is a new request.
        request.headers["Authorization"] = self._signer.authorization(request.method, str(request.url))

    async def request_json(
        self, method: str, path: str, params: Mapping[str, str] | None = None, *, json_body: Any = None,
    ) -> Any:
        """Send one signed request through the shared HTTP layer; return the parsed JSON body."""
        content = orjson.dumps(json_body) if json_body is not None else None
        answer = await self._http.call(
            method, path, params=dict(params or {}), content=content, authorize=self._authorize,
            headers={"Content-Type": "application/json"} if content is not None else None,
            # Re-submitting the same responses overwrites them (INFERENCE, ref L3258): retry like a read.
            idempotent=True,
        )
        return answer.body

    # -- paging -------------------------------------------------------------------------

    def limit_for(self, endpoint: str) -> int:
        """The page size used for ``endpoint``: the configured one, capped at the documented max."""
        name = endpoint.strip("/").removeprefix("Api/")
        if name == "Students2":
            return min(self.students2_page_limit, MAX_LIMIT_BY_ENDPOINT["Students2"])
        return min(self.page_limit, MAX_LIMIT_BY_ENDPOINT.get(name, MAX_LIMIT))

    async def pages(
        self, endpoint: str, params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[Page[dict[str, Any]]]:
        """Walk every page of ``endpoint``, yielding one page at a time with records passed
        through ``coerce_record`` (ids -> str, booleans -> bool, "NULL" -> None).

        Raises ``MalformedResponseError`` if a page cannot be parsed or the envelope's totals
        change between pages (rows moved while paging: the walk is not a consistent snapshot).
        """
        async for page in self._walk(endpoint, params):
            yield Page(page.endpoint, page.page, page.num_pages, page.num_results,
                       [coerce_record(r) if isinstance(r, dict) else r for r in page.records])

    async def _walk(
        self, endpoint: str, params: Mapping[str, str] | None,
    ) -> AsyncIterator[Page[Any]]:
        """Raw walk: envelope validated and totals checked, records untouched."""
        name = endpoint.strip("/").removeprefix("Api/")
        path = endpoint_path(endpoint)
        base = {k: v for k, v in (params or {}).items() if k not in ("page", "limit")}
        if name in ARRAY_ENDPOINTS:
            body = await self.request_json("GET", path, base)
            if not isinstance(body, list):
                raise MalformedResponseError(SYSTEM, f"{path}: expected a JSON array, got {_kind(body)}")
            yield Page(name, 1, 1, len(body), body)
            return
        limit = self.limit_for(name)
        first: tuple[int, int] | None = None
        page_size = limit
        page_no = 1
        while True:
            body = await self.request_json("GET", path, {**base, "page": str(page_no), "limit": str(limit)})
            page = _parse_envelope(name, path, page_no, body)
            if first is None:
                first = (page.num_results, page.num_pages)
                # The server may page with a smaller size than asked for; learn it from page 1.
                if page.num_pages > 1 and 0 < len(page.records) < limit:
                    page_size = len(page.records)
                _check_totals(path, page, page_size)
            elif (page.num_results, page.num_pages) != first:
                raise MalformedResponseError(
                    SYSTEM,
                    f"{path}: totals shifted mid-walk: page 1 said num_results={first[0]} "
                    f"num_pages={first[1]}, page {page_no} says num_results={page.num_results} "
                    f"num_pages={page.num_pages}; rows moved while paging, so this walk is not a "
                    "consistent snapshot (do not compute deletes from it)",
                )
            expected = max(0, min(page_size, page.num_results - (page_no - 1) * page_size))
            if len(page.records) != expected:
                raise MalformedResponseError(
                    SYSTEM, f"{path}: page {page_no} holds {len(page.records)} records, expected "
                    f"{expected} (num_results={page.num_results}, page size {page_size})",
                )
            yield page
            if page_no >= page.num_pages:
                return
            page_no += 1

    async def _typed(
        self, endpoint: str, model: type[R], params: Mapping[str, str],
    ) -> AsyncIterator[Page[R]]:
        async for page in self._walk(endpoint, params):
            yield typed_page(model, page)

    # -- typed helpers ------------------------------------------------------------------

    def sites(self) -> AsyncIterator[Page[Site]]:
        """GET /Api/Sites/: a bare array (ref L400), yielded as one page."""
        return self._typed("Sites", Site, {})

    def students(
        self, params: Mapping[str, str] | None = None, *,
        variant: Literal["Students", "Students2"] = "Students2", include_programs: bool = False,
        as_of: date | None = None, start_date: date | None = None, end_date: date | None = None,
    ) -> AsyncIterator[Page[Student]]:
        """GET /Api/Students2/ (default: larger pages, ref L547) or /Api/Students/ (adds the
        homeroom teacher). Without a date the server scopes to today (ref L254-L256)."""
        query = _query(params, as_of, start_date, end_date)
        if include_programs:
            query["include_programs"] = "true"
        return self._typed(variant, Student, query)

    def users(self, params: Mapping[str, str] | None = None) -> AsyncIterator[Page[User]]:
        """GET /Api/Users/: all staff, active or not (ref L870)."""
        return self._typed("Users", User, dict(params or {}))

    staff = users

    def courses(
        self, params: Mapping[str, str] | None = None, *,
        as_of: date | None = None, start_date: date | None = None, end_date: date | None = None,
    ) -> AsyncIterator[Page[Course]]:
        """GET /Api/Courses/."""
        return self._typed("Courses", Course, _query(params, as_of, start_date, end_date))

    def terms(
        self, params: Mapping[str, str] | None = None, *,
        as_of: date | None = None, start_date: date | None = None, end_date: date | None = None,
    ) -> AsyncIterator[Page[Term]]:
        """GET /Api/Terms/ (dates default to the session, ref L257)."""
        return self._typed("Terms", Term, _query(params, as_of, start_date, end_date))

    def master_schedule(
        self, params: Mapping[str, str] | None = None, *,
        as_of: date | None = None, start_date: date | None = None, end_date: date | None = None,
    ) -> AsyncIterator[Page[Section]]:
        """GET /Api/MasterSchedule/: sections, one row per section and teacher."""
        return self._typed("MasterSchedule", Section, _query(params, as_of, start_date, end_date))

    def roster(
        self, params: Mapping[str, str] | None = None, *,
        as_of: date | None = None, start_date: date | None = None, end_date: date | None = None,
    ) -> AsyncIterator[Page[RosterRow]]:
        """GET /Api/Roster/: students in sections. A session-wide range keeps dropped rows
        visible with their ``leave_date`` (ref L3415)."""
        return self._typed("Roster", RosterRow, _query(params, as_of, start_date, end_date))

    def enrollment(
        self, params: Mapping[str, str] | None = None, *,
        as_of: date | None = None, start_date: date | None = None, end_date: date | None = None,
    ) -> AsyncIterator[Page[Enrollment]]:
        """GET /Api/Enrollment/: students at schools."""
        return self._typed("Enrollment", Enrollment, _query(params, as_of, start_date, end_date))

    def assessments(self, params: Mapping[str, str] | None = None) -> AsyncIterator[Page[Assessment]]:
        """GET /Api/Assessments/ (no change filter; compare ``updated_at``, ref L3446)."""
        return self._typed("Assessments", Assessment, dict(params or {}))

    def assessment_scores(
        self, endpoint_variant: ScoreEndpoint | str, modified_after: date | None = None,
        assessment_id: str | None = None, params: Mapping[str, str] | None = None, *,
        start_date: date | None = None, end_date: date | None = None,
    ) -> AsyncIterator[Page[AssessmentScore | AssessmentGroupScore | AssessmentStandardScore]]:
        """One of the three AssessmentAggregateStudentResponses endpoints. ``modified_after``
        is inclusive at date granularity (ref L377-L380); pass ``start_date``/``end_date``
        spanning the session, since Group and Standard otherwise scope to today (ref L3440)."""
        variant = ScoreEndpoint(endpoint_variant)
        query = _scope_params(None, start_date, end_date)
        if modified_after is not None:
            query["modified_after"] = modified_after.isoformat()
        if assessment_id is not None:
            query["assessment_id"] = assessment_id
        query.update(params or {})
        model: type[AssessmentScore | AssessmentGroupScore | AssessmentStandardScore] = SCORE_MODELS[variant]
        return self._typed(variant.value, model, query)

    # -- writes -------------------------------------------------------------------------

    async def post_scores(
        self, assessment_id: str, submissions: Sequence[ScoreSubmission], *, by_local_id: bool = False,
    ) -> ScoreSubmissionResult:
        """POST /Api/Assessment/{id}/Scores/ (or ``local_assessment_id/{id}``; ref L3231-L3262).
        Retried on 5xx like a read: re-submitting the same responses overwrites them (INFERENCE,
        overwrite semantics are undocumented, ref L3258)."""
        segment = f"local_assessment_id/{assessment_id}" if by_local_id else assessment_id
        body = [s.model_dump(mode="json", exclude_none=True) for s in submissions]
        raw = await self.request_json("POST", f"/Api/Assessment/{segment}/Scores/", json_body=body)
        try:
            return ScoreSubmissionResult.model_validate(raw)
        except ValidationError as exc:
            raise MalformedResponseError(SYSTEM, f"Scores response: {_first_error(exc)}") from exc


# -- helpers ------------------------------------------------------------------------------


class IlluminateClassifier(ResponseClassifier):
    """Illuminate's statuses (ref L210-L227): 200 only; errors usually have an empty body."""

    def classify(self, response: httpx.Response, where: str) -> UpstreamError | None:
        """200 is success; another 2xx is undocumented, so malformed; the rest as HTTP says."""
        status = response.status_code
        if 200 < status < 300:
            return MalformedResponseError(SYSTEM, f"undocumented success status from {where}", status=status)
        return super().classify(response, where)

    def rejected(self, response: httpx.Response, message: str) -> UpstreamError:
        """A 401: the OAuth signature or token was refused."""
        return AuthenticationError(SYSTEM, f"credentials rejected: {message}", status=response.status_code)

    def detail(self, response: httpx.Response) -> str:
        """The documented 400 body is ``{"error":{"code","message"}}`` (ref L222); others are empty."""
        if not response.content:
            return "(empty body)"
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return snippet(response.content)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            err = body["error"]
            return f"{err.get('code', '')} {err.get('message', '')}".strip()[:200]
        return snippet(response.content)


def _kind(value: Any) -> str:
    return type(value).__name__


def _parse_envelope(name: str, path: str, page_no: int, body: Any) -> Page[Any]:
    """Validate ``{page, num_pages, num_results, results}`` (ref L300-L304)."""
    if not isinstance(body, dict):
        raise MalformedResponseError(SYSTEM, f"{path}: page {page_no} is a {_kind(body)}, not an envelope")
    missing = [k for k in ("page", "num_pages", "num_results", "results") if k not in body]
    if missing:
        raise MalformedResponseError(SYSTEM, f"{path}: page {page_no} envelope lacks {', '.join(missing)}")
    try:
        page = coerce_count(body["page"])
        num_pages = coerce_count(body["num_pages"])
        num_results = coerce_count(body["num_results"])
        records = coerce_results(body["results"])
    except ValueError as exc:
        raise MalformedResponseError(SYSTEM, f"{path}: page {page_no} envelope: {exc}") from exc
    if page != page_no:
        raise MalformedResponseError(SYSTEM, f"{path}: asked for page {page_no}, got page {page}")
    return Page(name, page, num_pages, num_results, records)


def _check_totals(path: str, page: Page[Any], page_size: int) -> None:
    """num_pages must equal ceil(num_results / page size); an empty result may say 0 or 1
    pages (ref L312: the choice is undocumented)."""
    expected = math.ceil(page.num_results / page_size) if page_size else 0
    ok = page.num_pages == expected or (page.num_results == 0 and page.num_pages in (0, 1))
    if not ok:
        raise MalformedResponseError(
            SYSTEM, f"{path}: num_pages={page.num_pages} does not fit num_results={page.num_results} "
            f"at {page_size} per page",
        )


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']} ({exc.error_count()} error(s))"


def parse_page(name: str, page_no: int, body: Any) -> Page[Any]:
    """One page's envelope ``{page, num_pages, num_results, results}`` checked, records untouched."""
    return _parse_envelope(name, endpoint_path(name), page_no, body)


def typed_page(model: type[R], page: Page[Any]) -> Page[R]:
    """``page`` with its records validated as ``model``; ``MalformedResponseError`` names the record."""
    return Page(page.endpoint, page.page, page.num_pages, page.num_results, _validate_records(model, page))


def _validate_records(model: type[R], page: Page[Any]) -> list[R]:
    validate: Callable[[Any], R] = model.model_validate
    out: list[R] = []
    for index, raw in enumerate(page.records):
        try:
            out.append(validate(raw))
        except ValidationError as exc:
            raise MalformedResponseError(
                SYSTEM, f"{page.endpoint} page {page.page} record {index}: {_first_error(exc)}"
            ) from exc
    return out


__all__ = [
    "MAX_LIMIT",
    "IlluminateClient",
    "OAuth1Signer",
    "Page",
    "ScoreEndpoint",
    "endpoint_path",
    "oauth_base_string",
]
