"""Benchmark of the Illuminate snapshot-diff pollers on a large district.

    python -m bench.illuminate_snapshot [--bootstrap B] [--students 200000] [--changes 2000]

The Illuminate simulator runs in its own process, seeded with ``--students`` students (plus
staff, courses, sections, rosters and enrolments in proportion). Each phase runs the seven
snapshot pollers of one tenant (students, staff, sections, rosters, enrollments, courses,
terms) in a FRESH process, so its peak RSS and its start-up restore are its own:

a. first: empty snapshot store; one walk per entity publishes every record once;
b. steady: restore the store from ``edusync._snapshots``, then one walk per entity with no
   upstream change: the pure walk-and-diff cost;
c. changes: ``--changes`` random upstream changes (enrol, drop, transfer, rename, staff
   hires and departures), then two walks per entity: the second confirms the deletions.

Per entity and phase: walk time, split into Illuminate HTTP (request + JSON decode), the rest
of the poll (record validation, hashing, diff, event building) and the Kafka transactions;
Illuminate requests; records; events and events per second. Per phase: restore time and
records, peak RSS (``ru_maxrss``). It starts its own Kafka 3.9.1 in a temporary folder unless
``--bootstrap`` or ``KAFKA_BOOTSTRAP_SERVERS`` names one (a shared broker's other tenants make
the restore read more). Writes ``bench/reports/illuminate_snapshot.md`` and ``.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import psutil
from prometheus_client import REGISTRY
from pydantic import SecretStr

from deploy.local_kafka import LocalKafka, free_port
from simulators.illuminate import DEFAULT_CREDENTIALS
from worker.components import poller_transactional_id
from worker.flows.illuminate_changes import ILLUMINATE_CHANGES, IlluminateChangesSettings
from worker.kafka.producer import TransactionalProducer
from worker.logs import configure_logging
from worker.poller_frame import Poller, PollerRunner, PollResult
from worker.pollers.illuminate_wiring import illuminate_pollers, illuminate_source
from worker.pollers.snapshot_store import SnapshotStore
from worker.state_store import StateStore
from worker.systems.illuminate import ILLUMINATE, IlluminateConfig
from worker.topics import CURSORS, all_topics, ensure_topics

REPORT_DIR = Path(__file__).resolve().parent / "reports"
ENTITIES = ("students", "staff", "sections", "rosters", "enrollments", "courses", "terms")
CLOCK = "2024-02-01"
MUTATIONS = (("enrol", 0.2, None), ("drop", 0.2, "hard"), ("drop", 0.1, "soft"), ("transfer", 0.1, None),
             ("rename", 0.3, None), ("new_staff", 0.05, None), ("departed_staff", 0.05, None))


def district_spec(students: int) -> dict[str, int]:
    """A district shaped like a real one: ~25 students per teacher, ~3 sections per student."""
    return {"sites": max(3, students // 5000), "students": students, "staff": max(10, students // 25),
            "courses": max(5, students // 130), "sections_per_course": 12, "students_per_section": 30,
            "assessments": 0, "seed": 42}


# -- one phase, in its own process ------------------------------------------------------------------


@dataclass
class EntityRun:
    """One walk of one entity."""

    entity: str
    walk: int
    seconds: float
    http_seconds: float
    poll_seconds: float
    commit_seconds: float
    requests: int
    records: int
    events: int

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


@dataclass
class PhaseResult:
    """What one phase process measured."""

    phase: str
    restore_seconds: float
    restored_records: int
    peak_rss_mb: float
    rss_at_start_mb: float
    runs: list[EntityRun] = field(default_factory=list)
    rss_samples: list[tuple[float, float]] = field(default_factory=list)


class RssSampler:
    """Samples this process's RSS in a thread."""

    def __init__(self, every: float = 0.25) -> None:
        self.every = every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._proc = psutil.Process()
        self._t0 = time.monotonic()

    @contextmanager
    def running(self) -> Iterator[None]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - self._t0, self._proc.memory_info().rss / 2**20))
            self._stop.wait(self.every)


class TimedPoller:
    """Wraps a poller to add up the time spent in ``poll`` (fetch, validate, hash, diff)."""

    def __init__(self, inner: Poller) -> None:
        self.inner = inner
        self.name = inner.name
        self.tenant = inner.tenant
        self.seconds = 0.0

    async def poll(self, cursor: Any) -> PollResult:
        started = time.perf_counter()
        try:
            return await self.inner.poll(cursor)
        finally:
            self.seconds += time.perf_counter() - started


