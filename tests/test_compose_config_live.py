"""The compose stack's worker configuration works: run as the compose file runs it, with its
service names resolved to loopback (a real broker, `edusync simulate` as the simulators service runs
it), the worker reaches every simulator with the compose environment's credentials and none of
its components is paused by a rejected credential."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from deploy.local_kafka import free_port
from worker.systems import SYSTEMS

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SIMULATED = [s.name for s in SYSTEMS if s.simulator]

pytestmark = pytest.mark.slow(30)


def _consecutive_free_ports(count: int) -> int:
    """The first of ``count`` consecutive loopback ports that are free right now."""
    for _ in range(50):
        first = free_port()
        try:
            for port in range(first, first + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError(f"no {count} consecutive free ports")


def _compose_service(name: str) -> dict[str, Any]:
    service: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"][name]
    return service


def _successes(metrics: str) -> dict[str, float]:
    """2xx upstream requests per system, from the worker's /metrics."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "edusync_upstream_requests_total" and sample.labels["status"].startswith("2"):
                system = sample.labels["system"]
                out[system] = out.get(system, 0.0) + sample.value
    return out


def test_compose_worker_config_reaches_every_simulator(tmp_path: Path, kafka_bootstrap: str, unique: str) -> None:
    simulators = _compose_service("simulators")["command"]
    worker = _compose_service("worker")
    (mount,) = [m for m in worker["volumes"] if m.startswith(".")]
    compose_first = int(simulators[simulators.index("--port") + 1])

    first = _consecutive_free_ports(len(SIMULATED))
    command = list(simulators)
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(first)
    # A smaller district than the compose file's: this test is about reaching each system.
    command += ["--students", "100"]

    # The compose configuration with the service names resolved here, and its own namespace and ops port.
    text = (DEPLOY / mount.split(":")[0]).read_text()
    text = re.sub(r"http://simulators:(\d+)", lambda m: f"http://127.0.0.1:{int(m.group(1)) - compose_first + first}",
                  text)
    raw = yaml.safe_load(text)
    assert raw["kafka"]["bootstrap_servers"] == "kafka:9092"
    raw["kafka"].update(bootstrap_servers=kafka_bootstrap, namespace=f"compose{unique}",
                        consumer_group_prefix=f"compose{unique}", broker_patience_seconds=30)
    ops_port = free_port()
    raw["ops"] = {"host": "127.0.0.1", "port": ops_port}
    config = tmp_path / "edusync.yaml"
    config.write_text(yaml.safe_dump(raw))
    env = {**os.environ, **{k: str(v) for k, v in worker["environment"].items()}}

    sim_log, worker_log = tmp_path / "simulators.log", tmp_path / "worker.log"
    with sim_log.open("wb") as out:
        sims = subprocess.Popen([sys.executable, "-m", "worker", *command], stdout=out, stderr=subprocess.STDOUT)
    proc: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 120  # hang guard
        while sim_log.read_text().count("(control: ") < len(SIMULATED):
            assert sims.poll() is None, sim_log.read_text()
            assert time.monotonic() < deadline, sim_log.read_text()
            time.sleep(0.2)
        with worker_log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "worker", "run", "--config", str(config)], env=env,
                                    stdout=out, stderr=subprocess.STDOUT)
        successes: dict[str, float] = {}
        report: dict[str, Any] = {}
        deadline = time.monotonic() + 240  # hang guard
        while set(successes) < set(SIMULATED):
            assert proc.poll() is None, worker_log.read_text()[-4000:]
            assert time.monotonic() < deadline, (successes, report, worker_log.read_text()[-4000:])
            time.sleep(1)
            try:
                successes = _successes(httpx.get(f"http://127.0.0.1:{ops_port}/metrics", timeout=5).text)
                report = httpx.get(f"http://127.0.0.1:{ops_port}/readyz", timeout=5).json()
            except httpx.TransportError:
                continue  # the ops server starts once Kafka answers and the ledger is restored
            paused = {name: c for name, c in report["components"].items() if c["state"] == "paused"}
            assert not paused, paused  # an upstream rejected the credentials or scope
        assert report["kafka"] is True
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the compose file's stop_signal
            code = proc.wait(timeout=120)
            assert code == 0, worker_log.read_text()[-4000:]
        sims.terminate()
        sims.wait(timeout=30)
