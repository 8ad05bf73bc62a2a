"""The "Class" virtual classroom as a system: one organisation and API key per configuration section."""

from __future__ import annotations

import hashlib

from pydantic import Field, SecretStr, field_validator

from worker.clients.classroom import ClassroomClient
from worker.clients.classroom_specs import check_timezone
from worker.clients.http import HTTPSettings
from worker.registry import System, SystemSettings


class ClassConfig(SystemSettings):
    """One Class organisation: its base URL (shown on the Edit API Key page, B.1), the key's secret
    and the time zone of the classes edusync creates."""

    base_url: str
    api_key: SecretStr
    # Required, not defaulted: Illuminate has no source for it (FLOWS.md 2.4 trap 4) and a wrong
    # default would put every class of a district in the wrong zone without a word.
    timezone: str = Field(description="tz-database id for created classes, e.g. America/Los_Angeles")
    concurrency: int = Field(4, ge=1, le=32, description="requests in flight (no limit documented, B.4)")
    http: HTTPSettings = Field(default_factory=HTTPSettings)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_timezone(value)


def _client(cfg: ClassConfig) -> ClassroomClient:
    return ClassroomClient(cfg.base_url, cfg.api_key.get_secret_value(), timezone=cfg.timezone, http=cfg.http,
                           concurrency=cfg.concurrency)


def _credential(cfg: ClassConfig) -> str:
    # One client per organisation and key; keyed by a digest, never the secret itself.
    digest = hashlib.sha256(cfg.api_key.get_secret_value().encode()).hexdigest()[:16]
    return f"{cfg.base_url.rstrip('/')}|{digest}"


CLASSROOM: System[ClassConfig, ClassroomClient] = System(
    name="classroom", title='"Class" virtual classroom', config=ClassConfig, client=_client,
    credential=_credential, simulator="simulators.classroom:simulate_app",
)
