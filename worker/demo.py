"""``edusync demo``: the standards and roster flows on one machine, live.

Starts (or uses) Kafka, the AB Connect and Canvas simulators with a generated catalogue, the
Illuminate, Class and MatrixLMS simulators with a generated district (``worker/demo_roster.py``),
the worker, and streams of random standards and roster changes; prints progress every two
seconds; with ``--duration`` it stops the changes, waits for the worker to catch up, prints a
summary that compares Canvas with AB Connect and each roster target with Illuminate, and exits
non-zero if any differ.
"""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from deploy.local_kafka import LocalKafka
from handlers.standards_to_canvas import HANDLER_NAME
from simulators.abconnect import ABConnectSimulator, MutateRequest, SeedRequest
from simulators.abconnect import create_app as ab_app
from simulators.canvas import CanvasSimulator, ThrottleConfig
from simulators.canvas import create_app as canvas_app
from simulators.roster_projection import RosterReport
from simulators.standards_convergence import ConvergenceReport, compare
from worker.asgi_server import ThreadedServer
from worker.config import KafkaConfig, OpsConfig, TenantConfig, WorkerConfig
from worker.demo_roster import RosterDemo
from worker.flows.standards import StandardsSettings
from worker.kafka.connection import KafkaConnection
from worker.logs import configure_logging
from worker.metrics import Outcome, total
from worker.pollers.abconnect_events import POLLER_NAME
from worker.runtime import run_worker
from worker.shutdown import StopToken, stop_on_signals
from worker.systems.abconnect import ABConnectConfig
from worker.systems.canvas import CanvasConfig

PARTNER, PARTNER_KEY, CANVAS_TOKEN = "demo-district", "demo-partner-key-0123456789", "demo-canvas-token-0123456789"
CATCH_UP_SECONDS = 180.0
# Every demo run gets its own Kafka namespace: its topics, consumer groups and transactional ids
# are "<prefix>-<run>.*", so a demo pointed at a real deployment's broker never joins that
# deployment's groups, fences its producers or reads its events.
DEMO_NAMESPACE_PREFIX = "edusync-demo"


def demo_namespace(run: int) -> str:
    """The Kafka namespace of demo run ``run`` (its start time)."""
    return f"{DEMO_NAMESPACE_PREFIX}-{run}"


@dataclass
class DemoOptions:
    """What the demo runs and for how long."""

    duration: float | None = None
    bootstrap: str | None = None
    ops_port: int = 9464
    documents: int = 20
    standards_per_document: int = 100
    seed: int = 1
    data_dir: Path = Path("var/kafka-demo")
    kafka_port: int = 9192
    change_interval: float = 1.0
    students: int = 2000


def _say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def _sample(name: str, **labels: str) -> float:
    return total(name, **labels)


