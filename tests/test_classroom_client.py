"""ClassroomClient against the Class simulator over loopback HTTP (no mocks): every method, the
error mapping (401, the scope 403 that pauses, the duplicate-ext_class_id 400, validation 400,
404, retried 5xx/429), ensure_class's read-and-compare (also after a lost create answer), the
deferred variant, enrollment DELETE with a body, role always sent, the start-up scope check,
the system's configuration section, and Hypothesis properties of every parse function.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from simulators.classroom import DEMO_SECRET, ClassSimulator, create_app, simulate_app
from simulators.faults import FaultConfig
from simulators.options import SimulateOptions
from simulators.server import ThreadedServer
from tests.http_settings import http_settings
from worker.clients.classroom import ClassroomClient, EnsuredClass
from worker.clients.classroom_errors import (
    ClassExistsError,
    ClassroomClassifier,
    ClassValidationError,
    MissingScopeError,
    existing_ext_class_id,
    missing_scope,
)
from worker.clients.classroom_models import (
    ClassInfo,
    DeferredClass,
    DeferredEnrollment,
    Enrollment,
    parse_classes,
    parse_created_class,
    parse_deferred_classes,
    parse_enrollment_answer,
    parse_enrollments,
    parse_message,
    parse_patched_class,
    parse_single_class,
    parse_single_deferred_class,
    parse_single_user,
    parse_user,
    parse_users_page,
)
from worker.clients.classroom_scopes import READ_PROBES, REQUIRED_SCOPES, WRITE_SCOPES
from worker.clients.classroom_specs import ClassSpec, EnrollmentSpec, UserSpec, enrollment_body
from worker.clients.errors import (
    AccessDeniedError,
    AmbiguousWriteError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermanentUpstreamError,
    UpstreamError,
)
from worker.config import ConfigError, load_config
from worker.errors import Verdict, classify
from worker.registry import ClientPool
from worker.systems import SYSTEMS
from worker.systems.classroom import CLASSROOM, ClassConfig

pytestmark = pytest.mark.anyio

NO_CLASS_WRITE = "no-class-write-secret"
NO_ENROLLMENT_READ = "no-enrollment-read-secret"
EXPIRED = "expired-secret"
FULL = ["class:read", "class:write", "enrollment:read", "enrollment:write", "user:read", "user:write"]
DEMO_CLASS_ID = "01cceb4b-afce-4703-a842-6b41fad111b5"  # seed 001:L414-425
EXT = "edusync-section-1695"  # matrix_class.md B.10 C1's shape, FLOWS.md 4.2 prefix

SPEC = ClassSpec(ext_class_id=EXT, class_name="Algebra I - P1", class_description="Period 1",
                 email="anne.malley@demo.com", first_name="Anne", last_name="Malley")
STUDENT = EnrollmentSpec(first_name="Francisco", last_name="Beck", ext_person_id="100001",
                         email="francisco.beck@demo.com", role="student")


@pytest.fixture(scope="module")
def sim() -> ClassSimulator:
    return ClassSimulator(keys={
        DEMO_SECRET: {},
        NO_CLASS_WRITE: {"scopes": [s for s in FULL if s != "class:write"]},
        NO_ENROLLMENT_READ: {"scopes": [s for s in FULL if s != "enrollment:read"]},
        EXPIRED: {"expires_at": 1.0},
    })


@pytest.fixture(scope="module")
def server(sim: ClassSimulator) -> Iterator[str]:
    with ThreadedServer(create_app(sim)) as srv:
        yield srv.url


@pytest.fixture
def url(sim: ClassSimulator, server: str) -> str:
    sim.reset()
    return server


def client(url: str, key: str = DEMO_SECRET, *, retries: int = 2) -> ClassroomClient:
    return ClassroomClient(url, key, timezone="America/Los_Angeles", http=http_settings(retries, timeout=5.0))


def creates(sim: ClassSimulator, ext: str = EXT) -> int:
    """Classes the simulator really created with ``ext`` (POSTs that were applied)."""
    return int(sim.stats.snapshot(0)["class_creates_by_ext_class_id"].get(ext, 0))


def requests_of(sim: ClassSimulator, kind: str) -> int:
    return sum(sim.stats.snapshot(0)["requests"].get(kind, {}).values())


# --- classes -------------------------------------------------------------------------------------


async def test_the_seed_example_class_reads_as_documented(url: str) -> None:
    async with client(url) as c:
        by_ext = await c.get_class(ext_class_id="demo-1")
        assert by_ext == await c.get_class(class_id=DEMO_CLASS_ID)
        assert by_ext == ClassInfo(  # seed 001:L414-425, unwrapped from its one-element array
            class_id=DEMO_CLASS_ID, ext_class_id="demo-1", class_name="Demo Class",
            class_description="A demonstration of Class", meeting_id="92117646134", host="Anne Malley",
            invite_link=f"https://mydemo.class.com/class.html?class_uuid={DEMO_CLASS_ID}", password="a1demo")
        assert [k.ext_class_id for k in await c.list_classes()] == ["demo-1", "demo-2"]
        with pytest.raises(ValueError, match="one and only one"):
            await c.get_class(ext_class_id="demo-1", class_id=DEMO_CLASS_ID)


async def test_create_read_patch_delete_a_class(url: str, sim: ClassSimulator) -> None:
    async with client(url) as c:
        created = await c.create_class(SPEC)
        assert not created.deferred and created.class_id and created.meeting_id
        # The 201 has no class_id (B.6.1): it came from the invite link, and it is the real one.
        record = await c.get_class(ext_class_id=EXT)
        assert record.class_id == created.class_id and record.host == "Anne Malley"
        assert (await c.get_class(class_id=record.class_id)) == record
        assert sim.snapshot()["classes"][-1]["timezone"] == "America/Los_Angeles", "the client's default zone"
        patched = await c.update_class(ext_class_id=EXT, class_name="Algebra I - P2")
        assert isinstance(patched, ClassInfo) and patched.class_name == "Algebra I - P2"
        assert patched.class_description == "Period 1", "fields not given are left alone"
        with pytest.raises(ValueError, match="nothing to update"):
            await c.update_class(ext_class_id=EXT)
        assert await c.delete_class(ext_class_id=EXT) is True
        with pytest.raises(NotFoundError, match=f"class {EXT} not found"):
            await c.get_class(ext_class_id=EXT)
        assert await c.find_class(ext_class_id=EXT) is None
        assert await c.delete_class(ext_class_id=EXT, missing_ok=True) is False
        with pytest.raises(NotFoundError) as err:
            await c.delete_class(ext_class_id=EXT)
        assert classify(err.value) is Verdict.DEAD_LETTER


async def test_a_duplicate_ext_class_id_is_a_conflict_naming_the_id(url: str) -> None:
    ext = "074c697e-e20b-4da8-9361-1b707137d6e3"  # the seed's own example id (seed 001:L1395)
    async with client(url) as c:
        await c.create_class(SPEC.model_copy(update={"ext_class_id": ext}))
        with pytest.raises(ClassExistsError) as err:
            await c.create_class(SPEC.model_copy(update={"ext_class_id": ext}))
    assert isinstance(err.value, ConflictError) and err.value.ext_class_id == ext and err.value.status == 400
    assert f"Class exists for external class ID provided: {ext}." in str(err.value)
    # The id is a free string: dots inside it survive, only the sentence's period goes.
    assert existing_ext_class_id("Class exists for external class ID provided: a.b.c.") == "a.b.c"
    assert existing_ext_class_id("Request failed validation") is None


async def test_ensure_class_creates_then_finds_patches_and_reports_the_unpatchable(
    url: str, sim: ClassSimulator,
) -> None:
    async with client(url) as c:
        first = await c.ensure_class(SPEC)
        assert first.outcome == "created" and first.changed and isinstance(first.record, ClassInfo)
        assert first.record == await c.get_class(ext_class_id=EXT), "the record built from the 201 is the real one"
        again = await c.ensure_class(SPEC)
        assert (again.outcome, again.changed, again.patched) == ("existed", False, ())
        renamed = await c.ensure_class(SPEC.model_copy(update={"class_name": "Geometry - P1",
                                                               "class_description": "moved"}))
        assert renamed.outcome == "existed" and renamed.patched == ("class_name", "class_description")
        assert renamed.changed and renamed.record.class_name == "Geometry - P1"
        assert (await c.get_class(ext_class_id=EXT)).class_description == "moved"
        # A None description is not managed: not sent, not compared.
        assert (await c.ensure_class(SPEC.model_copy(update={"class_name": "Geometry - P1",
                                                             "class_description": None}))).patched == ()
        other_teacher = await c.ensure_class(SPEC.model_copy(update={"class_name": "Geometry - P1",
                                                                     "first_name": "James", "last_name": "Lloyd"}))
        assert other_teacher.unpatchable == ("host",), "the instructor cannot be PATCHed (B.6.4): reported"
        read_back = await c.ensure_class(SPEC.model_copy(update={"ext_class_id": "edusync-section-2"}), read_back=True)
        assert read_back.outcome == "created" and read_back.record.ext_class_id == "edusync-section-2"
    assert creates(sim) == 1


async def test_ensure_class_after_a_lost_create_answer_creates_exactly_one_class(
    url: str, sim: ClassSimulator,
) -> None:
    # The gateway loses the answer of the applied POST (504): the layer raises AmbiguousWriteError.
    sim.faults.set(FaultConfig(lost_response_rate=1.0, remaining=1))
    async with client(url) as c:
        with pytest.raises(AmbiguousWriteError) as err:
            await c.create_class(SPEC)
        assert classify(err.value) is Verdict.RETRY
        assert creates(sim) == 1, "the lost create was applied"
        sim.reset()
        sim.faults.set(FaultConfig(lost_response_rate=1.0, remaining=1))
        result = await c.ensure_class(SPEC)
    assert result.outcome == "lost_answer" and result.changed
    assert isinstance(result.record, ClassInfo) and result.record.ext_class_id == EXT
    assert creates(sim) == 1 and requests_of(sim, "POST /api/v1/classes") == 1, "read, not created again"


async def test_ensure_class_after_a_failed_create_creates_once(url: str, sim: ClassSimulator) -> None:
    # A 500 before Class did anything is just as ambiguous to us: read, find nothing, create again.
    sim.faults.set(FaultConfig(error_rate=1.0, remaining=1))
    async with client(url) as c:
        result = await c.ensure_class(SPEC)
    assert result.outcome == "created" and creates(sim) == 1
    assert requests_of(sim, "POST /api/v1/classes") == 2


async def test_ensure_class_on_an_ext_class_id_reserved_by_a_deleted_class_is_a_conflict(
    url: str, sim: ClassSimulator,
) -> None:
    sim.configure({"reuse_deleted_ext_class_id": False})  # FLOWS.md 2.4 trap 3
    async with client(url) as c:
        await c.ensure_class(SPEC)
        await c.delete_class(ext_class_id=EXT)
        with pytest.raises(ConflictError, match="reserved by a deleted class") as err:
            await c.ensure_class(SPEC)
    assert not isinstance(err.value, ClassExistsError) and classify(err.value) is Verdict.DEAD_LETTER


async def test_the_deferred_create_variant_parses_and_is_ensured(url: str, sim: ClassSimulator) -> None:
    sim.configure({"deferred_create": True})
    async with client(url) as c:
        created = await c.create_class(SPEC)
        # seed 001:L234-239: class_deferred_id, class_id and ext_id (not ext_class_id)
        assert created.deferred and isinstance(created.class_deferred_id, int) and created.ext_class_id == EXT
        with pytest.raises(NotFoundError):
            await c.get_class(ext_class_id=EXT)
        record = await c.get_deferred_class(ext_class_id=EXT)
        assert record.class_id == created.class_id and record.created_at is not None
        assert record.created_at.tzinfo is not None and record.email == SPEC.email
        assert [d.ext_class_id for d in await c.list_deferred_classes()] == [EXT]
        assert await c.find_class(ext_class_id=EXT) == record
        ensured = await c.ensure_class(SPEC.model_copy(update={"class_name": "Renamed"}))
        # The duplicate 400, the deferred read, then the PATCH whose answer is an array (B.6.4).
        assert ensured.outcome == "existed" and ensured.patched == ("class_name",)
        assert isinstance(ensured.record, DeferredClass) and ensured.record.class_name == "Renamed"
        joined = await c.create_enrollment(STUDENT, ext_class_id=EXT)
        assert isinstance(joined, DeferredEnrollment)  # seed 001:L527-552
        assert joined.class_deferred_id == str(created.class_deferred_id) and joined.ext_class_id == EXT
        assert joined.user is not None and joined.user.ext_person_id == "100001" and joined.role == "student"
        sim.promote_deferred()
        assert (await c.get_class(ext_class_id=EXT)).class_name == "Renamed"
        fresh = await c.ensure_class(SPEC.model_copy(update={"ext_class_id": "edusync-section-9"}))
        assert fresh.outcome == "created" and isinstance(fresh.record, DeferredClass)
        assert await c.delete_class(class_deferred_id=fresh.record.class_deferred_id)


# --- enrollments ---------------------------------------------------------------------------------


async def test_enrollments_create_read_update_and_delete_with_a_json_body(url: str) -> None:
    async with client(url) as c:
        await c.ensure_class(SPEC)
        joined = await c.create_enrollment(STUDENT, ext_class_id=EXT)
        assert isinstance(joined, Enrollment) and joined.role == "student" and joined.ext_person_id == "100001"
        roster = await c.enrollments(ext_class_id=EXT)
        assert [(e.role, e.email) for e in roster] == [("teacher", SPEC.email), ("student", STUDENT.email)]
        # identified by ext_person_id, so the e-mail can change (B.6.8)
        moved = await c.update_enrollment(STUDENT.model_copy(update={"email": "f.beck@new.example.org"}),
                                          ext_class_id=EXT)
        assert moved.email == "f.beck@new.example.org" and moved.student_id == joined.student_id
        by_id = await c.update_enrollment(STUDENT.model_copy(update={"last_name": "Becker"}), identify_by="student_id",
                                          student_id=joined.student_id, ext_class_id=EXT)
        assert by_id.last_name == "Becker"
        # seed 001:L681-686: DELETE carries {"ext_class_id", "ext_person_id"} as a JSON body
        assert await c.delete_enrollment(ext_class_id=EXT, ext_person_id="100001") is True
        assert [e.role for e in await c.enrollments(ext_class_id=EXT)] == ["teacher"]
        assert await c.delete_enrollment(ext_class_id=EXT, ext_person_id="100001", missing_ok=True) is False
        with pytest.raises(NotFoundError):
            await c.delete_enrollment(ext_class_id=EXT, ext_person_id="100001")
        with pytest.raises(ValueError, match="exactly one"):
            await c.delete_enrollment(ext_class_id=EXT, ext_person_id="1", email="a@b.cd")
        with pytest.raises(NotFoundError):
            await c.enrollments(ext_class_id="no-such-class")


async def test_an_update_always_sends_the_role_so_a_teacher_stays_a_teacher(url: str) -> None:
    co_teacher = EnrollmentSpec(first_name="Chaya", last_name="Meyer", ext_person_id="staff-7", role="teacher")
    with pytest.raises(ValidationError, match="role"):
        EnrollmentSpec(first_name="Chaya", last_name="Meyer", ext_person_id="staff-7")  # type: ignore[call-arg]
    sent: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        if request.url.path.endswith("/class/enrollments") and request.method in ("POST", "PUT"):
            sent.append(request)

    async with client(url) as c:
        # Watch what really goes on the wire (an httpx event hook on the client's own connection pool).
        c._http.client.event_hooks["request"].append(record)
        await c.ensure_class(SPEC)
        await c.create_enrollment(co_teacher, ext_class_id=EXT)
        # Class defaults a missing role to student on PUT too (seed L672): this rename would demote her.
        renamed = await c.update_enrollment(co_teacher.model_copy(update={"last_name": "Meyer-Stone"}),
                                            ext_class_id=EXT)
        assert renamed.role == "teacher"
        roster = {e.ext_person_id: e.role for e in await c.enrollments(ext_class_id=EXT)}
        assert roster["staff-7"] == "teacher"
    assert [(r.method, orjson.loads(r.content)["role"]) for r in sent] == [("POST", "teacher"), ("PUT", "teacher")]


async def test_a_validation_400_is_permanent_and_names_the_field(url: str) -> None:
    async with client(url) as c:
        await c.ensure_class(SPEC)
        with pytest.raises(ClassValidationError) as err:
            await c.create_enrollment(STUDENT.model_copy(update={"email": "not-an-email"}), ext_class_id=EXT)
    assert err.value.fields == {"email": ["The email format is invalid."]}  # seed 001:L1401-1410
    assert "Request failed validation: email: The email format is invalid." in str(err.value)
    assert isinstance(err.value, PermanentUpstreamError) and classify(err.value) is Verdict.DEAD_LETTER


# --- users ---------------------------------------------------------------------------------------


async def test_users_upsert_get_page_and_delete(url: str) -> None:
    staff = UserSpec(identified_by="ext_user_id", ext_user_id="888", email="mail@mail.com", user_name="Bob Smith",
                     roles=("admin", "instructor"))
    async with client(url) as c:
        made = await c.upsert_user(staff)
        assert made.created and made.user.role_set == {"admin", "instructor"}
        again = await c.upsert_user(staff.model_copy(update={"user_name": "Robert Smith"}))
        assert not again.created and again.user.id == made.user.id and again.user.user_name == "Robert Smith"
        assert await c.get_user(id=made.user.id) == again.user
        assert await c.get_user(ext_user_id="888") == again.user
        assert await c.get_user(email="mail@mail.com") == again.user
        assert await c.find_user(ext_user_id="nobody") is None
        page = await c.users_page(1, 2)
        assert (page.current_page, page.total_records, page.next_page, page.prev_page) == (1, 3, 2, None)
        everyone = [u.id async for u in c.iter_users(limit=1)]
        assert everyone == [u.id for u in await c.list_users()] == [1, 2, made.user.id]
        deleted = await c.delete_user(ext_user_id="888")
        assert deleted is not None and deleted.id == made.user.id
        assert await c.delete_user(ext_user_id="888", missing_ok=True) is None
        with pytest.raises(ValueError, match="identified_by"):
            UserSpec(identified_by="email", user_name="No Mail")
        with pytest.raises(ValueError, match="limit"):
            await c.users_page(1, 1001)


# --- credentials, scopes, retries ----------------------------------------------------------------


async def test_a_key_without_a_scope_pauses_and_the_start_up_check_names_the_read_scope(url: str) -> None:
    async with client(url, NO_CLASS_WRITE) as c:
        with pytest.raises(MissingScopeError) as err:
            await c.create_class(SPEC)
        assert err.value.scope == "class:write" and isinstance(err.value, AccessDeniedError)
        assert classify(err.value) is Verdict.PAUSE, "never dead-letter every event of a key lacking a scope"
        assert "Api key scope class:write required" in str(err.value)  # seed 001:L1414-1418
        # class:write cannot be probed without writing: the check says so instead of guessing.
        check = await c.check_scopes()
        assert check.ok and "class:write" in check.unverified
    async with client(url, NO_ENROLLMENT_READ) as c:
        check = await c.check_scopes()
        assert check.missing == {"enrollment:read"} and check.granted == {"class:read", "user:read"}
        assert check.unverified == REQUIRED_SCOPES & WRITE_SCOPES
        with pytest.raises(MissingScopeError, match="enrollment:read") as err:
            check.raise_for_missing()
        assert classify(err.value) is Verdict.PAUSE
        with pytest.raises(MissingScopeError):
            await c.enrollments(ext_class_id="demo-1")


async def test_the_start_up_check_costs_one_get_per_read_scope(url: str, sim: ClassSimulator) -> None:
    async with client(url) as c:
        check = await c.check_scopes(READ_PROBES)
        assert check.granted == set(READ_PROBES) and not check.missing and not check.unverified
        assert sim.stats.snapshot(0)["total"] == len(READ_PROBES)
        assert sim.snapshot(counts_only=True)["counts"]["classes"] == 2, "probes write nothing"
        with pytest.raises(ValueError, match="unknown Class scope"):
            await c.check_scopes(["class:admin"])


@pytest.mark.parametrize("key", ["wrong-secret", EXPIRED])
async def test_a_rejected_key_is_an_authentication_error_that_pauses(url: str, key: str) -> None:
    async with client(url, key) as c:
        with pytest.raises(AuthenticationError) as err:
            await c.list_classes()
        assert not isinstance(err.value, MissingScopeError) and err.value.status == 401
        assert classify(err.value) is Verdict.PAUSE
        with pytest.raises(AuthenticationError):
            await c.check_scopes()


async def test_5xx_and_429_are_retried(url: str, sim: ClassSimulator) -> None:
    sim.faults.set(FaultConfig(error_rate=1.0, remaining=1))
    sim.configure({"throttle_next": 1})  # non-normative 429 with Retry-After: 1 (B.4: defensive)
    async with client(url) as c:
        assert len(await c.list_classes()) == 2
        # PUT is idempotent: the upsert is retried through a 500 like a read.
        sim.faults.set(FaultConfig(error_rate=1.0, remaining=1))
        assert (await c.upsert_user(UserSpec(identified_by="email", email="x@y.org", user_name="X Y"))).created
    assert sim.stats.snapshot(0)["throttled"] == 1


# --- the system ----------------------------------------------------------------------------------

CONFIG = """\
tenants:
  - id: district-a
    systems:
      classroom:
        base_url: {url}
        api_key: ${{CLASS_API_KEY}}
        timezone: {zone}
