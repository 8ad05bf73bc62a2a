"""``edusync config check FILE [--connect]`` against a real broker and the five real simulators:
every missing ``${ENV}`` at once, then one line per connection check, non-zero on any failure."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local_kafka import free_port
from simulators.abconnect import ABConnectSimulator
from simulators.abconnect import create_app as ab_app
from simulators.canvas import CanvasSimulator
from simulators.canvas import create_app as canvas_app
from simulators.classroom import DEMO_SECRET, ClassSimulator
from simulators.classroom import create_app as class_app
from simulators.illuminate import IlluminateSimulator
from simulators.illuminate.oauth import DEFAULT_CREDENTIALS
from simulators.matrixlms import DEMO_API_KEY, MatrixSimulator
from simulators.matrixlms import create_app as matrix_app
from simulators.server import ThreadedServer

pytestmark = pytest.mark.slow(15)

PARTNER, PARTNER_KEY, CANVAS_TOKEN = "district-a", "partner-key-0123456789", "canvas-token-0123456789"
GOOD = {"AB_KEY": PARTNER_KEY, "CANVAS_TOKEN": CANVAS_TOKEN, "ILL_SECRET": DEFAULT_CREDENTIALS.consumer_secret,
        "ILL_TOKEN_SECRET": DEFAULT_CREDENTIALS.token_secret, "CLASS_KEY": DEMO_SECRET, "MATRIX_KEY": DEMO_API_KEY}
SYSTEMS = ("abconnect", "canvas", "illuminate", "classroom", "matrixlms")


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    servers = {
        "abconnect": ThreadedServer(ab_app(ABConnectSimulator({PARTNER: PARTNER_KEY}))),
        "canvas": ThreadedServer(canvas_app(CanvasSimulator(tokens={CANVAS_TOKEN: 1}))),
        "illuminate": ThreadedServer(IlluminateSimulator().app),
        "classroom": ThreadedServer(class_app(ClassSimulator(examples=False))),
        "matrixlms": ThreadedServer(matrix_app(MatrixSimulator(examples=False))),
    }
    for server in servers.values():
        server.start()
    try:
        yield {name: server.url for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()


def _write(tmp_path: Path, bootstrap: str, urls: dict[str, str]) -> Path:
    c = DEFAULT_CREDENTIALS
    path = tmp_path / "edusync.yaml"
    path.write_text(f"""\
kafka:
  bootstrap_servers: {bootstrap}
  broker_patience_seconds: 3
tenants:
  - id: district-a
    systems:
      abconnect:
        base_url: {urls['abconnect']}/rest/v4.1
        partner_id: {PARTNER}
        partner_key: ${{AB_KEY}}
      canvas:
        base_url: {urls['canvas']}
        token: ${{CANVAS_TOKEN}}
        account_id: "1"
      illuminate:
        base_url: {urls['illuminate']}/live/rest_server.php
        consumer_key: {c.consumer_key}
        consumer_secret: ${{ILL_SECRET}}
        token: {c.token}
        token_secret: ${{ILL_TOKEN_SECRET}}
      classroom:
        base_url: {urls['classroom']}/api/v1
        api_key: ${{CLASS_KEY}}
        timezone: America/Los_Angeles
      matrixlms:
        base_url: {urls['matrixlms']}
        api_key: ${{MATRIX_KEY}}
""")
    return path


def _check(path: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in GOOD}
    return subprocess.run([sys.executable, "-m", "worker", "config", "check", str(path), *extra],
                          capture_output=True, text=True, timeout=180, env={**clean, **env})


def _lines(proc: subprocess.CompletedProcess[str], start: str) -> dict[str, str]:
    """The check lines starting with ``start``, keyed by the system they name (or "kafka")."""
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        if line.startswith(start):
            words = line.split()
            out[words[3] if words[1] == "tenant" else words[1]] = line
    return out


def test_every_missing_variable_is_listed_at_once(tmp_path: Path, urls: dict[str, str]) -> None:
    path = _write(tmp_path, "127.0.0.1:9", urls)
    proc = _check(path, {"CANVAS_TOKEN": CANVAS_TOKEN})
    assert proc.returncode == 2
    missing = [line for line in proc.stderr.splitlines() if "is not set" in line]
    assert [line.rsplit("environment variable ", 1)[1].split()[0] for line in missing] == \
        ["AB_KEY", "ILL_SECRET", "ILL_TOKEN_SECRET", "CLASS_KEY", "MATRIX_KEY"]
    assert all(line.startswith(f"{path}:") for line in missing)


def test_a_valid_file_passes_without_connecting(tmp_path: Path, urls: dict[str, str]) -> None:
    proc = _check(_write(tmp_path, "127.0.0.1:9", urls), GOOD)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "valid; 1 tenant(s)" in proc.stdout
    assert "kafka" not in proc.stdout


def test_connect_with_good_credentials_is_ok_everywhere(tmp_path: Path, urls: dict[str, str],
                                                        kafka_bootstrap: str) -> None:
    proc = _check(_write(tmp_path, kafka_bootstrap, urls), GOOD, "--connect")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ok = _lines(proc, "ok ")
    assert set(ok) >= {"kafka", *SYSTEMS}, proc.stdout
    assert not _lines(proc, "failed"), proc.stdout


def test_connect_with_bad_credentials_names_each_failure(tmp_path: Path, urls: dict[str, str]) -> None:
    bad = {k: f"wrong-{v}" for k, v in GOOD.items()}
    proc = _check(_write(tmp_path, f"127.0.0.1:{free_port()}", urls), bad, "--connect")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failed = _lines(proc, "failed")
    assert set(failed) == {"kafka", *SYSTEMS}, proc.stdout
    assert "unreachable" in failed["kafka"]
    for system in SYSTEMS:
        assert "401" in failed[system] or "rejected" in failed[system].lower(), failed[system]
        assert "wrong-" not in failed[system]  # a secret is never printed
    assert "6 of 6 connection check(s) failed" in proc.stderr


def test_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    proc = subprocess.run([sys.executable, "-m", "worker", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"edusync {version('edusync')}"


def test_config_example_prints_a_file_that_config_check_accepts(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "worker", "config", "example"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("# edusync worker configuration")
    path = tmp_path / "example.yaml"
    path.write_text(proc.stdout)
    names = ["AB_PARTNER_KEY", "CANVAS_TOKEN", "ILLUMINATE_CONSUMER_SECRET", "ILLUMINATE_TOKEN_SECRET",
             "CLASS_API_KEY", "MATRIXLMS_API_KEY"]
    checked = _check(path, {name: "x" * 24 for name in names})
    assert checked.returncode == 0, checked.stderr
