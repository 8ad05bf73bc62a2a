"""The report of ``bench.roster_sync``: the issue's numbers against its aims and FLOWS.md section 5,
per target, and a picture of MatrixLMS calls per simulated minute. Markdown, JSON and PNG."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.report import md_table

# FLOWS.md section 5, for the 20,000-student district.
MATRIX_MINIMUM = 26_309
MATRIX_AIM = 26_400
ADD_STUDENTS_AIM = 2_020
BUDGET_SHARE_AIM = 0.90
CLASS_FLOWS = 59_552
CANVAS_PER_OBJECT_AIM = 1.1
BENCH_STUDENTS = 20_000


def matrix_summary(data: dict[str, Any]) -> dict[str, Any] | None:
    """The MatrixLMS numbers: calls, windows, budget share, minutes."""
    target = data["targets"].get("matrixlms")
    if target is None:
        return None
    r = target["results"]
    budget, limit = r["budget"], r["rate_limit"]["limit"]
    first, last = r["first_call"], r["last_call"]
    span = (last - first) if first is not None and last is not None else 0.0
    # A rolling budget lets each minute's calls go at once, so N calls at exactly the budget span
    # N / budget - 1 minutes from first to last: one window is added to judge the share.
    used_minutes = span / 60.0 + 1.0 if r["calls"] else 0.0
    windows = [(datetime.fromisoformat(w["start"]).timestamp(), w["calls"], w["refused"]) for w in r["windows"]]
    interior = [c for start, c, _ in windows if first is not None and last is not None
                and start >= first and start + 60.0 <= last]
    return {
        "calls": r["calls"], "by_function": r["by_function"], "refused": r["refused"],
        "lockouts": len(r["lockouts"]), "max_window": r["max_calls_in_any_window"], "budget": budget,
        "limit": limit, "span_sim_minutes": span / 60.0, "used_sim_minutes": used_minutes,
        "share": r["calls"] / (used_minutes * budget) if used_minutes else 0.0,
        "sustained": sum(interior) / len(interior) if interior else 0.0, "interior_windows": len(interior),
        "real_minutes_at_limit": r["calls"] / limit, "real_minutes_at_budget": r["calls"] / budget,
        "scale": r["scale"], "writes": r["writes"], "reads": r["reads"], "windows": windows,
        "site_counts": r["site_counts"], "errors": {f: {s: n for s, n in by.items() if s != "200"}
                                                   for f, by in r["by_status"].items()
                                                   if any(s != "200" for s in by)},
    }


def class_summary(data: dict[str, Any]) -> dict[str, Any] | None:
    """The Class numbers: requests by kind, objects created, requests per object."""
    target = data["targets"].get("classroom")
    if target is None:
        return None
    r = target["results"]
    objects = sum(r["objects"].values())
    by_kind = {kind: sum(s.values()) for kind, s in r["by_kind"].items()}
    errors = {kind: {s: n for s, n in by.items() if not s.startswith("2")} for kind, by in r["by_kind"].items()}
    return {"requests": r["requests"], "by_kind": dict(sorted(by_kind.items(), key=lambda kv: -kv[1])),
            "errors": {k: v for k, v in errors.items() if v}, "objects": r["objects"], "objects_total": objects,
            "per_object": r["requests"] / objects if objects else 0.0, "class_creates": r["class_creates"],
            "classes_created_twice": r["classes_created_twice"], "host_enrolments": r.get("host_enrolments", 0)}


def canvas_summary(data: dict[str, Any]) -> dict[str, Any] | None:
    """The Canvas numbers: requests by kind, throttled answers, objects created, requests per object."""
    target = data["targets"].get("canvas")
    if target is None:
        return None
    r = target["results"]
    by_kind = {kind: sum(s.values()) for kind, s in r["by_kind"].items()}
    errors = {kind: {s: n for s, n in by.items() if not s.startswith("2")} for kind, by in r["by_kind"].items()}
    return {"requests": r["requests"], "by_kind": dict(sorted(by_kind.items(), key=lambda kv: -kv[1])),
            "errors": {k: v for k, v in errors.items() if v}, "gets": r["gets"], "throttled": r["throttled"],
            "created": r["created"], "objects": r["objects"], "created_twice": r["created_twice"],
            "per_object": r["requests"] / r["objects"] if r["objects"] else 0.0, "throttle": r["throttle"],
            "course_model": r["course_model"]}


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _minutes(m: float) -> str:
    return f"{m:,.1f} min ({int(m // 60)} h {int(m % 60):02d} min)" if m >= 60 else f"{m:,.1f} min"


def _seconds(target: dict[str, Any]) -> str:
    return f"{target['settled_at']:,.0f} s" if target.get("settled_at") is not None else "not converged"


def _aims(data: dict[str, Any], m: dict[str, Any] | None, c: dict[str, Any] | None,
          cv: dict[str, Any] | None) -> list[list[str]]:
    rows: list[list[str]] = []
    full = data["options"]["students"] == BENCH_STUDENTS
    if m is not None:
        add = m["by_function"].get("add_students_to_class", 0)
        rows += [
            ["MatrixLMS calls", _n(m["calls"]), f"<= {MATRIX_AIM:,} (minimum {MATRIX_MINIMUM:,})" if full else "-",
             _ok(m["calls"] <= MATRIX_AIM) if full else ""],
            ["`add_students_to_class` calls", _n(add), f"<= {ADD_STUDENTS_AIM:,}" if full else "-",
             _ok(add <= ADD_STUDENTS_AIM) if full else ""],
            ["lockouts (rate-limit exceptions)", str(m["lockouts"]), "0", _ok(m["lockouts"] == 0)],
            ["refused calls", str(m["refused"]), "0", _ok(m["refused"] == 0)],
            ["most calls in any rolling 60 s (simulated clock)", str(m["max_window"]),
             f"<= {m['budget']} budget (limit {m['limit']})", _ok(m["max_window"] <= m["budget"])],
            ["share of the budget used over the sync", f"{100 * m['share']:.1f}%",
             f">= {100 * BUDGET_SHARE_AIM:.0f}%", _ok(m["share"] >= BUDGET_SHARE_AIM)],
            ["sync on the simulator's clock (first to last call, + 1 window)", _minutes(m["used_sim_minutes"]),
             f"x{m['scale']:g} time scale", ""],
            ["the same calls in real time at 120 / 100 calls a minute",
             f"{_minutes(m['real_minutes_at_limit'])} / {_minutes(m['real_minutes_at_budget'])}", "", ""],
        ]
    if cv is not None:
        rows.append(["Canvas requests per created object", f"{cv['per_object']:.3f} ({_n(cv['objects'])} objects)",
                     f"<= {CANVAS_PER_OBJECT_AIM}", _ok(cv["per_object"] <= CANVAS_PER_OBJECT_AIM)])
        rows.append(["Canvas throttled answers", _n(cv["throttled"]), "0", _ok(cv["throttled"] == 0)])
    if c is not None:
        rows.append(["Class requests", _n(c["requests"]), f"FLOWS.md: {CLASS_FLOWS:,}" if full else "-", ""])
        rows.append(["Class requests per created object", f"{c['per_object']:.3f} ({_n(c['objects_total'])} objects)",
                     "", ""])
    sync = data["sync_seconds"]
    rows += [
        ["wall time, worker start to the last target converged", f"{sync:,.0f} s ({sync / 60:.1f} min)", "", ""],
        ["events published on the Illuminate topics", _n(data["published"]), "", ""],
        ["events per second end to end (published / wall time)", f"{data['published'] / sync:,.0f}" if sync else "-",
         "", ""],
        ["roster events each handler consumed (students, staff, sections, rosters)",
         " / ".join(f"{name} {_n(_consumed(t))}" for name, t in data["targets"].items()), "", ""],
        ["worker peak RSS (VmHWM)", f"{data['worker']['peak_rss_mb']:.0f} MB", "", ""],
    ]
    return rows


def _consumed(target: dict[str, Any]) -> float:
    """Events a handler finished with: a parked or retried event is counted again when it is done."""
    return float(sum(v for k, v in target["outcomes"].items() if k not in ("deferred", "retried")))


def _ok(good: bool) -> str:
    return "ok" if good else "MISSED"


def write_report(data: dict[str, Any], out_dir: Path) -> Path:
    """``roster_sync.md``, ``.json`` and ``.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    m, c, cv = matrix_summary(data), class_summary(data), canvas_summary(data)
    opts, counts = data["options"], data["counts"]
    converged = all(t["converged"] for t in data["targets"].values())
    lines = [
        "# Roster flows, initial sync: benchmark",
        "",
        f"Produced by `python -m bench.roster_sync` on {data['date']}. District: `district_spec({opts['students']})` "
        f"seeded in the Illuminate simulator: {counts['sites']} sites, {_n(counts['students'])} students, "
        f"{_n(counts['staff'])} staff, {counts['courses']} courses, {counts['terms']} terms, {_n(counts['sections'])} "
        f"sections, {_n(counts['rosters'])} roster rows. Targets: {', '.join(data['targets'])}, each starting empty. "
        f"The worker is `python -m worker run` in its own process (flows illuminate_changes with a "
        f"{opts['poll_interval']:g} s poll interval and no score endpoints, "
        + ", ".join(t["flow"] for t in data["targets"].values())
        + f"), against {'a Kafka broker started for the run' if data['own_broker'] else 'a shared Kafka broker'}.",
        "",
    ]
    if m is not None:
        lines += [
            f"MatrixLMS keeps its documented limit ({m['limit']} calls in any rolling 60 s, then a "
            f"{data['targets']['matrixlms']['results']['rate_limit']['lockout_seconds']:g} s lockout of the site) on a "
            f"clock {m['scale']:g} times faster than real time; the worker's budget is `calls_per_minute: "
            f"{m['budget']}` with `time_scale: {m['scale']:g}`. At x{m['scale']:g} a call has "
            f"{60_000 / m['budget'] / m['scale']:.0f} ms of real time if the budget is to stay full; where this "
            "machine answered slower, the simulated minutes overstate what a real site would take (see \"Where "
            "the time between calls went\").",
            "",
        ]
    verdict = "every target converged to Illuminate" if converged else "NOT every target converged"
    if data["timed_out"]:
        verdict += f" (timed out after {data['wall_seconds']:.0f} s: the numbers are partial)"
    lines += ["## Result", "", f"Verdict: {verdict}.", "",
              md_table(["measure", "value", "aim", ""], _aims(data, m, c, cv), "lrll"), ""]
    lines += _convergence(data)
    if m is not None:
        lines += _matrix_section(data, m)
    if c is not None:
        lines += _class_section(data, c)
    if cv is not None:
        lines += _canvas_section(data, cv)
    for name, target in data["targets"].items():
        if name not in ("matrixlms", "classroom", "canvas"):  # a target added later gets the generic section
            lines += [f"## {name}", "", "```", json.dumps(target["results"], indent=1)[:4000], "```", ""]
    lines += _run_section(data)
    if _plot(data, m, out_dir / "roster_sync.png"):
        lines += ["## Calls per simulated minute and progress", "", "![MatrixLMS calls per minute](roster_sync.png)",
                  ""]
    lines += ["## Machine", "", md_table(["", ""], [[k, v] for k, v in data["machine"].items()]), ""]
    path = out_dir / "roster_sync.md"
    path.write_text("\n".join(lines))
    slim = {k: v for k, v in data.items() if k != "samples"}
    summary = {"matrixlms": {k: v for k, v in (m or {}).items() if k != "windows"}, "classroom": c, "canvas": cv}
    (out_dir / "roster_sync.json").write_text(json.dumps({**slim, "summary": summary}, indent=1, default=str))
    return path


