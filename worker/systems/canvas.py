"""Canvas LMS as a system: one instance and access token per configuration section."""

from __future__ import annotations

import hashlib

from pydantic import Field, SecretStr

from worker.clients.canvas import CanvasClient
from worker.clients.http import HTTPSettings
from worker.registry import System, SystemSettings


class CanvasConfig(SystemSettings):
    """One Canvas instance, the token edusync uses and the account it writes to."""

    base_url: str
    token: SecretStr
    account_id: str = "1"
    http: HTTPSettings = Field(default_factory=HTTPSettings)


def _client(cfg: CanvasConfig) -> CanvasClient:
    return CanvasClient(cfg.base_url, cfg.token.get_secret_value(), http=cfg.http)


def _credential(cfg: CanvasConfig) -> str:
    # Canvas's throttle quota is per token (canvas.md §1.4); key by a digest, never the token.
    digest = hashlib.sha256(cfg.token.get_secret_value().encode()).hexdigest()[:16]
    return f"{cfg.base_url.rstrip('/')}|{digest}"


CANVAS: System[CanvasConfig, CanvasClient] = System(
    name="canvas", title="Canvas LMS", config=CanvasConfig, client=_client, credential=_credential,
    simulator="simulators.canvas:simulate_app",
)
