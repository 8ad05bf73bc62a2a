"""The report of ``bench.chaos``: Markdown and a picture, made from ``chaos.json`` alone.

    python -m bench.chaos_report [bench/reports/chaos.json]

re-renders ``chaos.md`` and ``chaos.png`` next to the JSON (``bench.chaos`` calls ``write_report``
with the run's data, which also writes the JSON).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.report import REPORTS_DIR, md_table

FAMILIES = ("illuminate", "abconnect", "canvas audit")
COLORS = {"illuminate": "tab:blue", "abconnect": "tab:orange", "canvas audit": "tab:green", "ledger writes": "tab:red"}


def _f(value: Any, digits: int = 1, none: str = "-") -> str:
    if value is None:
        return none
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"
    return str(value)


def _s(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f} s"


def verdict(data: dict[str, Any]) -> list[str]:
    """The headline findings, one bullet each."""
    out = []
    conv = data["convergence"]
    checks = conv["checks"]
    bad = [c for c in checks if not c["ok"]]
    audit_bad = [a for a in conv["audit"] if a["missing"]]
    at = conv.get("converged_at")
    stream_end = data["stream"]["end"]
    if conv["ok"]:
        took = f" {at - stream_end:.0f} s after the stream ended" if at is not None else ""
        out.append(f"**Converged**: all {len(checks)} targets match their source, and every Canvas audit event "
                   f"was published{took}.")
    else:
        how = "stopped changing (stalled)" if conv.get("stalled") else "were still changing at the timeout"
        out.append(f"**Not converged**: {len(bad)} of {len(checks)} targets differ, {len(audit_bad)} audit feeds miss "
                   f"events; the differences {how} (see Convergence).")
    backlog = _backlog_summary(data)
    if backlog:
        out.append("Handler backlogs (records its slowest consumer group had not committed yet, an upper bound): "
                   + "; ".join(
            f"`{h}` peak {v['peak']:,} at {v['peak_t']:.0f} s, {v['at_stream_end']:,} when the stream ended"
            for h, v in backlog.items() if v["peak"]) + ".")
    topics = data["topics"]
    dupes = sum(topics["duplicate_copies"].values())
    events = sum(topics["events"].values())
    out.append(f"{events:,} events on the event topics, {dupes:,} of them copies of an event id already published "
               f"({dupes / events:.1%} of the records)." if events else "No events were published.")
    twice = _created_twice_total(data)
    out.append(f"Target objects created twice: {twice}." if twice else "No target object was created twice.")
    letters = sum(h["total"] for h in data["dead_letters"].values())
    out.append(f"Dead letters: {letters:,}." if letters else "No dead letters.")
    steady = data["logs"]["steady"]
    if not steady["steady_minutes"]:
        out.append("No steady-state minute: every moment of the stream lay within 30 s of a kill, a restart or the "
                   "broker restart (use the full run, kills every 20-60 s, for steady-state rates).")
    else:
        out.append(f"Steady state ({steady['steady_minutes']:.1f} min outside the 30 s after each kill, restart and "
                   f"the broker restart): {_f(steady['producer_fenced_per_minute'])} `ProducerFenced` lines and "
                   f"{_f(steady['component_restarts_per_minute'])} component restarts per minute.")
    res = data["resume"]["summary"]
    if res["tenant_kills"]:
        nxt, ref = res["next_event_s"], res["reference_next_event_s"]
        by = ", ".join(f"{k} {v}" for k, v in res.get("resumed_by", {}).items())
        assigned = res["assigned_s"]
        own = (f" Ownership moved within median {_s(assigned['median'])} (max {_s(assigned['max'])}); resumed by: "
               f"{by}." if assigned["n"] else "")
        out.append(f"After a kill, a tenant of the killed replica published again within median {_s(nxt['median'])}"
                   f" (p90 {_s(nxt['p90'])}, max {_s(nxt['max'])}); the same measure 15 s before the kills: median "
                   f"{_s(ref['median'])}, max {_s(ref['max'])}.{own}")
    unowned = data["logs"].get("ownership", {}).get("unowned", {})
    if unowned:
        shares = sorted(v["share"] for v in unowned.values())
        longest = max(v["longest_s"] for v in unowned.values())
        out.append(f"Each tenant's pollers were down (no live owner) {shares[0]:.0%}-{shares[-1]:.0%} of the stream, "
                   f"the longest gap {longest:.0f} s: after every kill until the group reassigned it, and during "
                   "rebalances (`pollers revoked` ... `pollers assigned`) when a restarted replica rejoined.")
    stops = data["stops"]
    late = [s for s in stops if not s["within_grace"]]
    slowest = max((s["seconds"] for s in stops), default=0)
    out.append(f"SIGTERM: {len(stops) - len(late)} of {len(stops)} replicas exited 0 within the "
               f"{data['grace_seconds']:.0f} s grace period (slowest {slowest:.1f} s).")
    exits = data["chaos"]["unexpected_exits"]
    if exits:
        why = "; ".join(sorted({str(e.get("diagnosis", e["exit_code"])) for e in exits}))
        out.append(f"{len(exits)} replica process(es) exited on their own (restarted by the harness): {why}.")
    load = data.get("machine_load") or {}
    if load.get("other_cpu_seconds") and load.get("machine_busy_cpu_seconds"):
        share = load["other_cpu_seconds"] / (load["wall_seconds"] * load["cores"])
        if share > 0.1:
            out.append(f"The machine was shared: other processes used {load['other_cpu_seconds']:,.0f} CPU-seconds "
                       f"({share:.0%} of its {load['cores']} cores over the run); timings are slower than alone.")
    return out


def _handler_of(group: str) -> str | None:
    """``chaos.roster_to_canvas`` or ``chaos.roster_to_canvas.slot18`` -> ``roster_to_canvas``; None for
    the poller-ownership group."""
    name = group.split(".", 1)[1] if "." in group else group
    name = re.sub(r"\.slot\d+$", "", name)
    return None if name.startswith("_pollers") else name


def backlog_series(data: dict[str, Any]) -> dict[str, list[tuple[float, int]]]:
    """Each handler's backlog over time: its slowest consumer group's (a worker may run one group per
    tenant slot, each reading every partition and skipping the other slots' events, so their sum
    would count most records several times)."""
    out: dict[str, list[tuple[float, int]]] = {}
    for sample in data.get("backlog_timeline") or []:
        sums: dict[str, int] = {}
        for group, value in sample.items():
            handler = None if group == "t" else _handler_of(group)
            if handler is not None:
                sums[handler] = max(sums.get(handler, 0), int(value))
        for handler, value in sums.items():
            out.setdefault(handler, []).append((float(sample["t"]), value))
    return dict(sorted(out.items()))


def _backlog_summary(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    end = data["stream"]["end"]
    out = {}
    for group, series in backlog_series(data).items():
        if not series:
            continue
        peak_t, peak = max(series, key=lambda p: p[1])
        before = [v for t, v in series if t <= end]
        out[group] = {"peak": peak, "peak_t": peak_t,
                                             "at_stream_end": before[-1] if before else 0}
    return out


def _created_twice_total(data: dict[str, Any]) -> int:
    total = 0
    for t in data["tenants"].values():
        c = t["created_twice"]
        total += len(c["classroom_classes"]) + len(c["matrixlms_classes"]) + sum(len(v) for v in c["canvas"].values())
    return total


PHASE_ORDER = ("kafka start", "simulators and seeding", "gradebook courses", "replicas start", "change stream",
               "convergence wait", "SIGTERM stop", "topic scan", "dead letters", "group backlogs", "log analysis",
               "resume times")


def _phase_rows(data: dict[str, Any]) -> list[list[str]]:
    given = dict(data["phases"])
    stream = data["stream"]
    given.setdefault("change stream", round(stream["end"] - stream["start"], 1))
    phases = {k: given[k] for k in PHASE_ORDER if k in given}
    phases.update({k: v for k, v in given.items() if k not in phases})
    total = sum(float(v) for v in phases.values())
    return [[k, f"{float(v):,.1f} s", f"{float(v) / total:.0%}" if total else "-"] for k, v in phases.items()] + [
        ["**total**", f"**{total:,.1f} s**", ""]]


def render_markdown(data: dict[str, Any], png_name: str) -> str:
    opts = data["options"]
    ch = data["changes"]
    chaos = data["chaos"]
    topics = data["topics"]
    code = data["worker_code"]
    lines = [
        "# Chaos benchmark: three replicas under kills, a broker restart and upstream faults",
        "",
        f"{data['date']}, `python -m bench.chaos{' --quick' if opts['quick'] else ''}` "
        f"(seed {opts['seed']}, {opts['tenants']} tenants, {opts['replicas']} replicas). "
        f"Worker code: {code['source']} `{code['commit'][:12]}`"
        f"{' with uncommitted changes in ' + ', '.join(code.get('changed_files', [])[:6]) if code['dirty'] else ''}.",
        "",
        _ownership_sentence(data),
        "",
        "## Findings",
        "",
        *[f"- {v}" for v in verdict(data)],
        "",
        f"![events per second, kills and restarts]({png_name})",
        "",
        "## What was done",
        "",
        md_table(["", "planned", "made"], [
            ["Illuminate roster and score mutations (control API)", f"{ch['plan']['illuminate']:,}",
             f"{ch['made']['illuminate']:,}"],
            ["AB Connect standard changes (control API)", f"{ch['plan']['abconnect']:,}",
             f"{ch['made']['abconnect']:,}"],
            ["Canvas grade changes (teacher edits)", f"{ch['plan']['canvas_grades']:,}",
             f"{ch['made']['canvas_grades']:,}"],
            ["**total upstream changes**", f"**{ch['plan']['total']:,}**", f"**{ch['total_made']:,}**"],
        ], "lrr"),
        "",
        f"Over {ch['plan']['seconds']:.0f} s of stream. Illuminate kinds: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(ch["by_kind"]["illuminate"].items(), key=lambda kv: -kv[1]))
        + "; AB Connect: " + ", ".join(f"{k} {v:,}" for k, v in ch["by_kind"]["abconnect"].items())
        + f". Control calls: {ch['control_calls']:,}; failed: {ch['error_count']}.",
        "",
        md_table(["chaos", "count", "detail"], [
            ["SIGKILL of a random replica", str(len(chaos["kills"])),
             f"every {opts['kill_every'][0]:.0f}-{opts['kill_every'][1]:.0f} s, restarted "
             f"{opts['restart_after'][0]:.0f}-{opts['restart_after'][1]:.0f} s later with the same id"],
            ["restarts by the harness", str(len(chaos["restarts"])), "after kills and own exits"],
            ["replica exits nobody asked for", str(len(chaos["unexpected_exits"])),
             "; ".join(f"{e['replica']}.{e['incarnation']} at {e['t']:.0f} s: {e.get('diagnosis', e['exit_code'])}"
                       for e in chaos["unexpected_exits"]) or "none"],
            ["Kafka broker restart", "1" if chaos["broker_restart"].get("up") is not None else "0",
             _broker_detail(chaos["broker_restart"])],
            ["upstream 5xx", f"{chaos['error_rate']:.0%}", "of every simulator's API requests during the stream"],
            ["throttling bursts", str(len(chaos["bursts"])), _burst_detail(chaos["bursts"])],
        ], "lrl"),
        "",
        "## Where the time went",
        "",
        md_table(["phase", "wall", "share"], _phase_rows(data), "lrr"),
        "",
        f"CPU: replicas {data['cpu']['replica_seconds']:,.0f} s (all incarnations), Kafka "
        f"{data['cpu']['kafka_seconds']:,.0f} s, this process (simulators, change driver, checks) "
        f"{data['cpu']['harness_seconds']:,.0f} s; load average after the run "
        f"{', '.join(f'{x:.1f}' for x in data['load_after'])}. Machine: {data['machine']['CPU']}, "
        f"{data['machine']['RAM']}.",
        "",
        *_sizing_lines(data),
        "",
        "Cores in use (of " + str(data.get("machine_load", {}).get("cores", "?")) + "), averaged per phase; "
        "\"other\" is every process on the machine that is not this run's:",
        "",
        md_table(["phase", "length", "replicas", "Kafka", "harness", "other", "machine"], cpu_phases(data)
                 or [["(no samples)", "", "", "", "", "", ""]], "lrrrrrr"),
        "",
        "## Events per topic (read_committed)",
        "",
        md_table(["topic", "records", "events", "distinct ids", "ids seen twice+", "extra copies"],
                 [[f"`{t}`", f"{n:,}", _f(topics["events"].get(t)), _f(topics["unique_ids"].get(t)),
                   _f(topics["duplicate_ids"].get(t)), _f(topics["duplicate_copies"].get(t))]
                  for t, n in sorted(topics["records"].items())], "lrrrrr"),
        "",
        "State topics hold no CloudEvents, so only records are counted there. A duplicate is a second committed "
        "record with an id already on the topic (the id is deterministic: the same upstream change always gets the "
        f"same id). The scan took {topics['seconds']:.0f} s"
        + (f"; incomplete: {topics['incomplete']}" if topics["incomplete"] else "") + ".",
        "",
        "## Target objects created twice",
        "",
        md_table(["tenant", "Class classes", "MatrixLMS classes", "Canvas (by SIS id / vendor guid)"],
                 [[tid, _list(t["created_twice"]["classroom_classes"]), _list(t["created_twice"]["matrixlms_classes"]),
                   ", ".join(f"{k}: {len(v)}" for k, v in t["created_twice"]["canvas"].items()) or "0"]
                  for tid, t in data["tenants"].items()], "lrrl"),
        "",
        "From the simulators' own create counts (Class creates per `ext_class_id`, MatrixLMS class names, Canvas "
        "creates per SIS id and outcome `vendor_guid`); the convergence checks below also flag duplicates.",
        "",
        "## Dead letters",
        "",
        *_dead_letter_lines(data["dead_letters"]),
        "",
        "## Convergence",
        "",
        *_convergence_lines(data),
        "",
        "## Steady state: fencing and component restarts",
        "",
        *_steady_lines(data),
        "",
        "## Resuming a killed replica's pollers",
        "",
        *_resume_lines(data),
        "",
        "## SIGTERM at the end",
        "",
        md_table(["replica", "exit code", "seconds", f"within {data['grace_seconds']:.0f} s grace",
                  "cancelled when the grace ran out"],
                 [[s["replica"], str(s["exit_code"]), f"{s['seconds']:.1f}", "yes" if s["within_grace"] else "**no**",
                   ", ".join(s.get("cancelled_at_deadline") or []) or "-"] for s in data["stops"]], "lrrll"),
        "",
        "SIGTERM goes to every replica at once; a replica is within its grace period when it exits 0 no later than "
        "`runtime.shutdown_grace_seconds` after the signal (the worker cancels what still runs at that moment and "
        "logs `shutdown grace period over`; the last column names it).",
        "",
        "## Replica processes",
        "",
        md_table(["replica", "#", "started", "ended", "how", "exit", "CPU s", "peak RSS MB", "'worker started'"],
                 [[r["replica"], str(r["index"]), f"{r['started']:.0f}", _f(r["ended"], 0), str(r["how"]),
                   _f(r["exit_code"]), f"{r['cpu_seconds']:.0f}", f"{r['peak_rss_mb']:.0f}",
                   _f(data["logs"]["worker_started_at"].get(f"{r['replica']}.{r['index']}"), 1)]
                  for r in data["replicas"]], "lrrrlrrrr"),
        "",
        "Times in seconds from the replicas' first start. Warning and error log lines by event (all replicas):",
        "",
        md_table(["event", "lines"], [[f"`{k[:100]}`", f"{v:,}"] for k, v in sorted(
            data["logs"]["warnings_by_event"].items(), key=lambda kv: -kv[1])], "lr"),
        "",
        "## How it was measured",
        "",
        *_method_lines(data),
        "",
    ]
    if data.get("notes"):
        lines += ["Notes: " + "; ".join(data["notes"]), ""]
    return "\n".join(lines)


def _ownership_sentence(data: dict[str, Any]) -> str:
    base = "Every replica runs the same configuration (every tenant, every flow). "
    if data["logs"]["ownership_count"]:
        return base + ("This worker shares the pollers out through consumer-group membership (its `pollers "
                       "assigned` / `pollers revoked` lines are in the logs): each tenant's pollers run on one replica "
                       "at a time, and move when a replica dies or comes back.")
    return base + ("This worker has no poller ownership (no `pollers assigned` / `pollers revoked` lines): every "
                   "replica runs every poller of every tenant, so the replicas duplicate each other's polls and fence "
                   "each other's transactional producers (the poller transactional id is per tenant and poller). "
                   "These numbers are that baseline.")


def cpu_phases(data: dict[str, Any]) -> list[list[str]]:
    """Cores used by each kind of process during the stream and during the convergence wait."""
    samples = data.get("cpu_timeline") or []
    stream = data["stream"]
    rows = []
    for label, lo, hi in (("change stream", stream["start"], stream["end"]),
                          ("convergence wait", stream["end"], float("inf"))):
        inside = [x for x in samples if lo <= x["t"] <= hi]
        if len(inside) < 2:
            continue
        a, b = inside[0], inside[-1]
        span = b["t"] - a["t"]
        if span <= 0:
            continue
        used = {k: (b[k] - a[k]) / span for k in ("replicas", "kafka", "harness", "machine")}
        other = max(0.0, used["machine"] - used["replicas"] - used["kafka"] - used["harness"])
        rows.append([label, f"{span:.0f} s", f"{used['replicas']:.2f}", f"{used['kafka']:.2f}",
                     f"{used['harness']:.2f}", f"{other:.2f}", f"{used['machine']:.2f}"])
    return rows


def _sizing_lines(data: dict[str, Any]) -> list[str]:
    """What sets the run's length, from its own numbers."""
    ch = data["changes"]
    seconds = ch["plan"]["seconds"] or 1.0
    tenants = data["tenants"].values()
    ab_requests = sum(t["stats"]["abconnect"]["requests"] for t in tenants)
    ab_changes = ch["made"]["abconnect"] or 1
    conv = data["convergence"]
    end = data["stream"]["end"]
    settled = conv.get("converged_at")
    last_change = None
    history = conv.get("history") or []
    for a, b in pairwise(history):
        if (a["targets_ok"], a["differences"], a["audit_ok"]) != (b["targets_ok"], b["differences"], b["audit_ok"]):
            last_change = b["at"]
    parts = [
        f"Sizing: the stream offered {ch['total_made'] / seconds:,.0f} changes/s "
        f"({ch['made']['illuminate'] / seconds:,.0f} Illuminate, {ch['made']['abconnect'] / seconds:,.0f} AB Connect, "
        f"{ch['made']['canvas_grades'] / seconds:,.0f} Canvas grades) to {len(data['tenants'])} tenants.",
        f"AB Connect answered {ab_requests:,} requests for {ab_changes:,} standard changes "
        f"({ab_requests / ab_changes:.2f} per change, poller and handler together; its budget is 5 requests/s per "
        "partner), which is what bounds the AB share of the mix.",
    ]
    if settled is not None:
        parts.append(f"Every target matched {settled - end:.0f} s after the stream ended.")
    elif last_change is not None:
        parts.append(f"The last difference that changed did so {last_change - end:.0f} s after the stream ended.")
    return [" ".join(parts)]


