"""The standards flow end to end: AB Connect simulator -> Kafka -> handler -> Canvas simulator."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from schemas.abconnect import OTHER_CHANGED, ABConnectChangeV1
from schemas.envelope import CloudEvent, make_event
from simulators.faults import FaultConfig
from tests.kafka_tools import read_topic
from tests.standards_env import CANVAS_TOKEN, PARTNER, PARTNER_KEY, StandardsEnv
from worker.kafka.producer import TransactionalProducer
from worker.poller_frame import cursor_key
from worker.pollers.abconnect_events import POLLER_NAME
from worker.state_store import StateStore
from worker.tenant_slots import handler_component_name
from worker.topics import ABCONNECT_EVENTS, CURSORS

pytestmark = pytest.mark.slow(150)


@pytest.fixture
def env(kafka_bootstrap: str, tmp_path: Path, unique: str) -> Iterator[StandardsEnv]:
    with StandardsEnv(kafka_bootstrap, tmp_path, unique) as bench:
        yield bench


def _no_duplicate_creates(env: StandardsEnv) -> None:
    dupes = env.canvas.stats.snapshot()["duplicate_vendor_guids"]
    assert not any(dupes.values()), f"an outcome or group was created twice: {dupes}"


def test_initial_sync_then_every_kind_of_change(env: StandardsEnv) -> None:
    env.seed(documents=20, standards=100)
    env.start_worker()
    report = env.wait_converged(timeout=240)
    assert report.expected >= 2000 and report.actual == report.expected
    _no_duplicate_creates(env)
    for kind in ("add_standard", "modify_standard", "delete_standard", "add_section", "remove_section",
                 "add_document", "remove_document"):
        env.mutate(kind, count=3 if "standard" in kind else 1, seed=11)
        report = env.wait_converged(timeout=120)
    _no_duplicate_creates(env)
    assert env.stop_worker() == 0


def _mutate_stream(env: StandardsEnv, kinds: tuple[str, ...], rounds: int, seed: int) -> threading.Thread:
    rng = random.Random(seed)

    def run() -> None:
        for _ in range(rounds):
            env.mutate(rng.choice(kinds), count=rng.randint(1, 4), seed=rng.randint(0, 10**6))
            time.sleep(rng.uniform(0.05, 0.3))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_sigkill_at_random_points_during_a_change_stream(env: StandardsEnv) -> None:
    env.seed(documents=20, standards=100)
    # No re-delivery among these kinds, so any second create of a vendor_guid is a real duplicate.
    stream = _mutate_stream(env, ("add_standard", "modify_standard", "delete_standard", "add_document",
                                  "remove_section"), rounds=40, seed=5)
    rng = random.Random(3)
    for _ in range(4):
        env.start_worker()
        time.sleep(rng.uniform(2.0, 5.0))
        env.kill_worker()
    stream.join()
    env.start_worker()
    report = env.wait_converged(timeout=240)
    assert report.actual == report.expected > 2000
    _no_duplicate_creates(env)
    assert env.stop_worker() == 0


def test_throttling_and_server_errors_lose_nothing(env: StandardsEnv) -> None:
    env.seed(documents=10, standards=60)
    env.start_worker()
    env.wait_converged(timeout=180)
    assert env.ab.stats()["throttled"] == 0, "the client's token bucket should keep AB Connect from answering 429"
    # Now AB Connect squeezes its budget and both servers fail a share of requests for a while.
    env.ab.update_config({"rate_per_second": 1.0, "burst": 2.0})
    env.ab_faults.set(FaultConfig(error_rate=0.3, seed=1))
    # Canvas: the next five requests fail, whenever they come (a rate could miss a quiet window).
    env.canvas.faults.set(FaultConfig(error_rate=1.0, remaining=5))
    for kind in ("modify_standard", "add_standard", "delete_standard", "add_document"):
        env.mutate(kind, count=5, seed=7)
    time.sleep(8)
    env.ab.update_config({"rate_per_second": 5.0, "burst": 25.0})
    env.ab_faults.clear()
    report = env.wait_converged(timeout=180)
    assert report.ok
    assert env.ab.stats()["throttled"] > 0, "the squeeze should have produced 429s"
    # The faults were met and absorbed by retries somewhere (client or handler frame).
    assert env.metric("edusync_upstream_requests_total", system="abconnect", status="500") > 0
    assert env.canvas.faults.injected == 5
    assert env.metric("edusync_upstream_requests_total", system="canvas", status="500") == 5
    assert env.dead_letters() == []
    assert env.stop_worker() == 0


def test_an_outcome_whose_create_answer_was_lost_is_adopted_not_created_again(env: StandardsEnv) -> None:
    # Once a document is verified, a ledger miss means "no such outcome": a retried create
    # after a lost answer must list the document again instead (bench/chaos: one outcome twice).
    env.seed(documents=2, standards=10)
    env.start_worker()
    env.wait_converged(timeout=180)
    env.canvas.faults.set(FaultConfig(lost_response_rate=0.5, remaining=16, seed=3))
    env.mutate("add_standard", count=12, seed=11)
    report = env.wait_converged(timeout=180)
    assert report.ok
    assert env.canvas.faults.injected > 0
    _no_duplicate_creates(env)
    assert env.dead_letters() == []
    assert env.stop_worker() == 0


@pytest.mark.anyio
async def test_malformed_page_gives_clear_error_and_cursor_stays(env: StandardsEnv) -> None:
    env.seed(documents=3, standards=20)
    env.start_worker()
    env.wait_converged(timeout=120)
    assert env.stop_worker() == 0
    cursor_before = await _cursor(env)
    env.mutate("modify_standard", count=3, seed=1)
    env.ab_faults.set(FaultConfig(malformed_rate=1.0, seed=1))
    env.start_worker()
    deadline = time.monotonic() + 60
    while "poll failed; cursor not moved" not in env.log.read_text():
        assert time.monotonic() < deadline, env.log_tail()
        await anyio.sleep(0.5)
    assert env.stop_worker() == 0
    failures = [json.loads(line) for line in env.log.read_text().splitlines()
                if "poll failed; cursor not moved" in line]
    assert "unparseable JSON" in failures[0]["error"]
    assert await _cursor(env) == cursor_before
    env.ab_faults.clear()
    env.start_worker()
    env.wait_converged(timeout=120)
    assert (await _cursor(env))["seq"] > cursor_before["seq"]
    assert env.stop_worker() == 0


async def _cursor(env: StandardsEnv) -> dict[str, int]:
    store = StateStore(env.bootstrap, CURSORS)
    await store.restore()
    return store.get(cursor_key(env.tenant, POLLER_NAME))  # type: ignore[no-any-return]


def test_replaying_the_topic_changes_nothing_in_canvas(env: StandardsEnv) -> None:
    env.seed(documents=5, standards=40)
    env.start_worker()
    env.wait_converged(timeout=120)
    for kind in ("modify_standard", "delete_standard", "remove_section", "add_document", "remove_document"):
        env.mutate(kind, count=2 if "standard" in kind else 1, seed=3)
    env.wait_converged(timeout=120)
    assert env.stop_worker() == 0
    before = env.canvas.snapshot()
    writes_before = _canvas_writes(env)
    proc = subprocess.run([sys.executable, "-m", "worker", "replay", "--config", str(env.config),
                           "--handler", "standards_to_canvas"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "AB_KEY": PARTNER_KEY, "CANVAS_TOKEN": CANVAS_TOKEN})
    assert proc.returncode == 0, proc.stderr[-3000:]
    outcomes = json.loads(proc.stdout.strip().splitlines()[-1])["outcomes"]
    # Events of other tests' tenants share the topic and are dead-lettered (no Canvas for them).
    # Every event of this tenant changes nothing: a no-op, or 'skipped' for a standard AB now
    # answers 403 for (its section was removed later in the stream).
    own_events = _own_events(env)
    assert outcomes["applied"] == 0, outcomes
    assert outcomes["noop"] + outcomes["skipped"] == own_events > 0, outcomes
    assert outcomes["noop"] > outcomes["skipped"], outcomes
    assert _canvas_writes(env) == writes_before
    assert env.canvas.snapshot() == before


def _canvas_writes(env: StandardsEnv) -> int:
    requests = env.canvas.stats.snapshot()["requests"]
    return sum(sum(by_status.values()) for kind, by_status in requests.items() if not kind.startswith("GET"))


def _own_events(env: StandardsEnv) -> int:
    records = anyio.run(read_topic, env.bootstrap, ABCONNECT_EVENTS)
    return sum(1 for r in records if CloudEvent.from_bytes(r.value).tenant == env.tenant)


def test_forbidden_standard_is_skipped_and_unknown_event_is_dead_lettered(env: StandardsEnv) -> None:
    env.seed(documents=3, standards=20)
    env.start_worker()
    env.wait_converged(timeout=120)
    assert env.stop_worker() == 0
    # The documented trap: a standard is modified, then its section's delivery is removed, so
    # fetching the standard for the first event answers 403.
    std = env.ab.snapshot(PARTNER)["standards"][0]
    env.mutate("modify_standard", standard_guid=std["guid"])
    env.mutate("remove_section", section_guid=std["section_guid"])
    anyio.run(_publish_unknown_event, env)
    env.start_worker()
    env.wait_converged(timeout=120)
    deadline = time.monotonic() + 30
    while env.metric("edusync_handler_events_total", handler="standards_to_canvas", outcome="skipped") < 1:
        assert time.monotonic() < deadline, env.log_tail()
        time.sleep(0.5)
    letters = env.dead_letters()
    assert len(letters) == 1, [d.reason for d in letters]
    assert f"seq {UNKNOWN_SEQ}" in letters[0].reason
    assert "unknown AB Connect event target='curriculum'" in letters[0].reason
    assert env.stop_worker() == 0
    # The operations commands show the same: the dead letter's reason, the poller's cursor.
    cli_env = {**os.environ, "AB_KEY": PARTNER_KEY, "CANVAS_TOKEN": CANVAS_TOKEN}
    shown = subprocess.run([sys.executable, "-m", "worker", "dlq", "show", "--config", str(env.config),
                            "--handler", "standards_to_canvas"], capture_output=True, text=True, timeout=120,
                           env=cli_env)
    assert shown.returncode == 0 and "unknown AB Connect event target='curriculum'" in shown.stdout
    status = subprocess.run([sys.executable, "-m", "worker", "status", "--config", str(env.config)],
                            capture_output=True, text=True, timeout=120, env=cli_env)
    assert status.returncode == 0, status.stderr[-2000:]
    report = json.loads(status.stdout)
    assert report["pollers"][f"{env.tenant}/{POLLER_NAME}"]["seq"] == env.ab.stats()["max_seq"]
    assert report["handlers"]["standards_to_canvas"]["dead_letters"] >= 1


UNKNOWN_SEQ = 999_999_999


async def _publish_unknown_event(env: StandardsEnv) -> None:
    data = ABConnectChangeV1(partner_id=PARTNER, event_id="x", seq=UNKNOWN_SEQ, date_utc=datetime.now(UTC),
                             change_type="renamed", target="curriculum")
    event = make_event(tenant=env.tenant, source="abconnect:partner/x", type=OTHER_CHANGED,
                       subject=f"{env.tenant}/event/x", version=str(UNKNOWN_SEQ), data=data)
    async with TransactionalProducer(env.bootstrap, f"test.unknown.{env.tenant}") as producer, \
            producer.transaction() as txn:
        await txn.send_event(ABCONNECT_EVENTS, event)


def _readyz(env: StandardsEnv) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"http://127.0.0.1:{env.ops_port}/readyz", timeout=5)
    return response.status_code, response.json()


def test_a_rejected_canvas_token_pauses_the_handler_until_it_is_accepted_again(env: StandardsEnv) -> None:
    env.seed(documents=2, standards=10)
    env.start_worker()
    env.wait_converged(timeout=120)
    component = handler_component_name("standards_to_canvas", env.tenant)
    with env.canvas.lock:
        grant = env.canvas.tokens.grants.pop(CANVAS_TOKEN)  # Canvas now answers 401 with WWW-Authenticate
    env.mutate("modify_standard", count=3, seed=2)
    deadline = time.monotonic() + 60
    while True:
        status, report = _readyz(env)
        state = report["components"].get(component, {})
        if state.get("state") == "paused":
            break
        assert time.monotonic() < deadline, f"never paused: {report}\n{env.log_tail()}"
        time.sleep(0.3)
    assert status == 503 and report["ready"] is False
    assert "access token rejected" in state["reason"], state
    assert env.metric("edusync_component_paused", component=component) == 1
    assert env.metric("edusync_component_up", component=component) == 0
    time.sleep(3)  # three slow retries (paused_retry_seconds: 1) ...
    paused_lines = [line for line in env.log_lines() if line.get("event", "").startswith("handler paused")]
    assert len(paused_lines) == 1, "... and one log line a minute, not one per retry"
    assert env.dead_letters() == [], "rejected credentials never dead-letter"
    env.canvas.add_token(CANVAS_TOKEN, grant)
    env.wait_converged(timeout=60)
    deadline = time.monotonic() + 30
    while _readyz(env)[0] != 200:
        assert time.monotonic() < deadline, _readyz(env)
        time.sleep(0.3)
    assert env.metric("edusync_component_paused", component=component) == 0
    assert env.dead_letters() == []
    assert env.stop_worker() == 0


def _doc_group(env: StandardsEnv, doc_guid: str) -> Any:
    account = env.canvas.accounts.resolve("1")
    root = env.canvas.outcomes.root_group(account)
    return next(g for g in env.canvas.outcomes.subgroups(root) if (g.vendor_guid or "").lower() == doc_guid.lower())


def test_a_stale_section_group_is_deleted_by_the_next_document_reconcile_without_error(env: StandardsEnv) -> None:
    # The defect: iterating the cached subgroups while deleting one raised "dictionary changed size
    # during iteration" and dead-lettered the event. A stale group is what a crash or a hand edit leaves.
    env.seed(documents=1, standards=12, sections=2)
    env.start_worker()
    env.wait_converged(timeout=120)
    doc = env.ab.snapshot(PARTNER)["documents"][0]["guid"]
    with env.canvas.lock:
        env.canvas.outcomes.create_subgroup(_doc_group(env, doc), title="Gone section", description=None,
                                            vendor_guid="STALE-SECTION-GUID")
    assert "STALE-SECTION-GUID".lower() in str(env.report().extra_groups).lower()
    env.mutate("add_section", document_guid=doc)  # a section event reconciles the whole document
    report = env.wait_converged(timeout=120)
    assert not report.extra_groups
    assert env.dead_letters() == []
    assert env.stop_worker() == 0


def test_removing_every_section_leaves_no_empty_group_and_a_replay_writes_nothing(env: StandardsEnv) -> None:
    env.seed(documents=2, standards=12, sections=2)
    env.start_worker()
    env.wait_converged(timeout=120)
    doc = env.ab.snapshot(PARTNER)["documents"][0]
    for section in doc["sections"]:
        env.mutate("remove_section", section_guid=section["guid"])
    report = env.wait_converged(timeout=120)  # the checker compares groups too: no empty document group
    assert doc["guid"].lower() not in {g.split("/")[0] for g in report.extra_groups}
    assert env.stop_worker() == 0
    writes_before = _canvas_writes(env)
    proc = subprocess.run([sys.executable, "-m", "worker", "replay", "--config", str(env.config),
                           "--handler", "standards_to_canvas"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "AB_KEY": PARTNER_KEY, "CANVAS_TOKEN": CANVAS_TOKEN})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["outcomes"]["applied"] == 0
    assert _canvas_writes(env) == writes_before, "the replay wrote to Canvas"


def test_the_periodic_reconcile_repairs_a_change_made_in_canvas_by_hand(
    kafka_bootstrap: str, tmp_path: Path, unique: str,
) -> None:
    bench = StandardsEnv(kafka_bootstrap, tmp_path, unique, reconcile_seconds=3.0)
    try:
        bench.seed(documents=2, standards=10)
        bench.start_worker()
        bench.wait_converged(timeout=120)
        account = bench.canvas.snapshot()["accounts"][0]
        outcome_id = next(o["id"] for g in account["outcome_groups"] for o in g["outcomes"])
        with bench.canvas.lock:
            bench.canvas.outcomes.update_outcome(bench.canvas.outcomes.outcome(outcome_id),
                                                 {"title": "edited by hand"})
        assert bench.report().wrong_text, "the hand edit shows as a difference"
        # Nothing changes in AB Connect: only the daily (here: 3 s) reconcile can notice.
        report = bench.wait_converged(timeout=60)
        assert report.ok and bench.dead_letters() == []
        assert bench.stop_worker() == 0
    finally:
        bench.close()


def test_rejected_ab_connect_credentials_pause_the_poller_until_they_are_accepted(env: StandardsEnv) -> None:
    env.seed(documents=2, standards=10)
    env.start_worker()
    env.wait_converged(timeout=120)
    component = f"poller:{env.tenant}/{POLLER_NAME}"
    env.ab.partners[PARTNER] = "a-key-the-worker-does-not-have"  # every signature now fails: 401
    deadline = time.monotonic() + 60
    while (state := _readyz(env)[1]["components"].get(component, {})).get("state") != "paused":
        assert time.monotonic() < deadline, f"{_readyz(env)}\n{env.log_tail()}"
        time.sleep(0.3)
    assert "credentials rejected" in state["reason"] and "HTTP 401" in state["reason"], state
    cursor = env.cursor()
    env.ab.partners[PARTNER] = PARTNER_KEY
    env.mutate("modify_standard", count=2, seed=9)
    env.wait_converged(timeout=60)
    deadline = time.monotonic() + 30
    while _readyz(env)[0] != 200:
        assert time.monotonic() < deadline, _readyz(env)
        time.sleep(0.3)
    assert env.cursor() != cursor and env.dead_letters() == []
    assert env.stop_worker() == 0
