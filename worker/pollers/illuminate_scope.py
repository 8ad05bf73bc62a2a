"""The date range Illuminate walks ask for.

Without dates most endpoints return "today (or nearest in session date)" (ref L254-L256), so a
student who left yesterday just vanishes. Asking for the whole session keeps end-dated rows
visible with their ``leave_date``, so a drop is an update, not a missing row (ref 6.2 A.1).
The session is taken from configuration, else from /Api/Terms/, whose dates default to the
session's (ref L257): the earliest term start to the latest term end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

import structlog

from worker.clients.illuminate import IlluminateClient

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DateScope:
    """An inclusive date range for ``start_date``/``end_date``."""

    start: date
    end: date

    def label(self) -> str:
        """``YYYY-MM-DD..YYYY-MM-DD``, for cursors and logs."""
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


class ScopeSource:
    """Decides each walk's date range: ``None`` means the API's default (today)."""

    def __init__(
        self, client: IlluminateClient, mode: Literal["session", "today"],
        session: tuple[date, date] | None = None,
    ) -> None:
        self.client = client
        self.mode = mode
        self.session = session

    async def current(self) -> DateScope | None:
        """The range for a walk starting now."""
        if self.mode == "today":
            return None
        if self.session is not None:
            return DateScope(*self.session)
        start: date | None = None
        end: date | None = None
        async for page in self.client.terms():
            for term in page.records:
                if term.start_date is not None and (start is None or term.start_date < start):
                    start = term.start_date
                if term.end_date is not None and (end is None or term.end_date > end):
                    end = term.end_date
        if start is None or end is None or start > end:
            log.warning("no session dates in /Api/Terms/; walking the default (today) scope")
            return None
        return DateScope(start, end)
