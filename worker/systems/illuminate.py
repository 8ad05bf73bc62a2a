"""Illuminate as a system: one instance and OAuth 1 credential per configuration section."""

from __future__ import annotations

from pydantic import Field, SecretStr

from worker.clients.http import HTTPSettings
from worker.clients.illuminate import IlluminateClient
from worker.registry import System, SystemSettings


class IlluminateConfig(SystemSettings):
    """One Illuminate instance: OAuth 1 consumer plus pre-issued user token, and page sizes."""

    base_url: str
    consumer_key: str
    consumer_secret: SecretStr
    token: str
    token_secret: SecretStr
    page_limit: int = Field(1000, ge=1, le=1000, description="records per page (documented max 1000)")
    students2_page_limit: int = Field(
        2000, ge=1, le=30000, description="records per Students2 page (max 30,000; larger pages cost memory)")
    # Snapshot pages are large and Illuminate answers slowly (the 2 h cache, ref L229).
    http: HTTPSettings = Field(default_factory=lambda: HTTPSettings(request_deadline_seconds=120))


def _client(cfg: IlluminateConfig) -> IlluminateClient:
    return IlluminateClient(
        cfg.base_url, cfg.consumer_key, cfg.consumer_secret.get_secret_value(), cfg.token,
        cfg.token_secret.get_secret_value(), http=cfg.http, page_limit=cfg.page_limit,
        students2_page_limit=cfg.students2_page_limit,
    )


ILLUMINATE: System[IlluminateConfig, IlluminateClient] = System(
    name="illuminate", title="Illuminate (SIS and assessments)", config=IlluminateConfig, client=_client,
    credential=lambda cfg: f"{cfg.base_url.rstrip('/')}|{cfg.consumer_key}|{cfg.token}",
    simulator="simulators.illuminate:simulate_app",
)