def _convergence(data: dict[str, Any]) -> list[str]:
    rows = []
    for name, t in data["targets"].items():
        out = t["outcomes"]
        rows.append([name, "yes" if t["converged"] else "NO", _seconds(t),
                     ", ".join(f"{k} {v:,.0f}" for k, v in sorted(out.items()) if v) or "-",
                     ", ".join(f"{k} {v}" for k, v in t["differences"].items()) or "none"])
    return ["## Convergence per target", "",
            md_table(["target", "converged", "synced by (s after worker start)", "handler outcomes",
                      "differences left"], rows, "llrll"), "",
            "Checked against the projection of Illuminate's state (`simulators/roster_projection.py`) every "
            f"{data['options']['check_every']:g} s once a target had no new request for 2 s, every 30 s while busy; "
            "\"synced by\" is when the target answered its last new request before the check that found it "
            "converged (a later check confirmed it). Checks (they hold the simulator's lock): "
            + "; ".join(f"{name} {t.get('checks', 0)} taking {t.get('check_seconds_total', 0):.1f} s, at most "
                        f"{1000 * t.get('check_seconds_max', 0):.0f} ms" for name, t in data["targets"].items())
            + ".", ""]


def _matrix_section(data: dict[str, Any], m: dict[str, Any]) -> list[str]:
    flows = {"add_user": 20_800, "add_class": 1_836, "add_students_to_class": 1_836, "add_teachers_to_class": 1_836,
             "get_all_classes": 1}
    full = data["options"]["students"] == BENCH_STUDENTS
    rows = [[f"`{f}`", _n(n), _n(flows[f]) if full and f in flows else "-"] for f, n in m["by_function"].items()]
    rows.append(["**total**", f"**{_n(m['calls'])}**", f"**{MATRIX_MINIMUM:,}**" if full else "-"])
    target = data["targets"]["matrixlms"]
    lines = ["## MatrixLMS", "", md_table(["function", "calls", "FLOWS.md 5 minimum"], rows, "lrr"), "",
             f"- Writes {_n(m['writes'])}, reads {_n(m['reads'])}; answers other than 200: {m['errors'] or 'none'}.",
             f"- Site afterwards: {m['site_counts']}.",
             f"- Rolling-window maximum {m['max_window']} (budget {m['budget']}, limit {m['limit']}); mean of the "
             f"{m['interior_windows']} full fixed minutes between first and last call {m['sustained']:.1f} calls.",
             f"- First to last call {m['span_sim_minutes']:,.1f} simulated minutes; share of the budget = calls / "
             f"((span + 1 window) x {m['budget']}) = {100 * m['share']:.1f}%.",
             f"- The worker's budget waited {data['matrix_budget_wait_sim_seconds'] / 60:,.1f} simulated minutes "
             "in all "
             "(`edusync_upstream_throttle_wait_seconds_total`): time the handler had a call ready and the budget "
             "held it back.",
             f"- In real time the sync took {_seconds(target)} after the worker started at x{m['scale']:g}."]
    g = data["targets"]["matrixlms"]["results"].get("gaps")
    if g:
        total = g["budget_full_sim_s"] + g["back_to_back_sim_s"] + g["stalled_sim_s"]

        def share(v: float) -> str:
            return f"{v / 60:,.1f} min ({100 * v / total:.0f}%)" if total else "-"

        lines += ["", "### Where the time between calls went", "",
                  md_table(["between two calls", "calls", "simulated time"], [
                      ["the budget was full (the call waited for the window)", _n(g["budget_waits"]),
                       share(g["budget_full_sim_s"])],
                      [f"back to back, at most 100 ms real (one call in flight: the round trip; median "
                       f"{g['back_to_back_p50_real_ms']:.1f} ms, p90 {g['back_to_back_p90_real_ms']:.1f} ms, p99 "
                       f"{g['back_to_back_p99_real_ms']:.1f} ms real)", _n(g["back_to_back"]),
                       share(g["back_to_back_sim_s"])],
                      ["a stall over 100 ms real (no call ready)", _n(g["stalls"]), share(g["stalled_sim_s"])],
                  ], "lrr"), "",
                  f"A full budget at x{m['scale']:g} needs a call every "
                  f"{60_000 / m['budget'] / m['scale']:.0f} ms real; "
                  "a round trip above that leaves part of the budget unused even with a call always ready. A call is "
                  "counted as waiting for the budget when the call "
                  f"{m['budget']} places before it is at most 61 simulated seconds older (the budget's window plus "
                  "its margin and slot dating)."]
    return [*lines, ""]


