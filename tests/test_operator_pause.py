"""``edusync pause|resume``: through the Kafka control topic to whichever replica runs the
component, surviving a restart; a paused poller asks nothing upstream and resumes from its cursor."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.operator_tools import HANDLER, edusync, error_lines, event_requests, published_seqs, wait_state
from tests.replicas import Replica
from tests.standards_env import CANVAS_TOKEN, PARTNER, PARTNER_KEY, StandardsEnv
from tests.test_replicas import wait_for
from worker.pollers.abconnect_events import POLLER_NAME
from worker.tenant_slots import handler_component_name

pytestmark = pytest.mark.slow(70)


@pytest.fixture
def env(kafka_bootstrap: str, tmp_path: Path, unique: str) -> Iterator[StandardsEnv]:
    with StandardsEnv(kafka_bootstrap, tmp_path, unique) as bench:
        yield bench


def test_a_paused_poller_asks_nothing_survives_a_restart_and_resumes_losing_and_repeating_nothing(
    env: StandardsEnv,
) -> None:
    env.seed(documents=2, standards=10)
    env.start_worker()
    env.wait_converged(timeout=120)
    poller = f"poller:{env.tenant}/{POLLER_NAME}"
    cursor = env.cursor()
    assert cursor is not None

    paused = edusync(env, "pause", "--poller", f"{env.tenant}/{POLLER_NAME}", "--json")
    assert paused.returncode == 0, paused.stderr[-2000:]
    assert json.loads(paused.stdout) == {"component": poller, "paused": True, "requested": True}
    entry = wait_state(env, poller, "held")
    assert entry["reason"] == "paused by operator"
    asked = event_requests(env)
    env.mutate("modify_standard", count=3, seed=5)
    env.mutate("add_standard", count=2, seed=6)
    time.sleep(3)  # six poll intervals (0.5 s) in which a running poller would have asked
    assert event_requests(env) == asked
    assert env.cursor() == cursor

    # The pause is kept on the compacted control topic: a restarted worker obeys it from the start.
    assert env.stop_worker() == 0
    env.start_worker()
    wait_state(env, poller, "held")
    time.sleep(3)
    assert event_requests(env) == asked and env.cursor() == cursor
    decisions = [line for line in env.log_lines() if line.get("event") == "paused by operator"]
    assert decisions and all(line["component"] == poller and line["requested_by"] for line in decisions)

    resumed = edusync(env, "resume", "--poller", f"{env.tenant}/{POLLER_NAME}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    wait_state(env, poller, "ready")
    env.wait_converged(timeout=120)
    assert event_requests(env) > asked
    assert any(line.get("event") == "resumed by operator" for line in env.log_lines())
    # Every upstream event published exactly once: none lost while paused, none repeated.
    feed = Counter(e.seq for e in env.ab.list_events(PARTNER, None, [], 0, 1_000_000)[0])
    assert max(feed) > cursor["seq"], "the changes made while paused are in the partner's feed"
    deadline = time.monotonic() + 60
    while (seqs := published_seqs(env)) != feed:
        assert time.monotonic() < deadline, (sorted(seqs.items()), sorted(feed))
        time.sleep(0.5)
    assert env.stop_worker() == 0


def test_a_paused_handler_applies_nothing_until_resumed(env: StandardsEnv) -> None:
    env.seed(documents=2, standards=10)
    env.start_worker()
    env.wait_converged(timeout=120)
    component = handler_component_name(HANDLER, env.tenant)
    assert edusync(env, "pause", "--handler", HANDLER).returncode == 0
    wait_state(env, component, "held")
    env.mutate("modify_standard", count=3, seed=7)
    deadline = time.monotonic() + 60
    feed = Counter(e.seq for e in env.ab.list_events(PARTNER, None, [], 0, 1_000_000)[0])
    while published_seqs(env) != feed:  # the poller goes on publishing
        assert time.monotonic() < deadline, env.log_tail()
        time.sleep(0.5)
    time.sleep(2)
    assert not env.report().ok, "a paused handler wrote to Canvas"
    # The ops port changes nothing: there is no state-changing route, with or without credentials.
    ops = f"http://127.0.0.1:{env.ops_port}"
    for method, path in (("POST", "/resume"), ("POST", "/readyz"), ("PUT", "/status"), ("DELETE", "/metrics")):
        assert httpx.request(method, ops + path, timeout=5).status_code in (404, 405), (method, path)
    assert wait_state(env, component, "held")["reason"] == "paused by operator"
    assert edusync(env, "resume", "--handler", HANDLER).returncode == 0
    env.wait_converged(timeout=120)
    wait_state(env, component, "ready")
    assert env.stop_worker() == 0


def test_unknown_names_are_one_line_errors(env: StandardsEnv) -> None:
    for args in (("pause", "--poller", f"{env.tenant}/nope"), ("resume", "--handler", "nope"),
                 ("pause", "--poller", f"elsewhere/{POLLER_NAME}")):
        result = edusync(env, *args)
        assert result.returncode == 2, result
        lines = error_lines(result.stderr)
        assert len(lines) == 1 and lines[0].startswith("edusync: unknown"), result.stderr


def test_the_pause_reaches_the_owning_replica_and_holds_when_another_takes_over(
    env: StandardsEnv, tmp_path: Path,
) -> None:
    env.seed(documents=2, standards=10)
    env.config.write_text(env.config.read_text().replace(f"port: {env.ops_port}", "port: 0"))
    secrets = {"AB_KEY": PARTNER_KEY, "CANVAS_TOKEN": CANVAS_TOKEN}
    pair = [Replica(n, env.config, tmp_path, secrets).start() for n in ("p1", "p2")]
    poller = f"poller:{env.tenant}/{POLLER_NAME}"

    def paused_on(replica: Replica) -> bool:
        return any(line.get("event") == "paused by operator" and line.get("component") == poller
                   for line in replica.lines())

    try:
        # Both members first: the second to join may take the tenant from the first in a rebalance.
        wait_for(lambda: all("rate budgets split across replicas" in r.text() for r in pair)
                 and sum(len(r.owned()) for r in pair) == 1, "both replicas in the group, one owner", pair)
        env.wait_converged(timeout=120)
        assert edusync(env, "pause", "--poller", f"{env.tenant}/{POLLER_NAME}").returncode == 0
        wait_for(lambda: any(paused_on(r) for r in pair), "the owner to pause the poller", pair)
        owner, other = pair if paused_on(pair[0]) else pair[::-1]
        assert owner.owned(), "the replica that paused it owns the tenant"
        asked, cursor = event_requests(env), env.cursor()
        env.mutate("modify_standard", count=3, seed=9)
        owner.kill()  # the other replica takes the tenant over and must find the pause
        wait_for(lambda: bool(other.owned()), "the other replica to take the tenant", [other])
        wait_for(lambda: paused_on(other), "the new owner to keep the poller paused", [other])
        time.sleep(3)
        assert event_requests(env) == asked and env.cursor() == cursor
        assert edusync(env, "resume", "--poller", f"{env.tenant}/{POLLER_NAME}").returncode == 0
        env.wait_converged(timeout=120)
        feed = Counter(e.seq for e in env.ab.list_events(PARTNER, None, [], 0, 1_000_000)[0])
        deadline = time.monotonic() + 60
        while published_seqs(env) != feed:
            assert time.monotonic() < deadline, other.text()[-3000:]
            time.sleep(0.5)
    finally:
        codes = [r.stop() for r in pair if r.alive]
    assert codes == [0]