def _mean(values: list[float] | None) -> str:
    return f"{sum(values) / len(values):.1f}" if values else "?"


def _list(items: list[str]) -> str:
    return f"{len(items)} ({', '.join(items[:3])})" if items else "0"


def _broker_detail(b: dict[str, Any]) -> str:
    if b.get("up") is None:
        return str(b.get("error", "not restarted"))
    return (f"`down()` at {b['began']:.0f} s (took {b['down'] - b['began']:.1f} s), `up()` done at {b['up']:.0f} s "
            f"({b['up'] - b['began']:.1f} s without a broker)")


def _burst_detail(bursts: list[dict[str, Any]]) -> str:
    by_system: dict[str, int] = {}
    for b in bursts:
        by_system[b["system"]] = by_system.get(b["system"], 0) + 1
    seconds = sum(b["seconds"] for b in bursts)
    return (", ".join(f"{k} {v}" for k, v in sorted(by_system.items())) + f"; {seconds:.0f} s in all") if bursts else ""


def _dead_letter_lines(letters: dict[str, Any]) -> list[str]:
    rows = []
    for handler, h in sorted(letters.items()):
        for _reason, r in sorted(h["by_reason"].items(), key=lambda kv: -kv[1]["count"]):
            tenants = ", ".join(f"{t} {n}" for t, n in sorted(r["tenants"].items()))
            rows.append([f"`{handler}`", str(r["count"]), r["example"][:160].replace("|", "/"), tenants])
        if not h["by_reason"]:
            rows.append([f"`{handler}`", "0", "", ""])
    if not rows:
        return ["No dead-letter topic exists (no handler dead-lettered anything)."]
    return [md_table(["handler", "letters", "reason (example)", "tenants"], rows, "lrll"),
            "", "Read with `worker.operations.read_dead_letters`; reasons grouped with their numbers masked."]


