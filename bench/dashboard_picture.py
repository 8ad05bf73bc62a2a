"""A picture of the Grafana dashboard from real data, for the README (no Grafana runs here).

Runs the demo's worker and traffic on a local Kafka, a real Prometheus scraping it every second,
an AB Connect outage in the middle, then plots every panel's queries (from the checked-in
dashboard JSON, over the run) with matplotlib into deploy/grafana/dashboard.png.

    python -m bench.dashboard_picture [--bootstrap HOST:PORT] [--seconds 150] [--outage 40]
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.demo_process import DemoProcess
from deploy.grafana_dashboard import OUTPUT as DASHBOARD
from deploy.local_kafka import LocalKafka, free_port
from deploy.prometheus_server import PrometheusServer

PICTURE = DASHBOARD.parent / "dashboard.png"
COLUMNS = 3
MAX_SERIES = 8  # per panel, the largest ones: a legend of fifty lines says nothing


def _legend(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template).strip() or "value"


def _panels() -> list[dict[str, Any]]:
    board = json.loads(DASHBOARD.read_text())
    panels: list[dict[str, Any]] = board["panels"]
    return [p for p in panels if p.get("targets")]


def collect(prom: PrometheusServer, start: float, end: float) -> list[tuple[str, str, list[tuple[str, Any]]]]:
    """Per panel: title, unit and its (legend, [[t, value], ...]) series over the run."""
    out = []
    for panel in _panels():
        lines: list[tuple[str, Any]] = []
        for target in panel["targets"]:
            expr = target["expr"].replace("$tenant", ".*")
            for series in prom.query_range(expr, start, end, 2.0):
                lines.append((_legend(target.get("legendFormat", ""), series["metric"]), series["values"]))
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        out.append((panel["title"], unit, lines))
    return out


def draw(panels: list[tuple[str, str, list[tuple[str, Any]]]], start: float, outage: tuple[float, float],
         path: Path) -> None:
    """The grid of panels, the outage shaded in each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = -(-len(panels) // COLUMNS)
    fig, axes = plt.subplots(rows, COLUMNS, figsize=(6 * COLUMNS, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (title, unit, lines) in zip(axes.flat, panels, strict=False):
        def peak(line: tuple[str, Any]) -> float:
            values = [float(v) for _, v in line[1] if v not in ("NaN", "+Inf", "-Inf")]
            return max(values, default=0.0)

        for legend, values in sorted(lines, key=peak, reverse=True)[:MAX_SERIES]:
            points = [(float(t) - start, float(v)) for t, v in values if v not in ("NaN", "+Inf", "-Inf")]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], label=legend[:48], linewidth=1.2)
        ax.axvspan(outage[0] - start, outage[1] - start, color="red", alpha=0.08)
        ax.set_title(title + (f"  [{unit}]" if unit else ""), fontsize=10)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("seconds into the run (red: AB Connect outage)", fontsize=7)
        if lines:
            ax.legend(fontsize=6, loc="upper left")
    fig.suptitle("edusync dashboard (deploy/grafana/edusync.json), plotted from a real Prometheus scraping the demo",
                 fontsize=12)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def run(bootstrap: str, seconds: float, outage_seconds: float, path: Path) -> Path:
    """The demo and Prometheus for ``seconds``, with an AB Connect outage in the middle; the picture."""
    demo = DemoProcess(bootstrap, free_port())
    try:
        ab_url = demo.ab_url()
        with tempfile.TemporaryDirectory() as tmp, PrometheusServer(Path(tmp), [f"127.0.0.1:{demo.ops_port}"]) as prom:
            start = time.time()
            quiet = (seconds - outage_seconds) / 2
            time.sleep(quiet)
            httpx.post(f"{ab_url}/_sim/faults", json={"error_rate": 1.0, "seed": 1}, timeout=5).raise_for_status()
            outage = (time.time(), time.time() + outage_seconds)
            time.sleep(outage_seconds)
            httpx.delete(f"{ab_url}/_sim/faults", timeout=5).raise_for_status()
            time.sleep(quiet)
            if not demo.alive():
                raise RuntimeError(f"the demo stopped:\n{demo.tail()}")
            draw(collect(prom, start, time.time()), start, outage, path)
    finally:
        demo.kill()
    return path


def main() -> int:
    """Parse the arguments, start a local Kafka unless given one, draw."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="an existing Kafka; by default a local one is started")
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--outage", type=float, default=40.0)
    parser.add_argument("--out", type=Path, default=PICTURE)
    args = parser.parse_args()
    broker: LocalKafka | None = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker = LocalKafka(data_dir=Path(tempfile.mkdtemp(prefix="edusync-picture-")), port=free_port(),
                            controller_port=free_port())
        bootstrap = broker.up()
    try:
        print(f"wrote {run(bootstrap, args.seconds, args.outage, args.out)}")
    finally:
        if broker is not None:
            broker.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