def _class_section(data: dict[str, Any], c: dict[str, Any]) -> list[str]:
    rows = [[f"`{k}`", _n(n)] for k, n in c["by_kind"].items()]
    rows.append(["**total**", f"**{_n(c['requests'])}**"])
    target = data["targets"]["classroom"]
    settled = target.get("settled_at")
    rate = f"{c['requests'] / settled:,.0f} requests/s" if settled else "-"
    objects = ", ".join(f"{k} {_n(v)}" for k, v in c["objects"].items())
    return ["## Class", "", md_table(["request", "count"], rows, "lr"), "",
            f"- Objects edusync created in Class: {objects} = {_n(c['objects_total'])}; "
            f"{c['per_object']:.3f} requests per object (each class's host is enrolled by its POST: "
            f"{_n(c['host_enrolments'])} more enrolments without a request). Classes created {_n(c['class_creates'])}, "
            f"created twice {c['classes_created_twice']}.",
            f"- Non-2xx answers: {c['errors'] or 'none'}.",
            f"- FLOWS.md 5 counts {CLASS_FLOWS:,} requests for this district (1,836 class POSTs + 1,836 roster GETs "
            "+ 55,080 enrolment POSTs + 800 staff PUTs).",
            f"- Synced {_seconds(target)} after the worker started: {rate}.", ""]