def _convergence_lines(data: dict[str, Any]) -> list[str]:
    conv = data["convergence"]
    checks = conv["checks"]
    rows = [[c["tenant"], c["target"], "OK" if c["ok"] else "**differs**",
             "" if c["ok"] else "; ".join(f"{k} {v}" for k, v in c["differences"].items())[:200],
             "" if c["ok"] else "; ".join(f"{ex[0]}" for ex in c.get("examples", {}).values() if ex)[:160]
             .replace("|", "/")] for c in checks]
    audit = [[a["tenant"], f"canvas audit: {a['kind']}", "OK" if not a["missing"] else "**missing**",
              f"{a['published']:,} published of {a['expected']:,} expected" + (
                  f"; {a['missing']:,} missing" if a["missing"] else ""),
              ", ".join(a.get("missing_examples") or [])] for a in conv["audit"]]
    history = conv["history"]
    stream_end = data["stream"]["end"]
    at = conv.get("converged_at")
    extra = {t: v for t, v in conv.get("audit_extra", {}).items() if any(v.values())}
    return [
        f"After the stream ended ({stream_end:.0f} s) the faults were cleared and every target was compared with "
        f"its source, {len(history)} times (a round of checks took {_mean(conv.get('check_seconds'))} s, and the "
        "next came after twice that or 5 s): " + (
            f"all matched at {at:.0f} s ({at - stream_end:.0f} s later), and again at the next round."
            if at is not None else ("the differences stopped changing (stalled) and the wait ended."
                                    if conv.get("stalled") else "they never all matched before the timeout.")),
        "",
        md_table(["tenant", "target", "result", "differences", "for example"], rows + audit, "lllll"),
        "",
        "Roster targets against the projection of the tenant's Illuminate district "
        "(`simulators/roster_convergence_*.py`), Canvas outcomes against AB Connect "
        "(`simulators/standards_convergence.py`), and the audit feeds: every grade-change event of the followed "
        "courses and every course event of the account in the Canvas simulator's audit store, older than the "
        "window lag, found by Canvas event id on `edusync.canvas.grade-changes` / `edusync.canvas.course-events`."
        + (f" Published audit ids unknown to Canvas: {extra}." if extra else ""),
    ]


