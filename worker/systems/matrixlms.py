"""MatrixLMS (API 1.0) as a system: one site and administrator api_key per configuration section.

The site allows 120 calls a minute and then locks every caller out for a minute (seed 000:L23),
so the budget is configured per site. The replicas of one deployment divide it by themselves:
among those that own the site's tenants (``worker.replica_share``). ``replicas`` is for callers
the ownership group cannot see, such as another deployment on the same site: each gets
``calls_per_minute / replicas`` (FLOWS.md 2.5), then divided among its owners, and every client of
the site in one process shares that (``worker.clients.matrixlms_budget``).
"""

from __future__ import annotations

import hashlib

from pydantic import Field, SecretStr

from worker.clients.http import HTTPSettings
from worker.clients.matrixlms import DEFAULT_MAX_URL_BYTES, MatrixLMSClient
from worker.clients.matrixlms_budget import (
    DEFAULT_CALLS_PER_MINUTE,
    DEFAULT_LOCKOUT_PAUSE_SECONDS,
    DOCUMENTED_LIMIT,
    BudgetClock,
    site_key,
)
from worker.registry import System, SystemSettings


class MatrixLMSConfig(SystemSettings):
    """One MatrixLMS site, the administrator api_key edusync uses, and the site's call budget."""

    base_url: str = Field(description="the site, e.g. https://district.matrixlms.com; /api/<function> is appended")
    api_key: SecretStr
    calls_per_minute: int = Field(
        DEFAULT_CALLS_PER_MINUTE, ge=1, le=DOCUMENTED_LIMIT,
        description="the whole site's budget for edusync, all replicas together (MatrixLMS allows 120)")
    replicas: int = Field(1, ge=1, description=(
        "deployments (not replicas of this one, which divide their share by themselves) calling this site; "
        "each gets calls_per_minute / replicas"))
    lockout_pause_seconds: float = Field(
        DEFAULT_LOCKOUT_PAUSE_SECONDS, ge=60.0, description="after a rate-limit exception, no call for this long")
    max_url_bytes: int = Field(DEFAULT_MAX_URL_BYTES, ge=1024, le=65536,
                               description="calls taking many ids are split so no URL is longer")
    http: HTTPSettings = Field(default_factory=HTTPSettings)
    time_scale: float = Field(
        1.0, gt=0, le=1000,
        description="simulator only: the budget's minute runs this many times faster, matching the MatrixLMS "
                    "simulator's /_sim/clock scale (keep 1 against a real site)")


def _client(cfg: MatrixLMSConfig) -> MatrixLMSClient:
    return MatrixLMSClient(
        cfg.base_url, cfg.api_key.get_secret_value(), http=cfg.http, calls_per_minute=cfg.calls_per_minute,
        replicas=cfg.replicas, lockout_pause_seconds=cfg.lockout_pause_seconds, max_url_bytes=cfg.max_url_bytes,
        clock=BudgetClock.scaled(cfg.time_scale) if cfg.time_scale != 1.0 else None,
    )


def _credential(cfg: MatrixLMSConfig) -> str:
    # One client per site and key; the key is named by a digest, never by its value. (The budget
    # is per site, shared by every key of it, in the client module's registry.)
    digest = hashlib.sha256(cfg.api_key.get_secret_value().encode()).hexdigest()[:16]
    return f"{cfg.base_url.rstrip('/')}|{digest}"


MATRIXLMS: System[MatrixLMSConfig, MatrixLMSClient] = System(
    name="matrixlms", title="MatrixLMS API 1.0", config=MatrixLMSConfig, client=_client, credential=_credential,
    # 120 calls a minute, counted per site whatever the key (the worst case; matrix_class.md L104).
    account=lambda cfg: site_key(cfg.base_url),
    simulator="simulators.matrixlms:simulate_app",
)
