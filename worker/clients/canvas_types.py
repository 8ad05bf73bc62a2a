"""Field types shared by the Canvas models: ids as strings, and Canvas's many timestamp spellings.

canvas.md §1.6: "All integer ids in Canvas are 64 bit integers. String ids are also used", and the
seed examples mix them (``CourseEvent.links.course`` is ``"12345"``, ``CourseEventLink.course`` is
``12345``). The roster, gradebook and audit models keep every id as ``str`` so both modes
(``Accept: application/json+canvas-string-ids`` or not) read the same.

canvas.md §1.7: timestamps are documented as ``YYYY-MM-DDTHH:MM:SSZ`` but the examples also show
offsets (``-06:00``), fractions (``16:09:09.960-07:00``), missing seconds (``2014-01-01T01:00Z``)
and a malformed offset (``-04:0``). ``parse_canvas_time`` reads all of them and normalises to UTC;
``canvas_time`` renders what Canvas documents for requests.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_TIME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})(?:[T ](?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,9}))?)?)?"
    r"\s*(?P<tz>Z|z|[+-]\d{1,2}(?::?\d{1,2})?)?$",
    re.ASCII,
)


def parse_canvas_time(raw: str) -> datetime:
    """A Canvas timestamp as an aware UTC ``datetime``; ``ValueError`` when it is none."""
    match = _TIME.match(raw.strip())
    if match is None:
        raise ValueError(f"not a Canvas timestamp: {raw[:40]!r}")
    fraction = (match["f"] or "0")[:6].ljust(6, "0")
    try:
        value = datetime.fromisoformat(match["date"]).replace(
            hour=int(match["h"] or 0), minute=int(match["m"] or 0), second=int(match["s"] or 0),
            microsecond=int(fraction),
        )
        return value.replace(tzinfo=_zone(match["tz"])).astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # 2024-02-30, or year 1 moved before year 1
        raise ValueError(f"not a Canvas timestamp: {raw[:40]!r}") from exc


def _zone(raw: str | None) -> timezone:
    if raw is None or raw in ("Z", "z"):
        return UTC  # "all timestamps are sent and returned in ISO 8601 format (UTC time zone)"
    sign = -1 if raw[0] == "-" else 1
    hours, _, minutes = raw[1:].partition(":")
    if not minutes and len(hours) > 2:  # +0530
        hours, minutes = hours[:2], hours[2:]
    offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
    if offset >= timedelta(hours=24):
        raise ValueError(f"impossible UTC offset {raw!r}")
    return timezone(sign * offset)


def canvas_time(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``, what canvas.md §1.7 says to send."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: Canvas times must be aware")
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(value: Any) -> Any:
    if isinstance(value, str):
        return parse_canvas_time(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)
    raise ValueError(f"expected a timestamp string, got {type(value).__name__}")


def _id(value: Any) -> Any:
    # bool is an int in Python; Canvas never sends one as an id.
    if isinstance(value, bool):
        raise ValueError("expected an id, got a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValueError(f"expected an id (integer or non-empty string), got {type(value).__name__}")


def _optional_id(value: Any) -> Any:
    return None if value is None or value == "" else _id(value)


def _optional_time(value: Any) -> Any:
    return None if value is None or value == "" else _time(value)


CanvasTime = Annotated[datetime, BeforeValidator(_time), PlainSerializer(canvas_time, return_type=str)]
OptionalTime = Annotated[
    datetime | None, BeforeValidator(_optional_time),
    PlainSerializer(lambda v: None if v is None else canvas_time(v), return_type=str | None),
]
CanvasId = Annotated[str, BeforeValidator(_id)]
OptionalId = Annotated[str | None, BeforeValidator(_optional_id)]
