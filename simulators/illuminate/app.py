"""The Illuminate simulator: state, configuration, OAuth verifier and the Starlette app."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from simulators.faults import FaultInjector, FaultMiddleware
from simulators.illuminate import api, control
from simulators.illuminate.generator import SeedSpec, generate
from simulators.illuminate.mutate import Mode, apply
from simulators.illuminate.oauth import DEFAULT_CREDENTIALS, Credentials, OAuthVerifier
from simulators.illuminate.state import District

_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


class SimConfig(BaseModel):
    """Behaviour the reference leaves open (ref L3319-L3348), configurable per test."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    directory: str = Field(default="live", description="the {directory} path segment before rest_server.php")
    default_limit: int = Field(
        default=1000, ge=1, description="page size when `limit` is absent (undocumented)")
    limit_policy: Literal["reject", "clamp"] = Field(
        default="reject", description="limit above the documented max: 400, or clamp to the max")
    require_page: bool = Field(default=False, description="400 when `page` is missing (samples omit it)")
    empty_num_pages: Literal[0, 1] = Field(default=0, description="num_pages of an empty result")
    single_result_as_object: bool = Field(
        default=False, description="render a one-record `results` as an object (the Gradebook shape)")
    doc_typos: bool = Field(default=True, description="odd student ids spell `primary_disibility`")
    timestamp_window: float | None = Field(default=None, description="reject oauth_timestamp further off (s)")
    check_nonce: bool = Field(default=False, description="reject a replayed (timestamp, nonce)")


class IlluminateSimulator:
    """A faithful local Illuminate API with a control API under ``/_sim/``.

    The in-process methods (``seed``, ``mutate``, ``set_clock``, ``configure``) are what the
    control API calls; while the app is served from another thread, use the control API.
    """

    def __init__(
        self, *, credentials: Sequence[Credentials] = (DEFAULT_CREDENTIALS,), config: SimConfig | None = None,
        clock: date | None = None,
    ) -> None:
        self.credentials = list(credentials)
        self._initial_config = config or SimConfig()
        self.config: SimConfig = self._initial_config.model_copy()
        self.faults = FaultInjector()
        self._initial_clock = clock
        self.district = District(clock=clock or date.today())
        self._rng = random.Random(0)
        self.verifier = self._make_verifier()
        self.app: ASGIApp = FaultMiddleware(self._starlette(), self.faults)

    def _make_verifier(self) -> OAuthVerifier:
        return OAuthVerifier(self.credentials, timestamp_window=self.config.timestamp_window,
                             check_nonce=self.config.check_nonce)

    # -- operations the control API exposes (also usable in-process) ------------------------

    def reset(self) -> None:
        """Empty district on the initial date (default today), initial configuration, no faults."""
        self.district = District(clock=self._initial_clock or date.today())
        self.config = self._initial_config.model_copy()
        self.verifier = self._make_verifier()
        self.faults.clear()

    def seed(self, spec: SeedSpec) -> None:
        """Replace the district with a generated one, keeping the clock."""
        district = District(clock=self.district.clock)
        generate(spec, district)
        self.district = district
        self._rng = random.Random(spec.seed)

    def mutate(self, kind: str, count: int = 1, *, seed: int | None = None, mode: Mode | None = None,
               ) -> dict[str, dict[str, list[str]]]:
        """Apply changes; returns ``{"upserted": {entity: [keys]}, "deleted": {...}}``."""
        rng = random.Random(seed) if seed is not None else self._rng
        return apply(self.district, kind, count, rng, mode).as_json()

    def set_clock(self, day: date) -> None:
        """Move the clock (new rows and score modifications are stamped with it). The session
        stays the one seeded, so tests can cross midnight without re-seeding."""
        self.district.clock = day
        if not self.district.sites.rows:
            self.district.set_session(day)
        self.district.touch()

    def configure(self, **changes: Any) -> None:
        """Update configuration fields (validated)."""
        self.config = SimConfig.model_validate({**self.config.model_dump(), **changes})
        self.verifier = self._make_verifier()
        self.district.touch()

    # -- the ASGI app -----------------------------------------------------------------------

    def _bind(
        self, handler: Callable[[IlluminateSimulator, Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await handler(self, request)
        return endpoint

    def _starlette(self) -> Starlette:
        control_routes = [
            ("/_sim/reset", control.reset, ["POST"]),
            ("/_sim/seed", control.seed, ["POST"]),
            ("/_sim/mutate", control.mutate, ["POST"]),
            ("/_sim/clock", control.clock, ["GET", "POST"]),
            ("/_sim/config", control.config, ["GET", "POST"]),
            ("/_sim/faults", control.faults, ["GET", "POST", "PUT", "DELETE"]),
            ("/_sim/state", control.state, ["GET"]),
            ("/_sim/credentials", control.credentials, ["GET"]),
        ]
        routes = [Route(path, self._bind(fn), methods=methods) for path, fn, methods in control_routes]
        routes.append(Route("/{directory}/rest_server.php/Api/{resource:path}", self._bind(api.api_endpoint),
                            methods=_ALL_METHODS))
        routes.append(Route("/{path:path}", _not_found, methods=_ALL_METHODS))
        return Starlette(routes=routes)


async def _not_found(request: Request) -> Response:
    return api.empty(404)


def create_app(simulator: IlluminateSimulator | None = None) -> ASGIApp:
    """The ASGI app of ``simulator`` (a fresh one if omitted), fault middleware included."""
    return (simulator or IlluminateSimulator()).app
