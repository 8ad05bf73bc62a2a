"""Numbers, Markdown and a picture from one ``bench.standards_flow`` run."""

from __future__ import annotations

import json
import os
import platform
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import psutil

from bench.standards_flow_probes import EventTiming, histogram_quantile
from deploy.local_kafka import KAFKA_VERSION
from simulators.canvas import ThrottleConfig
from worker.clients.abconnect import BURST, RATE_PER_SECOND

if TYPE_CHECKING:
    from bench.standards_flow import Options, PhaseRun, RunResult, Sample

WRITE_METHODS = ("POST", "PUT", "DELETE")
RATE_WINDOW = 2.0  # seconds over which the picture's request rates are averaged
SAMPLE_SLACK = 0.5  # a sample may land just after a phase's closing counters
CANVAS_DEFAULT_LEAK = ThrottleConfig().leak_rate  # the Canvas simulator's own default quota refill
LATENCY_BASES = {
    # label: (from stamp, to stamp); see bench.standards_flow_probes for the stamps
    "change made -> committed": ("created_at", "committed_at"),
    "change made -> polled": ("created_at", "polled_at"),
    "change made -> Canvas written": ("created_at", "handled_at"),
    "AB date_utc -> committed": ("event_time", "committed_at"),
    "AB date_utc -> change made": ("event_time", "created_at"),
    "polled -> committed": ("polled_at", "committed_at"),
    "Canvas written -> committed": ("handled_at", "committed_at"),
}


# -- numbers ------------------------------------------------------------------------------------


@dataclass
class Spread:
    """Percentiles of one latency basis (seconds)."""

    n: int
    p50: float
    p99: float
    max: float