"""


async def test_the_config_section_takes_its_secret_from_the_environment(tmp_path: Path, url: str) -> None:
    path = tmp_path / "edusync.yaml"
    path.write_text(CONFIG.format(url=url, zone="America/Chicago"))
    config = load_config(path, env={"CLASS_API_KEY": DEMO_SECRET})
    section = config.tenants[0].systems.classroom  # type: ignore[attr-defined]
    assert isinstance(section, ClassConfig) and section.api_key.get_secret_value() == DEMO_SECRET
    assert DEMO_SECRET not in repr(config) and section.concurrency == 4
    assert CLASSROOM in SYSTEMS
    pool = ClientPool()
    c = pool.get(CLASSROOM, section)
    assert pool.get(CLASSROOM, section) is c and c.timezone == "America/Chicago"
    try:
        assert (await c.check_scopes()).ok
    finally:
        await pool.aclose()
    assert DEMO_SECRET not in CLASSROOM.credential(section)


def test_config_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "edusync.yaml"
    path.write_text(CONFIG.format(url="https://district-a.class.com", zone="Pacific/Atlantis"))
    with pytest.raises(ConfigError) as err:
        load_config(path, env={"CLASS_API_KEY": "k" * 8})
    assert f"{path}:7: tenants[0].systems.classroom.timezone:" in str(err.value)
    assert "Pacific/Atlantis" in str(err.value)
    path.write_text(CONFIG.format(url="https://district-a.class.com", zone="UTC"))
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert (f"{path}:6: tenants[0].systems.classroom.api_key: environment variable CLASS_API_KEY is not set"
            in str(err.value))


async def test_simulate_app_takes_the_simulate_options() -> None:
    app, hint = simulate_app(SimulateOptions(students=200, seed=3))
    assert DEMO_SECRET in hint
    with ThreadedServer(app) as srv:
        async with client(srv.url) as c:
            assert len([k for k in await c.list_classes() if k.ext_class_id and k.ext_class_id.startswith("seed-")]) \
                == round(200 * 1836 / 20000)


# --- properties of the pure functions --------------------------------------------------------------

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)


def maybe(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The right kind of value four times in five, any JSON value otherwise (so whole records
    parse often enough to exercise the success paths too)."""
    return st.one_of(good, good, good, good, json_values)


