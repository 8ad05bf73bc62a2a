"""``bench.standards_flow`` wraps the worker's own components in probes, so a change to the frame
can break it without breaking the worker (the handler runner's arguments did once). A small run
against the session's broker keeps it working: every phase must finish and converge."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow(40)


def test_a_small_standards_benchmark_runs_every_phase_to_convergence(kafka_bootstrap: str, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.standards_flow", "--bootstrap", kafka_bootstrap, "--documents", "4",
         "--standards", "40", "--changes", "30", "--paced-seconds", "5", "--out-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=240,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = (tmp_path / "standards_flow.md").read_text()
    assert report.count('"convergence": "Canvas matches AB Connect') == 3, report  # one per phase
    assert "| handler outcomes | applied 4 |" in report, report  # the initial sync's four documents
    assert (tmp_path / "standards_flow.png").stat().st_size > 0
