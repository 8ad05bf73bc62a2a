"""The documented API surface: ``/{directory}/rest_server.php/Api/...`` (ref L3297-L3372).

Order of checks: OAuth signature (401, empty body), then route (404, empty), then method
(405, empty), then parameters (400 with ``{"error":{"code","message"}}``, ref L3299), then
site permission (403, empty). Lists are paged by slicing a cached, sorted key list.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from simulators.illuminate import render
from simulators.illuminate.state import District, Expanded, ScoreRec, pack, unpack

if TYPE_CHECKING:
    from simulators.illuminate.app import IlluminateSimulator

MAX_LIMIT = 1000
STUDENTS2_MAX_LIMIT = 30_000
_FAR_PAST, _FAR_FUTURE = "0001-01-01", "9999-12-31"

Params = Mapping[str, str]
Pred = Callable[[Any], bool]


class BadRequest(Exception):
    """A 400 with the error body the reference infers (ref L3299)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def empty(status: int) -> Response:
    """The documented error response: a status code and a blank body (ref L214)."""
    return Response(status_code=status)


def json_response(body: Any) -> Response:
    """A 200 JSON response, serialised with orjson."""
    return Response(orjson.dumps(body), media_type="application/json")


# -- parameter parsing ------------------------------------------------------------------------


def q_int(p: Params, name: str) -> int | None:
    """An integer filter, or None when absent."""
    raw = p.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest("invalid_parameter", f"{name} must be an integer") from None


def q_date(p: Params, name: str, *, allow_time: bool = False) -> str | None:
    """A 'YYYY-MM-DD' parameter (ref L236) as an ISO string; with ``allow_time`` a datetime
    is accepted and truncated to its date (modified_after granularity, ref L3363-L3367)."""
    raw = p.get(name)
    if raw is None or raw == "":
        return None
    try:
        if allow_time and len(raw) > 10:
            return datetime.fromisoformat(raw).date().isoformat()
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        raise BadRequest("invalid_date", f"{name} must be a date in the format YYYY-MM-DD") from None


def q_bool(p: Params, name: str) -> bool:
    """Boolean flags: true|false|1|0|t|f (ref L3334)."""
    return p.get(name, "").strip().lower() in ("true", "1", "t", "yes")


def date_scope(d: District, p: Params, *, default_today: bool) -> tuple[str, str] | None:
    """`date`, or `start_date`/`end_date`, or (when ``default_today``) "today (or nearest in
    session date)" (ref L3328-L3333). None means no date restriction."""
    day = q_date(p, "date")
    start, end = q_date(p, "start_date"), q_date(p, "end_date")
    if day is not None:
        return day, day
    if start is not None or end is not None:
        return start or _FAR_PAST, end or _FAR_FUTURE
    if default_today:
        today = d.in_session_today()
        return today, today
    return None


def overlaps(entry: str, leave: str | None, scope: tuple[str, str]) -> bool:
    """A dated row is in scope if [entry, leave] meets [start, end] (ref L3331)."""
    return entry <= scope[1] and (leave is None or leave >= scope[0])


def select(
    order: Sequence[Any], rows: Mapping[Any, Any], preds: list[Pred], *, on_key: bool = False,
) -> Sequence[Any]:
    """Keys whose row passes every predicate; the shared sorted list itself when unfiltered."""
    if not preds:
        return order
    if on_key:
        return [k for k in order if all(pr(k) for pr in preds)]
    return [k for k in order if all(pr(rows[k]) for pr in preds)]


# -- listings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """One paged endpoint: how to select keys and render a key."""

    name: str
    keys: Callable[[District, Params], Sequence[Any]]
    render: Callable[[District, Any, Params, IlluminateSimulator], dict[str, Any]]
    max_limit: int = MAX_LIMIT
    count_as_string: bool = False


def _sections_matching(d: District, p: Params) -> set[int] | None:
    """Section ids selected by section/course/teacher/site filters, or None if unfiltered."""
    sec, local = q_int(p, "section_id"), p.get("local_section_id") or None
    course, user, site = q_int(p, "course_id"), q_int(p, "user_id"), q_int(p, "site_id")
    if sec is None and local is None and course is None and user is None:
        return None
    return {
        s.section_id for s in d.sections.rows.values()
        if (sec is None or s.section_id == sec) and (local is None or s.district_section_id == local)
        and (course is None or s.course_id == course) and (user is None or s.user_id == user)
        and (site is None or s.site_id == site)
    }


