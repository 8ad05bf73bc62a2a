"""Benchmark of the standards flow end to end: AB Connect simulator -> poller -> Kafka -> handler -> Canvas.

    python -m bench.standards_flow [--bootstrap B] [--documents N] [--standards M] [--changes K]

One run, one worker, three phases (the worker is wired in this process as ``edusync demo`` does,
with the simulators on loopback threads; a fresh tenant id per run):

a. initial sync: N documents x M standards appear in AB Connect once the worker is idle and its
   consumer group is stable; the feed holds one ``document/added`` event per document;
b. backlog: K standard-level mutations (``modify_standard`` 50 %, ``add_standard`` and
   ``delete_standard`` 25 % each) are created at once, so the handler works through a backlog
   (standards read 100 per AB request, Canvas written where the ledger's fingerprint differs);
c. paced stream: one standard mutation every ``--paced-interval`` s for ``--paced-seconds`` s,
   for a latency that is not inflated by a backlog made up front.

Per event the bench records creation, poll, handler return and batch commit times
(``bench.standards_flow_probes``); request counts come from the simulators' statistics, the
latency histogram from the worker's own Prometheus registry. It starts its own Kafka 3.9.1 on
free ports in a temporary folder unless ``--bootstrap`` or ``KAFKA_BOOTSTRAP_SERVERS`` names one (then
the run's new consumer group starts at the end of the events topic, skipping other runs' events).
Writes ``bench/reports/standards_flow.md`` and ``bench/reports/standards_flow.png``.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from bench.standards_flow_probes import (
    Counters,
    EventTiming,
    Timeline,
    read_counters,
    timed_components,
)
from deploy.local_kafka import LocalKafka, free_port
from handlers.standards_to_canvas import HANDLER_NAME
from simulators.abconnect import ABConnectSimulator, MutateRequest, SeedRequest
from simulators.abconnect import create_app as ab_app
from simulators.abconnect.state import MutationKind
from simulators.canvas import CanvasSimulator, ThrottleConfig
from simulators.canvas import create_app as canvas_app
from simulators.standards_convergence import ConvergenceReport, compare
from worker.asgi_server import ThreadedServer
from worker.config import KafkaConfig, OpsConfig, TenantConfig, WorkerConfig
from worker.flows.standards import StandardsSettings
from worker.health import Health, State
from worker.logs import configure_logging
from worker.runtime import run_worker
from worker.shutdown import StopToken
from worker.systems.abconnect import ABConnectConfig
from worker.systems.canvas import CanvasConfig
from worker.tenant_slots import handler_component_name, slot_group_id
from worker.topics import ABCONNECT_EVENTS

PARTNER, PARTNER_KEY, CANVAS_TOKEN = "bench-district", "bench-partner-key-0123456789", "bench-canvas-token-0123456789"
REPORT_DIR = Path(__file__).resolve().parent / "reports"
# Canvas publishes no throttle numbers; a generous bucket (as in the demo) keeps the bench about edusync.
CANVAS_THROTTLE = ThrottleConfig(capacity=700, leak_rate=200)
SECTIONS_PER_DOCUMENT = 5
STANDARD_KINDS: tuple[MutationKind, ...] = ("modify_standard", "modify_standard", "add_standard", "delete_standard")
PHASE_TIMEOUT = 420.0
SAMPLE_EVERY = 0.5


@dataclass
class Options:
    """What to run."""

    bootstrap: str | None = None
    documents: int = 20
    standards: int = 100
    changes: int = 500
    paced_seconds: float = 60.0
    paced_interval: float = 0.5
    poll_interval: float = 0.5
    seed: int = 7
    out_dir: Path = REPORT_DIR


@dataclass
class Sample:
    """Cumulative counts at one moment, for the timeline picture."""

    t: float
    polled: int
    handled: int
    committed: int
    ab_events: int
    ab_standards: int
    ab_throttled: int
    canvas: int
    canvas_throttled: int


@dataclass
class PhaseRun:
    """One phase's events, counters and convergence check."""

    key: str
    title: str
    seqs: list[int]
    before: Counters
    after: Counters
    complete: bool
    convergence: ConvergenceReport
    timings: list[EventTiming]
    notes: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    """Everything the report needs."""

    options: Options
    tenant: str
    bootstrap: str
    own_broker: bool
    started: float
    finished: float
    phases: list[PhaseRun]
    samples: list[Sample]
    seeded: dict[str, int]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    cpu_seconds: float


def say(message: str) -> None:
    print(f"[standards_flow] {message}", flush=True)


# -- set-up ----------------------------------------------------------------------------------


