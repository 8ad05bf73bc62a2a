"""Every operator-facing CLI error is one line on stderr with a non-zero exit code: Kafka down for
``status`` and ``dlq show``, the ops port in use for ``run``, an unknown handler name. Logs stay JSON."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.local_kafka import free_port

pytestmark = pytest.mark.slow(15)


def _edusync(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "worker", *args], capture_output=True, text=True, timeout=timeout)


def _closed_port() -> int:
    return free_port()  # nothing listens there


def _config(tmp_path: Path, bootstrap: str, ops_port: int = 0) -> Path:
    path = tmp_path / "edusync.yaml"
    path.write_text(f"kafka:\n  bootstrap_servers: {bootstrap}\n  broker_patience_seconds: 3\n"
                    f"ops:\n  port: {ops_port}\nlog_level: info\ntenants: []\n")
    return path


def _only_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("command", [["status"], ["dlq", "show", "--handler", "standards_to_canvas"]])
def test_kafka_down_is_one_line(tmp_path: Path, command: list[str]) -> None:
    port = _closed_port()
    proc = _edusync(*command, "--config", str(_config(tmp_path, f"127.0.0.1:{port}")))
    assert proc.returncode != 0
    line = _only_line(proc.stderr)
    assert line.startswith("edusync: Kafka broker 127.0.0.1:") and "unreachable" in line, line
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("command", [
    ["dlq", "show", "--handler", "no_such_handler"],
    ["replay", "--handler", "no_such_handler"],
])
def test_unknown_handler_is_one_line(tmp_path: Path, command: list[str]) -> None:
    proc = _edusync(*command, "--config", str(_config(tmp_path, "127.0.0.1:9")))
    assert proc.returncode == 2
    line = _only_line(proc.stderr)
    assert "invalid choice: 'no_such_handler'" in line and "standards_to_canvas" in line, line


def test_ops_port_in_use_is_one_line_and_logs_stay_json(tmp_path: Path, kafka_bootstrap: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = _edusync("run", "--config", str(_config(tmp_path, kafka_bootstrap, port)))
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[-1] == (f"edusync: ops endpoint: port {port} on 127.0.0.1 is already in use "
                                   "(another edusync worker?); free it or set ops.port"), proc.stderr
    for line in lines[:-1]:
        json.loads(line)  # every log line before the error is JSON
    assert "Traceback" not in proc.stderr
