"""From configuration to components: which pollers and handlers each tenant gets."""

from __future__ import annotations

from worker.components import Component
from worker.config import WorkerConfig


def build_components(config: WorkerConfig) -> list[Component]:
    """Every poller and handler the configuration asks for."""
    components: list[Component] = []
    return components
