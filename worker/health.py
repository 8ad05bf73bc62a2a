"""Readiness of the worker's components, for /readyz and /healthz."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Where a component is in its life."""

    STARTING = "starting"
    READY = "ready"
    RESTARTING = "restarting"
    STOPPED = "stopped"


class Health:
    """Components report their state here; the ops endpoint reads it."""

    def __init__(self) -> None:
        self.components: dict[str, State] = {}
        self.kafka_ready = False

    def set(self, component: str, state: State) -> None:
        """Record a component's state."""
        self.components[component] = state

    def ready(self) -> bool:
        """Kafka is reachable and every component is running."""
        return self.kafka_ready and all(s is State.READY for s in self.components.values())

    def report(self) -> dict[str, object]:
        """A JSON-able summary."""
        return {"ready": self.ready(), "kafka": self.kafka_ready,
                "components": {k: v.value for k, v in sorted(self.components.items())}}
