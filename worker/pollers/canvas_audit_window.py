"""Walking a newest-first Canvas audit feed in frozen windows (canvas.md §6.2; FLOWS.md 2.1).

The feed is "ordered by date descending" and new events arrive at its head, so a cursor cannot
move page by page. Each poll takes one window and handles it whole:

1. **Freeze it.** ``end = now - lag`` (whole seconds, as Canvas compares them), so events arriving
   during the walk cannot shift its pages (§6.2 rule 1). ``start = hwm - overlap``: the overlap
   covers the undocumented bound inclusivity and tie order, clock skew and late commits
   (§6.2 rule 2, §7 item 7). The first look-back has no overlap; a long one is cut into windows
   of ``window`` seconds, walked oldest first, one per poll.
2. **Collect every page** (``rel="next"`` only), then keep the events inside ``[start, end]``.
3. **A window with more than ``max_events`` past its overlap is split**: its new part is halved
   and walked again; the size that worked is kept in the cursor and doubles back after each window.
   At one second it is taken whole, however large (Canvas cannot split a second).
4. **Sort ascending** by ``(created_at, id)`` (§6.2 rule 4) and **drop ids already published**
   (``seen``: the ids whose time falls in the next window's overlap, nothing older).
5. **Advance** ``hwm`` to the window's end, events or not (§6.2 rule 3); the caller commits the
   events and the cursor in one transaction, so a crash re-walks the window, never half of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

import structlog
from pydantic import BaseModel, ConfigDict, Field

from worker.clients.canvas_audit_models import AuditPage, CompoundDocument

log = structlog.get_logger(__name__)

ONE_SECOND = timedelta(seconds=1)


class AuditEvent(Protocol):
    """What windowing needs of an event."""

    @property
    def id(self) -> str: ...

    @property
    def created_at(self) -> datetime: ...


E = TypeVar("E", bound=AuditEvent)
Fetch = Callable[[datetime, datetime], AsyncIterator[AuditPage[Any]]]


@dataclass(frozen=True)
class WindowSettings:
    """How a feed is windowed (the flow's settings, as durations)."""

    lag: timedelta
    overlap: timedelta
    lookback: timedelta
    window: timedelta
    max_events: int

    def __post_init__(self) -> None:
        if self.overlap < ONE_SECOND:
            raise ValueError("overlap must be at least a second: Canvas's bounds are whole seconds")
        if self.window < ONE_SECOND or self.lookback < ONE_SECOND:
            raise ValueError("window and look-back must be at least a second")
        if self.max_events < 1:
            raise ValueError("max_events must be positive")


def _second(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


class FeedCursor(BaseModel):
    """The committed position in one feed: the end of the last window handled, the ids already
    published that the next window's overlap will show again, and a shrunk window size."""

    model_config = ConfigDict(extra="ignore")

    hwm: datetime | None = None
    seen: list[tuple[str, datetime]] = Field(default_factory=list)
    window_seconds: float | None = None

    @classmethod
    def load(cls, raw: Any) -> FeedCursor:
        """From its JSON form (``None``: nothing handled yet)."""
        return cls() if raw is None else cls.model_validate(raw)

    def dump(self) -> dict[str, Any]:
        """The JSON form."""
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class Window:
    """``[start, end]``; events before ``base`` are the overlap with the previous window."""

    start: datetime
    base: datetime
    end: datetime


@dataclass
class Walked(Generic[E]):
    """One window handled: its new events in order, the cursor to commit with them, and the
    documents read (their secondary collections are hints for the payloads)."""

    window: Window
    events: list[E]
    cursor: FeedCursor
    caught_up: bool
    documents: list[CompoundDocument] = field(default_factory=list)
    requests: int = 0
    splits: int = 0

    def linked(self, collection: str) -> dict[str, dict[str, Any]]:
        """A secondary collection over every page, by id."""
        merged: dict[str, dict[str, Any]] = {}
        for document in self.documents:
            merged.update(document.linked_by_id(collection))
        return merged


def plan(cursor: FeedCursor, now: datetime, settings: WindowSettings) -> Window | None:
    """The next window, or ``None`` when nothing has become old enough since the last one."""
    limit = _second(now - settings.lag)
    if cursor.hwm is None:
        base = start = _second(limit - settings.lookback)
    else:
        base = _second(cursor.hwm)
        start = base - settings.overlap
    size = timedelta(seconds=cursor.window_seconds) if cursor.window_seconds else settings.window
    end = min(base + max(size, ONE_SECOND), limit)
    if end <= base:
        return None
    return Window(_second(start), base, end)


Collected = tuple[list[Any], list[CompoundDocument], int]


async def _collect(fetch: Fetch, window: Window, cap: int | None) -> Collected | None:
    """Every page of the window; ``None`` as soon as more than ``cap`` events past the overlap
    came (the overlap is bounded by its length and cannot be split, so it does not count)."""
    events: list[Any] = []
    documents: list[CompoundDocument] = []
    requests = fresh = 0
    pages = fetch(window.start, window.end)
    try:
        async for page in pages:
            requests += 1
            events.extend(page.events)
            documents.append(page.document)
            fresh += sum(1 for e in page.events if _second(e.created_at) > window.base)
            if cap is not None and fresh > cap:
                return None
    finally:
        close = getattr(pages, "aclose", None)  # a walk left half-way closes its generator now
        if close is not None:
            await close()
    return events, documents, requests


async def walk_window(
    cursor: FeedCursor, now: datetime, settings: WindowSettings, fetch: Fetch, *, feed: str = "",
) -> Walked[Any] | None:
    """Handle the next window of a feed (see the module docstring); ``None`` if there is none yet."""
    window = plan(cursor, now, settings)
    if window is None:
        return None
    splits = wasted = 0
    while True:
        span = window.end - window.base
        collected = await _collect(fetch, window, settings.max_events if span > ONE_SECOND else None)
        if collected is not None:
            break
        wasted += 1
        smaller = max(ONE_SECOND, timedelta(seconds=int(span.total_seconds() // 2)))
        log.info("audit window over the event cap; splitting", feed=feed, max_events=settings.max_events,
                 start=window.start.isoformat(), end=window.end.isoformat(), new_seconds=smaller.total_seconds())
        window = Window(window.start, window.base, window.base + smaller)
        splits += 1
    raw, documents, requests = collected
    if splits and window.end - window.base == ONE_SECOND:
        log.warning("one second of the audit feed holds more than the event cap; taken whole", feed=feed,
                    second=window.end.isoformat(), events=len(raw))
    fresh = select(raw, window, {event_id for event_id, _ in cursor.seen})
    limit = _second(now - settings.lag)
    return Walked(
        window=window, events=fresh, cursor=advance(cursor, window, raw, settings, shrunk=splits > 0),
        caught_up=window.end >= limit, documents=documents, requests=requests, splits=splits,
    )


def select(events: Sequence[E], window: Window, seen: set[str]) -> list[E]:
    """The window's events not published before, once each, ascending by ``(created_at, id)``."""
    chosen: dict[str, E] = {}
    for event in events:
        second = _second(event.created_at)
        if window.start <= second <= window.end and event.id not in seen:
            chosen.setdefault(event.id, event)
    return sorted(chosen.values(), key=lambda e: (e.created_at, e.id))


def advance(
    cursor: FeedCursor, window: Window, events: Sequence[AuditEvent], settings: WindowSettings, *, shrunk: bool,
) -> FeedCursor:
    """The cursor after ``window``: ``hwm`` at its end, ``seen`` pruned to the next overlap."""
    horizon = window.end - settings.overlap
    seen: dict[str, datetime] = {}
    for event_id, stamp in cursor.seen:
        if _second(stamp) >= horizon:
            seen[event_id] = stamp
    for event in events:
        second = _second(event.created_at)
        if horizon <= second <= window.end:
            seen[event.id] = event.created_at
    size = (window.end - window.base).total_seconds()
    full = settings.window.total_seconds()
    if shrunk:
        window_seconds: float | None = size
    elif cursor.window_seconds:
        grown = cursor.window_seconds * 2
        window_seconds = None if grown >= full else grown
    else:
        window_seconds = None
    ordered = sorted(seen.items(), key=lambda pair: (pair[1], pair[0]))
    return FeedCursor(hwm=window.end, seen=ordered, window_seconds=window_seconds)


def canvas_source(base_url: str) -> str:
    """The CloudEvents ``source`` of a Canvas instance: ``canvas:<host>``. Both feeds use it, so a
    Canvas event gets the same CloudEvent id whichever route it was read from."""
    return f"canvas:{urlsplit(base_url).netloc}"
