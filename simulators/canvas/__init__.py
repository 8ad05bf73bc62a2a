"""A local Canvas LMS simulator: real HTTP, Canvas's auth, paging, throttling and error bodies.

It serves account outcomes, a roster and gradebook target (users and logins, terms, courses,
sections, enrollments, assignments, submissions, Progress), the course and grade-change audit
feeds, and an OAuth2 token endpoint; ``/_sim/`` controls it (see ``control.py``,
``roster_control.py``, ``audit.py`` and ``oauth.py``).

Usage::

    sim = CanvasSimulator(tokens={"secret": 1})
    async with serve_app(create_app(sim)) as base_url:
        ...
"""

from typing import Any

from simulators.canvas.app import create_app
from simulators.canvas.audit_store import AuditConfig
from simulators.canvas.auth import AuthConfig, TokenGrant
from simulators.canvas.paging import PagingConfig
from simulators.canvas.state import DEFAULT_TOKEN, CanvasSimulator
from simulators.canvas.throttle import ThrottleConfig
from simulators.options import SimulateOptions


def simulate_app(opts: SimulateOptions) -> tuple[Any, str]:
    """For ``edusync simulate``: one account and the default token."""
    return create_app(CanvasSimulator()), f"API /api/v1/  Bearer token {DEFAULT_TOKEN}"


__all__ = [
    "DEFAULT_TOKEN",
    "AuditConfig",
    "AuthConfig",
    "CanvasSimulator",
    "PagingConfig",
    "ThrottleConfig",
    "TokenGrant",
    "create_app",
    "simulate_app",
]
