"""Canvas LMS as a system: one instance and credential per configuration section.

The credential is a static access token (``token``) or an OAuth2 developer key with the refresh
token a completed OAuth flow left (``oauth``), never both. canvas.md §1.2: developer keys issued
after Oct 2015 give tokens that expire after an hour unless ``auto_expire_tokens`` is off, so the
client refreshes them itself (``worker/clients/canvas_oauth.py``).
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from worker.clients.canvas import CanvasClient
from worker.clients.canvas_oauth import TOKEN_PATH, OAuthCredentials
from worker.clients.http import HTTPSettings
from worker.registry import System, SystemSettings


class CanvasOAuthConfig(BaseModel):
    """An OAuth2 developer key and its refresh token (the same refresh token is reused for ever)."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    refresh_token: SecretStr
    access_token: SecretStr | None = Field(
        None, description="a current access token, used until it expires; else one is fetched at start")
    token_url: str = Field(TOKEN_PATH, description="the token endpoint, a path on base_url's host")
    refresh_margin_seconds: float = Field(
        300.0, ge=0, description="refresh this long before the token's expires_in runs out")


class CanvasConfig(SystemSettings):
    """One Canvas instance, the credential edusync uses and the account it writes to."""

    base_url: str
    token: SecretStr | None = Field(None, description="a static access token (or give oauth instead)")
    oauth: CanvasOAuthConfig | None = Field(None, description="OAuth2 with refresh (or give token instead)")
    account_id: str = "1"
    http: HTTPSettings = Field(default_factory=HTTPSettings)

    @model_validator(mode="after")
    def _one_credential(self) -> CanvasConfig:
        if (self.token is None) == (self.oauth is None):
            raise ValueError("give either token or oauth (client_id, client_secret, refresh_token), not both")
        if self.token is not None and not self.token.get_secret_value():
            raise ValueError("token is empty")
        return self

    def oauth_credentials(self) -> OAuthCredentials | None:
        """The OAuth2 credentials for the client, when configured."""
        if self.oauth is None:
            return None
        o = self.oauth
        return OAuthCredentials(
            client_id=o.client_id, client_secret=o.client_secret.get_secret_value(),
            refresh_token=o.refresh_token.get_secret_value(),
            access_token=o.access_token.get_secret_value() if o.access_token else None,
            token_url=o.token_url, refresh_margin=o.refresh_margin_seconds,
        )


def _client(cfg: CanvasConfig) -> CanvasClient:
    token = cfg.token.get_secret_value() if cfg.token is not None else None
    return CanvasClient(cfg.base_url, token, oauth=cfg.oauth_credentials(), http=cfg.http)


def _credential(cfg: CanvasConfig) -> str:
    # Canvas's throttle quota is per token (canvas.md §1.4); key by a digest, never the token. An
    # OAuth2 grant is one identity however often its access token is refreshed.
    if cfg.oauth is not None:
        secret = f"{cfg.oauth.client_id}|{cfg.oauth.refresh_token.get_secret_value()}"
    else:
        secret = cfg.token.get_secret_value() if cfg.token is not None else ""
    digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
    return f"{cfg.base_url.rstrip('/')}|{digest}"


CANVAS: System[CanvasConfig, CanvasClient] = System(
    name="canvas", title="Canvas LMS", config=CanvasConfig, client=_client, credential=_credential,
    simulator="simulators.canvas:simulate_app",
)
