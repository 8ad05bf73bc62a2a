"""The generic poller loop a concrete poller plugs into.

read cursor -> fetch -> publish events and new cursor in ONE transaction -> sleep -> repeat.
A failed fetch publishes nothing and leaves the cursor where it was; a failed
transaction leaves both unchanged, so no event is lost and none is published twice.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import anyio
import structlog

from schemas.envelope import CloudEvent
from worker.backoff import Backoff
from worker.clients.errors import (
    AuthenticationError,
    ForbiddenError,
    MalformedResponseError,
    ThrottledError,
    TransientUpstreamError,
)
from worker.concurrency import task_group
from worker.controls import CursorCommand, Gate, cursor_command_key
from worker.errors import EdusyncError, Verdict, classify
from worker.health import Health, State
from worker.kafka.producer import TransactionalProducer
from worker.metrics import (
    COMPONENT_UP,
    CURSOR_LAG,
    EVENTS_PUBLISHED,
    POLL_DURATION,
    POLL_ERRORS,
    POLL_INTERVAL,
    Kind,
    PollError,
    current_tenant,
    mark_started,
    mark_success,
    prime_poller,
    tenant_label,
)
from worker.progress import PROGRESS_EVERY_SECONDS, ProgressLog
from worker.shutdown import StopToken
from worker.state_store import StateStore
from worker.status_board import BOARD
from worker.topics import OPERATOR_CONTROL
from worker.walk_progress import record_walk

log = structlog.get_logger(__name__)

# Consecutive failed polls after which the component reports itself degraded (/readyz false).
DEGRADED_AFTER = 3
PAUSED_LOG_EVERY = 60.0
PUBLISH_DEADLINE = 120.0


@dataclass(frozen=True)
class Outbound:
    """One event and the topic it goes to."""

    topic: str
    event: CloudEvent


@dataclass(frozen=True)
class StateWrite:
    """A state-store write that must commit with the events (snapshot hashes, for example)."""

    store: StateStore
    key: str
    value: Any


@dataclass
class PollResult:
    """What one poll produced: the events, the cursor that covers them, and whether to poll
    again at once (``more``) rather than after the interval."""

    events: list[Outbound]
    cursor: Any
    more: bool = False
    newest_time: datetime | None = None
    state: list[StateWrite] = field(default_factory=list)
    # (done, total) of long work in progress, e.g. (page, pages) of a snapshot walk; for progress lines.
    progress: tuple[int, int] | None = None


class Poller(Protocol):
    """A change signal of one tenant. ``poll`` must not have side effects beyond reading
    upstream: everything it wants kept goes into the returned ``PollResult``. It may be
    cancelled at any await (a stop request, its deadline)."""

    name: str
    tenant: str

    async def poll(self, cursor: Any) -> PollResult: ...


@dataclass(frozen=True)
class PollerSpec:
    """A poller with its schedule: interval, whether it may stretch it while idle, and the
    deadline of one poll (fetching its pages; the commit has its own)."""

    poller: Poller
    interval: float
    idle_backoff: bool = False
    deadline: float = 300.0


def idle_interval(interval: float, quiet_polls: int) -> float:
    """The wait before the next poll: doubles with each empty poll, up to 4x the interval.
    An idle poller thus spends a quarter of the upstream budget it would at a fixed pace
    (AB Connect's poller and handler share one account's 5 requests/s)."""
    return interval * float(min(4, 2 ** max(0, quiet_polls - 1)))


def cursor_key(tenant: str, poller: str) -> str:
    """The key of a poller's cursor in ``edusync._cursors``."""
    return f"{tenant}/{poller}"