class _Progress:
    """Reads the worker's own metrics (same process) for one tenant."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant

    def published(self) -> float:
        return _sample("edusync_events_published_total", tenant=self.tenant, poller=POLLER_NAME,
                       topic="edusync.abconnect.events")

    def outcomes(self) -> dict[str, float]:
        return {o.value: _sample("edusync_handler_events_total", handler=HANDLER_NAME, outcome=o.value)
                for o in Outcome}

    def line(self, elapsed: float, ab: ABConnectSimulator, canvas: CanvasSimulator) -> str:
        out = self.outcomes()
        done = out["applied"] + out["noop"] + out["skipped"] + out["dead_lettered"] + out["echo"]
        lag = _sample("edusync_cursor_lag_seconds", tenant=self.tenant, poller=POLLER_NAME)
        counts = canvas.snapshot()["counts"]
        return (f"{elapsed:6.1f}s  polled={self.published():.0f}  applied={out['applied']:.0f}  "
                f"noop={out['noop']:.0f}  skipped={out['skipped']:.0f}  dlq={out['dead_lettered']:.0f}  "
                f"backlog={max(0.0, self.published() - done):.0f}  cursor_lag={lag:.1f}s  "
                f"AB seq={ab.stats()['max_seq']}  Canvas outcomes={counts['outcomes']}")

    def caught_up(self) -> bool:
        out = self.outcomes()
        done = out["applied"] + out["noop"] + out["skipped"] + out["dead_lettered"] + out["echo"]
        return self.published() > 0 and done >= self.published()


def _start_kafka(opts: DemoOptions) -> tuple[str, LocalKafka | None]:
    if opts.bootstrap:
        return opts.bootstrap, None
    broker = LocalKafka(data_dir=opts.data_dir, port=opts.kafka_port)
    if broker.is_up():
        _say(f"using the local Kafka already running at {broker.bootstrap}")
        return broker.bootstrap, None
    _say(f"starting local Apache Kafka in {broker.data_dir} (the first run downloads it with Maven) ...")
    bootstrap = broker.up()
    _say(f"Kafka up at {bootstrap}")
    return bootstrap, broker


async def _change_stream(ab: ABConnectSimulator, stop: StopToken, seed: int, interval: float) -> None:
    """Random standards changes (every kind, delivery changes included) until ``stop``."""
    rng = random.Random(seed)
    while not await stop.sleep(interval * rng.uniform(0.5, 1.5)):
        try:
            ab.mutate(MutateRequest(kind="random", count=rng.randint(1, 3), seed=rng.randint(0, 10**9)))
        except ValueError:
            continue  # nothing left to act on for the drawn kind; draw again next time


async def run_demo(opts: DemoOptions) -> int:
    """Run the demo; returns the exit code (0 when every target converged to its source)."""
    configure_logging("warning")
    bootstrap, started_broker = _start_kafka(opts)
    run_id = int(time.time())
    tenant = f"demo{run_id}"  # a fresh tenant per run: a reused broker keeps old cursors
    namespace = demo_namespace(run_id)
    _say(f"Kafka namespace {namespace}: the demo's own topics, consumer groups and transactional ids")
    ab = ABConnectSimulator({PARTNER: PARTNER_KEY})
    seeded = ab.seed(SeedRequest(documents=opts.documents, standards_per_document=opts.standards_per_document,
                                 seed=opts.seed))
    # Canvas publishes no throttle numbers; a generous bucket keeps the demo about edusync.
    canvas = CanvasSimulator(tokens={CANVAS_TOKEN: 1}, throttle=ThrottleConfig(capacity=700, leak_rate=200))
    roster = RosterDemo(opts.students, opts.seed, canvas) if opts.students else None
    progress = _Progress(tenant)
    user_stop, worker_stop, changes_stop = StopToken(), StopToken(), StopToken()
    result: _Result | None = None
    try:
        with ThreadedServer(ab_app(ab)) as ab_server, ThreadedServer(canvas_app(canvas)) as canvas_server, \
                (roster or contextlib.nullcontext()):
            _say(f"AB Connect simulator at {ab_server.url}: {seeded['documents']} documents, "
                 f"{seeded['standards']} standards")
            _say(f"Canvas simulator at {canvas_server.url}; ops endpoint http://127.0.0.1:{opts.ops_port}/metrics")
            if roster is not None:
                _say(roster.describe())
            config = WorkerConfig(
                kafka=KafkaConfig(bootstrap_servers=bootstrap, namespace=namespace),
                ops=OpsConfig(port=opts.ops_port),
                tenants=[TenantConfig.of(
                    tenant,
                    systems={
                        "abconnect": ABConnectConfig(base_url=f"{ab_server.url}/rest/v4.1", partner_id=PARTNER,
                                                     partner_key=SecretStr(PARTNER_KEY)),
                        "canvas": CanvasConfig(base_url=canvas_server.url, token=SecretStr(CANVAS_TOKEN)),
                        **(roster.systems() if roster else {}),
                    },
                    flows={"standards": StandardsSettings(poll_interval_seconds=0.5),
                           **(roster.flows() if roster else {})},
                )],
            )
            async with anyio.create_task_group() as tg:
                tg.start_soon(stop_on_signals, user_stop)
                tg.start_soon(lambda: run_worker(config, stop=worker_stop, handle_signals=False))
                tg.start_soon(_change_stream, ab, changes_stop, opts.seed, opts.change_interval)
                if roster is not None:
                    tg.start_soon(roster.change_stream, changes_stop, opts.change_interval * 2)
                result = await _watch(opts, ab, canvas, roster, progress, user_stop, changes_stop)
                worker_stop.set()
                tg.cancel_scope.cancel()
            if result is not None:
                _summary(result, progress, ab, canvas, roster)
    finally:
        if opts.bootstrap:  # someone else's broker: leave no topics behind
            with anyio.CancelScope(shield=True):
                dropped = await drop_namespace_topics(KafkaConnection(bootstrap, namespace=namespace))
            _say(f"deleted the demo's {len(dropped)} topics in namespace {namespace}")
        if started_broker is not None:
            _say("stopping the local Kafka the demo started")
            started_broker.down()
    return 0 if result is not None and result.ok else 1


async def drop_namespace_topics(kafka: KafkaConnection) -> list[str]:
    """Delete every topic of ``kafka``'s namespace (never another's); returns their names."""
    admin = AIOKafkaAdminClient(**kafka.options())
    await admin.start()
    try:
        prefix = f"{kafka.namespace}."
        topics = sorted(t for t in await admin.list_topics() if t.startswith(prefix))
        if topics:
            await admin.delete_topics(topics)
        return topics
    finally:
        await admin.close()


@dataclass
class _Result:
    standards: ConvergenceReport
    roster: list[RosterReport]

    @property
    def ok(self) -> bool:
        return self.standards.ok and all(r.ok for r in self.roster)


async def _watch(opts: DemoOptions, ab: ABConnectSimulator, canvas: CanvasSimulator, roster: RosterDemo | None,
                 progress: _Progress, user_stop: StopToken, changes_stop: StopToken) -> _Result:
    """Print progress; after the duration (or Ctrl-C) stop the changes and wait to converge."""
    started = time.monotonic()

    def say_progress() -> None:
        _say(progress.line(time.monotonic() - started, ab, canvas))
        if roster is not None:
            _say(f"{time.monotonic() - started:6.1f}s  roster  {roster.line()}")

    while not user_stop.stopping:
        say_progress()
        if opts.duration is not None and time.monotonic() - started >= opts.duration:
            break
        await user_stop.sleep(2.0)
    changes_stop.set()
    _say("changes stopped; waiting for every target to catch up with its source ...")
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while True:
        result = _Result(compare(ab.snapshot(PARTNER), canvas.snapshot()), roster.reports() if roster else [])
        if (result.ok and progress.caught_up()) or time.monotonic() >= deadline:
            return result
        say_progress()
        await anyio.sleep(2.0)


def _summary(result: _Result, progress: _Progress, ab: ABConnectSimulator, canvas: CanvasSimulator,
             roster: RosterDemo | None) -> None:
    out = progress.outcomes()
    ab_stats, canvas_stats = ab.stats(), canvas.stats.snapshot()
    _say("summary")
    print(f"  events published     {progress.published():.0f}")
    print("  handler outcomes     " + ", ".join(f"{k}={v:.0f}" for k, v in out.items()))
    print(f"  AB Connect requests  {ab_stats['requests']} ({ab_stats['throttled']} answered 429)")
    print(f"  Canvas requests      {canvas_stats['total']} ({canvas_stats['throttled']} throttled)")
    print(f"  standards            {'OK' if result.standards.ok else 'DIFFERENT'}: {result.standards.summary()}")
    if roster is not None:
        for line in roster.summary_lines():
            print(f"  {line}")
        for report in result.roster:
            print(f"  roster -> {report.target:<9} {'OK' if report.ok else 'DIFFERENT'}: {report.summary()}")
    print(f"  result               {'OK' if result.ok else 'DIFFERENT'}", flush=True)
