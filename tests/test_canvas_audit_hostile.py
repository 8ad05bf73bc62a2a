"""A hostile Canvas in front of the course-events poller (``simulators/hostile_proxy.py``): a login
page on 200, a page past the size cap, a trickling body, an hour's Retry-After. Each poll fails
with an error naming the cause, the committed cursor stays and nothing is published; once Canvas
behaves, the next poll publishes every new event exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import anyio
import httpx
import pytest

from simulators.canvas import CanvasSimulator, ThrottleConfig, create_app
from simulators.hostile_proxy import HostileMode, HostileProxy
from simulators.server import ThreadedServer
from tests.kafka_tools import read_topic
from worker.backoff import Backoff
from worker.clients.canvas import CanvasClient
from worker.clients.http import HTTPSettings
from worker.kafka.producer import TransactionalProducer
from worker.poller_frame import PollerRunner, cursor_key
from worker.pollers.canvas_audit_window import WindowSettings, canvas_source
from worker.pollers.canvas_course_events import POLLER_NAME, CanvasCourseEventsPoller
from worker.state_store import StateStore
from worker.topics import CANVAS_COURSE_EVENTS, CURSORS, TopicSpec, all_topics, ensure_topics

pytestmark = pytest.mark.anyio

TOKEN = "canvas-hostile-token"
FEED = ["/api/v1/audit/course/"]
FAST = WindowSettings(lag=timedelta(seconds=0), overlap=timedelta(seconds=30), lookback=timedelta(minutes=10),
                      window=timedelta(hours=1), max_events=10_000)
# Give up on an attempt within 2 s, twice at most, and refuse pages over 4 MiB.
HTTP = HTTPSettings(request_deadline_seconds=2, max_attempts=2, retry_after_cap_seconds=30,
                    max_response_bytes=4 * 1024 * 1024, backoff_base_seconds=0.01, backoff_cap_seconds=0.05)

CASES = [
    ("html_with_status_200", HostileMode(kind="html200", paths=FEED), "HTML page instead of JSON"),
    ("page_over_the_size_cap", HostileMode(kind="oversize", oversize_bytes=16 * 1024 * 1024, paths=FEED),
     "passed the cap of 4,194,304 bytes"),
    ("slow_body", HostileMode(kind="trickle", trickle_seconds=1.0, paths=FEED), "no complete answer within 2s"),
    ("retry_after_an_hour", HostileMode(kind="retry_after", retry_after="3600", paths=FEED),
     "Retry-After 3600s is beyond the configured cap"),
]


@pytest.fixture(scope="module")
def canvas() -> Iterator[tuple[CanvasSimulator, str, HostileProxy, str]]:
    sim = CanvasSimulator(tokens={TOKEN: 1}, throttle=ThrottleConfig(enabled=False))
    with ThreadedServer(create_app(sim)) as srv:
        proxy = HostileProxy(srv.url)
        with ThreadedServer(proxy.app()) as front:
            yield sim, srv.url, proxy, front.url


def _add_course(url: str, name: str) -> None:
    httpx.post(f"{url}/api/v1/accounts/1/courses", data={"course[name]": name},
               headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).raise_for_status()


async def _published(bootstrap: str, tenant: str) -> list[bytes]:
    return [r.value for r in await read_topic(bootstrap, CANVAS_COURSE_EVENTS)
            if (r.key or b"").startswith(f"{tenant}/".encode())]


async def _committed(bootstrap: str, key: str) -> object:
    store = StateStore(bootstrap, CURSORS)
    await store.restore()
    return store.get(key)


@pytest.mark.parametrize(("case", "mode", "cause"), CASES, ids=[c[0] for c in CASES])
async def test_a_spoiled_feed_page_fails_the_poll_naming_the_cause_and_keeps_the_cursor(
    canvas: tuple[CanvasSimulator, str, HostileProxy, str], kafka_bootstrap: str, unique: str,
    case: str, mode: HostileMode, cause: str,
) -> None:
    _, url, proxy, front = canvas
    await ensure_topics(kafka_bootstrap, [*all_topics(), TopicSpec(CANVAS_COURSE_EVENTS)])
    tenant = f"t{unique}"
    key = cursor_key(tenant, POLLER_NAME)
    async with CanvasClient(front, TOKEN, http=HTTP) as client, \
            TransactionalProducer(kafka_bootstrap, f"test.canvas-hostile.{unique}") as producer:
        poller = CanvasCourseEventsPoller(tenant, "1", client, FAST, source=canvas_source(url))
        cursors = StateStore(kafka_bootstrap, CURSORS)
        await cursors.restore()
        runner = PollerRunner(poller, producer, cursors, interval=0.05, backoff=Backoff(base=0.01, cap=0.05))
        await runner.run_once()  # a first, clean poll commits a cursor
        before = await _committed(kafka_bootstrap, key)
        assert before is not None
        already = len(await _published(kafka_bootstrap, tenant))
        _add_course(url, f"{case} 1")  # the feed has news, so a bad page would move the cursor
        _add_course(url, f"{case} 2")
        await anyio.sleep(1.2)  # windows are whole seconds: a second passes, so the poll reads the feed

        proxy.set(mode.model_copy())
        try:
            with pytest.raises(Exception, match=cause):
                await runner.run_once()
        finally:
            proxy.set(HostileMode())
        assert await _committed(kafka_bootstrap, key) == before, "a failed poll leaves the cursor"
        assert len(await _published(kafka_bootstrap, tenant)) == already

        while (await runner.run_once()).more:
            pass
    published = await _published(kafka_bootstrap, tenant)
    assert len(published) == already + 2, "both new course events, once each"
    assert await _committed(kafka_bootstrap, key) != before
