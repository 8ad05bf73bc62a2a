"""The ledger: what each handler last wrote to each target entity, on ``edusync._ledger``.

``LedgerView`` holds every handler's entries for the whole process: restored from the compacted
topic at start-up and then kept current by following it (read_committed), the way a Kafka Streams
GlobalKTable is. Any handler can read any other handler's entries (crosswalks from our ids to a
target's ids, echo suppression), including entries written after both started.

``Ledger`` is one handler's writer over the view: writes are visible at once and are sent with the
handler's next transaction, together with its consumer offsets. If that transaction fails, the
handler rolls its uncommitted writes back before it restarts. Records carry the writing process's
id in a header, so the follower skips what this process wrote itself.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import anyio
import orjson
import structlog
from aiokafka import ConsumerRecord, TopicPartition

from worker.kafka.connection import Kafka, connect
from worker.kafka.reader import committed_batches, follow_committed, last_stable_offsets
from worker.topics import LEDGER

if TYPE_CHECKING:
    from worker.kafka.producer import Transaction

log = structlog.get_logger(__name__)

WRITER_HEADER = "edusync-writer"
_ABSENT = object()


class LedgerView:
    """Every handler's ledger entries, current to the committed end of ``edusync._ledger``."""

    def __init__(self, kafka: Kafka, *, topic: str = LEDGER, writer_id: str | None = None) -> None:
        self.kafka = connect(kafka)
        self.topic = topic
        self.writer_id = writer_id or uuid.uuid4().hex
        self._writer = self.writer_id.encode()
        self._data: dict[str, Any] = {}
        # parent key (the key without its last part) -> child keys, so a handler can list the
        # entries under one parent (a student's enrolments) without scanning every entry.
        self._children: dict[str, set[str]] = {}
        self._listeners: list[Callable[[str], None]] = []
        self._resume_at: dict[TopicPartition, int] = {}
        self._positions: dict[TopicPartition, int] = {}  # the follower's, past transaction markers
        self._progress = anyio.Event()
        self.restored = False
        self.followed = 0

    # -- reading ------------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """The entry at the full key ``handler/target/entity``."""
        return self._data.get(key, default)

    def items(self, prefix: str) -> Iterator[tuple[str, Any]]:
        """Entries whose full key starts with ``prefix`` (a snapshot: safe to write while iterating;
        a scan of every entry: on hot paths use ``children``)."""
        return iter([(k, v) for k, v in self._data.items() if k.startswith(prefix)])

    def children(self, parent: str) -> dict[str, Any]:
        """The entries directly under ``parent`` (``parent/<last part>``), without a scan."""
        return {k: self._data[k] for k in self._children.get(parent, ()) if k in self._data}

    def __len__(self) -> int:
        return len(self._data)

    def subscribe(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(key)`` whenever an entry changes, written here or followed."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[str], None]) -> None:
        """Stop calling ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- restoring and following --------------------------------------------------------------

    async def restore(self, timeout: float = 300.0) -> int:
        """Read the topic to its end; returns the number of entries."""
        started = time.monotonic()
        data: dict[str, Any] = {}
        ends: dict[TopicPartition, int] = {}
        async for records in committed_batches(self.kafka, self.topic, timeout=timeout):
            for rec in records:
                ends[TopicPartition(rec.topic, rec.partition)] = rec.offset + 1
                if rec.key is not None:
                    _apply(data, rec.key.decode(), rec.value)
        self._data = data
        self._children = {}
        for key in data:
            self._index(key, present=True)
        self._resume_at = ends
        self.restored = True
        log.info("ledger view restored", entries=len(data), seconds=round(time.monotonic() - started, 3))
        return len(data)

    async def follow(self) -> None:
        """Apply what other processes commit to the topic, until cancelled (run it in a task group)."""
        await follow_committed(self.kafka, [self.topic], self._resume_at, self._apply_followed,
                               client_id=f"edusync-ledger-view-{self.writer_id[:8]}", positions=self._positions,
                               on_progress=self._progressed)

    def _progressed(self) -> None:
        self._progress.set()
        self._progress = anyio.Event()

    async def catch_up(self, timeout: float = 60.0) -> None:
        """Return once ``follow`` has read everything committed to the topic up to now: what a
        replica that just handed a tenant over wrote is in this view before its new owner works."""
        ends = await last_stable_offsets(self.kafka, self.topic)
        with anyio.fail_after(timeout):
            while any(self._positions.get(tp, self._resume_at.get(tp, 0)) < end for tp, end in ends.items()):
                await self._progress.wait()

    def _apply_followed(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        for rec in records:
            if rec.key is None or _writer_of(rec.headers) == self._writer:
                continue
            key = rec.key.decode()
            _apply(self._data, key, rec.value)
            self._index(key, present=rec.value is not None)
            self.followed += 1
            self._notify(key)

    def _index(self, key: str, *, present: bool) -> None:
        parent = key.rpartition("/")[0]
        if present:
            self._children.setdefault(parent, set()).add(key)
        elif parent in self._children:
            self._children[parent].discard(key)
            if not self._children[parent]:
                del self._children[parent]

    # -- local writes (through a Ledger) -------------------------------------------------------

    def _set(self, key: str, value: Any) -> None:
        if value is None or value is _ABSENT:
            self._data.pop(key, None)
            self._index(key, present=False)
        else:
            self._data[key] = value
            self._index(key, present=True)
        self._notify(key)

    def _notify(self, key: str) -> None:
        for listener in self._listeners:
            listener(key)

    def header(self) -> list[tuple[str, bytes]]:
        """The header every record this process writes carries."""
        return [(WRITER_HEADER, self._writer)]


class Ledger:
    """One handler's entries: ``get``/``put`` under its own prefix, ``read`` from any handler."""

    def __init__(self, view: LedgerView, handler: str) -> None:
        self.view = view
        self.handler = handler
        self._prefix = f"{handler}/"
        self._staged: dict[str, Any] = {}
        # The committed value of every key with an uncommitted write, for a rollback.
        self._undo: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        """The entry for ``key`` (``target/entity``), or None."""
        return self.view.get(self._prefix + key)

    def put(self, key: str, value: Any) -> None:
        """Record what was written for ``key``; ``None`` forgets it. Visible at once, durable with
        the next commit."""
        full = self._prefix + key
        if full not in self._undo:
            self._undo[full] = self.view.get(full, _ABSENT)
        self._staged[full] = value
        self.view._set(full, value)

    def items(self, prefix: str = "") -> list[tuple[str, Any]]:
        """Entries under ``prefix``, keys without the handler prefix."""
        n = len(self._prefix)
        return [(k[n:], v) for k, v in self.view.items(self._prefix + prefix)]

    def read(self, handler: str, key: str) -> Any:
        """Another handler's entry for ``key`` (a crosswalk, an echo check)."""
        return self.view.get(f"{handler}/{key}")

    def children(self, parent: str) -> dict[str, Any]:
        """This handler's entries directly under ``parent``, keys without the handler prefix."""
        n = len(self._prefix)
        return {k[n:]: v for k, v in self.view.children(self._prefix + parent).items()}

    @property
    def dirty(self) -> bool:
        """True while writes wait for the next commit."""
        return bool(self._staged)

    async def flush(self, txn: Transaction) -> dict[str, Any]:
        """Send the staged writes inside ``txn``; returns them for ``committed``."""
        staged, self._staged = self._staged, {}
        header = self.view.header()
        for key, value in staged.items():
            await txn.send(self.view.topic, key.encode(), None if value is None else orjson.dumps(value), header)
        return staged

    def committed(self, flushed: dict[str, Any]) -> None:
        """The transaction holding ``flushed`` committed: those values are durable now. A key written
        again while it was in flight keeps an undo entry, and it must be the committed value: the
        older one would make a later rollback claim a state the topic no longer holds."""
        for key, value in flushed.items():
            if key in self._staged:
                self._undo[key] = _ABSENT if value is None else value
            else:
                self._undo.pop(key, None)

    def rollback(self) -> int:
        """Undo every write not yet committed (the transaction failed); returns how many keys."""
        undone = len(self._undo)
        for key, value in self._undo.items():
            self.view._set(key, value)
        self._undo.clear()
        self._staged.clear()
        return undone


def _apply(data: dict[str, Any], key: str, value: bytes | None) -> None:
    if value is None:
        data.pop(key, None)
    else:
        data[key] = orjson.loads(value)


def _writer_of(headers: Any) -> bytes | None:
    for name, value in headers or ():
        if name == WRITER_HEADER:
            return bytes(value)
    return None
