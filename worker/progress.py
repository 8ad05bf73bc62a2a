"""Progress of long work (snapshot walks, initial syncs, replays): a JSON log line every few
seconds with counts, rate and, when the total is known, percentage and time left; on a terminal
(a person running ``edusync replay``) a rich progress bar instead.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any, Protocol

import structlog
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

log = structlog.get_logger(__name__)

PROGRESS_EVERY_SECONDS = 10.0


class ProgressLog:
    """Throttled progress lines of one task: the first once the task has run ``every`` seconds
    (short work stays quiet), then one per ``every`` seconds; ``finish`` closes with the totals if
    any line was written."""

    def __init__(self, event: str, every: float = PROGRESS_EVERY_SECONDS, **fields: Any) -> None:
        self.event = event
        self.every = every
        self.fields = fields
        self.started = time.monotonic()
        self._last = self.started
        self.lines = 0

    def update(self, done: int, total: int | None = None, **extra: Any) -> bool:
        """Record ``done`` units (of ``total``); True if a line was written."""
        now = time.monotonic()
        if now - self._last < self.every:
            return False
        self._last = now
        self.lines += 1
        log.info(self.event, **self.fields, **self._numbers(done, total, now), **extra)
        return True

    def finish(self, done: int, total: int | None = None, **extra: Any) -> None:
        """The closing line, if the task was long enough to have had progress lines."""
        if self.lines:
            log.info(f"{self.event}: done", **self.fields, **self._numbers(done, total, time.monotonic()), **extra)

    def _numbers(self, done: int, total: int | None, now: float) -> dict[str, Any]:
        elapsed = now - self.started
        out: dict[str, Any] = {"done": int(done), "elapsed_seconds": round(elapsed, 1)}
        rate = done / elapsed if elapsed >= 1.0 else None  # a rate over less than a second says nothing
        if rate is not None:
            out["per_second"] = round(rate, 1)
        if total is not None:
            out.update(total=int(total), percent=round(100.0 * done / total, 1) if total else 100.0)
            if rate and total >= done:
                out["eta_seconds"] = round((total - done) / rate, 1)
        return out


class Reporter(Protocol):
    """Where a command's progress goes."""

    def update(self, done: int, total: int | None = None) -> None: ...


class _LogReporter:
    def __init__(self, progress: ProgressLog) -> None:
        self.progress = progress
        self.done = 0
        self.total: int | None = None

    def update(self, done: int, total: int | None = None) -> None:
        self.done, self.total = done, total if total is not None else self.total
        self.progress.update(done, self.total)


class _BarReporter:
    def __init__(self, bar: Progress, description: str) -> None:
        self.bar = bar
        self.task = bar.add_task(description, total=None)

    def update(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.bar.update(self.task, completed=done, total=total)
        else:
            self.bar.update(self.task, completed=done)


@contextlib.contextmanager
def command_progress(event: str, description: str, *, every: float = PROGRESS_EVERY_SECONDS,
                     terminal: bool | None = None, **fields: Any) -> Iterator[Reporter]:
    """A rich bar on stderr when it is a terminal, else throttled JSON lines (``event``, ``fields``)."""
    if sys.stderr.isatty() if terminal is None else terminal:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
            yield _BarReporter(bar, description)
        return
    reporter = _LogReporter(ProgressLog(event, every, **fields))
    yield reporter
    reporter.progress.finish(reporter.done, reporter.total)