@dataclass
class PhaseSummary:
    """The numbers of one phase."""

    key: str
    title: str
    events: int
    outcomes: dict[str, int]
    complete: bool
    converged: bool
    convergence: str
    wall: float  # first poll -> last commit
    window: float  # the AB-budget window: events exist in AB -> completion seen
    ab_poller: int
    ab_handler: int
    ab_429: int
    ab_wait: float  # seconds the AB clients waited for tokens (poller and handler together)
    canvas_reads: int
    canvas_writes: int
    canvas_throttled: int
    canvas_wait: float  # seconds the Canvas client paused on the quota
    outcomes_created: int
    batches: list[int]  # events per handler commit
    repeats: int  # standard events whose standard already had an earlier event in the phase
    latency: dict[str, Spread | None]
    histogram: dict[str, float | None]
    canvas_by_kind: list[tuple[str, int]] = field(default_factory=list)
    histogram_buckets: list[tuple[float, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ab_total(self) -> int:
        return self.ab_poller + self.ab_handler

    def per_event(self, n: float) -> float:
        return n / self.events if self.events else 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall if self.wall > 0 else 0.0

    @property
    def ab_rate(self) -> float:
        return self.ab_total / self.window if self.window > 0 else 0.0

    @property
    def budget_share(self) -> float:
        """AB requests / (5/s x window): the issue's definition."""
        return self.ab_rate / RATE_PER_SECOND

    @property
    def bucket_share(self) -> float:
        """AB requests / (burst + 5/s x window): what a full bucket allowed at most."""
        return self.ab_total / (BURST + RATE_PER_SECOND * self.window) if self.window > 0 else 0.0

    @property
    def canvas_total(self) -> int:
        return self.canvas_reads + self.canvas_writes

    @property
    def canvas_rate(self) -> float:
        return self.canvas_total / self.wall if self.wall > 0 else 0.0


def spread(values: list[float]) -> Spread | None:
    """p50/p99/max with linear interpolation, or None without values."""
    if not values:
        return None
    arr = np.asarray(values)
    return Spread(len(values), float(np.percentile(arr, 50)), float(np.percentile(arr, 99)), float(arr.max()))


def _diffs(timings: list[EventTiming], start: str, end: str) -> list[float]:
    out = []
    for t in timings:
        a, b = getattr(t, start), getattr(t, end)
        if a is not None and b is not None:
            out.append(b - a)
    return out


def _repeats(timings: list[EventTiming]) -> int:
    guids = [e.standard_guid.lower() for e in timings if e.standard_guid]
    return len(guids) - len(set(guids))


def summarize(phase: PhaseRun) -> PhaseSummary:
    """Reduce one phase's stamps and counter deltas to the reported numbers."""
    delta = phase.after.minus(phase.before)
    t = phase.timings
    polled = [e.polled_at for e in t if e.polled_at is not None]
    committed = [e.committed_at for e in t if e.committed_at is not None]
    kinds = delta.canvas_by_kind
    writes = sum(n for k, n in kinds.items() if k.split(" ", 1)[0] in WRITE_METHODS)
    throttled = sum(n for k, n in kinds.items() if k.endswith((" 403", " 429")))
    buckets = delta.latency_buckets
    return PhaseSummary(
        key=phase.key, title=phase.title, events=len(t),
        outcomes=dict(Counter(e.outcome or "not handled" for e in t)), complete=phase.complete,
        converged=phase.convergence.ok, convergence=phase.convergence.summary(),
        wall=(max(committed) - min(polled)) if polled and committed else 0.0, window=delta.at,
        ab_poller=delta.ab_by_resource.get("events", 0), ab_handler=delta.ab_by_resource.get("standards", 0),
        ab_429=delta.ab_throttled, ab_wait=delta.throttle_wait.get("abconnect", 0.0),
        canvas_reads=sum(kinds.values()) - writes, canvas_writes=writes,
        canvas_throttled=max(throttled, delta.canvas_throttled), canvas_wait=delta.throttle_wait.get("canvas", 0.0),
        outcomes_created=sum(n for k, n in kinds.items() if k.startswith("POST ") and "/outcomes " in k),
        batches=sorted(Counter(committed).values(), reverse=True), repeats=_repeats(t),
        latency={label: spread(_diffs(t, a, b)) for label, (a, b) in LATENCY_BASES.items()},
        histogram={"n": buckets[-1][1] if buckets else 0.0, "p50": histogram_quantile(0.5, buckets),
                   "p99": histogram_quantile(0.99, buckets)},
        canvas_by_kind=kinds.most_common(), histogram_buckets=buckets, notes=phase.notes,
    )


# -- Markdown -----------------------------------------------------------------------------------


def _s(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _lat(spread_: Spread | None) -> str:
    return "n/a" if spread_ is None else f"{spread_.p50:.2f} / {spread_.p99:.2f}"


def _pct(share: float) -> str:
    return f"{100 * share:.0f} %"


def _machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = psutil.virtual_memory().total / 2**30
    return (f"{os.cpu_count()} cores ({cpu or 'unknown CPU'}), {ram:.0f} GiB RAM, Linux {platform.release()}, "
            f"Python {platform.python_version()}, Apache Kafka {KAFKA_VERSION}")


def results_table(s: list[PhaseSummary]) -> list[str]:
    """The main table: one column per phase."""
    def row(label: str, cells: list[str]) -> str:
        return f"| {label} | " + " | ".join(cells) + " |"

    return [
        "| | " + " | ".join(p.title for p in s) + " |",
        "|---|" + "---:|" * len(s),
        row("events (one per AB feed event)", [str(p.events) for p in s]),
        row("handler outcomes", [", ".join(f"{k} {v}" for k, v in sorted(p.outcomes.items())) for p in s]),
        row("wall s, first poll -> last commit", [_s(p.wall, 1) for p in s]),
        row("**events/s end to end**", [f"**{p.events_per_s:.2f}**" for p in s]),
        row("standards created in Canvas per s",
            [_s(p.outcomes_created / p.wall, 0) if p.wall and p.outcomes_created >= p.events else "-" for p in s]),
        row("**latency p50 / p99 s**, change made -> committed (per event)",
            [f"**{_lat(p.latency['change made -> committed'])}**" for p in s]),
        row("latency p50 / p99 s, AB date_utc -> committed (per event)",
            [_lat(p.latency["AB date_utc -> committed"]) for p in s]),
        row("latency p50 / p99 s, END_TO_END_LATENCY histogram (applied only)",
            [f"{_s(p.histogram['p50'])} / {_s(p.histogram['p99'])}" for p in s]),
        row("AB requests: poller + handler", [f"{p.ab_poller} + {p.ab_handler} = {p.ab_total}" for p in s]),
        row("**AB requests per 100 events** (poller / handler)",
            [f"**{100 * p.per_event(p.ab_total):.0f}** ({100 * p.per_event(p.ab_poller):.0f} / "
             f"{100 * p.per_event(p.ab_handler):.0f})" for p in s]),
        row("AB requests/s over the phase window (window s)", [f"{p.ab_rate:.2f} ({p.window:.1f})" for p in s]),
        row("**share of the AB budget, requests / (5/s x window)**", [f"**{_pct(p.budget_share)}**" for p in s]),
        row("share of what a full bucket allowed, requests / (25 + 5/s x window)",
            [_pct(p.bucket_share) for p in s]),
        row("**AB 429 answers**", [f"**{p.ab_429}**" for p in s]),
        row("s waited for AB tokens (poller + handler)", [_s(p.ab_wait, 1) for p in s]),
        row("Canvas requests per event (reads + writes)",
            [f"{p.per_event(p.canvas_total):.1f} ({p.per_event(p.canvas_reads):.1f} + "
             f"{p.per_event(p.canvas_writes):.1f})" for p in s]),
        row("Canvas requests/s", [_s(p.canvas_rate, 0) for p in s]),
        row("Canvas throttled answers / s the client paused on the quota",
            [f"{p.canvas_throttled} / {p.canvas_wait:.1f}" for p in s]),
        row("handler commit transactions (largest)", [f"{len(p.batches)} ({max(p.batches, default=0)})" for p in s]),
        row("converged (Canvas == AB)", ["yes" if p.converged else "**NO**" for p in s]),
    ]


def peak_canvas_rate(result: RunResult, key: str) -> float:
    """The highest Canvas requests/s (RATE_WINDOW average) seen during phase ``key``."""
    phase = next(p for p in result.phases if p.key == key)
    inside = [s for s in result.samples if phase.before.at <= s.t <= phase.after.at + SAMPLE_SLACK]
    if len(inside) < 2:
        return 0.0
    rates = _rate(np.array([s.t for s in inside]), np.array([float(s.canvas) for s in inside]))
    return float(rates.max())


def interpretation(result: RunResult, a: PhaseSummary, b: PhaseSummary, c: PhaseSummary) -> list[str]:
    """What bounds each phase, in this run's numbers."""
    opts = result.options
    written = b.latency["change made -> Canvas written"]
    paced = c.latency["change made -> committed"]
    paced_p99 = paced.p99 if paced else None
    paced_aim = opts.poll_interval + 0.5
    return [
        f"- **Initial sync (a) is Canvas-bound, not AB-bound.** A `document/added` event makes the handler read "
        f"the document and its standards from AB ({a.per_event(a.ab_handler):.0f} AB requests per "
        f"document) and then create every section group and outcome in Canvas: "
        f"{a.per_event(a.canvas_total):.0f} Canvas requests per event, {a.canvas_writes} writes in all, at "
        f"{a.canvas_rate:.0f} requests/s on average. With one request in flight, Canvas took up to "
        f"{peak_canvas_rate(result, 'a'):.0f} requests/s ({RATE_WINDOW:g} s average; simulator, client and worker "
        f"share this process and the loaded CPU) until the 700-unit quota burst was spent, then the 200/s leak "
        f"rate the bench configured: the client paused {a.canvas_wait:.1f} s on the quota and got "
        f"{a.canvas_throttled} throttled answers. So {a.events_per_s:.2f} events/s means "
        f"{a.outcomes_created / a.wall if a.wall else 0:.0f} standards/s, set by Canvas (request cost and quota). "
        f"AB was barely used: {a.ab_total} requests, {a.ab_429} 429s; its {_pct(a.budget_share)} 'share' is a "
        f"{a.window:.0f} s window with the poller's polls and the bucket's initial burst of 25 in it "
        f"({_pct(a.bucket_share)} of what the full bucket allowed).",
        f"- **The backlog (b)**: the handler takes each partition's events a batch at a time and reads the "
        f"standards of a run of standard events from AB together, up to 100 guids per request (`guid in (...)`); "
        f"then it writes Canvas only where the ledger's fingerprint of the outcome differs from AB. So the "
        f"{b.events} changes cost the handler {b.ab_handler} AB requests and the poller {b.ab_poller} "
        f"(**{b.per_event(b.ab_total) * 100:.0f} AB requests per 100 events**, aim at most 5), at "
        f"{b.ab_rate:.2f} requests/s = {_pct(b.budget_share)} of the documented budget with **{b.ab_429} 429s**; "
        f"poller and handler waited {b.ab_wait:.0f} s for tokens. **{b.events_per_s:.2f} events/s end to end** "
        f"(aim at least 100), with Canvas at {b.per_event(b.canvas_total):.1f} requests per change (aim at most "
        f"1.5) and {b.canvas_rate:.0f} requests/s: with one Canvas request in flight, Canvas's round trips are now "
        f"the bound, not AB's budget.",
        f"- **Kafka is not the bound** anywhere: in the paced stream an event took "
        f"{_lat(c.latency['polled -> committed'])} s (p50 / p99) from poll to commit, AB and Canvas calls of the "
        f"handler included.",
        f"- **Latency (c)**, change made -> committed, per event on the bench's clock: "
        f"**{_lat(c.latency['change made -> committed'])} s** (p50 / p99), of which "
        f"{_lat(c.latency['change made -> polled'])} s until the poller read it ({opts.poll_interval:g} s "
        f"interval). Against AB's `date_utc` (whole seconds, the basis of "
        f"`edusync_end_to_end_latency_seconds`) the same events read "
        f"{_lat(c.latency['AB date_utc -> committed'])} s: AB truncates event times to whole seconds, which put "
        f"them {_lat(c.latency['AB date_utc -> change made'])} s before the changes were made (p50 / p99). "
        f"Interpolating the histogram gives {_s(c.histogram['p50'])} / "
        f"{_s(c.histogram['p99'])} s, coarse because its buckets jump from 1 to 2.5 s (in phase a, from 10 to "
        "30 s).",
        f"- **Backlog latency (b) is large by construction** ({_lat(b.latency['change made -> committed'])} s): all "
        f"{b.events} changes exist before the first is handled, so each waits for all before it; the handler "
        f"commits every 5,000 events, every second, or when idle ({len(b.batches)} commits, largest "
        f"{max(b.batches, default=0)} events); changes were written to Canvas at {_lat(written)} s.",
        f"- **Paced latency (c) p99 {_s(paced_p99)} s** against the aim of the poll interval plus 0.5 s = "
        f"{paced_aim:g} s: {'met' if paced_p99 is not None and paced_p99 <= paced_aim else 'missed'}.",
    ]


def findings(a: PhaseSummary, b: PhaseSummary, c: PhaseSummary, opts: Options) -> list[str]:
    """Performance findings about the worker and handler, with this run's evidence."""
    per_event = b.per_event(b.canvas_total)
    reads = b.per_event(b.canvas_reads)
    writes = b.per_event(b.canvas_writes)
    poller_c = c.ab_poller / c.window if c.window else 0.0
    handler_share = b.ab_handler / max(1, b.ab_total)
    wait = b.latency["Canvas written -> committed"]
    noop = b.outcomes.get("noop", 0)
    canvas_bound = CANVAS_DEFAULT_LEAK / per_event if per_event else float("inf")
    return [
        f"1. **Canvas requests per standard change: {per_event:.1f} ({reads:.1f} reads, {writes:.1f} writes)**, "
        "against 3.7 before the handler became batch-aware (it then fetched each outcome to compare it). The "
        "ledger's fingerprint of what was last written tells whether Canvas needs a write, so an unchanged "
        "standard costs no Canvas request, and a ledger miss is a create once the document's outcomes have been "
        "listed in full since start-up (the look-up that keeps a crash between write and commit from creating "
        f"twice). With the Canvas simulator's default quota (leak {CANVAS_DEFAULT_LEAK:g}/s, 1 per request) the "
        f"backlog would be Canvas-bound at ~{canvas_bound:.1f} changes/s (an estimate from the request counts).",
        f"2. **AB requests per 100 backlog events: {b.per_event(b.ab_total) * 100:.0f}** (110 before): the poller "
        f"reads 100 events a request and the handler 100 standards a request. The poller still doubles its "
        f"interval (up to 4x) while polls come back empty; during the paced stream it made {poller_c:.2f} "
        f"requests/s ({_pct(poller_c / RATE_PER_SECOND)} of the budget), leaving the handler the rest "
        f"({_pct(handler_share)} of the backlog's AB requests went to the handler).",
        f"3. **Commits** gather many events (every 5,000, every second, or as soon as the handler is idle): an "
        f"event waited {_lat(wait)} s (p50 / p99, max {wait.max if wait else 0:.1f} s) between its Canvas write "
        f"and its commit, in {len(b.batches)} commit transactions for the backlog.",
        f"4. **Repeated changes to one standard** ({b.repeats} of the {b.events} backlog events named a standard "
        f"an earlier one had named; {noop} no-ops): within a batch each guid is read and reconciled once, the "
        "repeats count as no-ops without any request.",
        f"5. **Initial sync writes one Canvas request per standard** ({a.canvas_writes} writes for "
        f"{a.outcomes_created} outcomes) and is bounded by the Canvas quota: with the default leak of "
        f"{CANVAS_DEFAULT_LEAK:g}/s a {a.outcomes_created}-standard catalogue would take about "
        f"{a.canvas_total / CANVAS_DEFAULT_LEAK / 60:.0f} minutes. Canvas's outcome import (CSV) API could make it "
        "a few requests, if worth its complexity.",
    ]


def _defaults(opts: Options) -> bool:
    """Whether the run used the default workload (the broker and output folder aside)."""
    ignore = {"bootstrap", "out_dir"}
    mine, default = asdict(opts), asdict(type(opts)())
    return all(mine[k] == default[k] for k in mine if k not in ignore)


def render(result: RunResult, summaries: list[PhaseSummary], png_name: str) -> str:
    """The Markdown report."""
    opts = result.options
    when = datetime.fromtimestamp(result.started, UTC).strftime("%Y-%m-%d %H:%M UTC")
    broker = "started by the bench in a temporary folder" if result.own_broker else f"given: {result.bootstrap}"
    lines = [
        "# Standards flow benchmark: AB Connect -> Kafka -> Canvas",
        "",
        f"Measured {when} on {_machine()}. Kafka: single local node, {broker}. Whole run "
        f"{result.finished - result.started:.0f} s; the bench process (worker, both simulators, probes) used "
        f"{result.cpu_seconds:.0f} CPU seconds. Load average (1 min) {result.load_before[0]:.2f} before, "
        f"{result.load_after[0]:.2f} after: other jobs shared the machine, so Canvas-bound rates are "
        "pessimistic; AB-bound rates are set by the 5/s budget, not by the CPU.",
        "",
        f"Command: `python -m bench.standards_flow --documents {opts.documents} --standards {opts.standards} "
        f"--changes {opts.changes} --paced-seconds {opts.paced_seconds:g} --paced-interval {opts.paced_interval:g} "
        f"--poll-interval {opts.poll_interval:g}`{' (the defaults)' if _defaults(opts) else ''}.",
        "",
        "## Set-up",
        "",
        "- One process, wired as `edusync demo` does: the worker (`run_worker` with the standards flow: the "
        "`abconnect.events` and `abconnect.reconcile` pollers and the batch handler `StandardsToCanvas`), the "
        "AB Connect simulator and the Canvas simulator, each simulator a uvicorn server "
        f"on a loopback thread. Kafka runs in its own JVM. A fresh tenant id per run (`{result.tenant}`), with "
        "its own consumer group and transactional ids.",
        f"- AB Connect: the documented budget, {RATE_PER_SECOND:g} requests/s per account with a burst of "
        f"{BURST:g}, enforced by the simulator and by the client's token bucket, which the pollers and the handler "
        f"share (one client per account). Poll interval {opts.poll_interval:g} s (the demo's and the tests'; the "
        "config default is 5 s).",
        "- Canvas simulator throttle configured **generously, as in the demo: capacity 700, leak rate 200/s**, "
        "cost 1 per request (its own default leak rate is "
        f"{CANVAS_DEFAULT_LEAK:g}/s). The Canvas client keeps one request in flight and pauses when the quota it "
        "is told about runs low.",
        f"- Catalogue: {result.seeded['documents']} documents, {result.seeded['sections_per_document']} sections "
        f"each, {opts.standards} standards per document ({result.seeded['standards']} standards).",
        "",
        "## Method",
        "",
        "Three phases in one run against one worker:",
        "",
        "- **a. initial sync**: once the worker is idle (poller polling, handler consumer group stable), the "
        "catalogue is seeded; AB's feed then holds one `document/added` event per document.",
        f"- **b. backlog**: {opts.changes} standard mutations (`modify_standard` 50 %, `add_standard` 25 %, "
        "`delete_standard` 25 %) are created at once, one AB event each, so the handler has a backlog to work "
        "through: the phase on which the issue's aims are judged (at least 100 changes/s with zero 429s, at most 5 "
        "AB requests per 100 events, at most 1.5 Canvas requests per change).",
        f"- **c. paced stream**: one mutation of the same mix every {opts.paced_interval:g} s for "
        f"{opts.paced_seconds:g} s, so latency is not made by a backlog; it ends when the last is committed.",
        "",
        "Definitions:",
        "",
        "- **events/s** = events of the phase / (last commit - first poll). Commit = the handler's batch "
        "transaction (ledger + offsets), when the worker counts an event as done. Phase c's events/s is the "
        "offered rate, not a capacity.",
        "- **latency is recorded per event**: the bench wraps the real poller and handler and subclasses "
        "`HandlerRunner` to stamp each event's poll, handler return (Canvas written) and batch commit, and "
        "stamps the moment it made each change itself. `AB date_utc -> committed` is the basis of "
        "`edusync_end_to_end_latency_seconds` (AB's event time has whole seconds). The histogram row "
        "interpolates that metric's bucket deltas linearly, as Prometheus's `histogram_quantile` does; it only "
        "observes `applied` events.",
        "- **AB requests** are the AB simulator's statistics by resource: `/events` is the poller, `/standards` the "
        "handler (each uses only its own). **Budget share** = AB requests answered in the phase window / "
        "(5/s x window); the window runs from the moment the phase's events exist in AB to the moment the bench "
        "sees the last commit (within 0.1 s). A full bucket adds a burst of 25, so a short window can exceed "
        "100 %; the next row divides by 25 + 5/s x window instead.",
        "- **Canvas requests** are the Canvas simulator's statistics (method, path kind, status).",
        "- **Convergence**: `simulators.standards_convergence.compare` of both simulators' state after each phase.",
        "",
        "## Results",
        "",
        *results_table(summaries),
        "",
        f"![timeline]({png_name})",
        "",
    ]
    by_key = {p.key: p for p in summaries}
    if all(k in by_key for k in "abc"):
        a, b, c = by_key["a"], by_key["b"], by_key["c"]
        lines += ["## Interpretation", "", *interpretation(result, a, b, c), "",
                  "## Findings on the worker and the handler", "", *findings(a, b, c, opts), "",
                  "Canvas requests per standard event in phase b, by kind:", "", *canvas_breakdown(b), ""]
    else:
        lines += ["**The run did not complete all three phases; see the raw numbers.**", ""]
    lines += ["## Raw numbers", "", "```json", json.dumps(raw(result, summaries), indent=1), "```", ""]
    return "\n".join(lines)


def canvas_breakdown(b: PhaseSummary) -> list[str]:
    """Canvas requests per event by request kind."""
    lines = ["| request | per event | total |", "|---|---:|---:|"]
    for kind, n in b.canvas_by_kind:
        lines.append(f"| `{kind}` | {b.per_event(n):.2f} | {n} |")
    return lines


def raw(result: RunResult, summaries: list[PhaseSummary]) -> dict[str, Any]:
    """The numbers behind the tables (batches and bucket deltas compacted)."""
    out: dict[str, Any] = {"tenant": result.tenant, "bootstrap": result.bootstrap,
                           "options": {k: str(v) for k, v in asdict(result.options).items() if k != "out_dir"}}
    for p in summaries:
        entry = asdict(p)
        entry["canvas_by_kind"] = dict(p.canvas_by_kind)
        entry["histogram_buckets"] = {("+Inf" if np.isinf(le) else f"{le:g}"): n for le, n in p.histogram_buckets}
        entry["derived"] = {"ab_total": p.ab_total, "ab_rate": p.ab_rate, "budget_share": p.budget_share,
                            "bucket_share": p.bucket_share, "events_per_s": p.events_per_s,
                            "canvas_rate": p.canvas_rate}
        out[p.key] = entry
    rounded: dict[str, Any] = _round(out)
    return rounded


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_round(v) for v in value]
    return value


# -- picture ------------------------------------------------------------------------------------


def _rate(times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-second rate over the last RATE_WINDOW seconds (negative steps, from a stats reset, clipped)."""
    cumulative = np.cumsum(np.clip(np.diff(values, prepend=values[0]), 0, None))
    out = np.zeros_like(times)
    for i, t in enumerate(times):
        j = int(np.searchsorted(times, t - RATE_WINDOW))
        span = t - times[j]
        out[i] = (cumulative[i] - cumulative[j]) / span if span > 0 else 0.0
    return out


def plot(result: RunResult, summaries: list[PhaseSummary], path: Path) -> None:
    """Timeline (events, AB requests/s against the budget, Canvas requests/s) and phase c's latency."""
    samples: list[Sample] = result.samples
    t0 = samples[0].t
    t = np.array([s.t - t0 for s in samples])

    def col(name: str) -> np.ndarray:
        return np.array([float(getattr(s, name)) for s in samples])

    fig = plt.figure(figsize=(11, 12), constrained_layout=True)
    grid = fig.add_gridspec(4, 1, height_ratios=[1.2, 1.1, 0.8, 1.0])
    ax_events = fig.add_subplot(grid[0])
    ax_ab = fig.add_subplot(grid[1], sharex=ax_events)
    ax_canvas = fig.add_subplot(grid[2], sharex=ax_events)
    ax_lat = fig.add_subplot(grid[3])

    ax_events.plot(t, col("polled"), label="polled from AB", color="tab:blue")
    ax_events.plot(t, col("handled"), label="handled (Canvas written)", color="tab:olive")
    ax_events.plot(t, col("committed"), label="committed (batch transaction)", color="tab:green", linewidth=2)
    ax_events.set_ylabel("events (cumulative)")
    ax_events.set_title("Standards flow: AB Connect simulator -> poller -> Kafka -> handler -> Canvas simulator")

    poller, handler = _rate(t, col("ab_events")), _rate(t, col("ab_standards"))
    ax_ab.stackplot(t, poller, handler, labels=["poller (/events)", "handler (/standards)"],
                    colors=["tab:orange", "tab:purple"], alpha=0.75)
    ax_ab.axhline(RATE_PER_SECOND, color="red", linestyle="--", label="documented budget 5/s")
    throttled = np.clip(np.diff(col("ab_throttled"), prepend=0), 0, None) > 0
    if throttled.any():
        ax_ab.scatter(t[throttled], np.full(int(throttled.sum()), RATE_PER_SECOND + 1), marker="x",
                      color="red", label="AB 429")
    ax_ab.set_ylabel(f"AB requests/s ({RATE_WINDOW:g} s avg)")
    ax_ab.set_ylim(0, max(10.0, float(np.max(poller + handler)) * 1.1))

    ax_canvas.plot(t, _rate(t, col("canvas")), color="tab:gray")
    ax_canvas.set_ylabel(f"Canvas requests/s ({RATE_WINDOW:g} s avg)")
    ax_canvas.set_xlabel("seconds since the worker started")

    _shade_phases(result, summaries, t0, (ax_events, ax_ab, ax_canvas))
    ax_events.legend(loc="lower right", fontsize=8)
    ax_ab.legend(loc="upper right", fontsize=8)
    _latency_panel(ax_lat, result.phases[-1].timings, summaries[-1])
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _shade_phases(result: RunResult, summaries: list[PhaseSummary], t0: float, axes: tuple[Any, ...]) -> None:
    names = {"a": "a: initial sync", "b": "b: backlog", "c": "c: paced stream"}
    colours = ("tab:blue", "tab:purple", "tab:green")
    for i, (phase, summary) in enumerate(zip(result.phases, summaries, strict=True)):
        start, end = phase.before.at - t0, phase.after.at - t0
        for ax in axes:
            ax.axvspan(start, end, color=colours[i % 3], alpha=0.07)
        top = axes[0].get_ylim()[1]  # labels staggered: phase a is short
        axes[0].text(start + 1, top * (0.96 - 0.09 * (i % 2)), names.get(summary.key, summary.key), va="top",
                     fontsize=10, fontweight="bold")
    for ax in axes:
        ax.grid(alpha=0.3)


def _latency_panel(ax: Any, timings: list[EventTiming], summary: PhaseSummary) -> None:
    values = _diffs(timings, "created_at", "committed_at")
    if not values:
        ax.text(0.5, 0.5, "no paced events", ha="center")
        return
    ax.hist(values, bins=40, color="tab:green", alpha=0.8)
    lat = summary.latency["change made -> committed"]
    if lat is not None:
        ax.axvline(lat.p50, color="black", linestyle="--", label=f"p50 {lat.p50:.2f} s")
        ax.axvline(lat.p99, color="red", linestyle="--", label=f"p99 {lat.p99:.2f} s")
    ax.set_title(f"Phase {summary.title}: latency per event, change made in AB -> committed")
    ax.set_xlabel("seconds")
    ax.set_ylabel("events")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


# -- entry point ----------------------------------------------------------------------------------


def write_report(result: RunResult, out_dir: Path) -> tuple[Path, Path]:
    """Write ``standards_flow.md`` and ``standards_flow.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = [summarize(p) for p in result.phases]
    png = out_dir / "standards_flow.png"
    md = out_dir / "standards_flow.md"
    if result.samples and result.phases:
        plot(result, summaries, png)
    md.write_text(re.sub(r"[ \t]+\n", "\n", render(result, summaries, png.name)))
    return md, png