def _students_in_sections(d: District, sections: set[int]) -> set[int]:
    return {unpack(k)[1] for k in d.roster.order() if unpack(k)[0] in sections}


def student_keys(d: District, p: Params) -> Sequence[int]:
    """Students/Students2 filters (ref L470-L481); scoped by district entry date."""
    scope = date_scope(d, p, default_today=True)
    sid, dsid = q_int(p, "student_id"), q_int(p, "district_student_id")
    site, grade, user = q_int(p, "site_id"), q_int(p, "grade_level_id"), q_int(p, "user_id")
    if dsid is not None:
        sid_from_district = d.by_district_id.get(dsid, -1)
        if sid is not None and sid != sid_from_district:
            return []
        sid = sid_from_district
    if sid is not None:
        s = d.students.rows.get(sid)
        if s is None or (site is not None and s.site_id != site):
            return []
        if grade is not None and s.grade_level_id != grade:
            return []
        return [sid] if scope is None or s.entry_date <= scope[1] else []
    preds: list[Pred] = []
    if site is not None:
        preds.append(lambda s: s.site_id == site)
    if grade is not None:
        preds.append(lambda s: s.grade_level_id == grade)
    if user is not None:
        teaching = {x.section_id for x in d.sections.rows.values() if x.user_id == user}
        taught = _students_in_sections(d, teaching)
        preds.append(lambda s: s.student_id in taught)
    if scope is not None:
        end = scope[1]
        preds.append(lambda s: s.entry_date <= end)
    return select(d.students.order(), d.students.rows, preds)


def user_keys(d: District, p: Params) -> Sequence[int]:
    """Users filters: user_id, district_user_id only (ref L870)."""
    uid, duid = q_int(p, "user_id"), p.get("district_user_id") or None
    preds: list[Pred] = []
    if uid is not None:
        preds.append(lambda u: u.user_id == uid)
    if duid is not None:
        preds.append(lambda u: u.district_user_id == duid)
    return select(d.users.order(), d.users.rows, preds)


def course_keys(d: District, p: Params) -> Sequence[int]:
    """Courses filters: course, site, section, teacher, grade level."""
    cid, site, grade = q_int(p, "course_id"), q_int(p, "site_id"), q_int(p, "grade_level_id")
    preds: list[Pred] = []
    if cid is not None:
        preds.append(lambda c: c.course_id == cid)
    if site is not None:
        preds.append(lambda c: site in c.site_ids)
    if grade is not None:
        preds.append(lambda c: c.start_grade_level_id <= grade <= c.end_grade_level_id)
    if q_int(p, "section_id") is not None or q_int(p, "user_id") is not None or p.get("local_section_id"):
        sections = _sections_matching(d, {k: v for k, v in p.items() if k != "site_id"}) or set()
        taught = {d.sections.rows[s].course_id for s in sections}
        preds.append(lambda c: c.course_id in taught)
    return select(d.courses.order(), d.courses.rows, preds)


def term_keys(d: District, p: Params) -> Sequence[int]:
    """Terms: dates default to the session (ref L257), so every term of it by default."""
    site = q_int(p, "site_id")
    scope = date_scope(d, p, default_today=False)
    preds: list[Pred] = []
    if site is not None:
        preds.append(lambda t: t.site_id == site)
    if scope is not None:
        preds.append(lambda t: overlaps(t.start_date, t.end_date, scope))
    return select(d.terms.order(), d.terms.rows, preds)


def section_keys(d: District, p: Params) -> Sequence[int]:
    """MasterSchedule filters; scoped by the teacher's user_start_date/user_end_date."""
    scope = date_scope(d, p, default_today=True)
    matching = _sections_matching(d, p)
    site, name, student = q_int(p, "site_id"), p.get("section_name"), q_int(p, "student_id")
    preds: list[Pred] = []
    if matching is not None:
        preds.append(lambda s: s.section_id in matching)
    if site is not None:
        preds.append(lambda s: s.site_id == site)
    if name is not None:
        preds.append(lambda s: s.section_name == name)
    if student is not None:
        preds.append(lambda s: pack(s.section_id, student) in d.roster.rows)
    if scope is not None:
        preds.append(lambda s: overlaps(s.user_start_date, s.user_end_date, scope))
    return select(d.sections.order(), d.sections.rows, preds)


