"""A local MatrixLMS API 1.0 simulator (seed 000, matrix_class.md Part A): every call a GET to
``/api/<function>?api_key=...``, ``{"message": ...}`` errors, 100 per page, the 120-calls-a-minute
limit with its one-minute lockout on a scalable clock, and a ``/_sim/`` control API.

Usage::

    sim = MatrixSimulator()
    with ThreadedServer(create_app(sim)) as server:
        httpx.get(f"{server.url}/api/get_version", params={"api_key": DEMO_API_KEY})
"""

from __future__ import annotations

from starlette.types import ASGIApp

from simulators.matrixlms.app import create_app
from simulators.matrixlms.clock import SimClock
from simulators.matrixlms.config import SimConfig
from simulators.matrixlms.generator import SeedSpec
from simulators.matrixlms.keys import DEMO_API_KEY, DEMO_SITE, KeyGrant
from simulators.matrixlms.ratelimit import RATE_LIMIT_MESSAGE, RateLimitConfig
from simulators.matrixlms.state import MatrixSimulator
from simulators.options import SimulateOptions


def simulate_app(opts: SimulateOptions) -> tuple[ASGIApp, str]:
    """The app for ``edusync simulate``: the demo site seeded with ``opts.students`` students (0:
    examples only), and a one-line hint with the API path and the demo api_key."""
    sim = MatrixSimulator()
    if opts.students:
        sim.seed(SeedSpec(size=opts.students, seed=opts.seed))
    limit = sim.config.rate_limit
    hint = (f"API /api/<function>?api_key={DEMO_API_KEY}  (site {DEMO_SITE}; {limit.limit} calls/"
            f"{limit.window_seconds:g} s, then {limit.lockout_seconds:g} s lockout)")
    return create_app(sim), hint


__all__ = [
    "DEMO_API_KEY", "DEMO_SITE", "RATE_LIMIT_MESSAGE", "KeyGrant", "MatrixSimulator", "RateLimitConfig",
    "SeedSpec", "SimClock", "SimConfig", "create_app", "simulate_app",
]