def _canvas_section(data: dict[str, Any], cv: dict[str, Any]) -> list[str]:
    rows = [[f"`{k}`", _n(n)] for k, n in cv["by_kind"].items()]
    rows.append(["**total**", f"**{_n(cv['requests'])}**"])
    target = data["targets"]["canvas"]
    settled = target.get("settled_at")
    rate = f"{cv['requests'] / settled:,.0f} requests/s" if settled else "-"
    created = ", ".join(f"{k} {_n(v)}" for k, v in cv["created"].items())
    t = cv["throttle"]
    return ["## Canvas", "", md_table(["request", "count"], rows, "lr"), "",
            f"- Course model `{cv['course_model']}`. Objects created: {created} = {_n(cv['objects'])}; "
            f"{cv['per_object']:.3f} requests per object, {_n(cv['gets'])} of them GETs; created twice (same SIS "
            f"id): {cv['created_twice'] or 'none'}.",
            f"- Quota: capacity {t['capacity']:g}, {t['leak_rate']:g} units a second back, {t['cost_per_request']:g} "
            f"a request (the standards bench's and the demo's setting); throttled answers {_n(cv['throttled'])}.",
            f"- Non-2xx answers: {cv['errors'] or 'none'}.",
            f"- Synced {_seconds(target)} after the worker started: {rate}.", ""]


