"""A real Prometheus server (Debian's package) scrapes a running worker with the demo's traffic:
every dashboard query and every alert expression parses, every panel query returns series, the
first dead letter after the start fires the dead-letter alert, and during an AB Connect outage the
staleness alert's expression becomes true."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import httpx
import pytest

from bench.dashboard_picture import collect, draw
from bench.demo_process import DemoProcess
from deploy.grafana_dashboard import OUTPUT
from deploy.local_kafka import free_port
from deploy.prometheus_server import PrometheusServer
from schemas.abconnect import OTHER_CHANGED, ABConnectChangeV1
from schemas.envelope import make_event
from tests.test_alert_rules import rules
from tests.test_grafana_dashboard import panel_queries
from worker.demo import PARTNER
from worker.kafka.connection import KafkaConnection
from worker.kafka.producer import TransactionalProducer
from worker.pollers.abconnect_events import POLLER_NAME
from worker.topics import ABCONNECT_EVENTS

pytestmark = pytest.mark.slow(90)

HANG_GUARD = 120.0  # seconds; a wait that never ends fails here
# The staleness rule allows 10 minutes beyond twice a poller's interval, far beyond a test; its
# expression is evaluated as written with this many seconds instead of the 600.
RULE_STALENESS = " 600 + "
TEST_STALENESS = 5
DASHBOARD_VARIABLES = {"$tenant": ".*"}


@pytest.fixture
def demo(kafka_bootstrap: str) -> Iterator[DemoProcess]:
    running = DemoProcess(kafka_bootstrap, free_port())
    try:
        yield running
    finally:
        running.kill()


def _dashboard_exprs() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for title, exprs in panel_queries(json.loads(OUTPUT.read_text())).items():
        for expr in exprs:
            for variable, value in DASHBOARD_VARIABLES.items():
                expr = expr.replace(variable, value)
            out.setdefault(title, []).append(expr)
    return out


def _until(check: object, what: str, demo: DemoProcess) -> None:
    assert callable(check)
    deadline = time.monotonic() + HANG_GUARD
    while not check():
        assert demo.alive(), f"demo exited:\n{demo.tail()}"
        assert time.monotonic() < deadline, f"never saw {what}\n{demo.tail()}"
        time.sleep(0.5)


async def _publish_unknown_event(bootstrap: str, namespace: str, tenant: str) -> None:
    """An AB Connect change of a kind the handler does not know: it is dead-lettered."""
    data = ABConnectChangeV1(partner_id=PARTNER, event_id="x", seq=999_999_999, date_utc=datetime.now(UTC),
                             change_type="renamed", target="curriculum")
    event = make_event(tenant=tenant, source="abconnect:partner/x", type=OTHER_CHANGED,
                       subject=f"{tenant}/event/x", version="999999999", data=data)
    kafka = KafkaConnection(bootstrap, namespace=namespace)  # the demo's own topics
    async with TransactionalProducer(kafka, f"test.unknown.{tenant}") as producer, \
            producer.transaction() as txn:
        await txn.send_event(ABCONNECT_EVENTS, event)


def test_dashboard_and_alerts_against_a_real_prometheus(demo: DemoProcess, kafka_bootstrap: str,
                                                        tmp_path: Path) -> None:
    process, ops_port = demo, demo.ops_port
    ab_url = process.ab_url()
    with PrometheusServer(tmp_path, [f"127.0.0.1:{ops_port}"]) as prom:
        started = time.time()
        # Every alert expression parses, and Prometheus loaded every rule of the shipped file.
        for rule in rules():
            answer = prom.query(rule["expr"])
            assert answer["status"] == "success", (rule["alert"], answer)
        _until(lambda: len(prom.rules()) == len(rules()), "the rules loaded", process)
        assert all(r["health"] != "err" for r in prom.rules()), prom.rules()

        # Every panel query returns series once the demo's changes flow through the worker.
        panels = _dashboard_exprs()
        for exprs in panels.values():
            for expr in exprs:
                assert prom.query(expr)["status"] == "success", expr

        def empty() -> list[str]:
            return [f"{title}: {expr}" for title, exprs in panels.items() for expr in exprs if not prom.series(expr)]

        _until(lambda: not empty() and prom.series('sum(edusync_handler_events_total{outcome="applied"}) > 0'),
               "series for every panel", process)
        assert not empty()
        assert prom.series(f'up{{job="edusync",instance="127.0.0.1:{ops_port}"}} == 1')

        # The first dead letter after the start fires the dead-letter alert (its series began at 0).
        tenant = next(s["metric"]["tenant"] for s in prom.series(
            f'edusync_last_success_timestamp_seconds{{kind="poller",name="{POLLER_NAME}"}}'))
        dead_rule = next(r for r in rules() if r["alert"] == "EdusyncDeadLetters")
        assert not [s for s in prom.series(dead_rule["expr"]) if s["metric"]["tenant"] == tenant]
        assert prom.series(f'edusync_handler_events_total{{outcome="dead_lettered",tenant="{tenant}"}} == 0')
        anyio.run(_publish_unknown_event, kafka_bootstrap, demo.namespace(), tenant)

        def dead_letter_firing() -> bool:
            return any(a["labels"]["alertname"] == "EdusyncDeadLetters" and a["labels"].get("tenant") == tenant
                       and a["state"] == "firing" for a in prom.alerts())

        _until(dead_letter_firing, "the dead-letter alert firing", process)

        # An AB Connect outage: the staleness expression, false before, becomes true for its poller.
        stale_rule = next(r for r in rules() if r["alert"] == "EdusyncPollerStale")
        assert stale_rule["expr"].count(RULE_STALENESS) == 1
        stale = stale_rule["expr"].replace(RULE_STALENESS, f" {TEST_STALENESS} + ")

        def ab_stale() -> bool:
            return any(s["metric"].get("name") == POLLER_NAME for s in prom.series(stale))

        # False first (the first polls of a start may wait for AB Connect's budget behind the initial sync).
        _until(lambda: not ab_stale(), "the AB Connect poller fresh before the outage", process)
        outage_at = time.time()
        assert httpx.post(f"{ab_url}/_sim/faults", json={"error_rate": 1.0, "seed": 1}, timeout=5).status_code == 200
        try:
            _until(ab_stale, "the staleness expression true during the outage", process)
            # The lag grows through the outage too (sampled at scrapes, so it may trail by one).
            lag = f'edusync_cursor_lag_seconds{{poller="{POLLER_NAME}"}} > {TEST_STALENESS}'
            _until(lambda: prom.series(lag), "the cursor lag past the same threshold", process)
        finally:
            httpx.delete(f"{ab_url}/_sim/faults", timeout=5)
        _until(lambda: not ab_stale(), "freshness again after the outage", process)

        # The README's picture is drawn from these same queries (bench/dashboard_picture.py).
        end = time.time()
        drawn = collect(prom, started, end)
        assert [title for title, _, _ in drawn] == list(panels)
        assert all(lines for _, _, lines in drawn)
        picture = tmp_path / "dashboard.png"
        draw(drawn, started, (outage_at, end), picture)
        assert picture.read_bytes().startswith(b"\x89PNG")