class PollerRunner:
    """Runs one ``Poller`` until stopped, committing events and cursor atomically.

    A stop request cancels a poll in flight at once (a poll has no side effects); a commit in
    progress is finished first. Rejected credentials pause the poller: state ``paused`` with
    the reason, one log line a minute, another try every ``paused_retry`` seconds.
    """

    def __init__(
        self, poller: Poller, producer: TransactionalProducer, cursors: StateStore, *,
        interval: float = 5.0, backoff: Backoff | None = None, idle_backoff: bool = False,
        deadline: float = 300.0, health: Health | None = None, paused_retry: float = 60.0,
        gate: Gate | None = None,
        progress_every: float = PROGRESS_EVERY_SECONDS,
    ) -> None:
        self.poller = poller
        self.producer = producer
        self.cursors = cursors
        self.interval = interval
        self.idle_backoff = idle_backoff
        self.deadline = deadline
        self.backoff = backoff or Backoff(base=0.5, cap=60.0)
        self.health = health or Health()
        self.paused_retry = paused_retry
        self.gate = gate  # an operator's pause, checked between cycles
        self.progress_every = progress_every
        self._catch_up: _CatchUp | None = None
        self.key = cursor_key(poller.tenant, poller.name)
        self.component = f"poller:{self.key}"
        self._labels = (poller.tenant, poller.name)
        self._covered = time.time()  # until the first poll says otherwise: lag grows from the start

    async def run_once(self) -> PollResult:
        """One poll within its deadline, then its transaction. Upstream errors propagate with
        nothing published; a poll over its deadline raises ``TimeoutError``."""
        started = time.monotonic()
        with anyio.fail_after(self.deadline):
            result = await self.poller.poll(self.cursors.get(self.key))
        # Once the events are on their way the transaction is finished, even on a stop request.
        with anyio.fail_after(PUBLISH_DEADLINE, shield=True):
            await self._publish(result)
        self._record(result, started)
        return result

    async def _publish(self, result: PollResult) -> None:
        async with self.producer.transaction() as txn:
            for out in result.events:
                await txn.send_event(out.topic, out.event)
            for write in result.state:
                await write.store.put(txn, write.key, write.value)
            await self.cursors.put(txn, self.key, result.cursor)

    def _record(self, result: PollResult, started: float) -> None:
        for topic, count in Counter(out.topic for out in result.events).items():
            EVENTS_PUBLISHED.labels(*self._labels, topic).inc(count)
        POLL_DURATION.labels(*self._labels).observe(time.monotonic() - started)
        if result.newest_time is not None:
            self._covered = min(time.time(), result.newest_time.timestamp())
        elif not result.more:
            self._covered = time.time()  # caught up: the cursor covers everything until now
        mark_success(Kind.POLLER, self.poller.tenant, self.poller.name)
        record_walk(*self._labels, result.cursor)
        BOARD.committed(self.key, result.cursor, self._lag())

    def _lag(self) -> float:
        return max(0.0, time.time() - self._covered)

    async def _cycle(self, stop: StopToken) -> PollResult | None:
        """``run_once``, or ``None`` when a stop request cancelled the poll."""
        result: PollResult | None = None
        async with task_group() as tg:
            tg.start_soon(_cancel_on_stop, stop, tg.cancel_scope)
            result = await self.run_once()
            tg.cancel_scope.cancel()
        return result

    async def run(self, stop: StopToken) -> None:
        """Poll until ``stop``; failures back off and retry from the same cursor."""
        self._state(State.READY)
        current_tenant.set(tenant_label(self.poller.tenant))  # this task's upstream requests
        prime_poller(*self._labels)
        longest = idle_interval(self.interval, 99) if self.idle_backoff else self.interval
        POLL_INTERVAL.labels(*self._labels).set(longest)
        mark_started(Kind.POLLER, self.poller.tenant, self.poller.name)
        record_walk(*self._labels, self.cursors.get(self.key))
        # Computed at scrape time: during an outage no poll succeeds, and the lag must still grow.
        CURSOR_LAG.labels(*self._labels).set_function(self._lag)
        BOARD.started(self.key, self.cursors.get(self.key))
        failures = 0
        quiet = 0
        paused_logged = 0.0
        try:
            while not stop.stopping:
                if self.gate is not None and self.gate.closed is not None:
                    self._state(State.HELD, "paused by operator")
                    await self.gate.wait_open(stop, self.component)
                    self._state(State.READY)
                    continue
                if self.gate is not None and (command := self.gate.cursor_command()) is not None:
                    await self._set_cursor(command)
                    continue
                try:
                    result = await self._cycle(stop)
                except (EdusyncError, TimeoutError) as exc:
                    error = _describe(exc, self.deadline)
                    POLL_ERRORS.labels(*self._labels, poll_error(exc).value).inc()
                    BOARD.failed(self.key, error)
                    if classify(exc) is Verdict.PAUSE:
                        self._state(State.PAUSED, error)
                        if time.monotonic() - paused_logged >= PAUSED_LOG_EVERY:
                            paused_logged = time.monotonic()
                            log.error("poller paused: credentials rejected; retrying on a slow schedule",
                                      poller=self.poller.name, tenant=self.poller.tenant, error=error,
                                      retry_every=self.paused_retry)
                        await stop.sleep(self.paused_retry)
                        continue
                    failures += 1
                    if failures >= DEGRADED_AFTER:
                        self._state(State.DEGRADED, error)
                    delay = self._retry_delay(exc, failures)
                    log.warning("poll failed; cursor not moved", poller=self.poller.name, tenant=self.poller.tenant,
                                error=error, failures=failures, retry_in=round(delay, 2))
                    await stop.sleep(delay)
                    continue
                if result is None:
                    break
                if failures or paused_logged:
                    log.info("poller recovered", poller=self.poller.name, tenant=self.poller.tenant)
                failures, paused_logged = 0, 0.0
                self._state(State.READY)
                self._progress(result)
                if result.events:
                    quiet = 0
                    log.info("published", poller=self.poller.name, tenant=self.poller.tenant,
                             events=len(result.events), cursor=result.cursor)
                elif not result.more and self.idle_backoff:
                    quiet += 1  # a whole cycle with nothing new: wait longer next time
                if not result.more:
                    await stop.sleep(idle_interval(self.interval, quiet))
        finally:
            COMPONENT_UP.labels(self.component).set(0)
            # Not running here (stopped, or its tenant moved to another replica): no lag to report.
            with contextlib.suppress(KeyError):
                CURSOR_LAG.remove(*self._labels)

    async def _set_cursor(self, command: CursorCommand) -> None:
        """An operator's cursor change, between cycles: the cursor and the command's tombstone in
        one transaction, so it is applied exactly once, by whichever replica owns the poller."""
        before = self.cursors.get(self.key)
        async with self.producer.transaction() as txn:
            await self.cursors.put(txn, self.key, command.value)
            await txn.send(OPERATOR_CONTROL, cursor_command_key(self.component).encode(), None)
        log.warning("cursor set by operator" if command.action == "set" else "cursor reset by operator",
                    poller=self.poller.name, tenant=self.poller.tenant, before=before, cursor=command.value,
                    requested_by=command.requested_by)
        # Our own tombstone must reach the view before the next look, or the command would apply twice.
        with anyio.move_on_after(60):
            while self.gate is not None and self.gate.cursor_command() == command:
                await self.gate.view.wait_changed(1.0)

    def _progress(self, result: PollResult) -> None:
        """Progress lines while polls keep asking for more (an initial sync, a walk): quiet for
        short catch-ups, a line every ``progress_every`` seconds for long ones, then a closing line."""
        if self._catch_up is None:
            if not result.more:
                return
            self._catch_up = _CatchUp(ProgressLog("poller catching up", self.progress_every,
                                                  poller=self.poller.name, tenant=self.poller.tenant))
        catch_up = self._catch_up
        catch_up.polls += 1
        catch_up.events += len(result.events)
        done, total = result.progress if result.progress else (catch_up.polls, None)
        if result.more:
            catch_up.log.update(done, total, polls=catch_up.polls, events=catch_up.events)
        else:
            catch_up.log.finish(done, total, polls=catch_up.polls, events=catch_up.events)
            self._catch_up = None

    def _retry_delay(self, exc: BaseException, failures: int) -> float:
        floor = 0.0
        if isinstance(exc, ThrottledError) and exc.retry_after:
            floor = min(exc.retry_after, self.backoff.cap)  # the upstream's advice, within our cap
        return self.backoff.delay(failures, floor=floor)

    def _state(self, state: State, reason: str | None = None) -> None:
        self.health.set(self.component, state, reason)
        COMPONENT_UP.labels(self.component).set(1 if state is State.READY else 0)


def poll_error(exc: BaseException) -> PollError:
    """The ``error`` label of a failed poll."""
    if isinstance(exc, AuthenticationError | ForbiddenError):
        return PollError.CREDENTIALS
    if isinstance(exc, ThrottledError):
        return PollError.THROTTLED
    if isinstance(exc, MalformedResponseError):
        return PollError.MALFORMED
    if isinstance(exc, TransientUpstreamError):
        return PollError.TRANSIENT
    if isinstance(exc, TimeoutError):
        return PollError.DEADLINE
    return PollError.OTHER


@dataclass
class _CatchUp:
    """A run of polls that each asked for more."""

    log: ProgressLog
    polls: int = 0
    events: int = 0


def _describe(exc: BaseException, deadline: float) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"poll did not finish within its deadline of {deadline:g}s"
    return str(exc) or type(exc).__name__


async def _cancel_on_stop(stop: StopToken, scope: anyio.CancelScope) -> None:
    await stop.wait()
    scope.cancel()