def roster_keys(d: District, p: Params) -> Sequence[int]:
    """Roster filters; scoped by the row's entry_date/leave_date (default: today)."""
    scope = date_scope(d, p, default_today=True)
    matching = _sections_matching(d, p)
    site = q_int(p, "site_id")
    if site is not None and matching is None:
        matching = {s.section_id for s in d.sections.rows.values() if s.site_id == site}
    sid, dsid, grade = q_int(p, "student_id"), q_int(p, "district_student_id"), q_int(p, "grade_level_id")
    if dsid is not None:
        sid = d.by_district_id.get(dsid, -1) if sid is None or d.by_district_id.get(dsid) == sid else -1
    rows = d.roster.rows
    preds: list[Pred] = []
    if matching is not None:
        preds.append(lambda k: k >> 32 in matching)
    if sid is not None:
        preds.append(lambda k: unpack(k)[1] == sid)
    if grade is not None:
        preds.append(lambda k: d.students.rows[unpack(k)[1]].grade_level_id == grade)
    if scope is not None:
        preds.append(lambda k: overlaps(rows[k][0], rows[k][1], scope))
    return select(d.roster.order(), rows, preds, on_key=True)


def enrollment_keys(d: District, p: Params) -> Sequence[tuple[int, int, str]]:
    """Enrollment filters; scoped by entry_date/leave_date (default: today)."""
    scope = date_scope(d, p, default_today=True)
    sid, site, grade = q_int(p, "student_id"), q_int(p, "site_id"), q_int(p, "grade_level_id")
    preds: list[Pred] = []
    if sid is not None:
        preds.append(lambda e: e.student_id == sid)
    if site is not None:
        preds.append(lambda e: e.site_id == site)
    if grade is not None:
        preds.append(lambda e: e.grade_level_id == grade)
    if q_int(p, "user_id") is not None:
        taught = _students_in_sections(d, _sections_matching(d, {"user_id": p["user_id"]}) or set())
        preds.append(lambda e: e.student_id in taught)
    if scope is not None:
        preds.append(lambda e: overlaps(e.entry_date, e.leave_date, scope))
    return select(d.enrollments.order(), d.enrollments.rows, preds)


def assessment_keys(d: District, p: Params) -> Sequence[int]:
    """Assessments filters (ref L1336-L1345)."""
    aid, local = q_int(p, "assessment_id"), p.get("local_assessment_id") or None
    author, subject, scope_id = q_int(p, "author_id"), q_int(p, "subject_id"), q_int(p, "scope_id")
    district_author = p.get("district_author_id") or None
    preds: list[Pred] = []
    if aid is not None:
        preds.append(lambda a: a.assessment_id == aid)
    if local is not None:
        preds.append(lambda a: a.local_assessment_id == local)
    if author is not None:
        preds.append(lambda a: a.author_id == author)
    if district_author is not None:
        preds.append(lambda a: a.author_id in d.users.rows
                     and d.users.rows[a.author_id].district_user_id == district_author)
    if subject is not None:
        preds.append(lambda a: a.subject_id == subject)
    if scope_id is not None and scope_id != 1:
        preds.append(lambda a: False)  # every generated assessment has scope 1
    return select(d.assessments.order(), d.assessments.rows, preds)


def score_keys(d: District, p: Params, *, default_today: bool) -> Sequence[int]:
    """The AssessmentAggregate* filters, with ``modified_after`` inclusive at day granularity
    (ref L377-L380, L3363-L3367) ANDed with the rest."""
    modified_after = q_date(p, "modified_after", allow_time=True)
    taken_start, taken_end = q_date(p, "date_taken_start"), q_date(p, "date_taken_end")
    scope = date_scope(d, p, default_today=default_today)
    aid, sid, local = q_int(p, "assessment_id"), q_int(p, "student_id"), q_int(p, "local_student_id")
    site, grade = q_int(p, "site_id"), q_int(p, "grade_level_id")
    matching = _sections_matching(d, {k: v for k, v in p.items() if k != "site_id"})
    if local is not None:
        by_local = d.by_district_id.get(local, -1)
        sid = by_local if sid is None or sid == by_local else -1
    rows, students = d.scores.rows, d.students.rows
    preds: list[Pred] = []
    if aid is not None:
        preds.append(lambda k: k >> 32 == aid)
    if sid is not None:
        preds.append(lambda k: unpack(k)[1] == sid)
    if site is not None:
        preds.append(lambda k: students[unpack(k)[1]].site_id == site)
    if grade is not None:
        preds.append(lambda k: students[unpack(k)[1]].grade_level_id == grade)
    if matching is not None:
        taught = _students_in_sections(d, matching)
        preds.append(lambda k: unpack(k)[1] in taught)
    if modified_after is not None:
        preds.append(lambda k: rows[k].modified >= modified_after)
    if taken_start is not None:
        preds.append(lambda k: rows[k].date_taken >= taken_start)
    if taken_end is not None:
        preds.append(lambda k: rows[k].date_taken <= taken_end)
    if scope is not None:
        # Roster scope: the student was in the district during the scope.
        end = scope[1]
        preds.append(lambda k: students[unpack(k)[1]].entry_date <= end)
    return select(d.scores.order(), rows, preds, on_key=True)


