"""The MatrixLMS roster handler after a runner died before its commit: the dead runner enrolled a
student, and its successor's batch holds both that enrolment and the delete after it. The batch
keeps only a subject's last event, so the delete finds no ledger entry; in recovery it asks
MatrixLMS (one read a class) instead of trusting the ledger. Real MatrixLMS simulator on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from handlers.roster_identity import RosterIds
from handlers.roster_reference import roster_reference
from handlers.roster_to_matrixlms import MatrixTenant, RosterToMatrixLMS
from simulators.matrixlms import DEMO_API_KEY, KeyGrant, MatrixSimulator, create_app
from simulators.roster_convergence_matrixlms import READ_FUNCTIONS, calls_by_function
from simulators.server import ThreadedServer
from tests.http_settings import http_settings
from tests.roster_events import enrol_then_delete
from worker.clients.matrixlms import ClassAttributes, MatrixLMSClient, UserAttributes
from worker.clients.matrixlms_budget import SiteBudget
from worker.ledger import Ledger, LedgerView
from worker.metrics import Outcome
from worker.recovery import recovery

pytestmark = pytest.mark.anyio

TENANT, SECTION, STUDENT, DISTRICT = "d1", "30007", "100090", "584"


@pytest.fixture
def matrix() -> Iterator[tuple[MatrixSimulator, str]]:
    sim = MatrixSimulator(keys={DEMO_API_KEY: KeyGrant()})
    with ThreadedServer(create_app(sim)) as srv:
        yield sim, srv.url


def _writes(sim: MatrixSimulator) -> int:
    return sum(n for f, n in calls_by_function(sim).items() if f not in READ_FUNCTIONS)


async def _enrolled(client: MatrixLMSClient, class_id: int) -> set[int]:
    return {s.id for s in await client.get_students_for_class(class_id) if s.enrolled}


async def test_an_enrolment_a_dead_runner_made_is_removed_by_the_delete_in_the_same_batch(
    matrix: tuple[MatrixSimulator, str],
) -> None:
    sim, url = matrix
    reference = roster_reference("127.0.0.1:9")  # its own tables: nothing restores them here
    reference.people._set(f"{TENANT}/student/{STUDENT}", {"district": DISTRICT, "first": "Nora", "last": "White"})
    async with MatrixLMSClient(url, DEMO_API_KEY, http=http_settings(2, timeout=5.0),
                               budget=SiteBudget(limit=100_000)) as client:
        handler = RosterToMatrixLMS({TENANT: MatrixTenant(client, RosterIds())}, reference)
        class_id = await client.add_class(ClassAttributes(name=f"Algebra [S{SECTION}]"))
        user_id = (await client.add_user(UserAttributes(userid=DISTRICT, student_id=DISTRICT, first_name="Nora",
                                                        last_name="White"))).id
        ledger = Ledger(LedgerView("127.0.0.1:9"), "roster_to_matrixlms")
        ledger.put(f"matrix/{TENANT}/class/{SECTION}", {"id": class_id, "fp": "-", "teachers": []})
        ledger.put(f"matrix/{TENANT}/user/{DISTRICT}", {"id": user_id, "fp": "-"})
        # What the dead runner did in MatrixLMS, and nowhere else.
        await client.add_students_to_class(class_id, [user_id], ignore_already_enrolled=True)
        enrol, delete = enrol_then_delete(TENANT, SECTION, STUDENT, DISTRICT)

        # Outside recovery the ledger is trusted: its picture has no such member.
        assert await handler.handle_batch([enrol, delete], ledger) == [Outcome.SKIPPED, Outcome.NOOP]
        assert await _enrolled(client, class_id) == {user_id}
        writes = _writes(sim)

        with recovery(True):
            assert await handler.handle_batch([enrol, delete], ledger) == [Outcome.SKIPPED, Outcome.APPLIED]
        assert await _enrolled(client, class_id) == set(), "the dead runner's enrolment stayed"
        assert ledger.get(f"matrix/{TENANT}/member/{DISTRICT}/{SECTION}") is None

        assert _writes(sim) == writes + 1, "one remove_students_from_class, nothing else"

        # A member that is not there costs the read and writes nothing.
        with recovery(True):
            assert await handler.handle_batch([enrol, delete], ledger) == [Outcome.SKIPPED, Outcome.NOOP]
        assert _writes(sim) == writes + 1
