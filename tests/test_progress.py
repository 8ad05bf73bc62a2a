"""Progress of long work on a real worker (Illuminate to Class, real Kafka): a snapshot walk logs
JSON progress lines with pages done of the total and a closing line; ``edusync replay`` logs JSON
progress lines, or draws a rich bar when stderr is a terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.roster_env import TINY_DISTRICT, ClassTarget, RosterEnv

pytestmark = pytest.mark.slow(60)

HANDLER = "roster_to_class"
PAGE_LIMIT = 5


@pytest.fixture(scope="module")
def env(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RosterEnv]:
    bench = RosterEnv(kafka_bootstrap, tmp_path_factory.mktemp("progress"), uuid.uuid4().hex[:10],
                      targets=[ClassTarget()], seed=TINY_DISTRICT)
    text = bench.config.read_text()
    # Small pages make the walk long; a progress line after every poll instead of every 10 s.
    text = text.replace("        token_secret: ${ILL_TOKEN_SECRET}\n",
                        f"        token_secret: ${{ILL_TOKEN_SECRET}}\n        page_limit: {PAGE_LIMIT}\n"
                        f"        students2_page_limit: {PAGE_LIMIT}\n")
    text = text.replace("runtime:\n", "runtime:\n  progress_every_seconds: 0\n")
    bench.config.write_text(text)
    try:
        bench.start_worker()
        bench.wait_converged(timeout=180)
        assert bench.stop_worker() == 0
        yield bench
    finally:
        bench.close()


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_a_snapshot_walk_logs_pages_done_of_the_total(env: RosterEnv) -> None:
    students = len(env.illuminate.district.students.rows)
    pages = -(-students // PAGE_LIMIT)
    lines = [e for e in _json_lines(env.log.read_text()) if e.get("poller") == "illuminate.students"
             and e["event"].startswith("poller catching up") and e.get("tenant") == env.tenant]
    progress = [e for e in lines if e["event"] == "poller catching up"]
    assert len(progress) >= pages - 1, lines[:3]
    assert {e["total"] for e in progress} == {pages}
    assert [e["done"] for e in progress[: pages - 1]] == list(range(1, pages))
    assert all(e["level"] == "info" and isinstance(e["percent"], float) for e in progress)
    closing = [e for e in lines if e["event"] == "poller catching up: done"]
    assert closing and closing[0]["done"] == pages and closing[0]["percent"] == 100.0, closing


def test_replay_logs_json_progress_lines(env: RosterEnv) -> None:
    proc = env.replay(HANDLER)
    assert proc.returncode == 0, proc.stderr[-3000:]
    outcomes = orjson.loads(proc.stdout.splitlines()[-1])["outcomes"]
    assert all(type(n) is int for n in outcomes.values())
    progress = [e for e in _json_lines(proc.stderr) if e["event"].startswith("replay progress")]
    assert progress, proc.stderr[-3000:]
    assert {e["handler"] for e in progress} == {HANDLER}
    total = progress[-1]["total"]
    assert total > 0 and progress[-1]["done"] == total == sum(outcomes.values())
    assert [e["done"] for e in progress] == sorted(e["done"] for e in progress)


def test_replay_on_a_terminal_draws_a_progress_bar(env: RosterEnv) -> None:
    controller, terminal = pty.openpty()
    drawn: list[bytes] = []

    def read_screen() -> None:  # drained while the replay runs: a full terminal buffer would block it
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal's other end is closed: everything is read
                return
            if not chunk:
                return
            drawn.append(chunk)

    reader = threading.Thread(target=read_screen, daemon=True)
    reader.start()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "worker", "replay", "--config", str(env.config),
                                 "--handler", HANDLER], env=env._environment(), stdout=subprocess.PIPE,
                                stderr=terminal, text=True)
        os.close(terminal)
        stdout, _ = proc.communicate(timeout=280)
        reader.join(timeout=30)
    finally:
        os.close(controller)
    assert proc.returncode == 0
    total = sum(orjson.loads(stdout.splitlines()[-1])["outcomes"].values())
    screen = b"".join(drawn).decode(errors="replace")
    assert f"replay {HANDLER}" in screen and f"{total}/{total}" in screen, screen[-2000:]
    assert "replay progress" not in screen  # the bar, not the JSON lines


def test_short_work_writes_no_progress_line(capsys: pytest.CaptureFixture[str]) -> None:
    from worker.logs import configure_logging
    from worker.progress import ProgressLog

    configure_logging("info")
    progress = ProgressLog("short work", every=3600.0, task="x")
    assert [progress.update(n, 3) for n in (1, 2)] == [False, False]
    progress.finish(3, 3)
    assert progress.lines == 0 and "short work" not in capsys.readouterr().err
