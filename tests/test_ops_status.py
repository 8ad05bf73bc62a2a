"""The ops port's ``GET /status`` on a real worker over the roster data (Illuminate to Class, real
Kafka): states, cursors, lag and integer backlogs; no student or staff name, e-mail address or
birth date in ``/status`` or ``/metrics``; and every state-changing method refused with 405."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from simulators.illuminate import render
from tests.roster_env import TINY_DISTRICT, ClassTarget, RosterEnv

pytestmark = pytest.mark.slow(60)

HANDLER = "roster_to_class"


@pytest.fixture(scope="module")
def env(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RosterEnv]:
    import uuid

    bench = RosterEnv(kafka_bootstrap, tmp_path_factory.mktemp("status"), uuid.uuid4().hex[:10],
                      targets=[ClassTarget()], seed=TINY_DISTRICT)
    try:
        bench.start_worker()
        bench.wait_converged(timeout=180)
        yield bench
    finally:
        bench.close()


def _get(env: RosterEnv, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{env.ops_port}{path}", timeout=30)


def _personal_data(env: RosterEnv) -> list[str]:
    """Every student's and staff member's names, e-mail addresses and birth dates as seeded."""
    d = env.illuminate.district
    found: list[str] = []
    for s in d.students.rows.values():
        row = render.student(d, s, homeroom=False, programs=False, typos=False)
        found += [f"{s.first_name} {s.last_name}", s.last_name, s.birth_date, row["email"]]
    for u in d.users.rows.values():
        row = render.user(u)
        found += [f"{u.first_name} {u.last_name}", u.last_name, u.birth_date, row["username"]]
        found += [row["email1"]] if row["email1"] else []
    return sorted(set(found))


def test_status_reports_components_cursors_and_integer_backlogs(env: RosterEnv) -> None:
    deadline = time.monotonic() + 60
    while True:
        report = _get(env, "/status").json()
        backlog = report["handlers"].get(HANDLER, {}).get("backlog")
        if backlog == 0:
            break
        assert time.monotonic() < deadline, report
        time.sleep(2)
    assert report["kafka"] is True
    assert report["namespace"] == "edusync"
    assert {c["state"] for c in report["components"].values()} == {"ready"}, report["components"]
    assert type(report["handlers"][HANDLER]["backlog"]) is int
    assert all(type(n) is int for n in report["handlers"][HANDLER]["backlog_by_slot"].values())
    pollers = {k: v for k, v in report["pollers"].items() if k.startswith(f"{env.tenant}/")}
    assert pollers and all(p["state"] == "ready" for p in pollers.values()), pollers
    assert all(p["cursor"] is not None and p["last_success"] is not None for p in pollers.values()), pollers
    assert any(p["lag_seconds"] is not None for p in pollers.values()), pollers


def test_no_personal_data_in_status_or_metrics(env: RosterEnv) -> None:
    text = _get(env, "/status").text + "\n" + _get(env, "/metrics").text
    personal = _personal_data(env)
    assert len(personal) > 50
    leaked = [value for value in personal if re.search(rf"(?<![\w.@-]){re.escape(value)}(?![\w@-])", text)]
    assert leaked == []


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/status", "/metrics", "/readyz", "/pause", "/"])
def test_state_changing_methods_are_refused(env: RosterEnv, method: str, path: str) -> None:
    before = _get(env, "/readyz").json()
    response = httpx.request(method, f"http://127.0.0.1:{env.ops_port}{path}", json={"component": "all"},
                             timeout=30)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    after = _get(env, "/readyz").json()
    assert {k: v["state"] for k, v in after["components"].items()} == \
        {k: v["state"] for k, v in before["components"].items()}


def test_status_names_the_cause_when_credentials_are_rejected(
        kafka_bootstrap: str, tmp_path: Path, unique: str) -> None:
    bench = RosterEnv(kafka_bootstrap, tmp_path, unique, targets=[ClassTarget()], seed=TINY_DISTRICT,
                      entities=["students"])
    bench.config.write_text(bench.config.read_text().replace("${ILL_CONSUMER_SECRET}", "not-the-secret"))
    try:
        bench.start_worker()
        key = f"{bench.tenant}/illuminate.students"
        deadline = time.monotonic() + 120
        while True:
            try:
                poller = _get(bench, "/status").json()["pollers"].get(key, {})
            except httpx.TransportError:  # still starting
                poller = {}
            if poller.get("state") == "paused" and poller.get("last_error"):
                break
            assert time.monotonic() < deadline, (poller, bench.log_tail())
            time.sleep(1)
        assert "401" in poller["last_error"] and "illuminate" in poller["last_error"], poller
        assert poller["last_success"] is None
        report = _get(bench, "/status").json()
        assert report["ready"] is False
        assert "401" in report["components"][f"poller:{key}"]["reason"]
    finally:
        bench.close()
