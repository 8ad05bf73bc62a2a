"""API keys: "The API key of an administrator account must also be passed with each API call as
the argument with name "api_key"" (seed 000:L27, matrix_class.md A.1).

Each accepted key belongs to one site (a MatrixLMS tenant). The demo key is the seed's own
example key, so the seed's example URLs (000:L33-40) work verbatim. Keys are never logged or
echoed: the control API shows a short hint and a fingerprint only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from simulators.matrixlms.errors import unauthorized

DEMO_API_KEY = "23-34-d315a3421"  # seed 000:L34
DEMO_SITE = "demo"


class KeyGrant(BaseModel):
    """What a key stands for: its site and whether its owner is an administrator."""

    model_config = ConfigDict(extra="forbid")

    site: str = DEMO_SITE
    administrator: bool = True


@dataclass(frozen=True)
class Caller:
    """The authenticated key of one call: its site and a fingerprint (never the key itself)."""

    site: str
    fingerprint: str


def fingerprint(key: str) -> str:
    """A stable, non-reversible name for a key (rate-limit scope, statistics)."""
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:12]


class KeyRegistry:
    """The accepted keys."""

    def __init__(self, grants: Mapping[str, KeyGrant]) -> None:
        self._initial = dict(grants)
        self.grants: dict[str, KeyGrant] = dict(grants)

    def reset(self) -> None:
        """Back to the construction-time keys."""
        self.grants = dict(self._initial)

    def authenticate(self, key: str | None) -> Caller:
        """Resolve ``api_key`` or raise the documented 401 ``Invalid API key`` (seed 000:L47-49).

        A missing key gets the same answer; a key of a non-administrator gets a 401 with its own
        text (undocumented, matrix_class.md A.1 suggests 401).
        """
        grant = self.grants.get(key) if key else None
        if grant is None or key is None:
            raise unauthorized()
        if not grant.administrator:
            raise unauthorized("The API key does not belong to an administrator account")
        return Caller(grant.site, fingerprint(key))

    def describe(self) -> list[dict[str, Any]]:
        """Keys without their values: a four-character hint, the fingerprint and the grant."""
        return [
            {"hint": key[:4] + "...", "fingerprint": fingerprint(key), **grant.model_dump()}
            for key, grant in sorted(self.grants.items(), key=lambda item: (item[1].site, fingerprint(item[0])))
        ]
