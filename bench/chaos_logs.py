"""What the replicas' JSON logs say, for ``bench.chaos``.

Log lines it relies on (``worker/``; one JSON object per line, ``event`` and an ISO ``timestamp``):

- ``"component failed; restarting"`` (``worker/runtime.py``, with ``component`` and the traceback
  in ``exception``): component restarts;
- any line containing ``ProducerFenced`` (aiokafka's ``ProducerFenced`` in a restart's traceback or
  a library line): a transactional producer fenced by a newer one with the same id;
- ``"published"`` (``worker/poller_frame.py``, with ``tenant`` and ``poller``): a poller committed
  events, so that tenant's pollers ran in that process;
- ``"worker started"`` (``worker/runtime.py``): the replica is up;
- ownership lines, when the worker has them: any event containing ``pollers assigned`` or
  ``pollers revoked`` (or ``assigned``/``revoked`` with a ``tenants`` field), with ``tenants`` (a list
  or one string). Without them, a killed replica's tenants are those it published for.
"""

from __future__ import annotations

import re
import statistics
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from bench.chaos_kafka import TopicScan

RESTART_EVENT = "component failed; restarting"
FENCED = b"ProducerFenced"
OWNERSHIP = re.compile(r"\b(assigned|revoked)\b", re.IGNORECASE)
QUIET_AFTER = 30.0  # seconds after a kill, a restart or the broker restart that are not steady state


@dataclass(frozen=True)
class Span:
    """A stretch of run time (epoch seconds)."""

    start: float
    end: float


@dataclass
class Ownership:
    """One ownership log line."""

    t: float
    replica: str
    incarnation: int
    kind: str  # assigned | revoked
    tenants: tuple[str, ...]


@dataclass
class IncarnationLog:
    """One process's log, boiled down."""

    replica: str
    index: int
    lines: int = 0
    not_json: int = 0
    started_at: float | None = None  # "worker started"
    published: dict[str, list[float]] = field(default_factory=dict)  # tenant -> times of "published"
    pollers: set[str] = field(default_factory=set)  # "tenant/poller" that published here


@dataclass
class LogDigest:
    """Every replica's logs together."""

    incarnations: dict[tuple[str, int], IncarnationLog] = field(default_factory=dict)
    restarts: list[tuple[float, str, str, str]] = field(default_factory=list)  # t, replica, component, error
    fenced: list[tuple[float, str]] = field(default_factory=list)
    fenced_kinds: Counter[str] = field(default_factory=Counter)
    ownership: list[Ownership] = field(default_factory=list)
    by_event: Counter[str] = field(default_factory=Counter)  # warning and up
    examples: dict[str, str] = field(default_factory=dict)
    ownership_events: Counter[str] = field(default_factory=Counter)