@asynccontextmanager
async def kafka(bootstrap: str | None) -> AsyncIterator[tuple[str, bool]]:
    """The broker to use: the given one, or a fresh local one in a temporary folder."""
    if bootstrap:
        yield bootstrap, False
        return
    data_dir = Path(tempfile.mkdtemp(prefix="edusync-standards-flow-"))
    broker = LocalKafka(data_dir=data_dir, port=free_port(), controller_port=free_port())
    say(f"starting Kafka in {data_dir} ...")
    try:
        address = await anyio.to_thread.run_sync(broker.up)
        say(f"Kafka up at {address}")
        yield address, True
    finally:
        broker.down()
        shutil.rmtree(data_dir, ignore_errors=True)


def worker_config(bootstrap: str, tenant: str, ab_url: str, canvas_url: str, poll_interval: float) -> WorkerConfig:
    """One tenant: AB Connect (documented 5/s, burst 25) and Canvas; own group and replica ids."""
    return WorkerConfig(
        kafka=KafkaConfig(bootstrap_servers=bootstrap, consumer_group_prefix=tenant, replica_id=tenant),
        ops=OpsConfig(port=free_port()),
        tenants=[TenantConfig.of(
            tenant,
            systems={
                "abconnect": ABConnectConfig(base_url=f"{ab_url}/rest/v4.1", partner_id=PARTNER,
                                             partner_key=SecretStr(PARTNER_KEY)),
                "canvas": CanvasConfig(base_url=canvas_url, token=SecretStr(CANVAS_TOKEN)),
            },
            flows={"standards": StandardsSettings(poll_interval_seconds=poll_interval)},
        )],
    )


# -- the bench's context during a run -----------------------------------------------------------


@dataclass
class Bench:
    """The simulators, the timeline and the samples of one run."""

    opts: Options
    ab: ABConnectSimulator
    canvas: CanvasSimulator
    timeline: Timeline
    samples: list[Sample] = field(default_factory=list)

    def sample(self) -> Sample:
        ab_stats = self.ab.stats()
        events = self.timeline.events.values()
        return Sample(
            t=time.time(), polled=sum(1 for e in events if e.polled_at is not None),
            handled=sum(1 for e in events if e.handled_at is not None),
            committed=sum(1 for e in events if e.committed_at is not None),
            ab_events=ab_stats["by_resource"].get("events", 0),
            ab_standards=ab_stats["by_resource"].get("standards", 0), ab_throttled=ab_stats["throttled"],
            canvas=self.canvas.stats.count(), canvas_throttled=self.canvas.stats.snapshot()["throttled"],
        )

    async def sample_until(self, stop: StopToken) -> None:
        while True:
            self.samples.append(self.sample())
            if await stop.sleep(SAMPLE_EVERY):
                return

    def rates(self, seconds: float = 5.0) -> str:
        """AB and Canvas requests per second over the last ``seconds`` (AB stats reset by a seed)."""
        recent = [s for s in self.samples if s.t >= self.samples[-1].t - seconds] if self.samples else []
        if len(recent) < 2:
            return "AB -.- req/s"
        first, last = recent[0], recent[-1]
        span = max(1e-6, last.t - first.t)
        ab = max(0, last.ab_events + last.ab_standards - first.ab_events - first.ab_standards) / span
        canvas = max(0, last.canvas - first.canvas) / span
        return f"AB {ab:.1f} req/s (429s so far {last.ab_throttled}), Canvas {canvas:.0f} req/s"

    def feed_seqs(self, after: int = 0) -> list[int]:
        events, _ = self.ab.list_events(PARTNER, None, [], 0, 10**9)
        return [e.seq for e in events if e.seq > after]

    def mutate(self, rng: random.Random) -> list[int]:
        """One standard-level mutation; the seqs of the events it produced for our partner."""
        produced = self.ab.mutate(MutateRequest(kind=rng.choice(STANDARD_KINDS), count=1, seed=rng.randrange(2**31)))
        now = time.time()
        seqs = [e["seq"] for e in produced["events"] if PARTNER in e["partners"]]
        for seq in seqs:
            self.timeline.created(seq, now)
        return seqs

    async def wait_committed(self, label: str, seqs: Sequence[int], timeout: float = PHASE_TIMEOUT) -> bool:
        """Wait until every one of ``seqs`` is committed by the handler; prints progress."""
        deadline, shown = time.monotonic() + timeout, time.monotonic()
        while (done := self.timeline.count(seqs, "committed_at")) < len(seqs):
            if time.monotonic() > deadline:
                say(f"{label}: TIMEOUT with {done}/{len(seqs)} events committed")
                return False
            if time.monotonic() - shown >= 5.0:
                polled, handled = self.timeline.count(seqs, "polled_at"), self.timeline.count(seqs, "handled_at")
                say(f"{label}: {polled} polled, {handled} handled, {done} committed of {len(seqs)}; {self.rates()}")
                shown = time.monotonic()
            await anyio.sleep(0.1)
        return True

    async def converged(self, patience: float = 15.0) -> ConvergenceReport:
        """Compare Canvas with AB Connect, allowing ``patience`` s for stragglers."""
        deadline = time.monotonic() + patience
        while True:
            report = compare(self.ab.snapshot(PARTNER), self.canvas.snapshot())
            if report.ok or time.monotonic() > deadline:
                return report
            await anyio.sleep(1.0)

    async def finish(self, key: str, title: str, seqs: list[int], before: Counters, notes: list[str]) -> PhaseRun:
        complete = await self.wait_committed(f"phase {key}", seqs)
        after = read_counters(self.ab, self.canvas)
        report = await self.converged()
        say(f"phase {key} done: {len(seqs)} events, convergence {'OK' if report.ok else 'FAILED'}: "
            f"{report.summary()}")
        return PhaseRun(key, title, seqs, before, after, complete, report, self.timeline.select(seqs), notes)


