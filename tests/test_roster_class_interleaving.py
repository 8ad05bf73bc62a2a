"""The Class handler when lanes of one process race (a rename's fan-out and a drop of one of
the student's enrolments), and after a runner died before its commit. bench/chaos met the
dropped enrolment re-created, the ledger claiming an enrolment Class no longer had, and an
enrolment a dead runner made that nothing removed. Real Class simulator over loopback; the
interleavings are fixed by holding a call until the other lane is done."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from handlers.roster_changes import EnrollmentChange, StudentChange
from handlers.roster_identity import RosterIds
from handlers.roster_reference import roster_reference
from handlers.roster_to_class import ClassTenant, RosterToClass, _Sync
from schemas.illuminate_records import StudentRecordV1
from simulators.classroom import DEMO_SECRET, ClassSimulator, create_app
from simulators.server import ThreadedServer
from tests.http_settings import http_settings
from tests.roster_events import enrol_then_delete
from worker.clients.classroom import ClassroomClient
from worker.clients.classroom_specs import ClassSpec, EnrollmentSpec
from worker.ledger import Ledger, LedgerView
from worker.metrics import Outcome
from worker.recovery import recovery

pytestmark = pytest.mark.anyio

TENANT = "d1"
PERSON = "500129"
SECTIONS = ("30000", "30001")


class HeldClient(ClassroomClient):
    """The real client, whose first enrolment update waits until ``release`` is set."""

    def __init__(self, url: str) -> None:
        super().__init__(url, DEMO_SECRET, timezone="America/Los_Angeles", http=http_settings(2, timeout=5.0))
        self.release = anyio.Event()
        self.held = anyio.Event()
        self.held_class: str | None = None

    async def update_enrollment(self, person: EnrollmentSpec, **kwargs: Any) -> Any:
        if not self.held.is_set():
            self.held_class = kwargs.get("ext_class_id")
            self.held.set()
            await self.release.wait()
        return await super().update_enrollment(person, **kwargs)


@pytest.fixture
def url() -> Iterator[tuple[ClassSimulator, str]]:
    sim = ClassSimulator(keys={DEMO_SECRET: {}})
    with ThreadedServer(create_app(sim)) as srv:
        yield sim, srv.url


def roster_of(sim: ClassSimulator, ext: str) -> dict[str, str]:
    with sim.lock:
        klass = next(c for c in sim.store.classes.values() if c.ext_class_id == ext)
        return {e.ext_person_id: e.last_name for e in klass.enrollments if e.role == "student"}


async def _enrolled(client: ClassroomClient, ledger: Ledger, ids: RosterIds, sid: str) -> None:
    """Section ``sid``'s class with PERSON enrolled as Isabella Anderson, in Class and in the ledger."""
    ext = ids.section(sid)
    await client.ensure_class(ClassSpec(ext_class_id=ext, class_name=f"Algebra {sid}", email="anne.malley@demo.com",
                                        first_name="Anne", last_name="Malley"))
    await client.create_enrollment(EnrollmentSpec(first_name="Isabella", last_name="Anderson", ext_person_id=PERSON,
                                                  role="student"), ext_class_id=ext)
    ledger.put(f"class/{TENANT}/class/{sid}", {"ext": ext, "fp": "-", "host": "anne.malley@demo.com", "teachers": []})
    ledger.put(f"class/{TENANT}/enrollment/{PERSON}/{sid}",
               {"first": "Isabella", "last": "Anderson", "role": "student"})


async def test_a_drop_during_a_renames_fan_out_stays_dropped(url: tuple[ClassSimulator, str]) -> None:
    sim, base = url
    ids = RosterIds()
    view = LedgerView("127.0.0.1:9")  # in memory only: nothing here restores or commits
    ledger = Ledger(view, "roster_to_class")
    async with HeldClient(base) as client:
        sync = _Sync(ClassTenant(client, ids), roster_reference("127.0.0.1:9"), ledger, TENANT)
        for sid in SECTIONS:
            await _enrolled(client, ledger, ids, sid)

        rename = StudentChange(TENANT, "7", PERSON, StudentRecordV1(
            student_id="7", district_student_id=PERSON, first_name="Isabella", last_name="Thomas"))
        dropped: list[str] = []

        async def dropping() -> None:
            await client.held.wait()  # the fan-out listed both enrolments and is updating one
            # Drop the other one, which the fan-out has not reached yet.
            dropped.append(next(sid for sid in SECTIONS if ids.section(sid) != client.held_class))
            await sync.enrollment(EnrollmentChange(TENANT, dropped[0], "7", PERSON, "Isabella", "Thomas",
                                                   active=False, deleted=False))
            client.release.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(dropping)
            await sync.student(rename)

    (gone,) = dropped
    (kept,) = set(SECTIONS) - {gone}
    assert roster_of(sim, ids.section(kept)) == {PERSON: "Thomas"}
    assert roster_of(sim, ids.section(gone)) == {}, "the drop was undone by the rename's fan-out"
    assert ledger.get(f"class/{TENANT}/enrollment/{PERSON}/{gone}") is None
    assert ledger.get(f"class/{TENANT}/enrollment/{PERSON}/{kept}") == {
        "first": "Isabella", "last": "Thomas", "role": "student"}


