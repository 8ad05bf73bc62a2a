"""The ops port's ``GET /status``: each component's state and last error, each poller's cursor and
lag, each handler's backlog. Read-only, and free of personal data: it carries states, counts,
cursors (sequence numbers, pages, times) and error texts with e-mail addresses masked.
"""

from __future__ import annotations

import re
import time
from typing import Any

import anyio
import structlog

from worker.config import WorkerConfig
from worker.handler_frame import group_id_for
from worker.health import Health
from worker.kafka.backlog import group_backlog
from worker.poller_frame import cursor_key
from worker.status_board import BOARD, StatusBoard
from worker.tenant_slots import slot_name, slot_of
from worker.wiring import Wiring

log = structlog.get_logger(__name__)

BACKLOG_EVERY_SECONDS = 15.0  # a scrape every few seconds must not re-read the topics each time
BACKLOG_DEADLINE_SECONDS = 10.0
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
MAX_ERROR_CHARS = 500


def scrub(text: str | None) -> str | None:
    """An error text fit for ``/status``: e-mail addresses masked, at most ``MAX_ERROR_CHARS``."""
    if text is None:
        return None
    return _EMAIL.sub("<email>", text)[:MAX_ERROR_CHARS]


class StatusSource:
    """Builds the ``/status`` document for one worker process."""

    def __init__(self, config: WorkerConfig, wiring: Wiring, health: Health, board: StatusBoard = BOARD) -> None:
        self.config = config
        self.health = health
        self.board = board
        self.pollers = [cursor_key(s.poller.tenant, s.poller.name) for s in wiring.pollers]
        prefix = config.kafka.consumer_group_prefix
        self.handler_groups: dict[str, tuple[list[str], dict[str, str]]] = {}
        for handler in wiring.handlers:
            slots = sorted({slot_of(t) for t in wiring.handler_tenants.get(handler.name, ())})
            base = group_id_for(handler.name, prefix)
            self.handler_groups[handler.name] = (
                list(handler.topics), {slot_name(n): f"{base}.{slot_name(n)}" for n in slots})
        self._backlogs: dict[str, Any] = {}
        self._backlogs_at = -BACKLOG_EVERY_SECONDS
        self._lock = anyio.Lock()

    async def report(self) -> dict[str, Any]:
        """The whole document (JSON-able)."""
        components = {name: self._component(name) for name in sorted(self.health.components)}
        return {
            "replica": self.config.kafka.replica_id,
            "namespace": self.config.kafka.namespace,
            "ready": self.health.ready(),
            "kafka": self.health.kafka_ready,
            "components": components,
            "pollers": {key: self._poller(key) for key in self.pollers},
            "handlers": await self._handler_backlogs(),
        }

    def _component(self, name: str) -> dict[str, Any]:
        status = self.health.components[name]
        entry: dict[str, Any] = {"state": status.state.value, "since": round(status.since, 3)}
        if status.reason:
            entry["reason"] = scrub(status.reason)
        return entry

    def _poller(self, key: str) -> dict[str, Any]:
        component = f"poller:{key}"
        status = self.health.components.get(component)
        progress = self.board.pollers.get(key)
        entry: dict[str, Any] = {
            "component": component,
            # Another replica may own the tenant: then this one does not run the poller.
            "state": status.state.value if status else "not running here",
        }
        if progress is not None and status is not None:
            entry.update(
                cursor=progress.cursor,
                lag_seconds=None if progress.lag_seconds is None else round(progress.lag_seconds, 3),
                last_success=None if progress.last_success is None else round(progress.last_success, 3),
                last_error=scrub(progress.last_error),
                last_error_at=None if progress.last_error_at is None else round(progress.last_error_at, 3),
            )
        return entry

    async def _handler_backlogs(self) -> dict[str, Any]:
        async with self._lock:
            if time.monotonic() - self._backlogs_at >= BACKLOG_EVERY_SECONDS:
                self._backlogs = await self._read_backlogs()
                self._backlogs_at = time.monotonic()
            return self._backlogs

    async def _read_backlogs(self) -> dict[str, Any]:
        """Each handler's backlog in records per tenant-slot group (transaction markers not counted)."""
        kafka = self.config.kafka.connection()
        out: dict[str, Any] = {}
        for handler, (topics, groups) in self.handler_groups.items():
            try:
                with anyio.fail_after(BACKLOG_DEADLINE_SECONDS):
                    by_slot = {slot: sum((await group_backlog(kafka, group, topics)).values())
                               for slot, group in groups.items()}
            except Exception as exc:  # the document still answers; the backlog is unknown for now
                log.warning("status: backlog unknown", handler=handler, error=str(exc) or type(exc).__name__)
                out[handler] = {"backlog": None, "backlog_error": scrub(str(exc) or type(exc).__name__)}
                continue
            out[handler] = {"backlog": sum(by_slot.values()), "backlog_by_slot": by_slot}
        return out
