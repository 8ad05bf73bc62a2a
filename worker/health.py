"""Readiness of the worker's components, for /readyz and /healthz, with the reason for each state."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

from worker.metrics import COMPONENT_PAUSED, COMPONENT_STATE


class State(StrEnum):
    """Where a component is in its life."""

    STARTING = "starting"
    READY = "ready"
    PAUSED = "paused"  # credentials or scope rejected: waiting, retrying on a slow schedule
    HELD = "held"  # paused by an operator (edusync pause): deliberate, so neither unready nor alerting
    DEGRADED = "degraded"  # running, but its recent attempts failed
    RESTARTING = "restarting"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Status:
    """One component's state, why it is there, and since when (Unix time)."""

    state: State
    reason: str | None
    since: float


class Health:
    """Components report their state here; the ops endpoint reads it."""

    def __init__(self) -> None:
        self.components: dict[str, Status] = {}
        self.kafka_ready = False

    def set(self, component: str, state: State, reason: str | None = None) -> None:
        """Record a component's state (and the reason, for any state but ready)."""
        current = self.components.get(component)
        if current is None or current.state is not state or current.reason != reason:
            self.components[component] = Status(state, reason if state is not State.READY else None, time.time())
        COMPONENT_PAUSED.labels(component).set(1 if state is State.PAUSED else 0)
        for each in State:
            COMPONENT_STATE.labels(component, each.value).set(1 if each is state else 0)

    def forget(self, component: str) -> None:
        """Drop a component that no longer runs here (a poller whose tenant moved to another replica)."""
        self.components.pop(component, None)
        COMPONENT_PAUSED.labels(component).set(0)
        for each in State:
            COMPONENT_STATE.labels(component, each.value).set(0)

    def state(self, component: str) -> State | None:
        """The current state of ``component``, if it reported one."""
        status = self.components.get(component)
        return status.state if status else None

    def ready(self) -> bool:
        """Kafka is reachable and every component is running normally (or held by an operator)."""
        return self.kafka_ready and all(s.state in (State.READY, State.HELD) for s in self.components.values())

    def report(self) -> dict[str, object]:
        """A JSON-able summary."""
        components: dict[str, object] = {}
        for name, status in sorted(self.components.items()):
            entry: dict[str, object] = {"state": status.state.value, "since": round(status.since, 3)}
            if status.reason:
                entry["reason"] = status.reason
            components[name] = entry
        return {"ready": self.ready(), "kafka": self.kafka_ready, "components": components}
