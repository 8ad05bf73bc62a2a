"""Timestamps the Canvas way (canvas.md §1.7): ISO 8601 in UTC with whole seconds.

Requests may send ``Z`` or ``±HH:MM`` offsets, optional seconds and fractions, or a bare
``yyyy-mm-dd`` date; responses always use ``YYYY-MM-DDTHH:MM:SSZ``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

_NO_SECONDS = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})(Z|[+-]\d{2}:?\d{2})?$")


def now() -> datetime:
    """The current UTC time, truncated to whole seconds as Canvas renders it."""
    return datetime.now(UTC).replace(microsecond=0)


def iso(value: datetime | None) -> str | None:
    """``YYYY-MM-DDTHH:MM:SSZ`` (or None)."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(raw: Any) -> datetime | None:
    """A request timestamp as an aware UTC datetime; None when absent or unparseable."""
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=UTC)
    text = str(raw).strip()
    if not text:
        return None
    match = _NO_SECONDS.match(text)
    if match:
        text = f"{match.group(1)}:00{match.group(2) or ''}"
    text = text.replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def normalise(raw: Any) -> str | None:
    """A request timestamp re-rendered as Canvas stores it, or None if absent/unparseable."""
    return iso(parse_time(raw))
