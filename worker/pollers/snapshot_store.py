"""The snapshot store of one tenant: the content hash of every upstream record last published,
mirrored on ``edusync._snapshots`` and held compactly in memory.

Kafka record: key ``<tenant>/<kind>/<natural key>``, value ``{"hash": "<16 hex>"}`` or, for a
record missing from the last complete snapshot, ``{"hash": ..., "pending": true}``; a tombstone
once the record's deletion is published. Memory keeps one ``dict[str, int]`` per kind: the
natural key maps to one int packing the 64-bit hash, the pending flag and the number (tag) of
the last walk that saw the record, about 140 bytes per record (a generic ``StateStore`` with the
full key and a JSON value takes about twice that).

It is a ``StateStore`` so poll results can carry ``StateWrite(store, key, value)``s that commit
with the events. Pollers of one tenant share one store: the first poller to need it restores
every registered kind with a single read of the topic, and a poller whose transaction failed
reloads only its own kind (its in-memory hashes may be ahead of Kafka).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

import anyio
import orjson
import structlog

from worker.kafka.connection import Kafka
from worker.kafka.reader import committed_batches
from worker.state_store import StateStore
from worker.topics import SNAPSHOTS

log = structlog.get_logger(__name__)

TAG_BITS = 24
_PENDING = 1 << TAG_BITS
_TAG_MASK = _PENDING - 1
# An operator rejected the record's deletion (``edusync holds reject``): it stays, never a candidate.
_KEPT = 1 << (TAG_BITS + 1)
_HASH_SHIFT = TAG_BITS + 2
# Tags run 1.._TAG_MASK; 0 means "not seen by any walk since this kind was loaded".
_TAG_CYCLE = _TAG_MASK


def walk_tag(walk: int) -> int:
    """The in-memory tag of walk number ``walk`` (never 0)."""
    return walk % _TAG_CYCLE + 1


def hash64(hex_digest: str) -> int:
    """The int form of a hex content hash's first 64 bits."""
    return int(hex_digest[:16], 16)


def hex64(value: int) -> str:
    """The 16-digit hex form of a 64-bit hash."""
    return f"{value:016x}"


class Seen(Enum):
    """What observing a record in a walk found."""

    NEW = "new"
    CHANGED = "changed"
    SAME = "same"
    REVIVED = "revived"  # same content, but it had been missing: clear the pending (or kept) mark


@dataclass(frozen=True, slots=True)
class Observation:
    """The outcome of ``Section.observe``."""

    seen: Seen
    previous: int | None
    duplicate: bool  # the key was already seen in this walk: the walk is not a clean snapshot


class Section:
    """The stored records of one kind: natural key -> (hash, pending, last walk tag)."""

    __slots__ = ("_map", "kind")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._map: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._map)

    def __contains__(self, key: str) -> bool:
        return key in self._map

    def natural_keys(self) -> Iterator[str]:
        """Every stored natural key."""
        return iter(list(self._map))

    def hash_of(self, key: str) -> int | None:
        """The stored 64-bit hash of ``key``."""
        packed = self._map.get(key)
        return None if packed is None else packed >> _HASH_SHIFT

    def is_kept(self, key: str) -> bool:
        """True if an operator rejected the deletion of ``key`` and upstream has not shown it since."""
        return bool(self._map.get(key, 0) & _KEPT)

    def is_pending(self, key: str) -> bool:
        """True if ``key`` was missing from the last complete snapshot."""
        return bool(self._map.get(key, 0) & _PENDING)

    def observe(self, key: str, digest: int, tag: int) -> Observation:
        """Record that walk ``tag`` saw ``key`` with hash ``digest``; say what changed."""
        old = self._map.get(key)
        self._map[key] = (digest << _HASH_SHIFT) | tag
        if old is None:
            return Observation(Seen.NEW, None, False)
        previous = old >> _HASH_SHIFT
        duplicate = (old & _TAG_MASK) == tag
        if previous != digest:
            return Observation(Seen.CHANGED, previous, duplicate)
        if old & (_PENDING | _KEPT):
            return Observation(Seen.REVIVED, previous, duplicate)
        return Observation(Seen.SAME, previous, duplicate)

    def unseen(self, tag: int, eligible: Callable[[str], bool] | None = None) -> list[str]:
        """Keys walk ``tag`` did not see (restricted to ``eligible`` ones), sorted."""
        out = [k for k, v in self._map.items() if (v & _TAG_MASK) != tag and (eligible is None or eligible(k))]
        out.sort()
        return out

    def count(self, eligible: Callable[[str], bool] | None = None) -> int:
        """How many keys are stored (that are ``eligible``)."""
        if eligible is None:
            return len(self._map)
        return sum(1 for k in self._map if eligible(k))

    def mark_handled(self, key: str, tag: int) -> None:
        """Tag ``key`` as dealt with in walk ``tag`` without seeing it (its pending mark is set)."""
        self._map[key] = (self._map[key] & ~_TAG_MASK) | tag

    # -- the durable side: what a Kafka value means ----------------------------------------------

    def apply(self, key: str, value: Any) -> None:
        """Mirror one stored value (``None`` deletes), keeping the in-memory walk tag."""
        if value is None:
            self._map.pop(key, None)
            return
        tag = self._map.get(key, 0) & _TAG_MASK
        flags = (_PENDING if value.get("pending") else 0) | (_KEPT if value.get("kept") else 0)
        self._map[key] = (hash64(value["hash"]) << _HASH_SHIFT) | flags | tag

    def value(self, key: str) -> dict[str, Any] | None:
        """The stored value of ``key`` as it is on the topic."""
        packed = self._map.get(key)
        if packed is None:
            return None
        out: dict[str, Any] = {"hash": hex64(packed >> _HASH_SHIFT)}
        if packed & _PENDING:
            out["pending"] = True
        if packed & _KEPT:
            out["kept"] = True
        return out