def _score_rec(d: District, k: int) -> ScoreRec:
    return d.scores.rows[k]


LISTINGS: dict[str, Listing] = {
    "Students": Listing(
        "Students", student_keys,
        lambda d, k, p, sim: render.student(d, d.students.rows[k], homeroom=True, programs=False,
                                            typos=sim.config.doc_typos),
    ),
    "Students2": Listing(
        "Students2", student_keys,
        lambda d, k, p, sim: render.student(
            d, d.students.rows[k], homeroom=False, programs=q_bool(p, "include_programs"),
            typos=sim.config.doc_typos,
        ),
        max_limit=STUDENTS2_MAX_LIMIT,
    ),
    "Users": Listing("Users", user_keys, lambda d, k, p, sim: render.user(d.users.rows[k])),
    "Courses": Listing("Courses", course_keys, lambda d, k, p, sim: render.course(d.courses.rows[k])),
    "Terms": Listing("Terms", term_keys, lambda d, k, p, sim: render.term(d.terms.rows[k])),
    "MasterSchedule": Listing(
        "MasterSchedule", section_keys, lambda d, k, p, sim: render.section(d, d.sections.rows[k])
    ),
    "Roster": Listing("Roster", roster_keys, lambda d, k, p, sim: render.roster(d, k, d.roster.rows[k])),
    "Enrollment": Listing(
        "Enrollment", enrollment_keys, lambda d, k, p, sim: render.enrollment(d, d.enrollments.rows[k])
    ),
    # ref L1332: num_results is a string on Assessments ("785", seed L1172).
    "Assessments": Listing(
        "Assessments", assessment_keys, lambda d, k, p, sim: render.assessment(d, d.assessments.rows[k]),
        count_as_string=True,
    ),
    # `date` has no stated default on the whole-assessment endpoint, but defaults to today on
    # Group and Standard (ref L1420, L1476-L1592).
    "AssessmentAggregateStudentResponses": Listing(
        "AssessmentAggregateStudentResponses",
        lambda d, p: score_keys(d, p, default_today=False),
        lambda d, k, p, sim: render.score(d, k, _score_rec(d, k)),
    ),
    "AssessmentAggregateStudentResponsesGroup": Listing(
        "AssessmentAggregateStudentResponsesGroup",
        lambda d, p: Expanded(score_keys(d, p, default_today=True), 2),
        lambda d, k, p, sim: render.group_score(d, k[0], _score_rec(d, k[0]), k[1]),
    ),
    "AssessmentAggregateStudentResponsesStandard": Listing(
        "AssessmentAggregateStudentResponsesStandard",
        lambda d, p: Expanded(score_keys(d, p, default_today=True), 3),
        lambda d, k, p, sim: render.standard_score(d, k[0], _score_rec(d, k[0]), k[1]),
    ),
}

_PAGING = frozenset({"page", "limit"})


def paged(sim: IlluminateSimulator, listing: Listing, p: Params) -> Response:
    """The paging envelope (ref L3339-L3342): 1-based pages, num_pages = ceil(N / limit),
    a page past the end is empty, sorted by key so paging is stable while nothing changes."""
    cfg = sim.config
    limit = q_int(p, "limit")
    if limit is None:
        limit = min(cfg.default_limit, listing.max_limit)
    if limit < 1:
        raise BadRequest("invalid_limit", "limit must be at least 1")
    if limit > listing.max_limit:
        if cfg.limit_policy == "reject":
            raise BadRequest("invalid_limit", f"limit must not exceed {listing.max_limit}")
        limit = listing.max_limit
    page = q_int(p, "page")
    if page is None:
        if cfg.require_page:
            raise BadRequest("missing_parameter", "page is required")
        page = 1
    if page < 1:
        raise BadRequest("invalid_page", "page must be at least 1")
    d = sim.district
    filters = tuple(sorted((k, v) for k, v in p.items() if k not in _PAGING))
    keys = d.cached((listing.name, filters), lambda: listing.keys(d, p))
    total = len(keys)
    num_pages = math.ceil(total / limit) if total else cfg.empty_num_pages
    results: Any = [listing.render(d, k, p, sim) for k in keys[(page - 1) * limit: page * limit]]
    if cfg.single_result_as_object and len(results) == 1:
        results = results[0]  # the Gradebook shape (ref L273), as an opt-in quirk
    return json_response({
        "page": page, "num_pages": num_pages,
        "num_results": str(total) if listing.count_as_string else total, "results": results,
    })