texts = maybe(st.text(max_size=12) | st.none())
times = maybe(st.sampled_from(["2023-03-03T14:48:06.312Z", "2023-03-03T14:48:06", "", "yesterday"]))
klass = st.fixed_dictionaries({
    "class_id": maybe(st.uuids().map(str)), "ext_class_id": texts, "class_name": maybe(st.text(max_size=10)),
    "class_description": texts, "meeting_id": maybe(st.from_regex(r"\A[0-9]{10,11}\Z")), "host": texts,
    "invite_link": maybe(st.uuids().map(lambda u: f"https://x.class.com/class.html?class_uuid={u}")),
    "password": texts,
})
deferred = st.fixed_dictionaries({
    "class_deferred_id": maybe(st.integers(min_value=1)), "class_id": maybe(st.uuids().map(str)),
    "ext_class_id": texts, "ext_id": texts, "email": texts, "class_name": maybe(st.text(max_size=10)),
    "class_description": texts, "created_at": times, "updated_at": times,
})
enrollment = st.fixed_dictionaries({
    "student_id": maybe(st.uuids().map(str)), "meeting_id": texts, "user_name": texts, "first_name": texts,
    "last_name": texts, "email": texts, "ext_person_id": texts, "role": maybe(st.sampled_from(["student", "teacher"])),
})
deferred_enrollment = st.fixed_dictionaries({
    "id": maybe(st.integers()), "class_deferred_id": maybe(st.integers() | st.text(max_size=3)),
    "email_user": texts, "role": texts, "created_at": times,
    "enroll_params": maybe(st.fixed_dictionaries({"class": maybe(st.fixed_dictionaries({"ext_id": texts}))})),
    "user": maybe(st.fixed_dictionaries({"role": texts, "email": texts, "ext_person_id": texts})),
})
user = st.fixed_dictionaries({
    "id": maybe(st.integers()), "ext_user_id": texts, "email": texts, "user_name": maybe(st.text(max_size=10)),
    "roles": maybe(st.lists(st.sampled_from(["admin", "instructor"]), max_size=2)),
    "is_zoom_configured": maybe(st.booleans()),
})
paged_users = st.fixed_dictionaries({
    "data": maybe(st.lists(user, max_size=3)),
    "pagination": maybe(st.fixed_dictionaries({k: maybe(st.integers(0, 5) | st.none()) for k in (
        "total_records", "current_page", "total_pages", "next_page", "prev_page")})),
})


