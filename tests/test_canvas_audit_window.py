"""Windowing of the Canvas audit feeds (canvas.md §6.2), as pure functions and through the course
events poller against the simulator (no Kafka: each poll's cursor is fed back by hand)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from schemas.canvas import CanvasCourseEventV1
from simulators.canvas import CanvasSimulator
from tests import canvas_fixtures
from tests.canvas_fixtures import ADMIN
from tests.http_settings import http_settings
from worker.clients.canvas import CanvasClient
from worker.clients.canvas_errors import AuditLogUnavailableError
from worker.pollers.canvas_audit_window import FeedCursor, Window, WindowSettings, advance, plan, select
from worker.pollers.canvas_course_events import CanvasCourseEventsPoller

pytestmark = pytest.mark.anyio

sim = canvas_fixtures.sim
server = canvas_fixtures.server

NOW = datetime(2026, 3, 4, 12, 0, 0, 500_000, tzinfo=UTC)
S = WindowSettings(lag=timedelta(minutes=2), overlap=timedelta(minutes=10), lookback=timedelta(days=3),
                   window=timedelta(hours=6), max_events=100)


class Ev:
    """A stand-in audit event."""

    def __init__(self, event_id: str, at: datetime) -> None:
        self.id = event_id
        self.created_at = at


def test_first_lookback_is_cut_into_windows_oldest_first() -> None:
    first = plan(FeedCursor(), NOW, S)
    assert first == Window(datetime(2026, 3, 1, 11, 58, tzinfo=UTC), datetime(2026, 3, 1, 11, 58, tzinfo=UTC),
                           datetime(2026, 3, 1, 17, 58, tzinfo=UTC))
    following = plan(FeedCursor(hwm=first.end), NOW, S)
    assert following is not None
    assert (following.start, following.base, following.end) == (first.end - S.overlap, first.end,
                                                                 first.end + S.window)
    last = plan(FeedCursor(hwm=datetime(2026, 3, 4, 11, 0, tzinfo=UTC)), NOW, S)
    assert last is not None and last.end == datetime(2026, 3, 4, 11, 58, tzinfo=UTC)  # frozen at now - lag
    assert plan(FeedCursor(hwm=last.end), NOW, S) is None  # nothing new is old enough yet


def test_select_sorts_dedupes_and_keeps_the_window() -> None:
    window = Window(datetime(2026, 3, 4, 10, 0, tzinfo=UTC), datetime(2026, 3, 4, 10, 10, tzinfo=UTC),
                    datetime(2026, 3, 4, 11, 0, tzinfo=UTC))
    at = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)
    events = [Ev("b", at), Ev("a", at), Ev("c", at - timedelta(minutes=5)), Ev("a", at), Ev("old", window.start
              - timedelta(seconds=1)), Ev("new", window.end + timedelta(seconds=1)), Ev("seen", at),
              Ev("edge", window.end + timedelta(milliseconds=400))]
    chosen = select(events, window, {"seen"})
    assert [e.id for e in chosen] == ["c", "a", "b", "edge"]  # (created_at, id) ascending; bounds by whole second


def test_advance_keeps_only_the_next_overlap_in_seen() -> None:
    window = Window(datetime(2026, 3, 4, 10, 0, tzinfo=UTC), datetime(2026, 3, 4, 10, 10, tzinfo=UTC),
                    datetime(2026, 3, 4, 11, 0, tzinfo=UTC))
    cursor = FeedCursor(hwm=window.base, seen=[("x", window.base - timedelta(minutes=1))])
    events = [Ev("early", datetime(2026, 3, 4, 10, 20, tzinfo=UTC)),
              Ev("late", datetime(2026, 3, 4, 10, 55, tzinfo=UTC))]
    after = advance(cursor, window, events, S, shrunk=False)
    assert after.hwm == window.end
    assert [event_id for event_id, _ in after.seen] == ["late"]
    shrunk = advance(cursor, window, events, S, shrunk=True)
    assert shrunk.window_seconds == 3000  # the size that worked, 50 minutes
    regrown = advance(shrunk, window, [], S, shrunk=False)
    assert regrown.window_seconds == 6000
    assert advance(FeedCursor(window_seconds=15_000), window, [], S, shrunk=False).window_seconds is None


def test_window_settings_refuse_a_zero_overlap() -> None:
    with pytest.raises(ValueError, match="overlap"):
        WindowSettings(lag=timedelta(0), overlap=timedelta(0), lookback=timedelta(days=1), window=timedelta(hours=1),
                       max_events=10)


# --- through the poller, against the simulator ----------------------------------------------------


@pytest.fixture
def url(sim: CanvasSimulator, server: str) -> str:
    sim.reset()
    return server


def control(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(url + path, json=body)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def new_course(url: str) -> int:
    response = httpx.post(url + "/api/v1/accounts/1/courses", data={"course[name]": "Bio"},
                          headers={"Authorization": f"Bearer {ADMIN}"})
    response.raise_for_status()
    return int(response.json()["id"])


async def drain(poller: CanvasCourseEventsPoller, cursor: Any = None, limit: int = 200) -> tuple[list[Any], Any, int]:
    """Poll until caught up; returns (payloads in order, last cursor, splits seen in cursors)."""
    payloads: list[Any] = []
    shrunk = 0
    for _ in range(limit):
        result = await poller.poll(cursor)
        cursor = result.cursor
        payloads += [out.event.payload(CanvasCourseEventV1) for out in result.events]
        shrunk += bool(cursor and cursor.get("window_seconds"))
        if not result.more:
            return payloads, cursor, shrunk
    raise AssertionError("never caught up")


def poller(url: str, settings: WindowSettings) -> CanvasCourseEventsPoller:
    client = CanvasClient(url, ADMIN, http=http_settings(2, 5.0), max_pause=0.0)
    return CanvasCourseEventsPoller("t", "1", client, settings, source="canvas:test")


async def test_a_window_over_the_cap_is_split_and_nothing_is_lost(sim: CanvasSimulator, url: str) -> None:
    cid = new_course(url)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    control(url, "/_sim/audit/seed", {"kind": "course", "course_id": cid, "count": 300, "days": 1 / 24,
                                      "end": end.isoformat()})
    settings = WindowSettings(lag=timedelta(seconds=1), overlap=timedelta(seconds=30), lookback=timedelta(days=1),
                              window=timedelta(days=1), max_events=100)
    p = poller(url, settings)
    payloads, cursor, shrunk = await drain(p)
    seeded = [x for x in payloads if x.event_type == "updated"]  # the course's "created" may be too new yet
    assert len(seeded) == len({x.event_id for x in seeded}) == 300
    assert len(payloads) == len({x.event_id for x in payloads})
    keys = [(x.created_at, x.event_id) for x in payloads]
    assert keys == sorted(keys)
    assert shrunk > 0, "the windows were split"
    assert FeedCursor.load(cursor).hwm is not None
    again, _, _ = await drain(p, cursor)
    assert {x.event_type for x in again} <= {"created"}  # the overlap is read again, not published again


async def test_one_crowded_second_is_taken_whole(sim: CanvasSimulator, url: str) -> None:
    cid = new_course(url)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    seeded = control(url, "/_sim/audit/seed", {"kind": "course", "course_id": cid, "count": 300, "days": 0.001,
                                               "same_second": 150, "end": end.isoformat()})
    settings = WindowSettings(lag=timedelta(seconds=1), overlap=timedelta(seconds=5), lookback=timedelta(hours=1),
                              window=timedelta(hours=1), max_events=100)
    payloads, _, _ = await drain(poller(url, settings))
    updated = [x for x in payloads if x.event_type == "updated"]
    assert len(updated) == len({x.event_id for x in updated}) == 300
    crowded = [x for x in updated if x.created_at == datetime.fromisoformat(seeded["shared_second"])]
    assert len(crowded) >= 150  # more than the cap of 100, in one second: taken whole
    assert [x.event_id for x in crowded] == sorted(x.event_id for x in crowded)


async def test_audit_storage_not_configured_is_a_clear_error(url: str) -> None:
    httpx.put(url + "/_sim/audit", json={"configured": False}).raise_for_status()
    settings = WindowSettings(lag=timedelta(seconds=1), overlap=timedelta(seconds=5), lookback=timedelta(hours=1),
                              window=timedelta(hours=1), max_events=100)
    with pytest.raises(AuditLogUnavailableError) as info:
        await poller(url, settings).poll(None)
    assert "not configured" in str(info.value) and info.value.status == 404