def _steady_lines(data: dict[str, Any]) -> list[str]:
    logs = data["logs"]
    st = logs["steady"]
    rows = [["`ProducerFenced` lines", f"{logs['fenced_total']:,}", f"{st['producer_fenced_lines']:,}",
             _f(st["producer_fenced_per_minute"])],
            ["`component failed; restarting`", f"{logs['restarts_total']:,}", f"{st['component_restarts']:,}",
             _f(st["component_restarts_per_minute"])]]
    comp = [[f"`{k}`", f"{v:,}"] for k, v in st["restarts_by_component_kind"].items()][:15]
    kinds = [[k, f"{v:,}"] for k, v in logs.get("fenced_kinds", {}).items()]
    errs = [[f"`{k}`", f"{v:,}"] for k, v in st["restarts_by_error"].items()]
    after = logs.get("after_stream")
    if after:
        rows[0].append(_f(after["producer_fenced_per_minute"]))
        rows[1].append(_f(after["component_restarts_per_minute"]))
    headers = ["log line", "whole run", "steady state", "per steady minute"] + (
        ["per minute after the stream (no chaos)"] if after else [])
    return [
        md_table(headers, rows, "lrrrr"),
        "",
        f"Steady state: the stream ({logs['stream_window'][0]:.0f}-{logs['stream_window'][1]:.0f} s) without the 30 s "
        f"after every kill, restart, own exit and the broker restart: {st['steady_minutes']:.1f} minutes in "
        f"{st['spans']} stretches. Restarts by replica over the run: "
        + (", ".join(f"{k} {v:,}" for k, v in logs["restarts_by_replica"].items()) or "none") + ".",
        "",
        "Where the `ProducerFenced` lines come from (whole run):",
        "",
        md_table(["line", "count"], kinds or [["none", "0"]], "lr"),
        "",
        "Steady-state restarts by component (tenants folded) and by error:",
        "",
        md_table(["component", "restarts"], comp or [["none", "0"]], "lr"),
        "",
        md_table(["error", "restarts"], errs or [["none", "0"]], "lr"),
    ]