def _typed(call: Any, body: Any) -> None:
    try:
        result = call(body)
    except UpstreamError:
        return
    assert result is not None


def shapes(item: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Any JSON, the item, a one-element array of it, or a list of them."""
    return st.one_of(json_values, item, item.map(lambda x: [x]), st.lists(item, max_size=3))


@SETTINGS
@given(shapes(klass))
def test_class_parsers_accept_or_raise_upstream_errors(body: Any) -> None:
    for parse in (parse_classes, parse_single_class, parse_patched_class, parse_created_class, parse_message):
        _typed(parse, body)


@SETTINGS
@given(shapes(deferred))
def test_deferred_class_parsers_accept_or_raise_upstream_errors(body: Any) -> None:
    for parse in (parse_deferred_classes, parse_single_deferred_class, parse_patched_class, parse_created_class):
        _typed(parse, body)


@SETTINGS
@given(st.one_of(shapes(enrollment), shapes(deferred_enrollment)))
def test_enrollment_parsers_accept_or_raise_upstream_errors(body: Any) -> None:
    _typed(parse_enrollments, body)
    _typed(parse_enrollment_answer, body)


@SETTINGS
@given(st.one_of(shapes(user), paged_users))
def test_user_parsers_accept_or_raise_upstream_errors(body: Any) -> None:
    for parse in (parse_user, parse_single_user, parse_users_page):
        _typed(parse, body)


@SETTINGS
@given(st.sampled_from([400, 401, 403, 404, 429, 500, 503, 200, 201]),
       st.one_of(json_values, st.fixed_dictionaries({
           "error": maybe(st.sampled_from(["Api key scope class:write required", "Request failed validation",
                                           "Class exists for external class ID provided: x.y."]) | st.text()),
           "data": json_values})), st.booleans())
def test_the_classifier_gives_none_or_an_upstream_error(status: int, body: Any, html: bool) -> None:
    content = b"<html>oops</html>" if html else orjson.dumps(body)
    response = httpx.Response(status, content=content, request=httpx.Request("GET", "http://class.test/api/v1/x"))
    error = ClassroomClassifier().classify(response, "GET /api/v1/x")
    assert (error is None) == (200 <= status < 300)
    if status == 403:
        assert isinstance(error, MissingScopeError) and classify(error) is Verdict.PAUSE
    if status == 401:
        assert isinstance(error, AuthenticationError)


@SETTINGS
@given(st.text(max_size=60))
def test_error_text_parsers_never_raise(text: str) -> None:
    scope = missing_scope(text)
    assert scope is None or scope in text
    ext = existing_ext_class_id(text)
    assert ext is None or ext in text


people = st.builds(
    EnrollmentSpec, first_name=st.text(min_size=1, max_size=5), last_name=st.text(min_size=1, max_size=5),
    role=st.sampled_from(["student", "assistant", "teacher"]), ext_person_id=st.text(min_size=1, max_size=5),
    email=st.none() | st.just("a@b.cd"), display_name=st.none() | st.text(max_size=5),
)


@SETTINGS
@given(people, st.sampled_from([None, "ext_person_id", "email", "student_id"]))
def test_every_enrollment_body_carries_the_role(person: EnrollmentSpec, identify_by: Any) -> None:
    try:
        body = enrollment_body(("ext_class_id", "c1"), person, identify_by=identify_by, student_id="s-1")
    except ValueError:
        assert identify_by == "email" and person.email is None
        return
    assert body["role"] == person.role and body["ext_class_id"] == "c1"
    if identify_by == "email":
        assert "ext_person_id" not in body, "a lower-precedence identifier is sent alone"


def test_ensured_class_reports_changes() -> None:
    record = ClassInfo(class_id="c", class_name="n")
    assert not EnsuredClass(record, "existed").changed
    assert EnsuredClass(record, "existed", patched=("class_name",)).changed
    assert EnsuredClass(record, "lost_answer").changed and EnsuredClass(record, "created").changed
