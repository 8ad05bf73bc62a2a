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
# Personal data in query strings: MatrixLMS sends every argument of every call, writes included,
# in the URL (seed 000:L27), so user attributes (matrix_class.md A.6.2) travel there, flat
# (``first_name=Ann``) or nested (``attributes[first_name]=Ann``, ``data[][name][first]=Ann``,
# percent-encoded brackets too). Names, emails, birth dates, phones, passwords and the seed's
# ``ssn`` custom field are masked wherever such a parameter appears.
_QUERY_PERSONAL = re.compile(
    r"((?:first_name|last_name|middle_name|nick_name|sms_email|email|birth_?date|dob|phone|password|ssn"
    r"|name(?:\]|%5D)?(?:\[|%5B)(?:first|last|middle))(?:\]|%5D)?=)[^&\s\"']+",
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
        value = _QUERY_PERSONAL.sub(r"\1" + MASK, value)
        for secret in _secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    return value
