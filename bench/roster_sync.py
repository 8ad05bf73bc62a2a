"""Benchmark of the roster flows' initial sync (issue 10): a 20,000-student district from the
Illuminate simulator into Class and MatrixLMS, end to end through Kafka.

    python -m bench.roster_sync [--bootstrap B] [--students 20000] [--scale 60] [--targets classroom,matrixlms]

The Illuminate simulator is seeded with ``bench.illuminate_snapshot.district_spec(--students)``
(20,000 students: 5 sites, 800 staff, 153 courses, 4 terms, 1,836 sections, 55,080 roster rows);
the Class and MatrixLMS simulators start empty. All three are served from this process on
loopback threads, so the convergence checkers read their state directly. MatrixLMS keeps its
documented limit (120 calls in any rolling 60 s, then a 60 s lockout of the site) on a clock
``--scale`` times faster than real time, and the worker's budget (``calls_per_minute: 100``)
runs on the same scale (``time_scale``), so its 4-hour initial sync takes minutes.

The worker is the real ``python -m worker run --config <yaml>`` in a subprocess (secrets in
environment variables), with the flows ``illuminate_changes`` (no score endpoints, a short poll
interval), ``roster_classroom`` and ``roster_matrixlms``, so its peak RSS is its own
(``VmHWM``). Every second the bench samples each target's request count and the worker's RSS;
it runs a target's convergence checker every ``--check-every`` seconds once the target has had no
new request for 2 s, and every 30 s while it is busy (a check holds the target simulator's lock);
every 10 s it prints a line with the differences the last check found.
It stops when every target has converged (and still has a check later), or at ``--timeout``
with the partial numbers. A target's sync time is when its request count last moved before it
was found converged.

It starts its own Kafka on free ports in a temporary folder unless ``--bootstrap`` or
``KAFKA_BOOTSTRAP_SERVERS`` names one (then the run's fresh consumer groups start at the end of
the roster topics). Writes ``bench/reports/roster_sync.md``, ``.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from bench.illuminate_snapshot import district_spec
from bench.report import REPORTS_DIR, machine_info
from bench.roster_sync_targets import TARGETS, MatrixTarget, SyncTarget, TargetOptions
from bench.standards_flow import skip_history
from deploy.local_kafka import LocalKafka, free_port
from handlers.roster_reference import ROSTER_TOPICS
from simulators.illuminate import DEFAULT_CREDENTIALS, IlluminateSimulator, SeedSpec
from simulators.roster_projection import RosterProjection, RosterReport
from worker.asgi_server import ThreadedServer
from worker.tenant_slots import slot_group_id

ROOT = Path(__file__).resolve().parent.parent
# A school day inside the generated session, so every run sees the same district.
ILLUMINATE_DAY = date(2024, 2, 1)
PROGRESS_EVERY = 10.0
# A target with no new request for this long may be done: it is checked every --check-every s;
# one still busy only every BUSY_CHECK_EVERY s.
QUIET_SECONDS = 2.0
BUSY_CHECK_EVERY = 30.0
SAMPLE_EVERY = 1.0


def say(message: str) -> None:
    print(f"[roster_sync] {message}", flush=True)


@dataclass
class Options:
    """What to run."""

    bootstrap: str | None = None
    students: int = 20_000
    scale: float = 60.0
    calls_per_minute: int = 100
    poll_interval: float = 60.0
    targets: tuple[str, ...] = tuple(TARGETS)
    timeout: float = 1500.0
    check_every: float = 5.0
    out_dir: Path = REPORTS_DIR


@dataclass
class Sample:
    """Cumulative counts at one moment (seconds since the worker started)."""

    t: float
    requests: dict[str, int]
    rss_mb: float
    published: float
    handled: dict[str, float]


@dataclass
class TargetRun:
    """One target's progress: when it last answered a new request and when it was found converged."""

    target: SyncTarget
    last_count: int = 0
    last_change: float = 0.0
    converged_at: float | None = None  # first check that found it converged
    settled_at: float | None = None  # its last new request before that check
    report: RosterReport | None = None
    check_seconds: list[float] = field(default_factory=list)
    last_check: float = 0.0


# -- the worker process ------------------------------------------------------------------------------


