"""OAuth2 token endpoint: refresh and authorization-code grants with expiring access tokens.

Seed 002:L9211-9290, L9560-9875 (canvas.md §1.2, §5.1 item 5): "Access tokens have a 1 hour
lifespan. When the refresh flow is taken, Canvas will update the access token to a new value,
reset the expiration timer, and return the new access token"; a refresh answer has no new
``refresh_token`` ("the same refresh token is to be reused"); a code is single-use. The path
``POST /login/oauth2/token`` is the JWT ``aud`` the seed shows; its doc page is
https://canvas.instructure.com/doc/api/file.oauth_endpoints.html#post-login-oauth2-token.
An expired access token answers 401 with ``WWW-Authenticate``; its body says
"Expired access token", the wording Canvas adopted in 2024 (canvas-lms commit cdf0cecf, which
split "Invalid access token." into "Expired access token" and "Revoked access token").
Static tokens configured on the simulator keep working unchanged.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from simulators.canvas.auth import TokenGrant
from simulators.canvas.params import read_params, text, to_bool
from simulators.canvas.responses import CanvasJSONResponse

if TYPE_CHECKING:
    from simulators.canvas.state import CanvasSimulator

EXPIRED_MESSAGE = "Expired access token"


class OAuthConfig(BaseModel):
    """The developer key and token lifetime, replaced through ``PUT /_sim/oauth``."""

    client_id: str = "10000000000001"
    client_secret: str = "sim-client-secret"
    access_token_lifetime: float = Field(default=3600.0, ge=0, description="seconds (expires_in)")
    expired_message: str = EXPIRED_MESSAGE


@dataclass
class RefreshGrant:
    """A refresh token and the user it acts for."""

    user_id: int
    can_manage: bool
    can_manage_sis: bool


def _error(status: int, error: str, description: str) -> Response:
    return CanvasJSONResponse({"error": error, "error_description": description}, status_code=status)


class OAuthRoutes:
    """``POST /login/oauth2/token`` and the ``/_sim/oauth`` controls of one simulator."""

    def __init__(self, sim: CanvasSimulator) -> None:
        self.sim = sim
        self.config = OAuthConfig()
        self._refresh: dict[str, RefreshGrant] = {}
        self._codes: dict[str, RefreshGrant] = {}
        self._issued: set[str] = set()

    def reset(self) -> None:
        """Forget every issued token and code; default developer key."""
        self.config = OAuthConfig()
        self._refresh.clear()
        self._codes.clear()
        self._issued.clear()

    def routes(self) -> list[BaseRoute]:
        """The token endpoint."""
        return [Route("/login/oauth2/token", self.token, methods=["POST"])]

    def control_routes(self) -> list[BaseRoute]:
        """``PUT /_sim/oauth`` (config), ``POST /_sim/oauth/codes`` and ``POST /_sim/oauth/expire``."""
        return [
            Route("/_sim/oauth", self.configure, methods=["GET", "PUT"]),
            Route("/_sim/oauth/codes", self.mint_code, methods=["POST"]),
            Route("/_sim/oauth/expire", self.expire, methods=["POST"]),
        ]

    def _issue(self, grant: RefreshGrant) -> tuple[str, float]:
        token = "sim~" + secrets.token_urlsafe(24)
        lifetime = self.config.access_token_lifetime
        self.sim.add_token(token, TokenGrant(
            user_id=grant.user_id, can_manage=grant.can_manage, can_manage_sis=grant.can_manage_sis,
            expires_at=time.time() + lifetime, expired_message=self.config.expired_message,
        ))
        self._issued.add(token)
        return token, lifetime

    async def token(self, request: Request) -> Response:
        """The token endpoint for ``authorization_code`` and ``refresh_token`` grants."""
        params = await read_params(request)
        grant_type = text(params, "grant_type")
        with self.sim.lock:
            if text(params, "client_id") != self.config.client_id or \
                    text(params, "client_secret") != self.config.client_secret:
                return _error(401, "invalid_client", "unknown client")
            if grant_type == "refresh_token":
                grant = self._refresh.get(text(params, "refresh_token") or "")
                if grant is None:
                    return _error(400, "invalid_grant", "refresh_token not found")
                if to_bool(params.get("replace_tokens")):
                    self._revoke_user(grant.user_id)
                access, lifetime = self._issue(grant)
                return CanvasJSONResponse(self._token_body(access, lifetime, grant.user_id))
            if grant_type == "authorization_code":
                grant = self._codes.pop(text(params, "code") or "", None)  # single use
                if grant is None:
                    return _error(400, "invalid_grant", "authorization_code not found")
                refresh = secrets.token_urlsafe(32)
                self._refresh[refresh] = grant
                access, lifetime = self._issue(grant)
                body = self._token_body(access, lifetime, grant.user_id)
                return CanvasJSONResponse({**body, "refresh_token": refresh, "canvas_region": "sim"})
            return _error(400, "unsupported_grant_type", "The grant_type is not supported")

    def _token_body(self, access: str, lifetime: float, user_id: int) -> dict[str, Any]:
        user = self.sim.accounts.users.get(user_id)
        return {
            "access_token": access, "token_type": "Bearer",
            "user": {"id": user_id, "name": user.name if user else f"User {user_id}"},
            "expires_in": int(lifetime),
        }

    def _revoke_user(self, user_id: int) -> None:
        for token in list(self._issued):
            grant = self.sim.tokens.grants.get(token)
            if grant is not None and grant.user_id == user_id:
                self.sim.tokens.grants.pop(token, None)
                self._issued.discard(token)

    def add_refresh_token(self, user_id: int, *, can_manage: bool = True, can_manage_sis: bool = True) -> str:
        """A refresh token for ``user_id`` (what a completed OAuth flow leaves the client with)."""
        with self.sim.lock:
            self.sim.accounts.add_user(user_id)
            refresh = secrets.token_urlsafe(32)
            self._refresh[refresh] = RefreshGrant(user_id, can_manage, can_manage_sis)
            return refresh

    async def configure(self, request: Request) -> Response:
        """GET shows, PUT changes the developer key / lifetime (partial update)."""
        if request.method == "PUT":
            body = await request.json()
            with self.sim.lock:
                self.config = OAuthConfig.model_validate({**self.config.model_dump(), **(body or {})})
        return CanvasJSONResponse(self.config.model_dump())

    async def mint_code(self, request: Request) -> Response:
        """``{"user_id": n, "can_manage": bool}`` -> an authorization code and a refresh token."""
        body = await request.json()
        user_id = int(body.get("user_id", 1))
        grant = RefreshGrant(user_id, bool(body.get("can_manage", True)), bool(body.get("can_manage_sis", True)))
        with self.sim.lock:
            self.sim.accounts.add_user(user_id)
            code = secrets.token_urlsafe(16)
            self._codes[code] = grant
            refresh = secrets.token_urlsafe(32)
            self._refresh[refresh] = grant
        return CanvasJSONResponse({"code": code, "refresh_token": refresh})

    async def expire(self, request: Request) -> Response:
        """Expire issued access tokens now (all, or ``{"access_token": t}``), as an hour passing would."""
        raw = await request.body()
        body: dict[str, Any] = (await request.json()) if raw else {}
        only = body.get("access_token")
        expired = 0
        with self.sim.lock:
            for token in self._issued:
                grant = self.sim.tokens.grants.get(token)
                if grant is not None and (only is None or token == only):
                    grant.expires_at = time.time() - 1
                    expired += 1
        return CanvasJSONResponse({"expired": expired})