def sites(sim: IlluminateSimulator, p: Params) -> Response:
    """GET /Api/Sites/: a bare array, no paging (ref L400-L432)."""
    d = sim.district
    return json_response([render.site(d.sites.rows[k]) for k in d.sites.order()])


async def post_scores(sim: IlluminateSimulator, request: Request, segments: list[str]) -> Response:
    """POST Assessment/{id}/Scores/ or Assessment/local_assessment_id/{id}/Scores/ (ref L3231-L3262).

    Saves each valid student's responses as a new result dated ``date_taken`` (default today)
    and bumps its modification date, so the aggregates' modified_after sees it (ref L3262).
    Rejected: unknown or missing ``local_student_id``, missing ``responses``, a bad date.
    """
    d = sim.district
    if segments[1] == "local_assessment_id":
        aid = next((a.assessment_id for a in d.assessments.rows.values()
                    if a.local_assessment_id == segments[2]), None)
    else:
        aid = int(segments[1]) if segments[1].isdigit() else None
    if aid is None or aid not in d.assessments.rows:
        return empty(404)
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise BadRequest("invalid_body", "the body must be a JSON array") from None
    if not isinstance(body, list):
        raise BadRequest("invalid_body", "the body must be a JSON array")
    a = d.assessments.rows[aid]
    saved, rejected = 0, []
    for item in body:
        result = _score_from_submission(d, aid, a.items, item)
        if result is None:
            rejected.append(item)
            continue
        d.scores.put(result[0], result[1])
        saved += 1
    if saved:
        d.touch()
    return json_response({"students_count": saved, "responses_count": saved,
                          "rejected_responses_count": len(rejected), "rejected_responses_details": rejected})


def _score_from_submission(d: District, aid: int, items: int, item: Any) -> tuple[int, ScoreRec] | None:
    if not isinstance(item, dict) or not isinstance(item.get("responses"), list):
        return None
    try:
        sid = d.by_district_id.get(int(str(item.get("local_student_id"))))
        version = int(item.get("version") or 1)
        taken = date.fromisoformat(item["date_taken"]).isoformat() if item.get("date_taken") else d.today
    except (TypeError, ValueError):
        return None
    if sid is None:
        return None
    # The answer key is simulated: item i's correct answer is "ABCD"[(aid + i) % 4]; a rubric
    # score (a digit) earns a point when above zero.
    points = 0
    for i, response in enumerate(item["responses"][:items]):
        text = str(response).strip().upper()
        if text == "ABCD"[(aid + i) % 4] or (text.isdigit() and int(text) > 0):
            points += 1
    return pack(aid, sid), ScoreRec(points, version, taken, d.today)


async def api_endpoint(sim: IlluminateSimulator, request: Request) -> Response:
    """Dispatch one ``/{directory}/rest_server.php/Api/{resource}`` request."""
    if request.path_params["directory"] != sim.config.directory:
        return empty(404)
    creds = sim.verifier.verify(request.method, str(request.url), request.headers.get("authorization"))
    if creds is None:
        return empty(401)
    resource = request.path_params["resource"].strip("/")
    segments = resource.split("/")
    p: Params = request.query_params
    try:
        if segments[0] == "Assessment" and len(segments) in (3, 4) and segments[-1] == "Scores":
            if len(segments) == 4 and segments[1] != "local_assessment_id":
                return empty(404)
            if request.method != "POST":
                return empty(405)
            return await post_scores(sim, request, segments)
        listing = LISTINGS.get(resource)
        if listing is None and resource != "Sites":
            return empty(404)
        if request.method != "GET":
            return empty(405)
        site = q_int(p, "site_id")
        if creds.sites is not None and site is not None and site not in creds.sites:
            return empty(403)
        if listing is None:
            return sites(sim, p)
        return paged(sim, listing, p)
    except BadRequest as exc:
        return Response(orjson.dumps({"error": {"code": exc.code, "message": exc.message}}),
                        status_code=400, media_type="application/json")
