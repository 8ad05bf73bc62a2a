"""Two lanes of the standards handler with events of one new standard (AB events are keyed by
event, so a standard's events reach several partitions): the outcome is made once. Real Canvas
simulator over loopback; the AB side is the standard as AB Connect would deliver it."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

from handlers.canvas_outcome_tree import OutcomeTree
from handlers.standards_to_canvas import StandardsTenant, _Sync
from simulators.canvas import CanvasSimulator, create_app
from simulators.server import ThreadedServer
from tests.http_settings import http_settings
from worker.clients.abconnect import ABConnectClient
from worker.clients.abconnect_models import Standard
from worker.clients.canvas import CanvasClient
from worker.ledger import Ledger, LedgerView

pytestmark = pytest.mark.anyio

TOKEN = "admin-token"


@pytest.fixture
def canvas() -> Iterator[tuple[CanvasSimulator, str]]:
    sim = CanvasSimulator(tokens={TOKEN: 1}, accounts={1: "District A"})
    with ThreadedServer(create_app(sim)) as srv:
        yield sim, srv.url


async def test_two_lanes_with_events_of_one_new_standard_create_its_outcome_once(
    canvas: tuple[CanvasSimulator, str],
) -> None:
    sim, url = canvas
    stds = [Standard(guid=f"STD-{i}", status="active", document_guid="DOC-1", document_descr="Math",
                     section_guid="SEC-1", section_descr="Grade 3", statement=f"Standard {i}", number_enhanced=f"3.{i}")
            for i in range(5)]
    async with CanvasClient(url, TOKEN, http=http_settings(2, 5.0)) as client:
        # Never asked: every standard comes with its event, as the bulk read hands it over.
        ab = ABConnectClient("http://127.0.0.1:9", "partner", "key")
        tenant = StandardsTenant(ab, OutcomeTree(client, "1"))
        ledger = Ledger(LedgerView("127.0.0.1:9"), "standards_to_canvas")

        async def lane() -> None:
            sync = _Sync("d1", tenant, ledger)
            for std in stds:
                await sync.standard(std.guid, std)

        async with anyio.create_task_group() as tg:
            tg.start_soon(lane)
            tg.start_soon(lane)
        await ab.aclose()
    duplicates = sim.stats.snapshot()["duplicate_vendor_guids"]
    assert not any(duplicates.values()), f"created twice: {duplicates}"
    made = {guid.upper() for entity, counts in sim.stats.snapshot()["creates_by_vendor_guid"].items()
            for guid in counts if entity == "outcome"}
    assert made == {s.guid for s in stds}, made
