"""``edusync demo`` end to end, small: its own local Kafka, the standards flow and the roster
flows into Canvas, Class and MatrixLMS, a few seconds of live changes, and a summary in which
every target matches its source (exit code 0). ``make demo`` is this at full size."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deploy.local_kafka import free_port

pytestmark = pytest.mark.slow(20)


def test_a_small_demo_converges_every_target_and_exits_zero(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "worker", "demo", "--duration", "8", "--documents", "3",
         "--standards-per-document", "10", "--students", "150", "--ops-port", str(free_port()),
         "--data-dir", str(tmp_path / "kafka"), "--kafka-port", str(free_port())],
        capture_output=True, text=True, timeout=280,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    for target in ("standards", "roster -> canvas", "roster -> class ", "roster -> matrixlms"):
        assert any(line.strip().startswith(target) and " OK:" in line for line in out.splitlines()), \
            (target, out[-3000:])
    assert "result               OK" in out
