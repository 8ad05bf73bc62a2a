"""The system registry: every upstream edusync talks to, one line each.

A system is its client module (``worker/clients/``), its simulator (``simulators/``) and one
``System`` in a module here; list it below and it gets a configuration section under each
tenant's ``systems:``, a place in ``edusync simulate all``, and shared clients.
"""

from __future__ import annotations

from typing import Any

from worker.registry import System
from worker.systems.abconnect import ABCONNECT
from worker.systems.canvas import CANVAS
from worker.systems.classroom import CLASSROOM
from worker.systems.illuminate import ILLUMINATE
from worker.systems.matrixlms import MATRIXLMS

SYSTEMS: tuple[System[Any, Any], ...] = (
    ABCONNECT,
    CANVAS,
    ILLUMINATE,
    CLASSROOM,
    MATRIXLMS,
)
