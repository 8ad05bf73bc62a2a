"""Failures an on-call engineer can see: the real ``edusync run`` worker against the AB Connect and
Canvas simulators and the session's Kafka broker. Rejected credentials and repeated poll failures
turn ``/readyz`` false with the cause named; the cursor lag grows through an outage; every series an
alert counts on exists at 0 from the start; tenant labels only carry configured tenants."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from handlers.standards_to_canvas import HANDLER_NAME
from tests.standards_env import StandardsEnv
from worker.metrics import PRIMED_STATUSES, UNATTRIBUTED, Outcome, PollError
from worker.poller_frame import DEGRADED_AFTER
from worker.pollers.abconnect_events import POLLER_NAME

pytestmark = pytest.mark.slow(60)

HANG_GUARD = 120.0  # seconds; a wait that never ends fails here instead of at the suite's timeout

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    """Every sample of the worker's /metrics, keyed by name and label set."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, metric: str, **labels: str) -> float | None:
    """The sample with exactly ``labels``, or ``None`` if the series does not exist."""
    return samples.get((metric, frozenset(labels.items())))


def readyz(port: int) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
    return response.status_code, response.json()


def wait_for(check: Callable[[], bool], env: StandardsEnv, what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while True:
        try:
            if check():
                return
        except httpx.TransportError:
            pass  # the ops port is not up yet
        if env.proc is not None and env.proc.poll() is not None:
            raise AssertionError(f"worker exited with {env.proc.returncode} waiting for {what}:\n{env.log_tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {what}:\n{env.log_tail()}")
        time.sleep(0.2)


@pytest.fixture
def env(kafka_bootstrap: str, tmp_path: Path, unique: str) -> Iterator[StandardsEnv]:
    # hostile: AB Connect through a proxy, 2 attempts per request, so a failed poll is quick.
    with StandardsEnv(kafka_bootstrap, tmp_path, unique, hostile=True) as bench:
        yield bench


def test_rejected_credentials_make_readyz_false_within_three_polls_and_name_the_cause(env: StandardsEnv) -> None:
    # A long paused retry: the poller's first rejected poll is the only one while we look.
    env.config.write_text(env.config.read_text().replace("paused_retry_seconds: 1", "paused_retry_seconds: 600"))
    env.seed(documents=1, standards=3)
    env.start_worker(ab_key="not-the-partner-key-0123456789")
    component = f"poller:{env.tenant}/{POLLER_NAME}"

    def not_ready() -> bool:
        status, report = readyz(env.ops_port)
        # Not "starting" (before its first poll): the state its polls put it in.
        return status == 503 and report["components"].get(component, {}).get("state") in ("paused", "degraded")

    wait_for(not_ready, env, "/readyz false")
    status, report = readyz(env.ops_port)
    samples = scrape(env.ops_port)
    attempts = value(samples, "edusync_poll_errors_total", tenant=env.tenant, poller=POLLER_NAME,
                     error=PollError.CREDENTIALS.value)
    assert attempts is not None and 1 <= attempts <= 3, attempts
    assert status == 503 and report["ready"] is False
    entry = report["components"][component]
    assert entry["state"] == "paused"
    assert "credentials rejected" in entry["reason"] and "abconnect" in entry["reason"] and "401" in entry["reason"]
    assert value(samples, "edusync_component_up", component=component) == 0
    assert value(samples, "edusync_component_state", component=component, state="paused") == 1
    assert value(samples, "edusync_component_state", component=component, state="ready") == 0
    assert value(samples, "edusync_component_paused", component=component) == 1
    assert value(samples, "edusync_upstream_requests_total", system="abconnect", tenant=env.tenant, status="401")
    # Never a success, yet the series exists (from the start), so staleness alerts can fire.
    assert value(samples, "edusync_last_success_timestamp_seconds", kind="poller", tenant=env.tenant,
                 name=POLLER_NAME) is not None
    assert env.stop_worker() == 0


def test_a_rejected_canvas_token_pauses_the_handler_and_readyz_names_it(env: StandardsEnv) -> None:
    env.seed(documents=1, standards=3)
    env.start_worker(canvas_token="not-the-canvas-token-0123456789")

    def handler_paused() -> tuple[str, dict[str, Any]] | None:
        status, report = readyz(env.ops_port)
        for name, entry in report["components"].items():
            if name.startswith(f"handler:{HANDLER_NAME}.") and entry["state"] == "paused" and status == 503:
                return name, entry
        return None

    wait_for(lambda: handler_paused() is not None, env, "the handler paused")
    found = handler_paused()
    assert found is not None
    component, entry = found
    assert "canvas" in entry["reason"] and "401" in entry["reason"], entry
    samples = scrape(env.ops_port)
    assert value(samples, "edusync_component_up", component=component) == 0
    assert value(samples, "edusync_component_state", component=component, state="paused") == 1
    # Paused, not dead-lettered: nothing reaches the DLQ while the token is wrong.
    assert value(samples, "edusync_handler_events_total", handler=HANDLER_NAME, tenant=env.tenant,
                 outcome=Outcome.DEAD_LETTERED.value) == 0
    assert env.stop_worker() == 0


def test_series_at_zero_from_start_then_an_outage_degrades_and_the_lag_grows(env: StandardsEnv) -> None:
    env.seed(documents=2, standards=10)
    env.start_worker()
    poller = f"poller:{env.tenant}/{POLLER_NAME}"
    wait_for(lambda: readyz(env.ops_port)[0] == 200 and (value(
        scrape(env.ops_port), "edusync_events_published_total", tenant=env.tenant, poller=POLLER_NAME,
        topic="edusync.abconnect.events") or 0) > 0, env, "a ready worker that published")
    env.wait_converged()

    # Caught up, the handler's backlog is 0: transaction markers past the last event do not count.
    def backlog() -> float:
        return sum(v for (name, labels), v in scrape(env.ops_port).items()
                   if name == "edusync_handler_backlog_events" and dict(labels)["handler"] == HANDLER_NAME)

    wait_for(lambda: backlog() == 0, env, "no handler backlog once converged")
    samples = scrape(env.ops_port)
    assert any(name == "edusync_handler_backlog_events" and dict(labels)["handler"] == HANDLER_NAME
               for name, labels in samples)

    # Every outcome of the handler, every poll-error class, the usual statuses per system: at 0.
    for outcome in Outcome:
        assert value(samples, "edusync_handler_events_total", handler=HANDLER_NAME, tenant=env.tenant,
                     outcome=outcome.value) is not None, outcome
    assert value(samples, "edusync_handler_events_total", handler=HANDLER_NAME, tenant=env.tenant,
                 outcome=Outcome.DEAD_LETTERED.value) == 0
    for error in PollError:
        assert value(samples, "edusync_poll_errors_total", tenant=env.tenant, poller=POLLER_NAME,
                     error=error.value) == 0, error
    for system in ("abconnect", "canvas"):
        for status in PRIMED_STATUSES:
            assert value(samples, "edusync_upstream_requests_total", system=system, tenant=env.tenant,
                         status=status) is not None, (system, status)
    assert (value(samples, "edusync_upstream_requests_total", system="abconnect", tenant=env.tenant,
                  status="200") or 0) > 0
    assert (value(samples, "edusync_handler_events_total", handler=HANDLER_NAME, tenant=env.tenant,
                  outcome=Outcome.APPLIED.value) or 0) > 0
    builds = [dict(labels) for (name, labels), v in samples.items() if name == "edusync_build_info" and v == 1]
    assert len(builds) == 1 and builds[0]["version"] == "0.1.0" and builds[0]["python"].startswith("3.")
    # Tenant labels carry configured tenants only.
    tenants = {dict(labels).get("tenant") for (name, labels) in samples
               if name in ("edusync_handler_events_total", "edusync_upstream_requests_total")}
    assert tenants <= {env.tenant, UNATTRIBUTED}
    assert value(samples, "edusync_last_success_timestamp_seconds", kind="handler", tenant=env.tenant,
                 name=HANDLER_NAME) is not None

    # AB Connect answers 500 to everything: after DEGRADED_AFTER failed polls, /readyz says why.
    assert httpx.post(f"{env.ab_url}/_sim/faults", json={"error_rate": 1.0, "seed": 1}, timeout=5).status_code == 200

    def degraded() -> bool:
        status, report = readyz(env.ops_port)
        return status == 503 and report["components"].get(poller, {}).get("state") == "degraded"

    wait_for(degraded, env, "the poller degraded")
    report = readyz(env.ops_port)[1]
    assert "500" in report["components"][poller]["reason"], report
    during = scrape(env.ops_port)
    assert (value(during, "edusync_poll_errors_total", tenant=env.tenant, poller=POLLER_NAME,
                  error=PollError.TRANSIENT.value) or 0) >= DEGRADED_AFTER
    assert value(during, "edusync_component_up", component=poller) == 0
    assert value(during, "edusync_component_state", component=poller, state="degraded") == 1
    success_labels = {"kind": "poller", "tenant": env.tenant, "name": POLLER_NAME}
    frozen = value(during, "edusync_last_success_timestamp_seconds", **success_labels)
    lag = value(during, "edusync_cursor_lag_seconds", tenant=env.tenant, poller=POLLER_NAME)
    assert frozen is not None and lag is not None
    time.sleep(1.5)  # no poll succeeds meanwhile: the lag must have grown by the time passed
    later = scrape(env.ops_port)
    later_lag = value(later, "edusync_cursor_lag_seconds", tenant=env.tenant, poller=POLLER_NAME)
    assert later_lag is not None and later_lag >= lag + 1.0, (lag, later_lag)
    assert value(later, "edusync_last_success_timestamp_seconds", **success_labels) == frozen

    # The outage ends: ready again, and the last success moves on.
    assert httpx.delete(f"{env.ab_url}/_sim/faults", timeout=5).status_code == 200
    wait_for(lambda: readyz(env.ops_port)[0] == 200, env, "/readyz true again")
    after = scrape(env.ops_port)
    assert (value(after, "edusync_last_success_timestamp_seconds", **success_labels) or 0) > frozen
    assert value(after, "edusync_component_up", component=poller) == 1
    assert env.stop_worker() == 0