class WorkerProcess:
    """``python -m worker run`` with a generated configuration; its metrics and memory."""

    def __init__(self, workdir: Path, bootstrap: str, tenant: str, illuminate_url: str, targets: Sequence[SyncTarget],
                 poll_interval: float) -> None:
        self.ops_port = free_port()
        self.config = workdir / "edusync.yaml"
        self.log = workdir / "worker.log"
        self.tenant = tenant
        self.group_prefix = tenant
        c = DEFAULT_CREDENTIALS
        systems = "".join(t.system_yaml() for t in targets)
        flows = "".join(f"      {t.flow}: {{}}\n" for t in targets)
        self.config.write_text(f"""\
kafka:
  bootstrap_servers: {bootstrap}
  consumer_group_prefix: {self.group_prefix}
  replica_id: {tenant}
ops:
  port: {self.ops_port}
log_level: warning
tenants:
  - id: {tenant}
    systems:
      illuminate:
        base_url: {illuminate_url}/live/rest_server.php
        consumer_key: {c.consumer_key}
        consumer_secret: ${{ILL_CONSUMER_SECRET}}
        token: {c.token}
        token_secret: ${{ILL_TOKEN_SECRET}}
{systems}    flows:
      illuminate_changes:
        poll_interval_seconds: {poll_interval}
        score_endpoints: []
{flows}""")
        self.env = {**os.environ, "ILL_CONSUMER_SECRET": c.consumer_secret, "ILL_TOKEN_SECRET": c.token_secret,
                    "PYTHONPATH": str(ROOT)}
        for target in targets:
            self.env.update(target.environment())
        self.proc: subprocess.Popen[bytes] | None = None
        # One client for the whole run: a new one per scrape builds an SSL context each time.
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.ops_port}", timeout=5)
        self.started = 0.0
        self.peak_rss_mb = 0.0
        self.cpu_seconds = 0.0

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "worker", "run", "--config", str(self.config)],
                                         env=self.env, cwd=ROOT, stdout=log, stderr=log)
        self.started = time.monotonic()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_mb(self) -> float:
        """Current RSS; also keeps the peak (VmHWM) and CPU time while the process lives."""
        if not self.alive() or self.proc is None:
            return 0.0
        try:
            proc = psutil.Process(self.proc.pid)
            rss = float(proc.memory_info().rss) / 2**20
            times = proc.cpu_times()
            self.cpu_seconds = times.user + times.system
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss_mb = max(self.peak_rss_mb, int(line.split()[1]) / 1024)
            return rss
        except (psutil.Error, OSError):
            return 0.0

    def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        """The worker's Prometheus samples by name (empty while it starts)."""
        try:
            text = self.http.get("/metrics").text
        except httpx.HTTPError:
            return {}
        out: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
        return out

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM (the worker commits and leaves its groups), then the exit code."""
        self.http.close()
        if self.proc is None:
            return None
        self.rss_mb()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def log_events(self) -> dict[str, int]:
        """Log lines (warning and up) by event name."""
        counts: dict[str, int] = {}
        if self.log.exists():
            import orjson

            for line in self.log.read_bytes().splitlines():
                try:
                    event = str(orjson.loads(line).get("event", "?"))
                except orjson.JSONDecodeError:
                    event = "(not JSON)"
                counts[event] = counts.get(event, 0) + 1
        return counts

    def log_tail(self, n: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:]) if self.log.exists() else ""


def metric_sum(metrics: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(v for lab, v in metrics.get(name, []) if all(lab.get(k) == want for k, want in labels.items()))


def published_illuminate(metrics: dict[str, list[tuple[dict[str, str], float]]]) -> float:
    """Events the pollers published on the Illuminate topics."""
    return sum(v for lab, v in metrics.get("edusync_events_published_total", [])
               if lab.get("topic", "").startswith("edusync.illuminate."))


def handler_outcomes(metrics: dict[str, list[tuple[dict[str, str], float]]], handler: str) -> dict[str, float]:
    """A handler's events by outcome."""
    out: dict[str, float] = {}
    for lab, v in metrics.get("edusync_handler_events_total", []):
        if lab.get("handler") == handler:
            out[lab.get("outcome", "?")] = out.get(lab.get("outcome", "?"), 0.0) + v
    return out


# -- the run -----------------------------------------------------------------------------------------


@contextmanager
def kafka(bootstrap: str | None, workdir: Path) -> Iterator[tuple[str, bool]]:
    """The broker to use: the given one, or a fresh local one in ``workdir``."""
    if bootstrap:
        yield bootstrap, False
        return
    broker = LocalKafka(data_dir=workdir / "kafka", port=free_port(), controller_port=free_port())
    say(f"starting Kafka in {broker.data_dir} ...")
    try:
        address = broker.up()
        say(f"Kafka up at {address}")
        yield address, True
    finally:
        broker.down()


def seed_illuminate(students: int) -> tuple[IlluminateSimulator, dict[str, int]]:
    """The bench district, on a fixed school day."""
    illuminate = IlluminateSimulator(clock=ILLUMINATE_DAY)
    illuminate.seed(SeedSpec(**district_spec(students)))
    return illuminate, illuminate.district.counts()


