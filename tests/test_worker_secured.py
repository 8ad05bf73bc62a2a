"""The worker over the local launcher's SASL_SSL listener: the standards flow end to end with
SCRAM-SHA-512 and the launcher's CA, and one clear error line for a wrong password or an
untrusted certificate."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.local_kafka import LocalKafka, free_port
from tests.standards_env import StandardsEnv

pytestmark = pytest.mark.slow(60)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    kafka = LocalKafka(data_dir=tmp_path_factory.mktemp("kafka-secured-worker"), port=free_port(),
                       controller_port=free_port(), secure_port=free_port(), secured=True)
    kafka.up()
    try:
        yield kafka
    finally:
        kafka.down()


def secure(config: Path, broker: LocalKafka, *, mechanism: str = "SCRAM-SHA-512", ca: Path | None = None) -> None:
    """Point ``config``'s kafka section at the SASL_SSL listener, the password from ``${KAFKA_PASSWORD}``."""
    text = config.read_text()
    text = re.sub(r"bootstrap_servers: \S+", f"""bootstrap_servers: {broker.secure_bootstrap}
  security:
    protocol: SASL_SSL
    sasl_mechanism: {mechanism}
    username: {broker.sasl_username}
    password: ${{KAFKA_PASSWORD}}
    ca_file: {ca or broker.ca_file}""", text, count=1)
    config.write_text(text)


def test_standards_flow_runs_end_to_end_over_sasl_ssl(
    broker: LocalKafka, tmp_path: Path, unique: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = StandardsEnv(broker.bootstrap, tmp_path, unique)
    try:
        secure(env.config, broker)
        monkeypatch.setenv("KAFKA_PASSWORD", broker.sasl_password)
        env.seed(documents=2, standards=40)
        env.start_worker()
        report = env.wait_converged(timeout=180)
        assert report.ok
        env.mutate("modify_standard", count=5, seed=3)
        assert env.wait_converged(timeout=120).ok, "changes flow through the secured broker too"
        assert env.stop_worker() == 0
        assert "ProducerFenced" not in env.log.read_text()
    finally:
        env.close()


def refused_start(broker: LocalKafka, tmp_path: Path, unique: str, password: str, **secured: Any) -> tuple[str, str]:
    """``edusync run`` against the secured listener set up with ``secured``: the one error line
    it must print (exit 1), and everything it printed."""
    env = StandardsEnv(broker.bootstrap, tmp_path, unique)
    try:
        secure(env.config, broker, **secured)
        proc = subprocess.run([sys.executable, "-m", "worker", "run", "--config", str(env.config)],
                              env={"KAFKA_PASSWORD": password, "AB_KEY": "x", "CANVAS_TOKEN": "y",
                                   "PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True, timeout=60)
    finally:
        env.close()
    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("edusync:")]
    assert len(errors) == 1, proc.stderr[-2000:]
    return errors[0], proc.stdout + proc.stderr


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_a_wrong_password_is_one_clear_error_line(broker: LocalKafka, tmp_path: Path, unique: str,
                                                  mechanism: str) -> None:
    error, output = refused_start(broker, tmp_path, unique, "not-the-password", mechanism=mechanism)
    assert f"Kafka SASL {mechanism}" in error and "refused user" in error, error
    assert "not-the-password" not in output


def test_an_untrusted_certificate_is_one_clear_error_line(broker: LocalKafka, tmp_path: Path, unique: str) -> None:
    error, _ = refused_start(broker, tmp_path, unique, broker.sasl_password, ca=broker.untrusted_ca_file)
    assert "Kafka TLS" in error and "not trusted" in error, error
