"""The Canvas course-events poller as a subprocess that SIGKILLs itself at a chosen step.

    python -m tests.canvas_audit_app --bootstrap B --canvas URL --token T --tenant X [--kill-at STEP:N]

Steps: ``page`` (an audit page has come back, mid-walk), ``after_fetch`` (a window is collected,
nothing sent), ``mid_send``, ``before_commit``, ``after_commit`` (the frame's transaction steps,
``tests.frame_apps.KillingProducer``). Without a kill it runs until the cursor's ``hwm`` reaches
``--until`` (or the feed is caught up) and exits 0.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from typing import Any

import anyio

from tests.frame_apps import KillingProducer, KillPlan
from tests.http_settings import http_settings
from worker.clients.canvas import CanvasClient
from worker.clients.http import Answer
from worker.poller_frame import PollerRunner, PollResult, cursor_key
from worker.pollers.canvas_audit_window import FeedCursor, WindowSettings, canvas_source
from worker.pollers.canvas_course_events import POLLER_NAME, CanvasCourseEventsPoller
from worker.state_store import StateStore
from worker.topics import CURSORS


class KillingClient(CanvasClient):
    """Reports every audit page it fetched to the kill plan."""

    kill: KillPlan

    async def _call(self, method: str, url: str, **kwargs: Any) -> Answer:
        answer = await super()._call(method, url, **kwargs)
        if "/audit/" in url:
            self.kill.reached("page")
        return answer


class KillingPoller(CanvasCourseEventsPoller):
    """Reports each collected window to the kill plan before the frame publishes it."""

    kill: KillPlan

    async def poll(self, cursor: Any) -> PollResult:
        result = await super().poll(cursor)
        self.kill.reached("after_fetch")
        return result


async def run(args: argparse.Namespace) -> None:
    kill = KillPlan(args.kill_at)
    producer = KillingProducer(args.bootstrap, f"test.canvas-audit.{args.tenant}")
    producer.kill = kill
    client = KillingClient(args.canvas, args.token, http=http_settings(5, 10.0), per_page=args.per_page, max_pause=0.05)
    client.kill = kill
    window = WindowSettings(lag=timedelta(seconds=args.lag), overlap=timedelta(seconds=args.overlap),
                            lookback=timedelta(seconds=args.lookback), window=timedelta(seconds=args.window),
                            max_events=args.max_events)
    poller = KillingPoller(args.tenant, "1", client, window, source=canvas_source(args.canvas))
    poller.kill = kill
    until = datetime.fromisoformat(args.until) if args.until else None
    async with producer, client:
        cursors = StateStore(args.bootstrap, CURSORS)
        await cursors.restore()
        runner = PollerRunner(poller, producer, cursors, interval=0.05)
        key = cursor_key(args.tenant, POLLER_NAME)
        while True:
            result = await runner.run_once()
            hwm = FeedCursor.load(cursors.get(key)).hwm
            if not result.more and (until is None or (hwm is not None and hwm >= until)):
                return
            if not result.more:
                await anyio.sleep(0.2)  # caught up: wait for the lag to let newer events in


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--canvas", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--per-page", type=int, default=5)
    parser.add_argument("--lag", type=float, default=1.0)
    parser.add_argument("--overlap", type=float, default=600.0)
    parser.add_argument("--lookback", type=float, default=4 * 86_400.0)
    parser.add_argument("--window", type=float, default=6 * 3600.0)
    parser.add_argument("--max-events", type=int, default=10_000)
    parser.add_argument("--until")
    parser.add_argument("--kill-at")
    args = parser.parse_args()
    anyio.run(run, args)


if __name__ == "__main__":
    main()

