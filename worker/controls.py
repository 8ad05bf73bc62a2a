"""Operator controls on the compacted control topic ``edusync._control``, Debezium-signal style.

The CLI writes a command record with the worker's own Kafka credentials (the authenticated path;
the ops port stays read-only). Every replica restores the topic at start-up and follows it; a
component acts on the latest record keyed by its name. Compaction keeps exactly that latest
record, so a pause outlives restarts and rebalances: the slot's next owner reads it before it
runs the component.
"""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal

import anyio
import orjson
import structlog
from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from pydantic import BaseModel, ValidationError

from worker.concurrency import task_group
from worker.kafka.connection import Kafka, KafkaConnection, connect
from worker.kafka.reader import committed_batches, follow_committed, last_stable_offsets
from worker.shutdown import StopToken
from worker.topics import OPERATOR_CONTROL

log = structlog.get_logger(__name__)


def pause_key(component: str) -> str:
    """The control-topic key of a component's pause state (``poller:T/N`` or ``handler:H``)."""
    return f"pause/{component}"


def poller_control_name(tenant: str, poller: str) -> str:
    """The name a poller has on the control topic (as in health and metrics)."""
    return f"poller:{tenant}/{poller}"


def handler_control_name(handler: str) -> str:
    """The name a handler has on the control topic: one pause covers all its tenant slots."""
    return f"handler:{handler}"


class PauseCommand(BaseModel):
    """A pause or resume of one component, and who asked for it."""

    component: str
    paused: bool
    requested_at: datetime
    requested_by: str


def operator_identity() -> str:
    """``user@host`` of the CLI's caller, for the decision log."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


async def send_control(kafka: Kafka, key: str, value: BaseModel | None) -> None:
    """Write one control record (acks=all, idempotent); ``None`` is a tombstone."""
    connection = connect(kafka)
    producer = AIOKafkaProducer(**connection.options(), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        payload = None if value is None else orjson.dumps(value.model_dump(mode="json"))
        await producer.send_and_wait(connection.name(OPERATOR_CONTROL), payload, key=key.encode())
    finally:
        await producer.stop()


async def request_pause(kafka: Kafka, component: str, paused: bool) -> PauseCommand:
    """Pause (or resume) ``component`` wherever it runs; returns the command written."""
    command = PauseCommand(component=component, paused=paused, requested_at=datetime.now(UTC),
                           requested_by=operator_identity())
    await send_control(kafka, pause_key(component), command)
    log.info("pause requested" if paused else "resume requested", component=component,
             requested_by=command.requested_by)
    return command


def cursor_command_key(component: str) -> str:
    """The control-topic key of a pending cursor change of a poller."""
    return f"cursor/{component}"


class CursorCommand(BaseModel):
    """Set a poller's cursor to ``value``, or reset it (``value`` None: start from scratch)."""

    component: str
    action: Literal["set", "reset"]
    value: Any = None
    requested_at: datetime
    requested_by: str


