"""Keep secrets out of logs: known secret values and secret-looking keys are masked."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
_SECRET_KEY = re.compile(r"(secret|token|password|passwd|api_key|apikey|signature|authorization|partner_key)",
                         re.IGNORECASE)
# Credentials that travel in query strings: AB Connect's signature, MatrixLMS's api_key, OAuth.
_QUERY_SECRET = re.compile(
    r"((?:auth\.signature|signature|api_key|apikey|access_token|oauth_signature|token)=)[^&\s\"']+",
    re.IGNORECASE,
)
_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Mask ``value`` wherever it appears in a log line from now on."""
    if len(value) >= 4:  # masking very short strings would garble ordinary text
        _secrets.add(value)


def redact(value: Any, key: str = "") -> Any:
    """Return ``value`` with secrets masked (recursing into dicts and lists)."""
    if key and _SECRET_KEY.search(key) and isinstance(value, str | bytes) and value:
        return MASK
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        value = _QUERY_SECRET.sub(r"\1" + MASK, value)
        for secret in _secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    return value
