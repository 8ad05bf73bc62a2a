"""The ledger: what each handler last wrote to each target entity, on ``edusync._ledger``.

``LedgerView`` holds the handlers' entries for the whole process, kept current by following the
compacted topic (read_committed), the way a Kafka Streams GlobalKTable is. Any handler can read any
other handler's entries of the same tenant (crosswalks from our ids to a target's ids, echo
suppression), including entries written after both started.

Every key is ``<handler>/<target>/<tenant>/...`` and goes to its tenant's partition, so the view
holds only what its replica needs: a slot's runners ``acquire`` the partitions of the slot's
tenants when the slot is assigned here (read to the end, then followed) and ``release`` them when
it moves away. Tools that look at everything (replay, status) ``restore`` the whole topic instead.

``Ledger`` is one handler's writer over the view: writes are visible at once and are sent with the
handler's next transaction, together with its consumer offsets. If that transaction fails, the
handler rolls its uncommitted writes back before it restarts; as a failed commit may have landed
all the same, its next runner settles those keys from the topic (``settle``). Records carry the
writing process's id in a header, so the follower skips what this process wrote itself.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import anyio
import orjson
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from worker.kafka.connection import Kafka, connect
from worker.kafka.reader import committed_batches, last_stable_offsets, partition_count, topic_partitions
from worker.kafka.tenant_partitions import tenant_partition
from worker.topics import LEDGER

if TYPE_CHECKING:
    from worker.kafka.producer import Transaction

log = structlog.get_logger(__name__)

WRITER_HEADER = "edusync-writer"
_ABSENT = object()


def ledger_tenant(key: str) -> str:
    """The tenant of a full ledger key ``<handler>/<target>/<tenant>/...``."""
    parts = key.split("/", 3)
    if len(parts) < 3:
        raise ValueError(f"ledger key {key!r} is not <handler>/<target>/<tenant>/...")
    return parts[2]


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
        self.restored = False  # the whole topic: every partition is followed
        self.followed = 0
        self._partitions: int | None = None  # the topic's partition count, once known
        self._held: dict[int, int] = {}  # partition -> slot runners using it (when not restored whole)
        self._following: set[int] = set()  # the held partitions that are loaded: the follower reads these
        self._held_changed = anyio.Event()
        self._acquiring = anyio.Lock()
        # Keys of commits that failed without saying whether they landed (worker/ledger.py: settle).
        self._doubtful: set[str] = set()

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
        self._partitions = await partition_count(self.kafka, self.topic)
        self.restored = True
        log.info("ledger view restored", entries=len(data), seconds=round(time.monotonic() - started, 3))
        return len(data)

    async def acquire(self, tenants: frozenset[str], timeout: float = 300.0) -> None:
        """Hold the partitions of ``tenants`` (a slot assigned here): read those not held yet to
        their end, follow them from there, and return once the view has everything committed to
        them up to now."""
        async with self._acquiring:
            count = self._partitions = self._partitions or await partition_count(self.kafka, self.topic)
            wanted = sorted({tenant_partition(t, count) for t in tenants})
            new = [p for p in wanted if p not in self._held]
            for p in wanted:
                self._held[p] = self._held.get(p, 0) + 1
            if new and not self.restored:
                started = time.monotonic()
                loaded = 0
                physical = self.kafka.name(self.topic)
                async for records in committed_batches(self.kafka, self.topic, timeout=timeout,
                                                       only=lambda _n: new):
                    for rec in records:
                        tp = TopicPartition(physical, rec.partition)
                        self._resume_at[tp] = rec.offset + 1
                        if rec.key is not None:
                            key = rec.key.decode()
                            _apply(self._data, key, rec.value)
                            self._index(key, present=rec.value is not None)
                            loaded += 1
                self._following.update(new)
                self._follow_again()
                log.info("ledger partitions acquired", partitions=new, records=loaded, entries=len(self._data),
                         seconds=round(time.monotonic() - started, 3))
        await self.catch_up(partitions=wanted)
        await self.settle(timeout=timeout)

    def doubt(self, keys: Iterable[str]) -> None:
        """A commit holding ``keys`` failed, and it may have landed all the same (a commit whose answer
        the broker's restart cut off): the next ``settle`` reads what the topic holds for them."""
        self._doubtful.update(keys)

    async def settle(self, timeout: float = 300.0) -> int:
        """Set every doubtful key to what the topic holds for it; returns how many changed. Call it
        once the failed transaction is settled: a transactional producer with the same id has started
        (it completes or aborts the transaction in hand). The follower cannot do this: it skips this
        process's own records, and it may have passed them already (bench/chaos: a drop's member
        tombstone that had landed was rolled back to "member", and the MatrixLMS reconcile, which
        brings the site back to the ledger, enrolled the student again)."""
        keys, self._doubtful = self._doubtful, set()
        if not keys:
            return 0
        started = time.monotonic()
        count = self._partitions = self._partitions or await partition_count(self.kafka, self.topic)
        if not self.restored:  # a partition released meanwhile is read whole again when next acquired
            keys = {k for k in keys if tenant_partition(ledger_tenant(k), count) in self._following}
        parts = sorted({tenant_partition(ledger_tenant(k), count) for k in keys})
        if not parts:
            return 0
        held: dict[str, Any] = {}
        try:
            async for records in committed_batches(self.kafka, self.topic, timeout=timeout, only=lambda _n: parts):
                for rec in records:
                    if rec.key is not None and (key := rec.key.decode()) in keys:
                        _apply(held, key, rec.value)
        except BaseException:
            self._doubtful |= keys  # still in doubt: the next settle reads them again
            raise
        changed = 0
        for key in keys:
            truth = held.get(key)
            if self._data.get(key) != truth:
                self._set(key, truth)
                changed += 1
        log.info("ledger entries settled after a failed commit", keys=len(keys), changed=changed,
                 seconds=round(time.monotonic() - started, 3))
        return changed

    def release(self, tenants: frozenset[str]) -> None:
        """The slot of ``tenants`` left this replica: forget its partitions once nothing here holds them."""
        if self.restored or self._partitions is None:
            return
        count = self._partitions
        dropped = set()
        for p in {tenant_partition(t, count) for t in tenants}:
            self._held[p] = self._held.get(p, 1) - 1
            if self._held[p] <= 0:
                del self._held[p]
                dropped.add(p)
        if not dropped:
            return
        for key in [k for k in self._data if tenant_partition(ledger_tenant(k), count) in dropped]:
            del self._data[key]
            self._index(key, present=False)
        self._following -= dropped
        for tp in [tp for tp in (*self._resume_at, *self._positions) if tp.partition in dropped]:
            self._resume_at.pop(tp, None)
            self._positions.pop(tp, None)
        self._follow_again()
        log.info("ledger partitions released", partitions=sorted(dropped), entries=len(self._data))

    def _follow_again(self) -> None:
        self._held_changed.set()

    async def follow(self) -> None:
        """Apply what other processes commit to the held partitions (every one, restored whole),
        until cancelled (run it in a task group). One consumer for the process's life: a held set
        that changes is re-assigned in place, and a broker away for a while only makes fetches
        come back empty (a consumer started anew each time would fail while it is down)."""
        consumer = AIOKafkaConsumer(**self.kafka.options(), isolation_level="read_committed",
                                    enable_auto_commit=False, group_id=None,
                                    client_id=f"edusync-ledger-view-{self.writer_id[:8]}")
        physical = self.kafka.name(self.topic)
        try:
            await consumer.start()  # inside: a cancel during the start must still close it
            every = await topic_partitions(consumer, physical) if self.restored else []
            assigned: list[TopicPartition] = []
            while True:
                wanted = every if self.restored else [TopicPartition(physical, p) for p in sorted(self._following)]
                if wanted != assigned:
                    self._held_changed = anyio.Event()
                    consumer.assign(wanted)
                    for tp in wanted:  # assign() forgets positions: resume every partition where it was
                        consumer.seek(tp, self._positions.get(tp, self._resume_at.get(tp, 0)))
                    assigned = wanted
                if not assigned:
                    with anyio.move_on_after(1.0):
                        await self._held_changed.wait()
                    continue
                batch = await consumer.getmany(timeout_ms=200, max_records=5000)
                for records in batch.values():
                    self._apply_followed(records)
                for tp in assigned:
                    if not self.restored and tp.partition not in self._following:
                        continue  # released while we fetched: it is not ours to track any more
                    self._positions[tp] = await consumer.position(tp)
                self._progressed()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await consumer.stop()

    def _progressed(self) -> None:
        self._progress.set()
        self._progress = anyio.Event()

    async def catch_up(self, timeout: float = 60.0, *, partitions: list[int] | None = None) -> None:
        """Return once ``follow`` has read everything committed to the partitions it holds (or to
        ``partitions``) up to now: what a replica that just handed a tenant over wrote is in this
        view before its new owner works."""
        ends = await last_stable_offsets(self.kafka, self.topic)
        if partitions is None and not self.restored:
            partitions = list(self._held)  # what this view holds is all it follows
        if partitions is not None:
            ends = {tp: end for tp, end in ends.items() if tp.partition in partitions}
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

    async def partition_of(self, key: str) -> int:
        """The partition a full key is written to: its tenant's."""
        if self._partitions is None:
            self._partitions = await partition_count(self.kafka, self.topic)
        return tenant_partition(ledger_tenant(key), self._partitions)

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
            await txn.send(self.view.topic, key.encode(), None if value is None else orjson.dumps(value), header,
                           partition=await self.view.partition_of(key))
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
        """Undo every write not yet committed (the transaction failed); returns how many keys. The
        failure may hide a commit that landed, so the view settles these keys from the topic when the
        handler's next runner acquires its tenants."""
        undone = len(self._undo)
        self.view.doubt(self._undo)
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
