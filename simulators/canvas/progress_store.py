"""Progress objects for asynchronous jobs (seed 002:L9428-9452; canvas.md §1.9, §5.7 item 7).

``workflow_state`` runs queued -> running -> completed|failed. The job is applied on the first
poll of ``GET /api/v1/progress/:id`` (after ``running_polls`` polls that answer ``running``), so a
test sees each state without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from simulators.canvas.accounts import IdSequence
from simulators.canvas.clock import iso, now
from simulators.canvas.responses import not_found

Job = Callable[[], tuple[bool, str, dict[str, Any] | None]]


class ProgressConfig(BaseModel):
    """How many polls answer ``running`` before the job runs."""

    running_polls: int = Field(default=0, ge=0)


@dataclass
class ProgressRecord:
    """A Progress object and the job behind it."""

    id: int
    context_id: int
    context_type: str
    user_id: int | None
    tag: str
    job: Job | None
    workflow_state: str = "queued"
    completion: float = 0.0
    message: str | None = None
    results: dict[str, Any] | None = None
    created_at: str | None = None
    updated_at: str | None = None
    polls: int = field(default=0)


class ProgressStore:
    """Progress objects by id."""

    def __init__(self, ids: IdSequence) -> None:
        self._ids = ids
        self.config = ProgressConfig()
        self.records: dict[int, ProgressRecord] = {}

    def reset(self) -> None:
        """Drop every Progress."""
        self.config = ProgressConfig()
        self.records = {}

    def start(self, *, context_id: int, context_type: str, user_id: int | None, tag: str, job: Job) -> ProgressRecord:
        """A queued Progress for ``job``."""
        stamp = iso(now())
        pid = self._ids.next("progress")
        record = ProgressRecord(pid, context_id, context_type, user_id, tag, job, created_at=stamp, updated_at=stamp)
        self.records[pid] = record
        return record

    def poll(self, raw: str) -> ProgressRecord:
        """Advance the job one poll and return the Progress."""
        record = self.records.get(int(raw)) if raw.isdigit() else None
        if record is None:
            raise not_found()
        record.polls += 1
        if record.job is not None:
            if record.polls <= self.config.running_polls:
                record.workflow_state, record.completion = "running", 50.0
            else:
                ok, message, results = record.job()
                record.job = None
                record.workflow_state = "completed" if ok else "failed"
                record.completion = 100.0
                record.message, record.results = message, results
            record.updated_at = iso(now())
        return record

    def to_json(self, record: ProgressRecord, base_url: str) -> dict[str, Any]:
        """The Progress object; ``results`` only once the job has finished."""
        data: dict[str, Any] = {
            "id": record.id, "context_id": record.context_id, "context_type": record.context_type,
            "user_id": record.user_id, "tag": record.tag, "completion": record.completion,
            "workflow_state": record.workflow_state, "created_at": record.created_at,
            "updated_at": record.updated_at, "message": record.message,
            "url": f"{base_url}/api/v1/progress/{record.id}",
        }
        if record.workflow_state in ("completed", "failed"):
            data["results"] = record.results
        return data