class SlowDropClient(ClassroomClient):
    """The real client, whose enrolment delete returns only when ``release`` is set (Class has
    applied it by then: the answer is merely late, as a busy event loop makes it)."""

    def __init__(self, url: str) -> None:
        super().__init__(url, DEMO_SECRET, timezone="America/Los_Angeles", http=http_settings(2, timeout=5.0))
        self.release = anyio.Event()
        self.deleted = anyio.Event()

    async def delete_enrollment(self, **kwargs: Any) -> bool:
        done = await super().delete_enrollment(**kwargs)
        self.deleted.set()
        await self.release.wait()
        return done


async def test_a_renames_update_never_re_creates_an_enrolment_whose_drop_is_still_answering(
    url: tuple[ClassSimulator, str],
) -> None:
    # Class answers the rename's PUT with 404 because the drop's DELETE already happened; the
    # drop has not noted it in the ledger yet. That 404 is not "removed by hand".
    sim, base = url
    ids = RosterIds()
    ledger = Ledger(LedgerView("127.0.0.1:9"), "roster_to_class")
    sid = SECTIONS[0]
    ext = ids.section(sid)
    async with SlowDropClient(base) as client:
        sync = _Sync(ClassTenant(client, ids), roster_reference("127.0.0.1:9"), ledger, TENANT)
        await _enrolled(client, ledger, ids, sid)
        rename = StudentChange(TENANT, "7", PERSON, StudentRecordV1(
            student_id="7", district_student_id=PERSON, first_name="Isabella", last_name="Thomas"))
        drop = EnrollmentChange(TENANT, sid, "7", PERSON, "Isabella", "Thomas", active=False, deleted=False)

        async def renaming() -> None:
            await client.deleted.wait()  # Class has dropped it; the drop's lane has not heard yet
            with anyio.move_on_after(1.0):
                await sync.student(rename)  # waits for the drop (the fix) or races it (the bug)
            client.release.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(renaming)
            await sync.enrollment(drop)
            await client.release.wait()
            await sync.student(rename)  # whatever the first try did, the rename is handled by now

    assert roster_of(sim, ext) == {}, "the dropped enrolment was created again"
    assert ledger.get(f"class/{TENANT}/enrollment/{PERSON}/{sid}") is None


async def test_after_a_runner_died_uncommitted_an_enrolment_it_made_is_dropped_by_the_newer_delete(
    url: tuple[ClassSimulator, str],
) -> None:
    # The dead runner enrolled the student in Class; its ledger entry never committed. Its
    # successor re-reads the enrolment and the delete after it. If it skipped the enrolment as
    # superseded (the delete is newer), the delete would find no ledger entry and Class would keep
    # the student (bench/chaos: an extra enrolment). In recovery it applies the enrolment again.
    sim, base = url
    ids = RosterIds()
    sid = SECTIONS[0]
    ext = ids.section(sid)
    reference = roster_reference(f"127.0.0.1:{9 + 1000}")  # its own tables: nothing restores them here
    enrol, delete = enrol_then_delete(TENANT, sid, "100090", PERSON)
    reference.latest._set(f"{TENANT}|{enrol.subject}", (delete.id, delete.time.timestamp()))  # known newer
    reference.people._set(f"{TENANT}/student/100090", {"district": PERSON, "first": "Nora", "last": "White"})
    async with ClassroomClient(base, DEMO_SECRET, timezone="America/Los_Angeles",
                               http=http_settings(2, timeout=5.0)) as client:
        handler = RosterToClass({TENANT: ClassTenant(client, ids)}, reference)
        ledger = Ledger(LedgerView("127.0.0.1:9"), "roster_to_class")
        await client.ensure_class(ClassSpec(ext_class_id=ext, class_name="Algebra", email="anne.malley@demo.com",
                                            first_name="Anne", last_name="Malley"))
        ledger.put(f"class/{TENANT}/class/{sid}", {"ext": ext, "fp": "-", "host": "anne.malley@demo.com",
                                                   "teachers": []})
        # What the dead runner did in Class (and nowhere else).
        await client.create_enrollment(EnrollmentSpec(first_name="Nora", last_name="White", ext_person_id=PERSON,
                                                      role="student"), ext_class_id=ext)
        assert await handler.handle(enrol, ledger) is Outcome.SKIPPED, "outside recovery the shortcut holds"
        with recovery(True):
            assert await handler.handle(enrol, ledger) is not Outcome.SKIPPED
            assert await handler.handle(delete, ledger) is Outcome.APPLIED
    assert roster_of(sim, ext) == {}