def _requests() -> int:
    total = 0.0
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == "edusync_upstream_requests_total" and sample.labels.get("system") == "illuminate":
                total += sample.value
    return int(total)


async def run_phase(args: argparse.Namespace) -> PhaseResult:
    """Restore the tenant's snapshot store, then walk every entity ``args.walks`` times."""
    configure_logging("warning")
    rss_start = psutil.Process().memory_info().rss / 2**20
    sampler = RssSampler()
    c = DEFAULT_CREDENTIALS
    system = IlluminateConfig(base_url=f"{args.base_url}/live/rest_server.php", consumer_key=c.consumer_key,
                              consumer_secret=SecretStr(c.consumer_secret), token=c.token,
                              token_secret=SecretStr(c.token_secret))
    cfg = IlluminateChangesSettings(snapshot_entities=list(ENTITIES), score_endpoints=[])
    client = ILLUMINATE.client(system)
    http_seconds = [0.0]
    plain_request = client.request_json

    async def timed_request(*a: Any, **kw: Any) -> Any:
        started = time.perf_counter()
        try:
            return await plain_request(*a, **kw)
        finally:
            http_seconds[0] += time.perf_counter() - started

    client.request_json = timed_request  # type: ignore[method-assign]
    store = SnapshotStore(args.bootstrap, args.tenant)
    source = illuminate_source(system.base_url)
    pollers = {p.name: TimedPoller(p) for p in illuminate_pollers(args.tenant, cfg, client, store, source=source)}
    with sampler.running():
        cursors = StateStore(args.bootstrap, CURSORS, prefix=f"{args.tenant}/")
        await cursors.restore()
        restored = await store.restore()  # what the first poll would do; timed on its own here
        result = PhaseResult(args.phase, store.restore_seconds, restored, 0.0, rss_start)
        for walk in range(1, args.walks + 1):
            for entity in ENTITIES:
                poller = pollers[f"illuminate.{entity}"]
                txn_id = poller_transactional_id(args.tenant, poller.name)
                async with TransactionalProducer(args.bootstrap, txn_id) as producer:
                    runner = PollerRunner(poller, producer, cursors)
                    poller.seconds, http_seconds[0], requests = 0.0, 0.0, _requests()
                    started, events, records = time.perf_counter(), 0, 0
                    while True:
                        polled = await runner.run_once()
                        events += len(polled.events)
                        records = polled.cursor.get("num_results", records)
                        if not polled.more:
                            break
                    seconds = time.perf_counter() - started
                result.runs.append(EntityRun(entity, walk, seconds, http_seconds[0], poller.seconds - http_seconds[0],
                                             seconds - poller.seconds, _requests() - requests, records, events))
                print(f"  {args.phase} walk {walk} {entity}: {records} records, {events} events, {seconds:.1f}s",
                      file=sys.stderr, flush=True)
    await client.aclose()
    result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.rss_samples = sampler.samples
    return result


def phase_main(args: argparse.Namespace) -> None:
    """Entry point of a phase process: run, then write the result as JSON."""
    result = anyio.run(run_phase, args)
    data = asdict(result)
    Path(args.out).write_text(json.dumps(data))


# -- the orchestrator -------------------------------------------------------------------------------


def _start_simulator(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "simulators.illuminate", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_sim/state", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the Illuminate simulator did not start")


