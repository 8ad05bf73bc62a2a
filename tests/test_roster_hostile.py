"""Hostile targets: Class, MatrixLMS and Canvas each behind ``simulators/hostile_proxy.py``, which
answers a run of their requests with a login page on 200, a body past the size cap, a body that
trickles past the deadline (after the write was applied) or an hour's Retry-After. The three roster
flows converge anyway: every cause is named in the worker's log, no event is dead-lettered, and the
convergence checks find no object created twice (a trickled write was applied: the handler must
look it up, not create it again)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from simulators.hostile_proxy import HostileMode, HostileProxy
from simulators.roster_projection import RosterProjection, RosterReport
from simulators.server import ThreadedServer
from tests.roster_env import TINY_DISTRICT, ClassTarget, RosterEnv, RosterTarget
from tests.roster_target_canvas import CanvasTarget
from tests.roster_target_matrixlms import MatrixTarget

pytestmark = pytest.mark.slow(60)

# Each client gives up on an attempt quickly, so a trickle costs seconds, not a minute.
HTTP = ("        http: {request_deadline_seconds: 2, max_attempts: 3, retry_after_cap_seconds: 30, "
        "max_response_bytes: 4194304}\n")
AFFECTED = 3  # requests each mode spoils per target

MODES = [
    ("html_with_status_200", HostileMode(kind="html200", remaining=AFFECTED), "HTML page"),
    ("page_over_the_size_cap", HostileMode(kind="oversize", oversize_bytes=16 * 1024 * 1024, remaining=AFFECTED),
     "cap of 4,194,304 bytes"),
    ("write_applied_then_a_trickle", HostileMode(kind="trickle", trickle_seconds=3.0, remaining=AFFECTED),
     "no complete answer within 2s"),
    ("retry_after_an_hour", HostileMode(kind="retry_after", retry_after="3600", remaining=AFFECTED),
     "Retry-After 3600s"),
]


class HostileFront:
    """A roster target whose API is reached through a hostile proxy."""

    def __init__(self, inner: ClassTarget | MatrixTarget | CanvasTarget, system: str) -> None:
        self.inner, self.system = inner, system
        self.flow, self.handler = inner.flow, inner.handler
        self.flow_settings = getattr(inner, "flow_settings", "{}")
        self.proxy = HostileProxy(inner.server.url)
        self.server = ThreadedServer(self.proxy.app()).start()

    def system_yaml(self) -> str:
        return self.inner.system_yaml().replace(self.inner.server.url, self.server.url) + HTTP

    def environment(self) -> dict[str, str]:
        return self.inner.environment()

    def report(self, projection: RosterProjection) -> RosterReport:
        return self.inner.report(projection)

    def writes(self) -> int:
        return self.inner.writes()

    def close(self) -> None:
        self.server.stop()
        self.inner.close()


@pytest.fixture(scope="module")
def env(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RosterEnv]:
    fronts: list[RosterTarget] = [HostileFront(ClassTarget(), "classroom"), HostileFront(MatrixTarget(), "matrixlms"),
                                  HostileFront(CanvasTarget(), "canvas")]
    bench = RosterEnv(kafka_bootstrap, tmp_path_factory.mktemp("roster-hostile"), uuid.uuid4().hex[:10],
                      targets=fronts, seed=TINY_DISTRICT)
    bench.start_worker()
    bench.wait_converged(timeout=180)
    try:
        yield bench
    finally:
        bench.close()


@pytest.mark.parametrize(("case", "mode", "cause"), MODES, ids=[m[0] for m in MODES])
def test_every_target_converges_through_spoiled_answers_without_dead_letters_or_duplicates(
    env: RosterEnv, case: str, mode: HostileMode, cause: str,
) -> None:
    since = env.log.stat().st_size
    fronts = [t for t in env.targets if isinstance(t, HostileFront)]
    for front in fronts:
        front.proxy.affected = 0
        front.proxy.set(mode.model_copy())
    # Every target has work: renames reach all three, an enrolment and a drop add and remove rows.
    seed = sum(map(ord, case))
    env.mutate("rename", count=2, seed=seed)
    env.mutate("enrol", count=2, seed=seed + 1)
    env.mutate("drop", count=1, seed=seed + 2)
    reports = env.wait_converged(timeout=180)
    assert all(r.ok for r in reports), "\n".join(r.summary() for r in reports)
    for front in fronts:
        assert front.proxy.affected == AFFECTED, f"{front.handler}: only {front.proxy.affected} answers spoiled"
        assert env.dead_letters(front.handler) == [], front.handler
    log = env.log.read_bytes()[since:].decode(errors="replace")
    for front in fronts:
        # The HTTP layer's retry (``upstream.retry``) or the handler's (a write whose answer was spoiled).
        named = [line for line in log.splitlines() if cause in line
                 and (f'"system":"{front.system}"' in line or f'"handler":"{front.handler}"' in line)]
        assert named, f"{front.system}: no log line names {cause!r}:\n{env.log_tail()}"
