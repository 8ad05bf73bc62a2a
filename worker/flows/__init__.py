"""The flow registry: every flow edusync knows, one line each.

A flow is its own modules (client, poller or handler, schema), one ``Flow`` in a module here, and
one line below. Wiring, configuration (each tenant's ``flows:`` section), ``edusync schemas
export``, ``replay``, ``status``, ``dlq`` and ``simulate`` all read this list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from worker.flows.canvas_audit import CANVAS_AUDIT
from worker.flows.illuminate_changes import ILLUMINATE_CHANGES
from worker.flows.roster_canvas import ROSTER_CANVAS
from worker.flows.roster_classroom import ROSTER_CLASSROOM
from worker.flows.roster_matrixlms import ROSTER_MATRIXLMS
from worker.flows.standards import STANDARDS
from worker.registry import Flow

FLOWS: tuple[Flow[Any], ...] = (
    STANDARDS,
    ILLUMINATE_CHANGES,
    ROSTER_CLASSROOM,
    ROSTER_MATRIXLMS,
    ROSTER_CANVAS,
    CANVAS_AUDIT,
)


def flow_named(name: str) -> Flow[Any] | None:
    """The registered flow called ``name``."""
    return next((f for f in FLOWS if f.name == name), None)


def handler_names() -> list[str]:
    """Every handler any flow contributes."""
    return [h for f in FLOWS for h in f.handler_names]


def event_types() -> Mapping[str, type[BaseModel]]:
    """Every event type any flow publishes, with its payload model."""
    return {name: model for f in FLOWS for name, model in f.event_types.items()}