def _phase(bootstrap: str, base_url: str, tenant: str, phase: str, walks: int, workdir: Path) -> dict[str, Any]:
    out = workdir / f"{phase}.json"
    cmd = [sys.executable, "-m", "bench.illuminate_snapshot", "phase", "--phase", phase, "--bootstrap", bootstrap,
           "--base-url", base_url, "--tenant", tenant, "--walks", str(walks), "--out", str(out)]
    subprocess.run(cmd, check=True)
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def run_bench(bootstrap: str, students: int, changes: int, workdir: Path) -> dict[str, Any]:
    """Seed, run the three phases, return everything measured."""
    anyio.run(ensure_topics, bootstrap, all_topics(ILLUMINATE_CHANGES.topics))
    port = free_port()
    sim = _start_simulator(port)
    base_url = f"http://127.0.0.1:{port}"
    try:
        http = httpx.Client(base_url=base_url, timeout=600)
        http.post("/_sim/clock", json={"date": CLOCK}).raise_for_status()
        seeded = http.post("/_sim/seed", json=district_spec(students)).json()
        tenant = f"bench-{uuid.uuid4().hex[:8]}"
        print(f"seeded {seeded['counts']} in {seeded['seconds']}s; tenant {tenant}", file=sys.stderr)
        first = _phase(bootstrap, base_url, tenant, "first", 1, workdir)
        steady = _phase(bootstrap, base_url, tenant, "steady", 1, workdir)
        applied: dict[str, dict[str, int]] = {"upserted": {}, "deleted": {}}
        for i, (kind, share, mode) in enumerate(MUTATIONS):
            body = {"kind": kind, "count": max(1, int(changes * share)), "seed": 100 + i, "mode": mode}
            answer = http.post("/_sim/mutate", json=body).json()
            for bucket in applied:
                for entity, keys in answer[bucket].items():
                    applied[bucket][entity] = applied[bucket].get(entity, 0) + len(keys)
        changed = _phase(bootstrap, base_url, tenant, "changes", 2, workdir)
        return {"students": students, "spec": district_spec(students), "counts": seeded["counts"],
                "seed_seconds": seeded["seconds"], "mutations": applied, "changes": changes,
                "phases": [first, steady, changed], "tenant": tenant}
    finally:
        sim.terminate()
        sim.wait(timeout=10)


# -- the report -------------------------------------------------------------------------------------


