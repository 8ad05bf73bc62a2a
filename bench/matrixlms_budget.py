"""Benchmark of the MatrixLMS per-site call budget under the simulator's time scale.

    python -m bench.matrixlms_budget [--scale 60] [--calls 6000] [--calls-per-minute 100] [--replicas 2]

The MatrixLMS simulator runs in its own process with its clock ``--scale`` times faster than
real time and the documented limit (120 calls in any rolling 60 s, then a 60 s lockout of the
site, seed 000:L23). Two worker processes call the same site, each configured as one of
``--replicas`` replicas of a ``--calls-per-minute`` site budget, so each gets budget / replicas.
Each runs two ``MatrixLMSClient`` instances (one per api_key of the site; one budget per site
in the process) and four concurrent tasks making ``--calls`` calls between them: get_version,
get_users_with_ids (10 ids), get_students_for_class and an add_user upsert, in turn. Budget
clocks are ``BudgetClock.scaled(scale)``, so a simulated minute is 1/scale of a real one.

From the simulator's ``/_sim/stats``: calls, refused calls, lockouts, the most calls in any
rolling 60 s, and calls per fixed 60 s window; the sustained rate is the mean of the windows
both processes ran through, as a share of the site budget. Writes
``bench/reports/matrixlms_budget.md``, ``.json`` and ``.png`` (calls per 60 s window).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import httpx

from bench.report import REPORTS_DIR, machine_info, md_table
from deploy.local_kafka import free_port
from simulators.matrixlms import DEMO_API_KEY
from worker.clients.errors import UpstreamError
from worker.clients.matrixlms import MatrixLMSClient, UserAttributes
from worker.clients.matrixlms_budget import DOCUMENTED_LIMIT, BudgetClock
from worker.logs import configure_logging

SECOND_KEY = "77-12-b3nch5econd"  # a second administrator key of the simulated site
SITE = "demo"
OPERATIONS = ("get_version", "get_users_with_ids", "get_students_for_class", "add_user")


# -- one worker process -----------------------------------------------------------------------------


async def _worker(args: argparse.Namespace) -> dict[str, Any]:
    """Two clients of one site, four tasks sharing ``args.calls``; returns what it measured."""
    state = httpx.get(f"{args.url}/_sim/state", params={"site": SITE}, timeout=60).json()["sites"][SITE]
    user_ids = [u["id"] for u in state["users"]]
    class_ids = [c["id"] for c in state["classes"]]
    clock = BudgetClock.scaled(args.scale)
    clients = [MatrixLMSClient(args.url, key, calls_per_minute=args.calls_per_minute, replicas=args.replicas,
                               clock=clock) for key in (DEMO_API_KEY, SECOND_KEY)]
    assert clients[0].budget is clients[1].budget, "one budget per site in a process"
    remaining = [args.calls]
    errors: dict[str, int] = {}
    done_by_op = dict.fromkeys(OPERATIONS, 0)

    async def task(client: MatrixLMSClient, offset: int) -> None:
        n = offset
        while remaining[0] > 0:
            remaining[0] -= 1
            op = OPERATIONS[n % len(OPERATIONS)]
            try:
                if op == "get_version":
                    await client.get_version()
                elif op == "get_users_with_ids":
                    await client.get_users_with_ids(user_ids[n % len(user_ids):][:10] or user_ids[:10])
                elif op == "get_students_for_class":
                    await client.get_students_for_class(class_ids[n % len(class_ids)])
                else:
                    k = n % 50
                    await client.add_user(UserAttributes(
                        userid=f"bench{args.name}{k}", student_id=f"B-{args.name}-{k}", first_name="Bench",
                        last_name=f"Student{k}", account_types=("student",)))
                done_by_op[op] += 1
            except UpstreamError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            n += 4

    sim_start = httpx.get(f"{args.url}/_sim/clock").json()["epoch"]
    wall = time.monotonic()
    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(task, clients[i % 2], i)
    wall = time.monotonic() - wall
    sim_end = httpx.get(f"{args.url}/_sim/clock").json()["epoch"]
    budget = clients[0].budget
    for client in clients:
        await client.aclose()
    return {"name": args.name, "calls": budget.stats.admitted, "by_operation": done_by_op, "errors": errors,
            "limit_per_minute": budget.limit, "lockouts_seen": budget.stats.lockouts,
            "waited_sim_seconds": budget.stats.waited_seconds, "sim_start": sim_start, "sim_end": sim_end,
            "wall_seconds": wall}


def worker_main(args: argparse.Namespace) -> int:
    """Run one worker process and write its JSON result."""
    configure_logging("warning")
    result = anyio.run(_worker, args)
    Path(args.result).write_text(json.dumps(result))
    return 0


# -- the run: simulator, two processes, statistics ---------------------------------------------------


def _start_simulator(port: int, students: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.matrixlms", "--port", str(port), "--size", str(students)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the simulator exited: {log.read_text()[-500:]}")
        try:
            httpx.get(url + "/_sim/clock", timeout=1).raise_for_status()
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the simulator did not start within 60 s")


def run_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Serve the simulator, run both processes against it, collect the simulator's statistics."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sim = _start_simulator(port, args.students, workdir / "simulator.log")
    try:
        httpx.put(url + "/_sim/keys", json={"keys": {SECOND_KEY: {"site": SITE}}}).raise_for_status()
        httpx.delete(url + "/_sim/stats").raise_for_status()
        httpx.post(url + "/_sim/clock", json={"scale": args.scale}).raise_for_status()
        workers = []
        for name in ("A", "B"):
            result = workdir / f"worker-{name}.json"
            cmd = [sys.executable, "-m", "bench.matrixlms_budget", "worker", "--url", url, "--name", name,
                   "--calls", str(args.calls), "--scale", str(args.scale), "--replicas", str(args.replicas),
                   "--calls-per-minute", str(args.calls_per_minute), "--result", str(result)]
            log = workdir / f"worker-{name}.log"
            workers.append((subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT), result, log))
        started = time.monotonic()
        results = []
        for proc, result, log in workers:
            if proc.wait(timeout=args.timeout) != 0:
                raise RuntimeError(f"worker failed: {log.read_text()[-2000:]}")
            results.append(json.loads(result.read_text()))
        wall = time.monotonic() - started
        stats = httpx.get(url + "/_sim/stats", params={"site": SITE}).json()["sites"][SITE]
        rate_limit = httpx.get(url + "/_sim/config").json()["rate_limit"]
        lockout_lines = sum((log.read_text().count("matrixlms.rate_limited")) for _, _, log in workers)
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    return {"args": {k: v for k, v in vars(args).items() if k != "out_dir"}, "workers": results, "stats": stats,
            "rate_limit": rate_limit, "wall_seconds": wall, "lockout_log_lines": lockout_lines,
            "machine": machine_info("not used"), "date": datetime.now().isoformat(timespec="seconds")}


def summarize(data: dict[str, Any]) -> dict[str, Any]:
    """The numbers the report states, from the simulator's statistics and the workers' results."""
    stats, workers = data["stats"], data["workers"]
    budget = data["args"]["calls_per_minute"]
    window = stats["window_seconds"]
    both_from = max(w["sim_start"] for w in workers)
    both_to = min(w["sim_end"] for w in workers)
    windows = [(datetime.fromisoformat(w["start"]).timestamp(), w["calls"], w["refused"]) for w in stats["windows"]]
    interior = [calls for start, calls, _ in windows if start >= both_from and start + window <= both_to]
    span = max(w["sim_end"] for w in workers) - min(w["sim_start"] for w in workers)
    sustained = sum(interior) / len(interior) if interior else 0.0
    return {
        "calls": stats["calls"], "refused": stats["refused"], "lockouts": len(stats["lockouts"]),
        "max_in_rolling_window": stats["max_calls_in_any_window"], "budget": budget,
        "documented_limit": DOCUMENTED_LIMIT, "interior_windows": len(interior),
        "sustained_per_minute": sustained, "sustained_share": sustained / budget if budget else 0.0,
        "min_window": min(interior) if interior else 0, "max_window": max(interior) if interior else 0,
        # A rolling budget sends each minute's calls at the minute's start, so the first-to-last span
        # is one window short of the time the calls used up.
        "span_sim_minutes": span / 60.0, "overall_per_minute": stats["calls"] / ((span + window) / 60.0),
        "errors": dict(sum((Counter(w["errors"]) for w in workers), Counter())),
        "windows": windows,
    }


def write_report(data: dict[str, Any], out_dir: Path) -> Path:
    """Markdown, JSON and PNG into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    s = summarize(data)
    args = data["args"]
    per_process = args["calls_per_minute"] // args["replicas"]
    ok = s["lockouts"] == 0 and s["refused"] == 0 and s["max_in_rolling_window"] <= s["budget"]
    workers = data["workers"]
    lines = [
        "# MatrixLMS per-site call budget: benchmark",
        "",
        f"Produced by `python -m bench.matrixlms_budget` on {data['date']}. The MatrixLMS simulator runs at "
        f"{args['scale']:g}x simulated time with the documented limit ({data['rate_limit']['limit']} calls in any "
        f"rolling {data['rate_limit']['window_seconds']:g} s, then a {data['rate_limit']['lockout_seconds']:g} s "
        f"lockout of the whole site, seed 000:L23). Two processes call the same site, each configured "
        f"`calls_per_minute: {args['calls_per_minute']}`, `replicas: {args['replicas']}` (so {per_process} calls a "
        f"minute each); each runs two client instances (two api_keys of the site, one shared budget) and four "
        f"concurrent tasks making {args['calls']:,} calls (get_version, get_users_with_ids, get_students_for_class, "
        f"add_user in turn). Simulated minutes below; {data['wall_seconds']:.0f} s of wall time in all.",
        "",
        "## Result",
        "",
        md_table(["measure", "value", "aim"], [
            ["calls answered by the simulator", f"{s['calls']:,}", f"{2 * args['calls']:,}"],
            ["rate-limit exceptions (lockouts)", f"{s['lockouts']}", "0"],
            ["calls refused", f"{s['refused']}", "0"],
            ["most calls in any rolling 60 s (simulator's clock)", f"{s['max_in_rolling_window']}",
             f"<= {s['budget']} (budget; the site allows {s['documented_limit']})"],
            ["sustained rate, mean of the 60 s windows both processes ran through",
             f"{s['sustained_per_minute']:.1f} calls/min = {100 * s['sustained_share']:.1f}% of the budget "
             f"({s['interior_windows']} windows, {s['min_window']}-{s['max_window']})", ">= 95%"],
            ["overall rate: calls / (first-to-last span + one window)", f"{s['overall_per_minute']:.1f} calls/min; "
             f"span {s['span_sim_minutes']:.1f} simulated min", "(start and end included)"],
            ["client errors", str(s["errors"] or "none"), "none"],
        ], "lrl"),
        "",
        f"Verdict: {'OK' if ok else 'FAILED'}: "
        + ("no lockout, no refused call and no rolling minute above the budget."
           if ok else "the budget was exceeded (see the table)."),
        "",
        "## Per process",
        "",
        md_table(["process", "calls", "limit/min", "waited for the budget (sim s)", "lockouts seen", "wall s"], [
            [w["name"], f"{w['calls']:,}", str(w["limit_per_minute"]), f"{w['waited_sim_seconds']:,.0f}",
             str(w["lockouts_seen"]), f"{w['wall_seconds']:.0f}"] for w in workers], "lrrrrr"),
        "",
        "## Reading the numbers",
        "",
        f"- Each process admits at most {per_process} calls in any rolling 60 s of its own clock, one call in "
        "flight, and dates each call's slot when its answer arrives: the simulator counts a call when it "
        "arrives, somewhere between sending and answer, so the next window never opens early on the "
        "simulator's clock. Two processes at budget / replicas each stay within the site budget together.",
        "- A rolling window admits bursts: a process's calls for a minute go out as fast as one call in "
        "flight allows, then it waits for the oldest slot to expire. Fixed 60 s windows (the histogram) "
        "therefore vary while their rolling maximum stays at the budget.",
        "- The shortfall from 100% is the time each call takes (its slot is dated at its answer) plus a "
        "0.1 s margin per window.",
        "",
    ]
    if _plot(s, out_dir / "matrixlms_budget.png"):
        lines += ["## Calls per 60 s window", "", "![calls per 60 s window](matrixlms_budget.png)", ""]
    lines += ["## Machine", "", md_table(["", ""], [[k, v] for k, v in data["machine"].items() if k != "Kafka"]), ""]
    path = out_dir / "matrixlms_budget.md"
    path.write_text("\n".join(lines))
    (out_dir / "matrixlms_budget.json").write_text(json.dumps({**data, "summary": s}, indent=1))
    return path