def stored_value(digest: int, *, pending: bool = False, kept: bool = False) -> dict[str, Any]:
    """The topic value for a record with hash ``digest``."""
    out: dict[str, Any] = {"hash": hex64(digest)}
    if pending:
        out["pending"] = True
    if kept:
        out["kept"] = True
    return out


class SnapshotStore(StateStore):
    """The snapshot hashes of one tenant, by kind, on ``edusync._snapshots``."""

    def __init__(self, kafka: Kafka, tenant: str, kinds: Iterable[str] = (), *, topic: str = SNAPSHOTS) -> None:
        super().__init__(kafka, topic, prefix=f"{tenant}/", tenant=tenant)
        self.tenant: str = tenant
        self._kinds: set[str] = set(kinds)
        self._sections: dict[str, Section] = {}
        self._lock = anyio.Lock()

    def register(self, kind: str) -> None:
        """Declare a kind a poller will use, so the first restore loads it too."""
        if "/" in kind:
            raise ValueError(f"kind {kind!r} must not contain '/'")
        self._kinds.add(kind)

    def key(self, kind: str, natural_key: str) -> str:
        """The topic key of one record."""
        return f"{self.tenant}/{kind}/{natural_key}"

    async def section(self, kind: str) -> Section:
        """The loaded section of ``kind``, restoring every registered kind not yet loaded."""
        self.register(kind)
        async with self._lock:
            if kind not in self._sections:
                await self._load(self._kinds - set(self._sections))
            return self._sections[kind]

    async def reload(self, kind: str) -> Section:
        """Throw ``kind``'s memory away and read it again from the topic."""
        self.register(kind)
        async with self._lock:
            self._sections.pop(kind, None)
            self._staged = {k: v for k, v in self._staged.items() if not k.startswith(f"{self.prefix}{kind}/")}
            await self._load({kind})
            return self._sections[kind]

    async def restore(self, timeout: float = 120.0) -> int:
        """Load every registered kind (again); returns the number of records held."""
        async with self._lock:
            self._sections.clear()
            self._staged = {}
            await self._load(set(self._kinds), timeout)
        return len(self)

    # -- StateStore interface over the compact sections ---------------------------------------------

    def _split(self, key: str) -> tuple[Section, str]:
        if not key.startswith(self.prefix):
            raise ValueError(f"key {key!r} is outside this store's prefix {self.prefix!r}")
        kind, _, natural = key[len(self.prefix):].partition("/")
        section = self._sections.get(kind)
        if section is None:
            raise KeyError(f"kind {kind!r} is not loaded")
        return section, natural

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value of ``key`` (``{"hash": ..}``)."""
        try:
            section, natural = self._split(key)
        except (KeyError, ValueError):
            return default
        value = section.value(natural)
        return default if value is None else value

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        return sum(len(s) for s in self._sections.values())

    def items(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """Entries whose key starts with ``prefix``."""
        for kind, section in list(self._sections.items()):
            for natural in section.natural_keys():
                key = f"{self.prefix}{kind}/{natural}"
                if key.startswith(prefix):
                    yield key, section.value(natural)

    def stage(self, key: str, value: Any) -> None:
        """Apply ``value`` to memory now and queue it for the next ``flush``."""
        section, natural = self._split(key)
        section.apply(natural, value)
        self._staged[key] = value

    # -- restore ---------------------------------------------------------------------------------

    async def _load(self, kinds: set[str], timeout: float = 120.0) -> None:
        """Read the topic once, filling fresh sections for ``kinds``."""
        started = time.monotonic()
        fresh = {kind: Section(kind) for kind in kinds}
        if fresh:
            count = await self._read(fresh, started, timeout)
        else:
            count = 0
        self._sections.update(fresh)
        self.restore_seconds = time.monotonic() - started
        log.info("snapshot store restored", tenant=self.tenant, kinds=sorted(kinds), records=count,
                 seconds=round(self.restore_seconds, 3))

    async def _read(self, fresh: dict[str, Section], started: float, timeout: float) -> int:
        count = 0
        prefix = self.prefix.encode()
        skip = len(prefix)
        remaining = max(1.0, timeout - (time.monotonic() - started))
        async for records in committed_batches(self.kafka, self.topic, timeout=remaining, only=self._only):
            for rec in records:
                key = rec.key
                if key is None or not key.startswith(prefix):
                    continue
                kind, _, natural = key[skip:].decode().partition("/")
                section = fresh.get(kind)
                if section is None:
                    continue
                section.apply(natural, None if rec.value is None else orjson.loads(rec.value))
                count += 1
        return count