class ControlView:
    """The latest control record per key, restored once per process and then followed."""

    def __init__(self, kafka: KafkaConnection) -> None:
        self.kafka = kafka
        self._data: dict[str, Any] = {}
        self._resume_at: dict[TopicPartition, int] = {}
        self._positions: dict[TopicPartition, int] = {}
        self._changed = anyio.Event()
        self.restored = False
        self.following = False

    def get(self, key: str) -> Any:
        """The latest value at ``key``, or ``None``."""
        return self._data.get(key)

    def paused(self, component: str) -> PauseCommand | None:
        """The pause command in force for ``component``, if it is paused."""
        raw = self._data.get(pause_key(component))
        if raw is None:
            return None
        try:
            command = PauseCommand.model_validate(raw)
        except ValidationError:
            return None
        return command if command.paused else None

    async def restore(self) -> None:
        """Read the topic to its end (once per process)."""
        if self.restored:
            return
        async for records in committed_batches(self.kafka, OPERATOR_CONTROL, missing_ok=True):
            self._apply(records)
            for rec in records:
                self._resume_at[TopicPartition(rec.topic, rec.partition)] = rec.offset + 1
        self.restored = True

    def claim(self) -> bool:
        """True (once) for the caller that should run ``follow``."""
        if self.following:
            return False
        self.following = True
        return True

    async def follow(self) -> None:
        """Apply new control records as they are committed, until cancelled."""
        try:
            await follow_committed(self.kafka, [OPERATOR_CONTROL], self._resume_at, self._apply,
                                   client_id="edusync-controls", positions=self._positions,
                                   on_progress=self._wake)
        finally:
            self.following = False

    async def catch_up(self, timeout: float = 60.0) -> None:
        """Return once the view holds every control record committed up to now (a new owner
        must see the pause its predecessor obeyed)."""
        if not self.following:
            return
        ends = await last_stable_offsets(self.kafka, OPERATOR_CONTROL)
        with anyio.fail_after(timeout):
            while any(self._positions.get(tp, self._resume_at.get(tp, 0)) < end for tp, end in ends.items()):
                await self.wait_changed(1.0)

    async def wait_changed(self, timeout: float) -> None:
        """Return after the next update, or after ``timeout`` seconds."""
        with anyio.move_on_after(timeout):
            await self._changed.wait()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def _apply(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        for rec in records:
            if rec.key is None:
                continue
            key = rec.key.decode()
            if rec.value is None:
                self._data.pop(key, None)
            else:
                try:
                    self._data[key] = orjson.loads(rec.value)
                except orjson.JSONDecodeError:
                    log.warning("unreadable control record ignored", key=key)
        if records:
            self._wake()


_VIEWS: dict[KafkaConnection, ControlView] = {}


def shared_controls(kafka: Kafka) -> ControlView:
    """The process's one view of the control topic of ``kafka``'s deployment."""
    connection = connect(kafka)
    view = _VIEWS.get(connection)
    if view is None:
        view = _VIEWS[connection] = ControlView(connection)
    return view


class Gate:
    """Whether one component may work now: closed while an operator's pause is in force."""

    def __init__(self, view: ControlView, *names: str) -> None:
        self.view = view
        self.names = names

    @property
    def closed(self) -> PauseCommand | None:
        """The pause in force, or ``None`` when the component may work."""
        for name in self.names:
            command = self.view.paused(name)
            if command is not None:
                return command
        return None

    def cursor_command(self) -> CursorCommand | None:
        """A cursor change waiting for this poller (its owner applies it, then clears it)."""
        for name in self.names:
            raw = self.view.get(cursor_command_key(name))
            if raw is not None:
                try:
                    return CursorCommand.model_validate(raw)
                except ValidationError:
                    log.warning("unreadable cursor command ignored", component=name)
        return None

    async def wait_open(self, stop: StopToken, component: str, gone: Callable[[], bool] = lambda: False) -> None:
        """Wait while paused (or until a stop request, or ``gone()``), logging the decision both ways."""
        command = self.closed
        if command is None:
            return
        log.warning("paused by operator", component=component, requested_by=command.requested_by,
                    requested_at=command.requested_at.isoformat())
        started = time.monotonic()
        while self.closed is not None and not (stop.stopping or gone()):
            await self.view.wait_changed(1.0)
        if self.closed is None:
            log.warning("resumed by operator", component=component, paused_seconds=round(time.monotonic() - started))


@asynccontextmanager
async def current_controls(kafka: Kafka) -> AsyncIterator[ControlView]:
    """The process's control view, restored and caught up with the topic; followed by the
    worker for the whole process, or here for as long as the block runs when nobody does."""
    view = shared_controls(kafka)
    await view.restore()
    async with task_group() as tg:
        if view.claim():
            tg.start_soon(view.follow)
        await view.catch_up()
        yield view
        tg.cancel_scope.cancel()
