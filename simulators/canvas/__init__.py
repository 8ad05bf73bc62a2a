"""A local Canvas LMS simulator: real HTTP, Canvas's auth, paging, throttling and error bodies.

Usage::

    sim = CanvasSimulator(tokens={"secret": 1})
    async with serve_app(create_app(sim)) as base_url:
        ...
"""

from simulators.canvas.app import create_app
from simulators.canvas.auth import AuthConfig, TokenGrant
from simulators.canvas.paging import PagingConfig
from simulators.canvas.state import DEFAULT_TOKEN, CanvasSimulator
from simulators.canvas.throttle import ThrottleConfig

__all__ = [
    "DEFAULT_TOKEN",
    "AuthConfig",
    "CanvasSimulator",
    "PagingConfig",
    "ThrottleConfig",
    "TokenGrant",
    "create_app",
]