def _plot(s: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    first = s["windows"][0][0] if s["windows"] else 0.0
    xs = [(start - first) / 60.0 for start, _, _ in s["windows"]]
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.bar(xs, [c for _, c, _ in s["windows"]], width=0.8, label="calls (both processes)")
    ax.bar(xs, [r for _, _, r in s["windows"]], width=0.8, color="red", label="refused")
    ax.axhline(s["budget"], color="green", linestyle="--", linewidth=1, label=f"budget {s['budget']}/min")
    ax.axhline(s["documented_limit"], color="grey", linestyle=":", linewidth=1,
               label=f"MatrixLMS limit {s['documented_limit']}/min")
    ax.set_xlabel("simulated minutes (fixed 60 s windows)")
    ax.set_ylabel("calls in the window")
    ax.set_ylim(0, s["documented_limit"] * 1.35)
    ax.set_title(f"MatrixLMS site budget: {s['calls']:,} calls, max {s['max_in_rolling_window']} in any rolling "
                 f"60 s, {s['lockouts']} lockouts")
    ax.legend(loc="upper center", ncol=4, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    """Parse arguments; run the bench (or, with ``worker``, one worker process)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "worker":
        parser = argparse.ArgumentParser(prog="python -m bench.matrixlms_budget worker")
        for name in ("--url", "--name", "--result"):
            parser.add_argument(name, required=True)
        parser.add_argument("--calls", type=int, required=True)
        parser.add_argument("--scale", type=float, required=True)
        parser.add_argument("--replicas", type=int, required=True)
        parser.add_argument("--calls-per-minute", type=int, required=True)
        return worker_main(parser.parse_args(argv[1:]))
    parser = argparse.ArgumentParser(prog="python -m bench.matrixlms_budget", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=60.0, help="simulated seconds per real second")
    parser.add_argument("--calls", type=int, default=6000, help="calls per process")
    parser.add_argument("--calls-per-minute", type=int, default=100, help="the site budget, all replicas together")
    parser.add_argument("--replicas", type=int, default=2, help="each process gets calls-per-minute / replicas")
    parser.add_argument("--students", type=int, default=1000, help="seeded into the simulated site")
    parser.add_argument("--timeout", type=float, default=900.0, help="real seconds a worker may take")
    parser.add_argument("--out-dir", type=Path, default=REPORTS_DIR)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edusync-bench-matrixlms-") as tmp:
        data = run_bench(args, Path(tmp))
    print(f"report: {write_report(data, args.out_dir)}")
    s = summarize(data)
    print(f"calls={s['calls']} lockouts={s['lockouts']} refused={s['refused']} "
          f"max_rolling_60s={s['max_in_rolling_window']} sustained={100 * s['sustained_share']:.1f}%")
    return 0 if s["lockouts"] == 0 and s["max_in_rolling_window"] <= s["budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