# -- the phases ------------------------------------------------------------------------------------


async def skip_history(bootstrap: str, group: str, topic: str) -> None:
    """Start the (new) consumer group at the end of ``topic``: a shared broker may hold other runs' events,
    which this run's handler would otherwise read and dead-letter before phase a."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for d in described for p in d["partitions"]]
    if not partitions:
        return  # the topic does not exist yet (the worker creates it): no history
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.commit(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def wait_ready(bench: Bench, health: Health, timeout: float = 120.0) -> None:
    """Until the poller has polled once and the handler's runner for the tenant's slot is ready."""
    deadline = time.monotonic() + timeout
    runner = handler_component_name(HANDLER_NAME, bench.timeline.tenant)
    while time.monotonic() < deadline:
        if bench.ab.stats()["by_resource"].get("events", 0) > 0 and health.state(runner) == State.READY:
            return
        await anyio.sleep(0.5)
    raise RuntimeError(f"the worker did not become ready within {timeout:.0f}s")


async def initial_sync(bench: Bench) -> PhaseRun:
    """Phase a: a whole catalogue appears at once (seeding resets the simulator's counters)."""
    opts = bench.opts
    seed = SeedRequest(documents=opts.documents, standards_per_document=opts.standards,
                       sections_per_document=SECTIONS_PER_DOCUMENT, seed=opts.seed)
    seeded = bench.ab.seed(seed)
    now = time.time()
    before = read_counters(bench.ab, bench.canvas)
    seqs = bench.feed_seqs()
    for seq in seqs:
        bench.timeline.created(seq, now)
    say(f"phase a: seeded {seeded['documents']} documents, {seeded['standards']} standards "
        f"({len(seqs)} document events)")
    title = f"a. initial sync ({opts.documents} x {opts.standards} standards)"
    return await bench.finish("a", title, seqs, before, [])


async def backlog(bench: Bench) -> PhaseRun:
    """Phase b: K standard mutations created up front (the event loop is blocked meanwhile)."""
    rng = random.Random(bench.opts.seed + 1)
    started = time.monotonic()
    seqs = [seq for _ in range(bench.opts.changes) for seq in bench.mutate(rng)]
    took = time.monotonic() - started
    before = read_counters(bench.ab, bench.canvas)
    say(f"phase b: created {bench.opts.changes} standard mutations ({len(seqs)} events) in {took:.1f}s")
    notes = [f"creating the {bench.opts.changes} mutations took {took:.1f} s before the window opened"]
    return await bench.finish("b", f"b. backlog of {bench.opts.changes} standard changes", seqs, before, notes)


async def paced(bench: Bench) -> PhaseRun:
    """Phase c: one standard mutation every ``paced_interval`` s for ``paced_seconds`` s."""
    opts = bench.opts
    rng = random.Random(opts.seed + 2)
    before = read_counters(bench.ab, bench.canvas)
    count = max(1, round(opts.paced_seconds / opts.paced_interval))
    say(f"phase c: {count} mutations, one every {opts.paced_interval:g}s")
    seqs: list[int] = []
    start = time.monotonic()
    for i in range(count):
        await anyio.sleep(max(0.0, start + i * opts.paced_interval - time.monotonic()))
        seqs += bench.mutate(rng)
        if i and i % 20 == 0:
            say(f"phase c: {i}/{count} changes made, {bench.timeline.count(seqs, 'committed_at')} committed; "
                f"{bench.rates()}")
    title = f"c. paced stream (1 change / {opts.paced_interval:g} s for {opts.paced_seconds:g} s)"
    return await bench.finish("c", title, seqs, before, [])


async def run_bench(opts: Options) -> RunResult:
    """Start everything, run the three phases, stop everything."""
    configure_logging("warning")
    # A fresh broker makes aiokafka log leader-election errors for a few seconds; the worker's own
    # warnings still show.
    aiokafka_log = logging.getLogger("aiokafka")
    level = aiokafka_log.level
    aiokafka_log.setLevel(logging.CRITICAL)
    try:
        return await _run_bench(opts)
    finally:
        aiokafka_log.setLevel(level)  # run_all runs other benchmarks in this process


async def _run_bench(opts: Options) -> RunResult:
    load_before, cpu_start, started = os.getloadavg(), time.process_time(), time.time()
    async with kafka(opts.bootstrap) as (bootstrap, own_broker):
        tenant = f"bench{int(time.time())}"
        ab = ABConnectSimulator({PARTNER: PARTNER_KEY})
        canvas = CanvasSimulator(tokens={CANVAS_TOKEN: 1}, throttle=CANVAS_THROTTLE)
        bench = Bench(opts, ab, canvas, Timeline(tenant))
        with ThreadedServer(ab_app(ab)) as ab_server, ThreadedServer(canvas_app(canvas)) as canvas_server:
            config = worker_config(bootstrap, tenant, ab_server.url, canvas_server.url, opts.poll_interval)
            phases = await _run_phases(bench, config)
        seeded = {"documents": opts.documents, "sections_per_document": SECTIONS_PER_DOCUMENT,
                  "standards": opts.documents * opts.standards}
    return RunResult(opts, tenant, bootstrap, own_broker, started, time.time(), phases, bench.samples, seeded,
                     load_before, os.getloadavg(), time.process_time() - cpu_start)


async def _run_phases(bench: Bench, config: WorkerConfig) -> list[PhaseRun]:
    worker_stop, sampler_stop = StopToken(), StopToken()
    phases: list[PhaseRun] = []
    health = Health()

    async def worker() -> None:
        await run_worker(config, stop=worker_stop, handle_signals=False, health=health,
                         components_for=timed_components(bench.timeline))

    # The tenant slot's runner keeps its offsets in the slot's group (worker/tenant_slots.py).
    group = slot_group_id(HANDLER_NAME, bench.timeline.tenant, config.kafka.consumer_group_prefix)
    await skip_history(config.kafka.bootstrap_servers, group, ABCONNECT_EVENTS)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker)
        tg.start_soon(bench.sample_until, sampler_stop)
        try:
            say(f"worker starting for tenant {bench.timeline.tenant} ...")
            await wait_ready(bench, health)
            say("worker ready (poller polling, handler runner ready)")
            for phase in (initial_sync, backlog, paced):
                phases.append(await phase(bench))
        finally:
            sampler_stop.set()
            worker_stop.set()
            tg.cancel_scope.deadline = anyio.current_time() + 30  # then cancel whatever still runs
    return phases