def check(projection: RosterProjection, runs: list[TargetRun]) -> list[RosterReport]:
    """Every target against the projection; each check's duration is kept (it holds the target
    simulator's lock, so its calls wait meanwhile)."""
    reports = []
    for run in runs:
        started = time.perf_counter()
        run.report = run.target.report(projection)
        run.check_seconds.append(time.perf_counter() - started)
        reports.append(run.report)
    return reports


def differences(report: RosterReport | None) -> int:
    return sum(len(v) for v in report.problems.values()) if report else -1


def run_bench(opts: Options, workdir: Path) -> dict[str, Any]:
    """Seed, serve, run the worker until every target converges (or the timeout); everything measured."""
    started_at = datetime.now().isoformat(timespec="seconds")
    load_before = os.getloadavg()
    illuminate, counts = seed_illuminate(opts.students)
    say(f"Illuminate seeded: {counts}")
    target_opts = TargetOptions(scale=opts.scale, calls_per_minute=opts.calls_per_minute)
    targets = [TARGETS[name](target_opts) for name in opts.targets]
    runs = [TargetRun(t) for t in targets]
    samples: list[Sample] = []
    bench_cpu = time.process_time()
    with kafka(opts.bootstrap, workdir) as (bootstrap, own_broker), ThreadedServer(illuminate.app) as ill_server:
        tenant = f"bench{int(time.time())}"
        worker = WorkerProcess(workdir, bootstrap, tenant, ill_server.url, targets, opts.poll_interval)
        if not own_broker:
            # A shared broker holds other runs' roster events: the new groups start at the end.
            for target in targets:
                for topic in ROSTER_TOPICS:
                    anyio.run(skip_history, bootstrap, slot_group_id(target.handler, tenant, worker.group_prefix),
                              topic)
        matrix = next((t for t in targets if isinstance(t, MatrixTarget)), None)
        sim_start = matrix.sim_now() if matrix is not None else None
        say(f"worker starting for tenant {tenant} (log {worker.log})")
        worker.start()
        timed_out = False
        try:
            timed_out = _watch(opts, worker, illuminate, runs, samples)
            final_metrics = worker.metrics()
            wall = time.monotonic() - worker.started
        finally:
            exit_code = worker.stop()
            results = {t.name: t.results() for t in targets}
            for t in targets:
                t.close()
    sync_end = max((r.settled_at or wall) for r in runs) if runs else wall
    return {
        "date": started_at, "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()},
        "spec": district_spec(opts.students), "counts": counts, "tenant": tenant, "own_broker": own_broker,
        "timed_out": timed_out, "wall_seconds": wall, "sync_seconds": sync_end,
        "targets": {r.target.name: {
            "flow": r.target.flow, "handler": r.target.handler, "converged": r.report is not None and r.report.ok,
            "converged_at": r.converged_at, "settled_at": r.settled_at, "checks": len(r.check_seconds),
            "check_seconds_total": sum(r.check_seconds), "check_seconds_max": max(r.check_seconds, default=0.0),
            "summary": r.report.summary() if r.report else "not checked",
            "differences": {k: len(v) for k, v in (r.report.problems if r.report else {}).items() if v},
            "outcomes": handler_outcomes(final_metrics, r.target.handler),
            "results": results[r.target.name]} for r in runs},
        "published": published_illuminate(final_metrics),
        "published_by_topic": {lab.get("topic", "?"): v for lab, v in
                               final_metrics.get("edusync_events_published_total", [])},
        "illuminate_requests": metric_sum(final_metrics, "edusync_upstream_requests_total", system="illuminate"),
        "poll_seconds": {lab.get("poller", "?"): v for lab, v in
                         final_metrics.get("edusync_poll_duration_seconds_sum", [])},
        "matrix_budget_wait_sim_seconds": metric_sum(final_metrics, "edusync_upstream_throttle_wait_seconds_total",
                                                     system="matrixlms"),
        "matrix_sim_start": sim_start,
        "worker": {"peak_rss_mb": worker.peak_rss_mb, "cpu_seconds": worker.cpu_seconds, "exit_code": exit_code,
                   "log_events": worker.log_events()},
        "bench_process_cpu_seconds": time.process_time() - bench_cpu,
        "samples": [vars(s) for s in samples],
        "load_before": load_before, "load_after": os.getloadavg(),
        "machine": machine_info("local 3.9.1 (temporary)" if own_broker else bootstrap),
    }