def _when(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _tenants(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v for v in re.split(r"[,\s]+", value) if v)
    if isinstance(value, list | tuple | set):
        return tuple(str(v) for v in value)
    if isinstance(value, dict):
        return tuple(str(k) for k in value)
    return ()


def _error_of(line: dict[str, Any]) -> str:
    text = str(line.get("exception") or line.get("error") or "")
    last = [s for s in text.strip().splitlines() if s.strip()]
    return last[-1][:160] if last else ""


def digest_logs(logs: Iterable[tuple[str, int, Path]]) -> LogDigest:
    """Read every incarnation's log (replica id, incarnation index, path)."""
    out = LogDigest()
    for replica, index, path in logs:
        inc = out.incarnations[(replica, index)] = IncarnationLog(replica, index)
        if not path.exists():
            continue
        with path.open("rb") as f:
            for raw in f:
                inc.lines += 1
                try:
                    line = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    inc.not_json += 1
                    continue
                if not isinstance(line, dict):
                    inc.not_json += 1
                    continue
                _take(out, inc, line, raw)
    for inc in out.incarnations.values():
        for times in inc.published.values():
            times.sort()
    out.restarts.sort()
    out.fenced.sort()
    out.ownership.sort(key=lambda o: o.t)
    return out


def _take(out: LogDigest, inc: IncarnationLog, line: dict[str, Any], raw: bytes) -> None:
    event = str(line.get("event", ""))
    t = _when(line.get("timestamp"))
    if t is None:
        return
    level = str(line.get("level", "")).lower()
    if FENCED in raw:
        out.fenced.append((t, inc.replica))
        if event == RESTART_EVENT:
            out.fenced_kinds["in a component restart's traceback"] += 1
        elif event.startswith("Future exception was never retrieved"):
            out.fenced_kinds["asyncio: Future exception was never retrieved (aiokafka)"] += 1
        else:
            out.fenced_kinds[f"{line.get('logger', '?')}: {event[:80]}"] += 1
    if event == RESTART_EVENT:
        out.restarts.append((t, inc.replica, str(line.get("component", "?")), _error_of(line)))
    elif event == "published":
        tenant, poller = str(line.get("tenant", "?")), str(line.get("poller", "?"))
        inc.published.setdefault(tenant, []).append(t)
        inc.pollers.add(f"{tenant}/{poller}")
    elif event == "worker started" and inc.started_at is None:
        inc.started_at = t
    if "poller" in event.lower() and OWNERSHIP.search(event) and ("tenants" in line or "tenant" in line):
        kind = OWNERSHIP.search(event)
        assert kind is not None
        tenants = _tenants(line.get("tenants", line.get("tenant")))
        out.ownership.append(Ownership(t, inc.replica, inc.index, kind.group(1).lower(), tenants))
        out.ownership_events[event] += 1
    if level in ("warning", "error", "critical", "exception"):
        key = event[:120]
        out.by_event[key] += 1
        out.examples.setdefault(key, raw.decode(errors="replace")[:600])


# -- steady state ---------------------------------------------------------------------------------


def steady_spans(window: Span, disturbances: Iterable[Span]) -> list[Span]:
    """``window`` minus every disturbance (each stretched by ``QUIET_AFTER`` at its end)."""
    cuts = sorted((d.start, d.end + QUIET_AFTER) for d in disturbances)
    spans: list[Span] = []
    at = window.start
    for start, end in cuts:
        if end <= at:
            continue
        if start > at:
            spans.append(Span(at, min(start, window.end)))
        at = max(at, end)
        if at >= window.end:
            break
    if at < window.end:
        spans.append(Span(at, window.end))
    return [s for s in spans if s.end > s.start]


def _inside(t: float, spans: list[Span]) -> bool:
    return any(s.start <= t < s.end for s in spans)


def steady_rates(digest: LogDigest, spans: list[Span]) -> dict[str, Any]:
    """ProducerFenced lines and component restarts per minute within ``spans``."""
    minutes = sum(s.end - s.start for s in spans) / 60.0
    fenced = sum(1 for t, _ in digest.fenced if _inside(t, spans))
    restarts = [r for r in digest.restarts if _inside(r[0], spans)]
    by_component: Counter[str] = Counter(_component_kind(c) for _, _, c, _ in restarts)
    by_error: Counter[str] = Counter(_error_kind(e) for _, _, _, e in restarts)
    return {
        "steady_minutes": round(minutes, 2), "spans": len(spans),
        "producer_fenced_lines": fenced, "component_restarts": len(restarts),
        "producer_fenced_per_minute": fenced / minutes if minutes else None,
        "component_restarts_per_minute": len(restarts) / minutes if minutes else None,
        "restarts_by_component_kind": dict(by_component.most_common()),
        "restarts_by_error": dict(by_error.most_common(8)),
    }


def _component_kind(component: str) -> str:
    """``poller:t1/illuminate.students`` -> ``poller:illuminate.students`` (tenants folded)."""
    kind, _, rest = component.partition(":")
    return f"{kind}:{rest.split('/', 1)[-1]}" if rest else component


def _error_kind(error: str) -> str:
    name = error.split(":", 1)[0].strip()
    return name.rsplit(".", 1)[-1] or "?"


def per_minute(times: Iterable[float], t0: float, t1: float) -> list[int]:
    """Counts per minute of run time from ``t0`` to ``t1``."""
    bins = [0] * (int((t1 - t0) // 60) + 1)
    for t in times:
        if t0 <= t <= t1:
            bins[int((t - t0) // 60)] += 1
    return bins


# -- resuming after a kill ----------------------------------------------------------------------------


def _owned_at(digest: LogDigest, replica: str, index: int, t: float) -> set[str] | None:
    """Tenants the incarnation owned at ``t`` by its ownership lines (None without such lines)."""
    lines = [o for o in digest.ownership if o.replica == replica and o.incarnation == index and o.t <= t]
    if not lines:
        return None
    owned: set[str] = set()
    for o in lines:
        if o.kind == "assigned":
            owned |= set(o.tenants)
        else:
            owned -= set(o.tenants)
    return owned


def _first_after(times: list[float], t: float) -> float | None:
    i = bisect_right(times, t)
    return times[i] if i < len(times) else None


def resume_times(digest: LogDigest, scan: TopicScan, kills: list[dict[str, Any]], reference_offset: float = 15.0
                 ) -> list[dict[str, Any]]:
    """For each kill (``t`` epoch, ``replica``, ``incarnation``): the tenants whose pollers ran on
    the killed process, and per tenant how long until its pollers showed life elsewhere:

    - ``assigned_s``: an ownership "assigned" line naming the tenant in another process (if the
      worker logs ownership);
    - ``published_log_s``: a "published" line for the tenant in another process;
    - ``next_event_s``: the tenant's next event record on any event topic (Kafka timestamp);

    (Cursor commits would be a finer heartbeat, but ``edusync._cursors`` is compacted: by the end
    of a run most of its history is gone.)

    ``reference`` gives the same Kafka measures taken ``reference_offset`` s before the kill: the
    cadence of a tenant's events when nothing was killed, to read the others against.
    """
    out = []
    for kill in kills:
        t, replica, index = float(kill["t"]), str(kill["replica"]), int(kill["incarnation"])
        inc = digest.incarnations.get((replica, index))
        owned = _owned_at(digest, replica, index, t)
        source = "ownership lines"
        if owned is None:
            owned = {tenant for tenant, times in (inc.published.items() if inc else []) if times and times[0] <= t}
            source = "published lines"
        others = [i for k, i in digest.incarnations.items() if k != (replica, index)]
        tenants = []
        for tenant in sorted(owned):
            row: dict[str, Any] = {"tenant": tenant}
            assigned = sorted((o.t, o.replica, o.incarnation) for o in digest.ownership
                              if o.kind == "assigned" and tenant in o.tenants and o.t > t
                              and (o.replica, o.incarnation) != (replica, index))
            row["assigned_s"] = round(assigned[0][0] - t, 3) if assigned else None
            # Back on the restarted replica itself (same id, a new process), or on another one?
            row["resumed_by"] = (None if not assigned else
                                 "itself, restarted" if assigned[0][1] == replica else assigned[0][1])
            nexts = [n for i in others if (n := _first_after(i.published.get(tenant, []), t)) is not None]
            row["published_log_s"] = min(nexts) - t if nexts else None
            row["next_event_s"] = _gap(scan.next_event_after(tenant, t), t)
            row["reference_next_event_s"] = _gap(scan.next_event_after(tenant, t - reference_offset),
                                                 t - reference_offset)
            tenants.append(row)
        out.append({**kill, "tenants_from": source, "tenants": tenants})
    return out


def _gap(at: float | None, t: float) -> float | None:
    return None if at is None else round(at - t, 3)


def summarise_resume(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, 90th percentile and max of each measure over every (kill, tenant)."""
    keys = ("assigned_s", "published_log_s", "next_event_s", "reference_next_event_s")
    out: dict[str, Any] = {"kills": len(rows), "tenant_kills": sum(len(r["tenants"]) for r in rows)}
    resumed = Counter("another replica" if (b := t.get("resumed_by")) not in (None, "itself, restarted") else
                      (b or "no ownership line") for r in rows for t in r["tenants"])
    out["resumed_by"] = dict(resumed)
    for key in keys:
        values = sorted(v for r in rows for t in r["tenants"] if (v := t.get(key)) is not None)
        missing = sum(1 for r in rows for t in r["tenants"] if t.get(key) is None)
        out[key] = {"n": len(values), "missing": missing,
                    "median": statistics.median(values) if values else None,
                    "p90": values[min(len(values) - 1, int(len(values) * 0.9))] if values else None,
                    "max": values[-1] if values else None}
    return out
