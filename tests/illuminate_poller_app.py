"""One Illuminate snapshot poller as a subprocess that can SIGKILL itself at a chosen step
(``--kill-at STEP:N``, steps of ``tests.frame_apps.KillingProducer``), for the crash tests.

    python -m tests.illuminate_poller_app --bootstrap B --base-url URL --tenant T --entity students \
        --page-limit 50 --until-walks 2 [--kill-at before_commit:6]

It runs until the committed cursor says ``--until-walks`` walks are complete, then exits 0.
"""

from __future__ import annotations

import argparse

import anyio

from simulators.illuminate import DEFAULT_CREDENTIALS
from tests.frame_apps import KillingProducer, KillPlan
from tests.http_settings import http_settings
from worker.clients.illuminate import IlluminateClient
from worker.components import poller_transactional_id
from worker.poller_frame import PollerRunner
from worker.pollers.illuminate_scope import ScopeSource
from worker.pollers.illuminate_snapshot import IlluminateSnapshotPoller
from worker.pollers.snapshot_store import SnapshotStore
from worker.state_store import StateStore
from worker.topics import CURSORS


async def run(args: argparse.Namespace) -> None:
    c = DEFAULT_CREDENTIALS
    client = IlluminateClient(
        f"{args.base_url}/live/rest_server.php", c.consumer_key, c.consumer_secret, c.token, c.token_secret,
        page_limit=args.page_limit, students2_page_limit=args.page_limit, http=http_settings(),
    )
    store = SnapshotStore(args.bootstrap, args.tenant)
    poller = IlluminateSnapshotPoller(args.tenant, args.entity, client, store, source="illuminate:test/live",
                                      scopes=ScopeSource(client, "session"))
    producer = KillingProducer(args.bootstrap, poller_transactional_id(args.tenant, poller.name))
    producer.kill = KillPlan(args.kill_at)
    async with producer, client:
        # After the producer: its init_transactions aborts the killed predecessor's transaction.
        cursors = StateStore(args.bootstrap, CURSORS)
        await cursors.restore()
        runner = PollerRunner(poller, producer, cursors, interval=0.01)
        while True:
            result = await runner.run_once()
            if not result.more and result.cursor["completed_walks"] >= args.until_walks:
                return


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--entity", default="students")
    parser.add_argument("--page-limit", type=int, default=50)
    parser.add_argument("--until-walks", type=int, default=1)
    parser.add_argument("--kill-at")
    anyio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
