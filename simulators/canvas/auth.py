"""Bearer-token authentication and permission checks (canvas.md §1.2 and §5.1).

Tokens are read from the ``Authorization: Bearer`` header, the ``access_token`` query parameter or
an ``access_token`` body parameter. A missing, unknown or expired token answers 401 *with*
``WWW-Authenticate``; a valid token lacking the permission answers 401 *without* it (or 403 when
configured, since several Canvas endpoints document 403 for permission failures).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field
from starlette.datastructures import Headers, QueryParams

from simulators.canvas.responses import unauthenticated, unauthorized


class TokenGrant(BaseModel):
    """What a token stands for: the user and whether that user administers the accounts."""

    user_id: int
    user_name: str | None = None
    can_manage: bool = Field(default=True, description="account admin: may manage outcomes")
    can_manage_sis: bool = Field(default=True, description="manage_sis: may set sis_* ids")
    expires_at: float | None = Field(default=None, description="epoch seconds; None never expires")
    expired_message: str | None = Field(
        default=None, description="401 message once expired; None keeps the seed's 'Invalid access token.'"
    )


class AuthConfig(BaseModel):
    """Status used when a valid token lacks permission, and the SIS-permission switch."""

    unauthorized_status: Literal[401, 403] = 401
    sis_permission: bool = Field(
        default=True, description="False takes manage_sis from every token (FLOWS.md 2.3 trap 2)"
    )


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    user_id: int
    can_manage: bool
    can_manage_sis: bool = True


def bearer_token(headers: Headers, query: QueryParams) -> str | None:
    """The token from the Authorization header (any case) or the ``access_token`` query parameter."""
    header = headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return query.get("access_token") or None


class TokenRegistry:
    """The tokens the simulator accepts, plus the permission-failure status."""

    def __init__(self, grants: Mapping[str, TokenGrant]) -> None:
        self._initial = dict(grants)
        self.grants: dict[str, TokenGrant] = dict(grants)
        self.config = AuthConfig()

    def reset(self) -> None:
        """Back to the tokens given at construction."""
        self.grants = dict(self._initial)
        self.config = AuthConfig()

    def authenticate(self, token: str | None) -> Principal:
        """Resolve a token or raise the documented 401."""
        if not token:
            raise unauthenticated(invalid_token=False)
        grant = self.grants.get(token)
        if grant is None:
            raise unauthenticated(invalid_token=True)
        # canvas.md §1.2: a deleted or expired token gets a 401 with WWW-Authenticate, like an unknown
        # one; Canvas later started saying why ("Expired access token"), which a grant may opt into.
        if grant.expires_at is not None and time.time() >= grant.expires_at:
            raise unauthenticated(invalid_token=True, message=grant.expired_message)
        return Principal(
            user_id=grant.user_id, can_manage=grant.can_manage,
            can_manage_sis=grant.can_manage and grant.can_manage_sis and self.config.sis_permission,
        )

    def require_manage(self, principal: Principal) -> None:
        """Raise the permission failure unless the caller may manage account content."""
        if not principal.can_manage:
            raise unauthorized(self.config.unauthorized_status)

    def describe(self) -> dict[str, Any]:
        """The configuration without the token values themselves."""
        return {
            "unauthorized_status": self.config.unauthorized_status,
            "tokens": [
                {"hint": token[:4], **grant.model_dump()} for token, grant in sorted(self.grants.items())
            ],
        }
