"""Where the Canvas client's bearer token comes from: a static token, or OAuth2 with refresh.

canvas.md §1.2 (seed 002:L9211-9290): "Access tokens have a 1 hour lifespan. When the refresh
flow is taken, Canvas will update the access token to a new value, reset the expiration timer,
and return the new access token"; the refresh answer carries no new refresh token ("the same
refresh token is to be reused" and "can be used multiple times"). The token endpoint is
``POST /login/oauth2/token`` with ``grant_type=refresh_token``, ``client_id``, ``client_secret`` and
``refresh_token`` (https://canvas.instructure.com/doc/api/file.oauth_endpoints.html#post-login-oauth2-token).

``OAuthToken`` refreshes ``refresh_margin`` seconds before ``expires_in`` runs out, and again when
Canvas answers 401 "expired" (the client calls ``refresh`` with the token that failed). Refreshes
run under one lock and re-check the token first, so requests that find the token stale at the
same moment cause one refresh between them, not one each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

import anyio
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worker.clients.errors import AuthenticationError, MalformedResponseError, PermanentUpstreamError
from worker.clients.http import UpstreamHTTP

log = structlog.get_logger(__name__)

SYSTEM = "canvas"
TOKEN_PATH = "/login/oauth2/token"


class TokenSource(Protocol):
    """What the client asks for a bearer token."""

    refreshable: bool

    def current(self) -> str:
        """The token to send now."""
        ...

    async def fresh(self) -> str:
        """The token, refreshed first if it is about to expire."""
        ...

    async def refresh(self, stale: str) -> str:
        """A new token unless ``stale`` was already replaced."""
        ...


class StaticToken:
    """A manually generated token (canvas.md §1.2 "Manual / user-generated tokens"): never refreshed."""

    refreshable = False

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("a Canvas access token is required")
        self._token = token

    def current(self) -> str:
        """The token."""
        return self._token

    async def fresh(self) -> str:
        """The token (it has no known expiry)."""
        return self._token

    async def refresh(self, stale: str) -> str:
        """Static tokens cannot be refreshed; the caller raises the 401 it got."""
        return self._token


@dataclass(frozen=True)
class OAuthCredentials:
    """A developer key and the refresh token a completed OAuth flow left edusync with."""

    client_id: str
    client_secret: str
    refresh_token: str
    access_token: str | None = None
    token_url: str = TOKEN_PATH
    refresh_margin: float = 300.0

    def __post_init__(self) -> None:
        if not (self.client_id and self.client_secret and self.refresh_token):
            raise ValueError("OAuth2 needs client_id, client_secret and refresh_token")


class TokenAnswer(BaseModel):
    """The token endpoint's answer (canvas.md §1.2 "Token response fields")."""

    model_config = ConfigDict(extra="ignore")

    access_token: str = Field(min_length=1)
    token_type: str = "Bearer"
    expires_in: float | None = Field(None, ge=0)


class OAuthToken:
    """An expiring access token renewed with the refresh-token grant."""

    refreshable = True

    def __init__(
        self, http: UpstreamHTTP, credentials: OAuthCredentials, *, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._creds = credentials
        self._clock = clock
        self._access = credentials.access_token
        # A configured access token's expiry is unknown: it is used until Canvas says "expired".
        self._expires_at: float | None = None
        self._lock = anyio.Lock()
        self.refreshes = 0

    def current(self) -> str:
        """The token to send now ("" before the first refresh)."""
        return self._access or ""

    def _expiring(self) -> bool:
        if self._access is None:
            return True
        return self._expires_at is not None and self._clock() >= self._expires_at - self._creds.refresh_margin

    async def fresh(self) -> str:
        """The token, refreshed first when it expires within the margin."""
        if self._expiring():
            return await self.refresh(self.current())
        return self.current()

    async def refresh(self, stale: str) -> str:
        """Refresh unless another request already replaced ``stale`` with a token still good."""
        async with self._lock:
            if self.current() != stale and not self._expiring():
                return self.current()
            answer = await self._request()
            self._access = answer.access_token
            self._expires_at = None if answer.expires_in is None else self._clock() + answer.expires_in
            self.refreshes += 1
            log.info("canvas access token refreshed", expires_in=answer.expires_in, refreshes=self.refreshes)
            return self._access

    async def _request(self) -> TokenAnswer:
        form = {
            "grant_type": "refresh_token", "client_id": self._creds.client_id,
            "client_secret": self._creds.client_secret, "refresh_token": self._creds.refresh_token,
        }
        try:
            # The same refresh token may be used many times (seed 002:L9218): repeating is safe.
            answer = await self._http.call(
                "POST", self._creds.token_url, content=urlencode(form).encode(), idempotent=True, writes=False,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        except (AuthenticationError, PermanentUpstreamError) as exc:
            # invalid_grant (refresh token revoked) or invalid_client (key deleted or its secret
            # rotated): only a person can fix it, so the component pauses (FLOWS.md decision 8).
            raise AuthenticationError(
                SYSTEM, f"OAuth2 refresh refused; re-authorise edusync's developer key: {exc}", status=exc.status,
            ) from exc
        try:
            return TokenAnswer.model_validate(answer.body)
        except ValidationError as exc:
            raise MalformedResponseError(
                SYSTEM, f"unexpected OAuth2 token answer: {exc.error_count()} errors",
                status=answer.response.status_code,
            ) from exc