def _resume_lines(data: dict[str, Any]) -> list[str]:
    res = data["resume"]
    summary = res["summary"]
    logs = data["logs"]
    own = logs["ownership_count"]
    rows = []
    for k in res["per_kill"]:
        tenants = k["tenants"]

        def worst(key: str, rows: list[dict[str, Any]] = tenants) -> str:
            values = [t[key] for t in rows if t.get(key) is not None]
            return f"{max(values):.1f}" if values else "-"

        by = sorted({str(t.get("resumed_by")) for t in tenants if t.get("resumed_by")})
        rows.append([f"{k['t']:.0f}", f"{k['replica']}.{k['incarnation']}", str(len(tenants)),
                     ", ".join(by) or ("(owned no tenant)" if not tenants else k["tenants_from"]),
                     worst("assigned_s"), worst("published_log_s"), worst("next_event_s"),
                     worst("reference_next_event_s")])
    srows = []
    for key, label in (("assigned_s", "ownership 'assigned' again (another process)"),
                       ("published_log_s", "'published' line in another process"),
                       ("next_event_s", "next event of the tenant (Kafka)"),
                       ("reference_next_event_s", "  same, 15 s before the kill")):
        v = summary[key]
        srows.append([label, str(v["n"]), _f(v["median"], 2), _f(v["p90"], 2), _f(v["max"], 2), str(v["missing"])])
    how = (f"The worker logged {own:,} ownership lines ({', '.join(logs['ownership_lines'])}); a killed replica's "
           "tenants are those it owned at the kill." if own else
           "The worker logs no poller ownership yet (no `pollers assigned` / `pollers revoked` lines), so a killed "
           "replica's tenants are those it logged `published` for, and resuming is measured from Kafka: the "
           "tenant's next event record after the kill.")
    if not own:
        how += (" Every replica runs every tenant's pollers in this baseline, so the other replicas' pollers never "
                "stopped: the gaps show how quickly the survivors' (possibly fenced, backing off) pollers published "
                "again.")
    else:
        how += (" A killed replica comes back after a few seconds with the same id, and the assignment is by "
                "replica id, so its tenants often go back to it (\"itself, restarted\") rather than to a survivor.")
    first = logs.get("ownership", {}).get("first_assignment_after_start_s", {})
    if own and first:
        how += (" From 'worker started' to the process's first `pollers assigned` with tenants: "
                + ", ".join(f"{k} {_s(v)}" for k, v in sorted(first.items())) + ".")
    unowned = logs.get("ownership", {}).get("unowned", {})
    if own and unowned:
        worst_tenant = max(unowned.items(), key=lambda kv: kv[1]["longest_s"])
        how += (" Tenants without a live process running their pollers (from a kill, or a `pollers revoked`, to the "
                "next `pollers assigned`): " + ", ".join(f"{t} {v['seconds']:.0f} s ({v['share']:.1%})"
                                                          for t, v in unowned.items())
                + f" of the {data['stream']['end'] - data['stream']['start']:.0f} s stream; the longest gap "
                f"{worst_tenant[1]['longest_s']:.1f} s ({worst_tenant[0]} at {worst_tenant[1]['longest_at']:.0f} s).")
    share = logs.get("ownership", {}).get("tenant_seconds_share", {})
    if own and share:
        how += (" Share of the stream's tenant-seconds each replica ran pollers for: " + ", ".join(
            f"{r} {v:.0%}" for r, v in sorted(share.items())) + ".")
    return [
        how,
        "",
        md_table(["measure (s after the kill)", "n", "median", "p90", "max", "none found"], srows, "lrrrrr"),
        "",
        "Per kill (the worst tenant):",
        "",
        md_table(["kill at s", "process", "tenants", "resumed by", "assigned", "published (log)", "next event",
                  "ref. (15 s before)"], rows, "lllrrrrr") if rows else "No kills.",
    ]


