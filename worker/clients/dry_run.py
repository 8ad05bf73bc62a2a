"""A write-recording layer under every upstream client, for ``edusync replay --dry-run``.

While a ``WriteLog`` is active (a context variable, so tasks started inside inherit it), a
request that would change a target is noted and not sent: ``UpstreamHTTP.call`` raises
``WouldWrite`` in its place, so the handler stops at its first write for that event, and reads
go on as usual. A request is a write by its method, unless the client says otherwise (MatrixLMS
writes through GET functions; an OAuth token refresh POSTs without writing).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from worker.errors import EdusyncError

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class WouldWrite(EdusyncError):
    """A dry run stopped a write (the request is in the active ``WriteLog``)."""


@dataclass(frozen=True)
class PlannedWrite:
    """One write a dry run did not make: which system, host and call. Only the body's field
    names are kept: values may be students' names."""

    system: str
    host: str
    method: str
    path: str
    fields: tuple[str, ...] = ()


@dataclass
class WriteLog:
    """The writes a dry run stopped, in order."""

    writes: list[PlannedWrite] = field(default_factory=list)

    def stop(self, system: str, host: str, method: str, path: str, body: Any) -> WouldWrite:
        """Note one write; the error to raise in its place."""
        fields = tuple(sorted(body)) if isinstance(body, dict) else ()
        self.writes.append(PlannedWrite(system, host, method, path, fields))
        return WouldWrite(f"dry run: {system} {method} {path} not sent")


RECORDING: ContextVar[WriteLog | None] = ContextVar("edusync_dry_run", default=None)


def is_write(method: str, writes: bool | None) -> bool:
    """Whether a request changes the target: the client's word, else its method."""
    return writes if writes is not None else method.upper() not in READ_METHODS


@contextmanager
def recording() -> Iterator[WriteLog]:
    """Stop and record every upstream write made inside the block (and its tasks)."""
    log = WriteLog()
    token = RECORDING.set(log)
    try:
        yield log
    finally:
        RECORDING.reset(token)
