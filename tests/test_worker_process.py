"""The ``edusync`` command as a real process: run, ops endpoints, signals, config errors, Kafka CLI."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx
import pytest

from deploy.local_kafka import KafkaLaunchError, LocalKafka, free_port, new_cluster_id
from simulators.server import ThreadedServer
from tests.frame_apps import KillPlan, KVHandler
from tests.kv_target import KVTarget
from worker.handler_frame import HandlerRunner
from worker.kafka.errors import BrokerUnavailableError
from worker.kafka.producer import TransactionalProducer
from worker.ledger import LedgerView
from worker.shutdown import StopToken
from worker.topics import TopicSpec, all_topics, ensure_topics

pytestmark = pytest.mark.slow(25)

EDUSYNC = [sys.executable, "-m", "worker"]


def _wait_http(url: str, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_run_serves_ops_endpoints_logs_json_and_exits_zero_on_sigterm(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = free_port()
    cfg = tmp_path / "edusync.yaml"
    cfg.write_text(f"kafka:\n  bootstrap_servers: {kafka_bootstrap}\nops:\n  port: {port}\ntenants: []\n")
    proc = subprocess.Popen([*EDUSYNC, "run", "--config", str(cfg)], stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_http(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
        deadline = time.monotonic() + 30
        while (ready := httpx.get(f"http://127.0.0.1:{port}/readyz")).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.2)
        assert ready.json()["kafka"] is True
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        for name in ("edusync_events_published_total", "edusync_handler_events_total",
                     "edusync_end_to_end_latency_seconds", "edusync_cursor_lag_seconds",
                     "edusync_upstream_requests_total", "edusync_poll_duration_seconds"):
            assert f"# TYPE {name.removesuffix('_total')}" in metrics, name
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    stderr = proc.stderr.read() if proc.stderr else ""
    assert code == 0, stderr
    events = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    assert "worker started" in events and "worker stopped" in events


def test_config_error_exits_2_with_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("kafka:\n  bootstrap_servers: x\nops:\n  port: -4\n")
    proc = subprocess.run([*EDUSYNC, "run", "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert f"{cfg}:4: ops.port: Input should be greater than or equal to 0" in proc.stderr


def test_help_lists_every_command() -> None:
    out = subprocess.run([*EDUSYNC, "--help"], capture_output=True, text=True, timeout=60).stdout
    for command in ("run", "demo", "replay", "simulate", "kafka", "schemas"):
        assert command in out


@pytest.mark.anyio
async def test_kafka_cli_and_a_broker_that_goes_away(tmp_path: Path, unique: str) -> None:
    port = free_port()
    data = tmp_path / "kafka"
    kafka = [*EDUSYNC, "kafka"]
    down_status = subprocess.run([*kafka, "status", "--data-dir", str(data), "--port", str(port)],
                                 capture_output=True, text=True, timeout=60)
    assert down_status.returncode == 3 and "down" in down_status.stdout
    up = subprocess.run([*kafka, "up", "--data-dir", str(data), "--port", str(port)],
                        capture_output=True, text=True, timeout=180)
    assert up.returncode == 0 and f"127.0.0.1:{port}" in up.stdout, up.stdout + up.stderr
    bootstrap = f"127.0.0.1:{port}"
    try:
        again = subprocess.run([*kafka, "up", "--data-dir", str(data), "--port", str(port)],
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, "a second 'up' finds the running broker"
        status = subprocess.run([*kafka, "status", "--data-dir", str(data), "--port", str(port)],
                                capture_output=True, text=True, timeout=60)
        assert status.returncode == 0 and "up" in status.stdout
        topic = f"test.gone.{unique}"
        await ensure_topics(bootstrap, [*all_topics(), TopicSpec(topic)])
        view = LedgerView(bootstrap)
        await view.restore()
        target = KVTarget()
        with ThreadedServer(target.app()) as server:
            async with TransactionalProducer(bootstrap, f"test.gone.{unique}") as producer:
                runner = HandlerRunner(KVHandler("gone", topic, server.url, KillPlan(None)), kafka=bootstrap,
                                       producer=producer, view=view, broker_patience=3)
                # The broker dies under a joined, idle consumer.
                async def kill_when_joined() -> None:
                    await runner.started.wait()
                    await anyio.sleep(1)
                    await anyio.to_thread.run_sync(lambda: subprocess.run(
                        [*kafka, "down", "--data-dir", str(data), "--port", str(port)], timeout=60))

                with pytest.RaisesGroup(
                    pytest.RaisesExc(BrokerUnavailableError, match=f"Kafka broker {bootstrap} unreachable")
                ), anyio.fail_after(90):
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(kill_when_joined)
                        await runner.run(StopToken())
    finally:
        subprocess.run([*kafka, "down", "--data-dir", str(data), "--port", str(port)], timeout=60)


def test_a_broker_that_fails_to_start_reports_the_tail_of_its_log(tmp_path: Path) -> None:
    broker = LocalKafka(data_dir=tmp_path / "kafka", port=free_port(), controller_port=free_port())
    broker.up()
    broker.down()
    # Corrupt the formatted storage: the broker refuses a node id that does not match it.
    meta = tmp_path / "kafka" / "logs" / "meta.properties"
    meta.write_text(meta.read_text().replace("node.id=1", "node.id=2"))
    with pytest.raises(KafkaLaunchError) as err:
        broker.up(timeout=90)
    message = str(err.value)
    assert "exited with code" in message
    assert "server.log" in message or "broker.out" in message, "the error should carry the log tail"
    assert "node" in message.lower()
    assert not broker.is_up()


def test_a_cluster_id_beginning_with_a_dash_formats_and_starts(tmp_path: Path) -> None:
    # One random id in 64 begins with "-"; the storage tool used to read it as an option.
    assert len(base64.urlsafe_b64decode(new_cluster_id() + "==")) == 16
    broker = LocalKafka(data_dir=tmp_path / "kafka", port=free_port(), controller_port=free_port(),
                        cluster_id="-" + new_cluster_id()[1:])
    try:
        broker.up(timeout=90)
        assert broker.is_up()
        assert "cluster.id=-" in (tmp_path / "kafka" / "logs" / "meta.properties").read_text()
    finally:
        broker.down()
