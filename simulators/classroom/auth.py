"""API keys with scopes and optional expiry (seed 001:L17-23, L69, matrix_class.md B.1, B.9.2-3).

``Authorization: Bearer <secret>``. A missing or non-Bearer header, or an unknown secret, is a 401
``{"error": "Unauthorized"}``; an expired key a 401 ``{"error": "Api key expired"}``. Both bodies
are undocumented (simulator choices, B.9.2). A key without the endpoint's scope gets the
documented 403 ``{"error": "Api key scope class:write required"}``. Authentication is checked
before the scope and the scope before validation (B.9.3).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import Headers

from simulators.classroom.errors import error, scope_required

ALL_SCOPES = (
    "class:read", "class:write", "enrollment:read", "enrollment:write", "attendance:read", "metrics:read",
    "schedule:read", "schedule:write", "template:read", "template:write", "user:read", "user:write",
)
DEMO_SECRET = "class-sim-secret"


class ApiKey(BaseModel):
    """A key as the admin portal creates it: scopes and an optional expiry (epoch seconds)."""

    model_config = ConfigDict(extra="forbid")

    scopes: list[str] = Field(default_factory=lambda: list(ALL_SCOPES))
    expires_at: float | None = None


class KeyRegistry:
    """The accepted secrets."""

    def __init__(self, keys: Mapping[str, ApiKey]) -> None:
        self._initial = dict(keys)
        self.keys: dict[str, ApiKey] = dict(keys)

    def reset(self) -> None:
        """Back to the construction-time keys."""
        self.keys = dict(self._initial)

    def authorize(self, headers: Headers, scope: str) -> None:
        """Raise the 401 or 403 a request with ``headers`` gets for an endpoint needing ``scope``."""
        scheme, _, secret = headers.get("authorization", "").partition(" ")
        key = self.keys.get(secret.strip()) if scheme.lower() == "bearer" and secret.strip() else None
        if key is None:
            raise error(401, "Unauthorized")
        if key.expires_at is not None and time.time() >= key.expires_at:
            raise error(401, "Api key expired")
        if scope not in key.scopes:
            raise scope_required(scope)

    def describe(self) -> list[dict[str, Any]]:
        """Keys without their secrets (a four-character hint only)."""
        return [{"hint": secret[:4] + "...", **key.model_dump()} for secret, key in sorted(self.keys.items())]
