"""A local simulator of the "Class" virtual-classroom API ``/api/v1`` (seed 001, matrix_class.md
Part B): scoped Bearer keys, the documented bodies (201 without ``class_id``, one-element arrays,
the duplicate ``ext_class_id`` 400, the missing-scope 403), the deferred create variant behind a
switch, and a ``/_sim/`` control API. The package is ``classroom`` because ``class`` is a keyword.

Usage::

    sim = ClassSimulator()
    with ThreadedServer(create_app(sim)) as server:
        httpx.get(f"{server.url}/api/v1/classes", headers={"Authorization": f"Bearer {DEMO_SECRET}"})
"""

from __future__ import annotations

from starlette.types import ASGIApp

from simulators.classroom.app import create_app
from simulators.classroom.auth import ALL_SCOPES, DEMO_SECRET, ApiKey
from simulators.classroom.config import SimConfig
from simulators.classroom.generator import SeedSpec
from simulators.classroom.state import ClassSimulator
from simulators.options import SimulateOptions


def simulate_app(opts: SimulateOptions) -> tuple[ASGIApp, str]:
    """The app for ``edusync simulate``: an organisation of ``opts.students`` students (0: the
    seed's examples only) and a one-line hint with the API path and the demo secret."""
    sim = ClassSimulator()
    if opts.students:
        sim.seed(SeedSpec(size=opts.students, seed=opts.seed))
    hint = f"API /api/v1/  Authorization: Bearer {DEMO_SECRET}  (all scopes)"
    return create_app(sim), hint


__all__ = ["ALL_SCOPES", "DEMO_SECRET", "ApiKey", "ClassSimulator", "SeedSpec", "SimConfig", "create_app",
           "simulate_app"]
