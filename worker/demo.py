"""``edusync demo``: the whole system on one machine, with live progress and a summary."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx

from deploy.local_kafka import LocalKafka
from worker.config import KafkaConfig, OpsConfig, WorkerConfig
from worker.logs import configure_logging
from worker.runtime import run_worker
from worker.shutdown import StopToken, stop_on_signals
from worker.wiring import build_components


@dataclass
class DemoOptions:
    """What the demo runs and for how long."""

    duration: float | None = None
    bootstrap: str | None = None
    ops_port: int = 9464
    documents: int = 20
    standards: int = 100
    seed: int = 1
    data_dir: Path = Path("var/kafka-demo")
    kafka_port: int = 9192


def _start_kafka(opts: DemoOptions) -> str:
    if opts.bootstrap:
        return opts.bootstrap
    broker = LocalKafka(data_dir=opts.data_dir, port=opts.kafka_port)
    print(f"[demo] starting local Apache Kafka in {broker.data_dir} ...", flush=True)
    bootstrap = broker.up()
    print(f"[demo] Kafka up at {bootstrap} (stop it with: edusync kafka down --data-dir {opts.data_dir} "
          f"--port {opts.kafka_port})", flush=True)
    return bootstrap


async def run_demo(opts: DemoOptions) -> int:
    """Run the demo; returns the process exit code (0 when healthy and converged)."""
    configure_logging("warning")
    bootstrap = _start_kafka(opts)
    config = WorkerConfig(kafka=KafkaConfig(bootstrap_servers=bootstrap), ops=OpsConfig(port=opts.ops_port))
    stop = StopToken()
    ready = False
    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_on_signals, stop)
        tg.start_soon(lambda: run_worker(config, build_components(config), stop=stop, handle_signals=False))
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{opts.ops_port}") as ops:
            while not stop.stopping:
                try:
                    report = (await ops.get("/readyz")).json()
                    ready = bool(report["ready"])
                except httpx.HTTPError:
                    report = {"ready": False}
                elapsed = time.monotonic() - started
                print(f"[demo] {elapsed:6.1f}s  worker ready={report['ready']}  "
                      f"components={report.get('components', {})}", flush=True)
                if opts.duration is not None and elapsed >= opts.duration:
                    stop.set()
                    break
                await stop.sleep(2.0)
        tg.cancel_scope.cancel()
    print(f"[demo] summary: worker {'was healthy' if ready else 'never became ready'}", flush=True)
    return 0 if ready else 1
