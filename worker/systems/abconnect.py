"""AB Connect v4.1 as a system: one partner account per configuration section."""

from __future__ import annotations

from pydantic import Field, SecretStr

from worker.clients.abconnect import ABConnectClient
from worker.clients.http import HTTPSettings
from worker.registry import System, SystemSettings


class ABConnectConfig(SystemSettings):
    """One AB Connect partner account; its 5 requests/s budget is shared by every flow that uses it."""

    base_url: str
    partner_id: str
    partner_key: SecretStr
    user_id: str | None = None
    http: HTTPSettings = Field(default_factory=HTTPSettings)


def _client(cfg: ABConnectConfig) -> ABConnectClient:
    return ABConnectClient(cfg.base_url, cfg.partner_id, cfg.partner_key.get_secret_value(), user_id=cfg.user_id,
                           http=cfg.http)


ABCONNECT: System[ABConnectConfig, ABConnectClient] = System(
    name="abconnect", title="AB Connect v4.1 (standards)", config=ABConnectConfig, client=_client,
    # AB counts requests per partner account (abconnect.md §1.6).
    credential=lambda cfg: f"{cfg.base_url.rstrip('/')}|{cfg.partner_id}",
    simulator="simulators.abconnect:simulate_app",
)