def _run_section(data: dict[str, Any]) -> list[str]:
    w = data["worker"]
    polls = ", ".join(f"{p.removeprefix('illuminate.')} {s:.1f}" for p, s in sorted(data["poll_seconds"].items()) if s)
    events = ", ".join(f"{k} {v}" for k, v in sorted(w["log_events"].items(), key=lambda kv: -kv[1])[:8]) or "none"
    return ["## The run", "",
            f"- Worker: peak RSS {w['peak_rss_mb']:.0f} MB, CPU {w['cpu_seconds']:,.0f} s (user + system) in "
            f"{data['wall_seconds']:,.0f} s ({100 * w['cpu_seconds'] / max(data['wall_seconds'], 1e-9):.0f}% of one "
            f"core); exit code {w['exit_code']} after SIGTERM.",
            f"- Bench process (the three simulators on loopback threads, the checkers): CPU "
            f"{data['bench_process_cpu_seconds']:,.0f} s.",
            f"- Illuminate: {_n(data['illuminate_requests'])} requests; poll time by poller (s): {polls or '-'}.",
            "- Events published by topic: " + ", ".join(
                f"{t.removeprefix('edusync.illuminate.')} {_n(v)}"
                for t, v in sorted(data["published_by_topic"].items())),
            f"- Worker log lines (warning and up) by event: {events}.",
            f"- Load average before / after: {' '.join(f'{x:.2f}' for x in data['load_before'])} / "
            f"{' '.join(f'{x:.2f}' for x in data['load_after'])}. The machine has "
            f"{data['machine']['CPU'].split(', ')[-1]}; other work on it (another engineer's tests) shares them, so "
            "times are noisy; call counts are not.", ""]


def _plot(data: dict[str, Any], m: dict[str, Any] | None, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7))
    if m is not None and m["windows"]:
        first = m["windows"][0][0]
        xs = [(start - first) / 60.0 for start, _, _ in m["windows"]]
        top.bar(xs, [c for _, c, _ in m["windows"]], width=0.9, label="calls")
        top.bar(xs, [r for _, _, r in m["windows"]], width=0.9, color="red", label="refused")
        top.axhline(m["budget"], color="green", linestyle="--", linewidth=1, label=f"budget {m['budget']}/min")
        top.axhline(m["limit"], color="grey", linestyle=":", linewidth=1, label=f"MatrixLMS limit {m['limit']}/min")
        top.set_ylim(0, m["limit"] * 1.35)
        top.legend(loc="upper center", ncol=4, fontsize=8)
        top.set_title(f"MatrixLMS: {m['calls']:,} calls, max {m['max_window']} in any rolling 60 s, "
                      f"{m['lockouts']} lockouts, {100 * m['share']:.0f}% of the budget")
    top.set_xlabel("simulated minutes (fixed 60 s windows)")
    top.set_ylabel("calls in the minute")
    samples = data["samples"]
    ts = [s["t"] for s in samples]
    for name in data["targets"]:
        bottom.plot(ts, [s["requests"].get(name, 0) for s in samples], label=f"{name} requests")
    bottom.plot(ts, [s["published"] for s in samples], label="Illuminate events published", linestyle="--")
    bottom.set_xlabel("real seconds since the worker started")
    bottom.set_ylabel("cumulative count")
    rss = bottom.twinx()
    rss.plot(ts, [s["rss_mb"] for s in samples], color="black", linewidth=0.8, label="worker RSS (MB)")
    rss.set_ylabel("worker RSS (MB)")
    lines, labels = bottom.get_legend_handles_labels()
    more, more_labels = rss.get_legend_handles_labels()
    bottom.legend(lines + more, labels + more_labels, loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