def _method_lines(data: dict[str, Any]) -> list[str]:
    opts = data["options"]
    sizes = opts["sizes"]
    flows = opts["flows"]
    return [
        f"- {opts['tenants']} tenants, each with its own five simulators on loopback threads of the harness: an "
        f"Illuminate district ({sizes['students']} students, {sizes['staff']} staff, "
        f"{sizes['courses'] * sizes['sections_per_course']} sections of {sizes['students_per_section']}), an AB "
        f"Connect catalogue ({sizes['ab_documents']} x {sizes['ab_standards']} standards), Canvas (roster, outcomes "
        f"and {sizes['gb_courses']} gradebook courses followed by the audit pollers), Class, and MatrixLMS on a "
        f"{opts['matrix_scale']:.0f}x clock ({opts['matrix_calls_per_minute']} calls a minute, "
        + (f"`replicas: {flows['matrix_replicas']}` in its section)." if flows["matrix_replicas"] else
           "its budget split by the worker's live replica count)."),
        f"- Flows per tenant: `standards` (poll {flows['standards_poll']} s, reconcile every "
        f"{flows['standards_reconcile']:.0f} s), `illuminate_changes` (poll {flows['illuminate_poll']} s), "
        "`roster_classroom`, `roster_matrixlms` (reconcile every "
        f"{flows['matrix_reconcile']:.0f} s in {flows['matrix_reconcile_slices']} slices), `roster_canvas`, "
        f"`canvas_audit` (poll {flows['audit_poll']} s, lag {flows['audit_lag']} s).",
        f"- {opts['replicas']} replicas: `python -m worker run --config <one file>` with `EDUSYNC_REPLICA_ID=r1..` "
        f"and `OPS_PORT`; `runtime.shutdown_grace_seconds: {opts['grace']}`; each incarnation logs to its own file.",
        "- Events counted by reading every topic from the start to its high watermark with an aiokafka "
        "`read_committed` consumer after the replicas stopped; the timeline bins record timestamps (CreateTime).",
        "- Log lines used: `component failed; restarting`, any line containing `ProducerFenced`, `published` "
        "(tenant, poller), `worker started`, and ownership lines (`pollers assigned` / `pollers revoked` with "
        "`tenants`) when present.",
        f"- Run folder (config, logs): `{data['run_dir']}`.",
    ]