# -- command line ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.standards_flow",
                                     description="Benchmark of the standards flow, AB Connect -> Kafka -> Canvas.")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
                        help="Kafka to use (default: start one in a temporary folder)")
    parser.add_argument("--documents", type=int, default=20, help="documents in the initial catalogue")
    parser.add_argument("--standards", type=int, default=100, help="standards per document")
    parser.add_argument("--changes", type=int, default=500, help="standard mutations in the backlog phase")
    parser.add_argument("--paced-seconds", type=float, default=60.0, help="length of the paced stream")
    parser.add_argument("--paced-interval", type=float, default=0.5, help="seconds between paced mutations")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="AB events poll interval (the demo's)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out-dir", type=Path, default=REPORT_DIR)
    ns = parser.parse_args(argv)
    return Options(bootstrap=ns.bootstrap, documents=ns.documents, standards=ns.standards, changes=ns.changes,
                   paced_seconds=ns.paced_seconds, paced_interval=ns.paced_interval,
                   poll_interval=ns.poll_interval, seed=ns.seed, out_dir=ns.out_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write the report; non-zero when a phase did not finish or converge."""
    from bench.standards_flow_report import write_report  # matplotlib only once there is something to draw

    opts = parse_args(argv)
    result = anyio.run(run_bench, opts)
    md, png = write_report(result, opts.out_dir)
    say(f"wrote {md} and {png}")
    ok = all(p.complete and p.convergence.ok for p in result.phases) and len(result.phases) == 3
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
