"""``edusync dlq redrive|purge``: dead letters of a real handler (a wrong Canvas account makes
Canvas answer 404), resolved once the cause is fixed, and gone from the DLQ count."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.operator_tools import HANDLER, edusync, error_lines
from tests.standards_env import StandardsEnv
from worker.dead_letters import pending_letters
from worker.kafka.connection import KafkaConnection

pytestmark = pytest.mark.slow(60)


@pytest.fixture
def env(kafka_bootstrap: str, tmp_path: Path, unique: str) -> Iterator[StandardsEnv]:
    bench = StandardsEnv(kafka_bootstrap, tmp_path, unique)
    # A namespace of its own: the DLQ of the session's default namespace holds other tests' letters.
    bench.config.write_text(bench.config.read_text().replace("kafka:\n", f"kafka:\n  namespace: ns{unique}\n")
                            .replace('account_id: "1"', 'account_id: "999"'))
    try:
        yield bench
    finally:
        bench.close()


def kafka(env: StandardsEnv) -> KafkaConnection:
    return KafkaConnection(env.bootstrap, namespace=f"ns{env.group_prefix.removeprefix('test')}")


def unresolved(env: StandardsEnv) -> int:
    return len(anyio.run(pending_letters, kafka(env), HANDLER, env.group_prefix))


def dead_letter_the_catalogue(env: StandardsEnv) -> int:
    """Run the worker against the wrong Canvas account until the document event is dead-lettered."""
    env.seed(documents=1, standards=5)
    env.start_worker()
    deadline = time.monotonic() + 120
    while unresolved(env) == 0:
        assert time.monotonic() < deadline, env.log_tail()
        time.sleep(0.5)
    assert env.stop_worker() == 0
    letters = anyio.run(pending_letters, kafka(env), HANDLER, env.group_prefix)
    assert all("HTTP 404" in p.letter.reason and "/accounts/999/" in p.letter.reason for p in letters)
    return len(letters)


def status_dead_letters(env: StandardsEnv) -> int:
    result = edusync(env, "status")
    assert result.returncode == 0, result.stderr[-2000:]
    return int(json.loads(result.stdout)["handlers"][HANDLER]["dead_letters"])


def test_redrive_applies_the_dead_letters_once_the_cause_is_fixed(env: StandardsEnv) -> None:
    count = dead_letter_the_catalogue(env)
    assert status_dead_letters(env) == count
    env.config.write_text(env.config.read_text().replace('account_id: "999"', 'account_id: "1"'))  # the fix
    env.start_worker()
    time.sleep(5)
    assert not env.report().ok, "nothing but the redrive brings the dead-lettered document to Canvas"
    result = edusync(env, "dlq", "redrive", "--handler", HANDLER, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == {"handler": HANDLER, "action": "redrive", "redriven": count,
                                         "dead_letters": 0}
    env.wait_converged(timeout=120)
    assert status_dead_letters(env) == 0 and unresolved(env) == 0
    shown = edusync(env, "dlq", "show", "--handler", HANDLER)
    assert shown.returncode == 0 and shown.stdout == "" and "0 dead letter(s)" in shown.stderr
    # Once only: a second redrive finds nothing, and Canvas holds each outcome once.
    again = edusync(env, "dlq", "redrive", "--handler", HANDLER, "--json")
    assert json.loads(again.stdout)["redriven"] == 0
    assert not any(env.canvas.stats.snapshot()["duplicate_vendor_guids"].values())
    assert env.stop_worker() == 0


def test_purge_drops_the_dead_letters_without_applying_them(env: StandardsEnv) -> None:
    count = dead_letter_the_catalogue(env)
    env.config.write_text(env.config.read_text().replace('account_id: "999"', 'account_id: "1"'))
    env.start_worker()
    result = edusync(env, "dlq", "purge", "--handler", HANDLER, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == {"handler": HANDLER, "action": "purge", "purged": count, "dead_letters": 0}
    assert status_dead_letters(env) == 0
    assert "dead letters purged" in result.stderr  # the decision, in the CLI's JSON log
    time.sleep(5)
    assert not env.report().ok, "a purged dead letter is not applied"
    assert unresolved(env) == 0
    assert env.stop_worker() == 0


def test_a_handler_the_configuration_does_not_run_is_a_one_line_error(env: StandardsEnv) -> None:
    result = edusync(env, "dlq", "purge", "--handler", "roster_to_canvas")
    assert result.returncode == 2, result
    assert error_lines(result.stderr) == [
        "edusync: unknown handler 'roster_to_canvas' (known: standards_to_canvas)"]