def _watch(opts: Options, worker: WorkerProcess, illuminate: IlluminateSimulator, runs: list[TargetRun],
           samples: list[Sample]) -> bool:
    """Sample, check and print until every target converged; True on timeout."""
    # Illuminate does not change during the run: one projection serves every check.
    projection = RosterProjection.of(illuminate.district)
    last_print = 0.0
    metrics: dict[str, list[tuple[dict[str, str], float]]] = {}
    while True:
        time.sleep(SAMPLE_EVERY)
        now = time.monotonic() - worker.started
        if not worker.alive():
            raise RuntimeError(f"the worker exited with {worker.proc.returncode if worker.proc else '?'}:\n"
                               f"{worker.log_tail()}")
        requests = {}
        for run in runs:
            count = run.target.requests()
            if count != run.last_count:
                run.last_count, run.last_change = count, now
            requests[run.target.name] = count
        if now - last_print >= PROGRESS_EVERY:
            metrics = worker.metrics()
        samples.append(Sample(now, requests, worker.rss_mb(), published_illuminate(metrics),
                              {r.target.handler: sum(handler_outcomes(metrics, r.target.handler).values())
                               for r in runs}))
        for run in runs:
            # A check holds the target simulator's lock (its calls wait meanwhile), so a target still
            # answering new requests is checked only now and then; a quiet one often.
            quiet = now - run.last_change >= QUIET_SECONDS
            every = opts.check_every if quiet else BUSY_CHECK_EVERY
            if now - run.last_check >= every:
                run.last_check = now
                report = check(projection, [run])[0]
                if report.ok and run.converged_at is None:
                    run.converged_at, run.settled_at = now, run.last_change
                elif not report.ok:
                    run.converged_at = run.settled_at = None  # not converged after all
        if now - last_print >= PROGRESS_EVERY:
            last_print = now
            say(_progress(now, worker, runs, samples[-1], metrics))
        # Converged, and a later check found it still so (a target may pass through "equal").
        if all(r.converged_at is not None and r.last_check > r.converged_at for r in runs):
            say(_progress(now, worker, runs, samples[-1], worker.metrics()))
            return False
        if now > opts.timeout:
            say(f"TIMEOUT after {now:.0f} s; reporting partial numbers")
            return True


def _progress(now: float, worker: WorkerProcess, runs: list[TargetRun], sample: Sample,
              metrics: dict[str, list[tuple[dict[str, str], float]]]) -> str:
    parts = [f"{now:6.0f}s published={sample.published:,.0f} rss={sample.rss_mb:.0f}MB"]
    for run in runs:
        out = handler_outcomes(metrics, run.target.handler)
        state = "converged" if run.converged_at is not None else f"diffs={differences(run.report):,}"
        parts.append(f"{run.target.name}: requests={run.last_count:,} handled={sum(out.values()):,.0f} "
                     f"deferred={out.get('deferred', 0):,.0f} dlq={out.get('dead_lettered', 0):,.0f} {state}")
    return "  ".join(parts)


# -- command line ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.roster_sync", description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
                        help="Kafka to use (default: start one in a temporary folder)")
    parser.add_argument("--students", type=int, default=20_000, help="district size (district_spec)")
    parser.add_argument("--scale", type=float, default=60.0, help="MatrixLMS simulated seconds per real second")
    parser.add_argument("--calls-per-minute", type=int, default=100, help="the worker's MatrixLMS budget")
    # Short enough that the first walk starts at once and a second one happens during the sync;
    # every walk re-reads the whole district (about 4 s of the worker's CPU here).
    parser.add_argument("--poll-interval", type=float, default=60.0, help="Illuminate snapshot poll interval (s)")
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help=f"comma-separated, from {', '.join(TARGETS)} (default: all)")
    parser.add_argument("--timeout", type=float, default=1500.0, help="real seconds before partial numbers")
    parser.add_argument("--check-every", type=float, default=5.0, help="seconds between checks of a quiet target")
    parser.add_argument("--out-dir", type=Path, default=REPORTS_DIR)
    ns = parser.parse_args(argv)
    names = tuple(n.strip() for n in ns.targets.split(",") if n.strip())
    unknown = [n for n in names if n not in TARGETS]
    if unknown or not names:
        parser.error(f"unknown target(s) {unknown}; known: {', '.join(TARGETS)}")
    return Options(bootstrap=ns.bootstrap, students=ns.students, scale=ns.scale, calls_per_minute=ns.calls_per_minute,
                   poll_interval=ns.poll_interval, targets=names, timeout=ns.timeout, check_every=ns.check_every,
                   out_dir=ns.out_dir)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write the report; non-zero when a target did not converge."""
    from bench.roster_sync_report import write_report  # matplotlib only once there is something to draw

    opts = parse_args(argv)
    # SIGTERM (and SIGINT, which a shell ignores for background jobs) unwinds through the finally
    # blocks, so the worker and the broker this run started are stopped, not orphaned.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="edusync-bench-roster-"))
    try:
        data = run_bench(opts, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    md = write_report(data, opts.out_dir)
    say(f"wrote {md}")
    return 0 if all(t["converged"] for t in data["targets"].values()) and not data["timed_out"] else 1


if __name__ == "__main__":
    sys.exit(main())