# -- the picture -------------------------------------------------------------------------------------


def render_png(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    topics = data["topics"]
    width = float(topics["bin_seconds"])
    timeline = topics["timeline"]
    fig, (ax1, ax2, ax5, ax3, ax4) = plt.subplots(5, 1, figsize=(12, 13), sharex=True,
                                                  gridspec_kw={"height_ratios": [3, 1.5, 1.5, 1.3, 1.3]})
    for name in (*FAMILIES, "ledger writes"):
        bins = {int(k): v for k, v in timeline.get(name, {}).items()}
        if not bins:
            continue
        xs = list(range(min(0, min(bins)), max(bins) + 1))
        ax1.plot([x * width for x in xs], [bins.get(x, 0) / width for x in xs], label=name,
                 linestyle="--" if name == "ledger writes" else "-", linewidth=1.2, color=COLORS.get(name))
    ax1.set_ylabel("records/s (committed)")
    ax1.set_title("Events published per topic family and handler ledger writes; kills (red), restarts (green), "
                  "broker restart (grey)", fontsize=9)
    changes = data["changes"]["timeline"]
    for source, family_name in (("illuminate", "illuminate"), ("abconnect", "abconnect"),
                                ("canvas_grades", "canvas audit")):
        bins = {int(k): v for k, v in changes.get(source, {}).items()}
        if bins:
            xs = list(range(min(bins), max(bins) + 1))
            ax2.plot([x * width for x in xs], [bins.get(x, 0) / width for x in xs], label=source, linewidth=1.0,
                     color=COLORS[family_name])
    ax2.set_ylabel("changes/s made")
    for handler, pts in backlog_series(data).items():
        ax5.plot([p[0] for p in pts], [p[1] for p in pts], label=handler, linewidth=1.0)
    ax5.set_ylabel("backlog (slowest group)")
    logs = data["logs"]
    fenced, restarts = logs["fenced_per_minute"], logs["restarts_per_minute"]
    minutes = range(max(len(fenced), len(restarts)))
    ax3.bar([m * 60 + 15 for m in minutes], [fenced[m] if m < len(fenced) else 0 for m in minutes], width=28,
            label="ProducerFenced lines", color="tab:red", alpha=0.7)
    ax3.bar([m * 60 + 45 for m in minutes], [restarts[m] if m < len(restarts) else 0 for m in minutes], width=28,
            label="component restarts", color="tab:purple", alpha=0.7)
    ax3.set_ylabel("per minute")
    if not any(fenced) and not any(restarts):
        ax3.text(0.5, 0.5, "no ProducerFenced line and no component restart", transform=ax3.transAxes,
                 ha="center", va="center", fontsize=9, color="grey")
    samples = data.get("cpu_timeline") or []
    for key, label in (("replicas", "replicas"), ("kafka", "Kafka"), ("harness", "harness (simulators)"),
                       ("machine", "whole machine")):
        xs = [(a["t"] + b["t"]) / 2 for a, b in pairwise(samples) if b["t"] > a["t"]]
        ys = [(b[key] - a[key]) / (b["t"] - a["t"]) for a, b in pairwise(samples)
              if b["t"] > a["t"]]
        if xs:
            ax4.plot(xs, ys, label=label, linewidth=1.0, linestyle=":" if key == "machine" else "-")
    ax4.set_ylabel("cores used")
    ax4.set_xlabel("seconds since the replicas' first start")
    chaos = data["chaos"]
    for ax in (ax1, ax2, ax5, ax3, ax4):
        for k in chaos["kills"]:
            ax.axvline(k["t"], color="tab:red", linewidth=0.8, alpha=0.6)
        for r in chaos["restarts"]:
            ax.axvline(r["t"], color="tab:green", linewidth=0.6, alpha=0.4, linestyle=":")
        b = chaos["broker_restart"]
        if b.get("began") is not None and b.get("up") is not None:
            ax.axvspan(b["began"], b["up"], color="grey", alpha=0.3)
        ax.axvline(data["stream"]["end"], color="black", linewidth=0.8, linestyle="--")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=7)
        ax.grid(alpha=0.3)
    for burst in chaos["bursts"]:
        ax2.axvspan(burst["t"], burst["t"] + burst["seconds"], color="orange", alpha=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(data: dict[str, Any], out_dir: Path = REPORTS_DIR, name: str = "chaos") -> list[Path]:
    """``<name>.json``, ``.md`` and ``.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md, png = (out_dir / f"{name}.{ext}" for ext in ("json", "md", "png"))
    js.write_text(json.dumps(data, indent=1, sort_keys=True, default=str))
    render_png(data, png)
    md.write_text(render_markdown(data, png.name))
    return [md, js, png]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    js = Path(args[0]) if args else REPORTS_DIR / "chaos.json"
    data = json.loads(js.read_text())
    png = js.with_suffix(".png")
    render_png(data, png)
    md = js.with_suffix(".md")
    md.write_text(render_markdown(data, png.name))
    print(f"wrote {md} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
