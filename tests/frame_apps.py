"""A small poller and handler for the frame tests, runnable as subprocesses that can be
told to SIGKILL themselves at a chosen step (``--kill-at STEP:N``).

    python -m tests.frame_apps poller --bootstrap B --topic T --tenant X --total 500
    python -m tests.frame_apps handler --bootstrap B --topic T --name H --target URL
"""

from __future__ import annotations

import argparse
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
from pydantic import BaseModel, Field

from schemas.envelope import CloudEvent, make_event
from worker.backoff import Backoff
from worker.errors import PermanentFailure, PrerequisiteMissing, TransientFailure
from worker.handler_frame import HandlerRunner, HandlerSettings
from worker.kafka.producer import Transaction, TransactionalProducer
from worker.ledger import Ledger, LedgerView
from worker.metrics import Outcome
from worker.poller_frame import Outbound, PollerRunner, PollResult
from worker.shutdown import StopToken, stop_on_signals
from worker.state_store import StateStore
from worker.topics import CURSORS

COUNTER_TYPE = "edusync.test.counter.v1"


class KillPlan:
    """SIGKILL this process the N-th time it reaches STEP."""

    def __init__(self, spec: str | None) -> None:
        self.step, self.n = (spec.split(":")[0], int(spec.split(":")[1])) if spec else (None, 0)
        self.seen = 0

    def reached(self, step: str) -> None:
        """Count a step; die if it is the planned one."""
        if step == self.step:
            self.seen += 1
            if self.seen == self.n:
                os.kill(os.getpid(), signal.SIGKILL)


class Item(BaseModel):
    """The payload of the test events."""

    key: str
    version: int
    value: str
    poison: bool = False
    requires: str | None = Field(None, description="a key that must be in the target first (else: park)")


class CountingPoller:
    """An upstream of ``total`` numbered records, read ``page`` at a time."""

    name = "counter"

    def __init__(self, tenant: str, topic: str, total: int, page: int, kill: KillPlan) -> None:
        self.tenant, self.topic, self.total, self.page, self.kill = tenant, topic, total, page, kill

    async def poll(self, cursor: Any) -> PollResult:
        last = int(cursor or 0)
        upto = min(self.total, last + self.page)
        events = [
            Outbound(self.topic, make_event(
                tenant=self.tenant, source="test:counter", type=COUNTER_TYPE,
                subject=f"{self.tenant}/item/{i}", version=str(i),
                data=Item(key=str(i), version=1, value=f"v{i}"),
            ))
            for i in range(last + 1, upto + 1)
        ]
        self.kill.reached("after_fetch")
        return PollResult(events=events, cursor=upto, more=upto < self.total)


class KillingProducer(TransactionalProducer):
    """A producer that reports transaction steps to a ``KillPlan``."""

    kill: KillPlan

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with super().transaction() as txn:
            yield _KillingTxn(txn, self.kill)  # type: ignore[misc]
            self.kill.reached("before_commit")
        self.kill.reached("after_commit")


class _KillingTxn:
    def __init__(self, txn: Transaction, kill: KillPlan) -> None:
        self._txn, self._kill = txn, kill

    def __getattr__(self, name: str) -> Any:
        return getattr(self._txn, name)

    async def send(self, *args: Any, **kwargs: Any) -> None:
        await self._txn.send(*args, **kwargs)
        self._kill.reached("mid_send")

    async def send_event(self, topic: str, event: CloudEvent) -> None:
        await self._txn.send_event(topic, event)
        self._kill.reached("mid_send")


class KVHandler:
    """Writes each item to the KV target unless the target already holds that version or newer."""

    def __init__(self, name: str, topic: str, target: str, kill: KillPlan) -> None:
        self.name, self.topics, self.kill = name, (topic,), kill
        self.http = httpx.AsyncClient(base_url=target, timeout=5)

    async def handle(self, event: CloudEvent, ledger: Ledger) -> Outcome:
        item = event.payload(Item)
        if item.poison:
            raise PermanentFailure(f"poison pill for key {item.key}")
        try:
            if item.requires is not None:
                needed = await self.http.get(f"/kv/{item.requires}")
                if needed.status_code == 404:
                    raise PrerequisiteMissing(f"key {item.requires} is not in the target",
                                              waits_for=f"{self.name}/kv/{item.requires}")
            got = await self.http.get(f"/kv/{item.key}")
            if got.status_code >= 500:
                raise TransientFailure(f"target answered {got.status_code}")
            if got.status_code == 200 and got.json()["version"] >= item.version:
                # A crash between write and commit leaves the ledger behind the target;
                # a no-op records what the target holds so the ledger catches up.
                if ledger.get(f"kv/{item.key}") != {"version": got.json()["version"]}:
                    ledger.put(f"kv/{item.key}", {"version": got.json()["version"]})
                return Outcome.NOOP
            put = await self.http.put(f"/kv/{item.key}", json=item.model_dump())
            if put.status_code >= 500:
                raise TransientFailure(f"target answered {put.status_code}")
        except httpx.TransportError as exc:
            raise TransientFailure(str(exc)) from exc
        ledger.put(f"kv/{item.key}", {"version": item.version})
        self.kill.reached("after_write")
        return Outcome.APPLIED


async def run_poller(args: argparse.Namespace) -> None:
    producer = KillingProducer(args.bootstrap, f"test.poller.{args.tenant}")
    producer.kill = KillPlan(args.kill_at)
    poller = CountingPoller(args.tenant, args.topic, args.total, args.page, producer.kill)
    async with producer:
        cursors = StateStore(args.bootstrap, CURSORS)
        await cursors.restore()
        runner = PollerRunner(poller, producer, cursors, interval=0.05)
        while True:
            result = await runner.run_once()
            if result.cursor >= args.total:
                return


async def run_handler(args: argparse.Namespace) -> None:
    kill = KillPlan(args.kill_at)
    producer = KillingProducer(args.bootstrap, f"test.handler.{args.name}")
    producer.kill = kill
    handler = KVHandler(args.name, args.topic, args.target, kill)
    stop = StopToken()
    view = LedgerView(args.bootstrap)
    settings = HandlerSettings(batch_size=args.batch, max_defer_seconds=args.max_defer)
    async with producer, anyio.create_task_group() as tg:
        await view.restore()
        tg.start_soon(view.follow)
        tg.start_soon(stop_on_signals, stop)
        runner = HandlerRunner(handler, kafka=args.bootstrap, producer=producer, view=view, settings=settings,
                               backoff=Backoff(base=0.05, cap=0.5))
        await runner.run(stop)
        tg.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["poller", "handler"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--tenant", default="t")
    parser.add_argument("--total", type=int, default=100)
    parser.add_argument("--page", type=int, default=7)
    parser.add_argument("--name", default="kv")
    parser.add_argument("--target", default="")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--max-defer", type=float, default=3600.0)
    parser.add_argument("--kill-at")
    args = parser.parse_args()
    anyio.run(run_poller if args.role == "poller" else run_handler, args)


if __name__ == "__main__":
    main()
