"""``edusync replay --dry-run`` prints the writes a tenant's events would make, per target, and
makes none; on a converged target it prints none. A real replay removes its consumer group
unless ``--keep-group``. Against the AB Connect and Canvas simulators and real Kafka."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.operator_tools import HANDLER, edusync, error_lines, published_seqs, wait_state
from tests.standards_env import PARTNER, StandardsEnv
from worker.tenant_slots import handler_component_name

pytestmark = pytest.mark.slow(110)

WRITE_METHODS = ("POST ", "PUT ", "PATCH ", "DELETE ")


@pytest.fixture
def env(kafka_bootstrap: str, tmp_path: Path, unique: str) -> Iterator[StandardsEnv]:
    with StandardsEnv(kafka_bootstrap, tmp_path, unique) as bench:
        yield bench


def canvas_writes(env: StandardsEnv) -> int:
    requests = env.canvas.stats.snapshot()["requests"]
    return sum(sum(by_status.values()) for kind, by_status in requests.items() if kind.startswith(WRITE_METHODS))


def dry_run(env: StandardsEnv, since: datetime) -> dict[str, Any]:
    result = edusync(env, "replay", "--dry-run", "--from", since.isoformat(), "--tenant", env.tenant, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout))


def groups(env: StandardsEnv) -> list[str]:
    async def listed() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap)
        await admin.start()
        try:
            return [g[0] for g in await admin.list_consumer_groups()]
        finally:
            await admin.close()
    return anyio.run(listed)


def test_dry_run_prints_the_writes_it_would_make_and_makes_none(env: StandardsEnv) -> None:
    since = datetime.now(UTC) - timedelta(seconds=5)
    env.seed(documents=2, standards=10)
    env.start_worker()
    env.wait_converged(timeout=120)
    converged = dry_run(env, since)
    assert converged["events"] > 0 and converged["writes"] == 0 and converged["targets"] == []
    assert converged["handlers"][HANDLER].get("would_write", 0) == 0

    # Events the handler has not applied yet (it is paused): the dry run shows their writes.
    assert edusync(env, "pause", "--handler", HANDLER).returncode == 0
    wait_state(env, handler_component_name(HANDLER, env.tenant), "held")
    env.mutate("modify_standard", count=3, seed=11)
    feed = Counter(e.seq for e in env.ab.list_events(PARTNER, None, [], 0, 1_000_000)[0])
    deadline = time.monotonic() + 60
    while published_seqs(env) != feed:
        assert time.monotonic() < deadline, env.log_tail()
        time.sleep(0.5)
    before, state = canvas_writes(env), env.canvas.snapshot()
    planned = dry_run(env, since)
    assert planned["writes"] > 0 and planned["handlers"][HANDLER]["would_write"] > 0
    (target,) = planned["targets"]
    assert target["system"] == "canvas" and target["writes"] == planned["writes"] == len(target["calls"])
    assert all(call.startswith(WRITE_METHODS) for call in target["calls"])
    assert canvas_writes(env) == before and env.canvas.snapshot() == state, "the dry run wrote to Canvas"
    text = edusync(env, "replay", "--dry-run", "--from", since.isoformat(), "--tenant", env.tenant)
    assert f"canvas {target['host']}: {target['writes']} write(s)" in text.stdout
    assert f"{planned['writes']} write(s) would be made; none made" in text.stdout

    assert edusync(env, "resume", "--handler", HANDLER).returncode == 0
    env.wait_converged(timeout=120)
    assert dry_run(env, since)["writes"] == 0
    assert env.stop_worker() == 0


def test_a_replay_removes_its_group_unless_asked_to_keep_it(env: StandardsEnv) -> None:
    env.seed(documents=1, standards=5)
    env.start_worker()
    env.wait_converged(timeout=120)
    assert env.stop_worker() == 0
    for tag, keep in (("gone", ()), ("kept", ("--keep-group",))):
        result = edusync(env, "replay", "--handler", HANDLER, "--group", tag, *keep)
        assert result.returncode == 0, result.stderr[-3000:]
        assert json.loads(result.stdout)["outcomes"]["applied"] == 0  # converged: a replay writes nothing
    names = groups(env)
    assert f"{env.group_prefix}.gone.{HANDLER}" not in names
    assert f"{env.group_prefix}.kept.{HANDLER}" in names


def test_bad_replay_requests_are_one_line_errors(env: StandardsEnv) -> None:
    for args, message in ((("replay", "--dry-run", "--tenant", env.tenant), "needs --from TIME"),
                          (("replay", "--dry-run", "--from", "2026-01-01T00:00:00Z", "--tenant", "nope"),
                           "unknown tenant"),
                          (("replay", "--from", "2026-01-01T00:00:00Z"), "needs --handler")):
        result = edusync(env, *args)
        lines = error_lines(result.stderr)
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