def _table(phase: dict[str, Any]) -> list[str]:
    rows = ["| walk | entity | records | requests | events | walk s | HTTP s | validate+hash+diff s | Kafka s "
            "| events/s |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in phase["runs"]:
        eps = r["events"] / r["seconds"] if r["seconds"] else 0
        rows.append(f"| {r['walk']} | {r['entity']} | {r['records']:,} | {r['requests']:,} | {r['events']:,} | "
                    f"{r['seconds']:.1f} | {r['http_seconds']:.1f} | {r['poll_seconds']:.1f} | "
                    f"{r['commit_seconds']:.1f} | {eps:,.0f} |")
    return rows


def _totals(phase: dict[str, Any]) -> dict[str, float]:
    runs = phase["runs"]
    seconds = sum(r["seconds"] for r in runs)
    events = sum(r["events"] for r in runs)
    return {"seconds": seconds, "events": events, "requests": sum(r["requests"] for r in runs),
            "records": sum(r["records"] for r in runs), "eps": events / seconds if seconds else 0.0}


def write_report(data: dict[str, Any], out_dir: Path) -> Path:
    """Markdown report (and PNG of RSS over time) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    first, steady, changed = data["phases"]
    t_first, t_steady, t_changed = _totals(first), _totals(steady), _totals(changed)
    students = next(r for r in steady["runs"] if r["entity"] == "students")
    lines = [
        "# Illuminate snapshot-diff pollers: benchmark",
        "",
        f"District: {data['students']:,} students; seeded counts {data['counts']}. One tenant, the seven "
        "snapshot pollers (page size 1000, Students2 2000), each phase in a fresh process. Produced by "
        "`python -m bench.illuminate_snapshot`.",
        "",
        "## Summary",
        "",
        "| measure | value |",
        "|---|---|",
        f"| first run: walk + diff + publish, all entities | {t_first['seconds']:.1f} s for {t_first['records']:,.0f} "
        f"records |",
        f"| first run: events published per second | {t_first['eps']:,.0f} ({t_first['events']:,.0f} events) |",
        f"| no-change run: walk + diff, all entities | {t_steady['seconds']:.1f} s, {t_steady['events']:.0f} events |",
        f"| no-change run: students alone ({students['records']:,} records) | {students['seconds']:.1f} s, "
        f"{students['requests']} requests |",
        f"| Illuminate requests per full walk of every entity | {t_steady['requests']:,.0f} |",
        f"| peak RSS (first / no-change / changes) | {first['peak_rss_mb']:.0f} / {steady['peak_rss_mb']:.0f} / "
        f"{changed['peak_rss_mb']:.0f} MB (aim: under 300 MB) |",
        f"| state-store restore on start-up | {steady['restore_seconds']:.1f} s for "
        f"{steady['restored_records']:,} records |",
        f"| changes run: {data['changes']:,} mutations, two walks | {t_changed['seconds']:.1f} s, "
        f"{t_changed['events']:,.0f} events |",
        "",
        f"Mutations applied before the changes phase (keys per entity): {data['mutations']}.",
        "",
        "## Reading the numbers",
        "",
        f"- Memory: the no-change phase holds {steady['restored_records']:,} snapshot records; its peak is "
        f"{steady['peak_rss_mb'] - steady['rss_at_start_mb']:.0f} MB above the interpreter's start "
        f"({(steady['peak_rss_mb'] - steady['rss_at_start_mb']) * 2**20 / max(steady['restored_records'], 1):.0f} "
        "bytes per record, page in flight included). The store keeps one `dict[str, int]` per entity "
        "(natural key -> 64-bit hash, pending flag and walk tag packed in one int); pages are streamed one at "
        "a time, and the walk remembers which keys it saw in that same int, not in a set.",
        "- First run: the Kafka column is the transactional produce of two records per upsert (the event "
        "and its snapshot hash) plus the commit; serialising each CloudEvent (`CloudEvent.to_bytes`) is "
        "most of it.",
        "- No-change run: nothing is produced but the cursor; the time is HTTP plus record validation and "
        "hashing in the client models (`content_hash()` per record) and the dictionary lookups.",
        "- Restore: one read of `edusync._snapshots` up to the high watermark, filtered to the tenant; "
        "all seven pollers share it.",
        "",
        "Walk time is split into Illuminate HTTP (request, simulator rendering, JSON decode), the rest of",
        "`poll` (record validation, content hashing, snapshot diff, building CloudEvents), and the Kafka",
        "transaction (serialising and producing events, snapshot hashes and cursor, commit). The",
        "simulator runs on the same machine, so HTTP time includes its rendering.",
        "",
    ]
    for phase in data["phases"]:
        lines += [f"## Phase: {phase['phase']}", "",
                  f"Restore: {phase['restore_seconds']:.2f} s, {phase['restored_records']:,} records. "
                  f"RSS at start {phase['rss_at_start_mb']:.0f} MB, peak {phase['peak_rss_mb']:.0f} MB.", "",
                  *_table(phase), ""]
    png = _plot(data, out_dir / "illuminate_snapshot.png")
    if png:
        lines += ["## Memory", "", "![RSS over time](illuminate_snapshot.png)", ""]
    path = out_dir / "illuminate_snapshot.md"
    path.write_text("\n".join(lines))
    (out_dir / "illuminate_snapshot.json").write_text(json.dumps(
        {k: v for k, v in data.items() if k != "phases"}
        | {"phases": [{k: v for k, v in p.items() if k != "rss_samples"} for p in data["phases"]]}, indent=1))
    return path


def _plot(data: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(9, 4))
    for phase in data["phases"]:
        xs = [s[0] for s in phase["rss_samples"]]
        ys = [s[1] for s in phase["rss_samples"]]
        ax.plot(xs, ys, label=f"{phase['phase']} (peak {phase['peak_rss_mb']:.0f} MB)")
    ax.axhline(300, color="grey", linestyle="--", linewidth=1, label="300 MB aim")
    ax.set_xlabel("seconds since the phase process started")
    ax.set_ylabel("RSS (MB)")
    ax.set_title(f"Illuminate snapshot pollers, {data['students']:,} students")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    """Parse arguments; run the bench (or, with ``phase``, one phase process); 0 once reported."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "phase":
        parser = argparse.ArgumentParser(prog="python -m bench.illuminate_snapshot phase")
        for name in ("--phase", "--bootstrap", "--base-url", "--tenant", "--out"):
            parser.add_argument(name, required=True)
        parser.add_argument("--walks", type=int, default=1)
        phase_main(parser.parse_args(argv[1:]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.illuminate_snapshot", description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
                        help="a running broker (default: start one in a temporary folder)")
    parser.add_argument("--students", type=int, default=200_000)
    parser.add_argument("--changes", type=int, default=2000, help="upstream mutations before the changes phase")
    parser.add_argument("--out-dir", type=Path, default=REPORT_DIR)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="edusync-bench-illuminate-"))
    broker: LocalKafka | None = None
    try:
        bootstrap = args.bootstrap
        if not bootstrap:
            broker = LocalKafka(data_dir=workdir / "kafka", port=free_port(), controller_port=free_port())
            bootstrap = broker.up()
        data = run_bench(bootstrap, args.students, args.changes, workdir)
        print(f"report: {write_report(data, args.out_dir)}")
        return 0
    finally:
        if broker is not None:
            broker.down()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
