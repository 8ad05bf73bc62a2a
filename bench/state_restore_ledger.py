"""The ledger part of ``bench.state_restore``: handler ledger entries of many tenants on
``edusync._ledger``, written by the real ``Ledger.put`` + ``Ledger.flush``.

Entries are shaped like the roster handlers' (``handlers/roster_to_class.py``,
``roster_canvas_objects.py``, ``roster_to_matrixlms.py``): per student a Canvas user and its
section enrolments, a MatrixLMS user and memberships, a Class person and enrolments; per section
the Canvas section, course and teachers, the MatrixLMS class and the Class class. Keys are
``<handler>/<target>/<tenant>/...`` and every record goes to its tenant's partition, as
``Ledger.flush`` sends it (orjson value, the writer header).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from worker.kafka.connection import KafkaConnection
from worker.kafka.producer import TransactionalProducer
from worker.kafka.reader import topic_partitions
from worker.ledger import Ledger, LedgerView
from worker.topics import LEDGER, ensure_topics, state_topics

CANVAS, CLASS, MATRIX = "roster_to_canvas", "roster_to_class", "roster_to_matrixlms"
SECTIONS_PER_TEACHER = 5
ENROLMENTS_PER_STUDENT = 3
STUDENTS_PER_SECTION = 30


def _fp(*parts: object) -> str:
    """The handlers' fingerprint shape (16 hex digits of a sha256)."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


def _section_entries(t: str, n: int) -> Iterator[tuple[str, str, Any]]:
    """One section's entries (handler, key under it, value)."""
    sid, course, staff = str(10_000 + n), f"C{n // 12:05d}", str(200_000 + n // SECTIONS_PER_TEACHER)
    if n % 12 == 0:  # a course has 12 sections
        yield CANVAS, f"canvas/{t}/course/{course}", {"id": 50_000 + n // 12, "fp": _fp(course)}
    yield CANVAS, f"canvas/{t}/section/{sid}", {"id": 70_000 + n, "course": 50_000 + n // 12, "fp": _fp(sid)}
    yield CANVAS, f"canvas/{t}/section_teachers/{sid}", [staff]
    yield MATRIX, f"matrix/{t}/class/{sid}", {"id": 30_000 + n, "fp": _fp(sid, course), "teachers": [staff]}
    yield CLASS, f"class/{t}/class/{sid}", {"ext": f"{t}-{sid}", "fp": _fp(sid), "host": f"t{staff}@example.org",
                                            "teachers": [f"t{staff}@example.org"]}


def _student_entries(t: str, n: int) -> Iterator[tuple[str, str, Any]]:
    """One student's entries: user rows and ``ENROLMENTS_PER_STUDENT`` enrolments per target."""
    student, district = str(1_000_000 + n), f"S{1_000_000 + n}"
    names = {"first": f"First{n % 997}", "last": f"Last{n % 1009}"}
    yield CANVAS, f"canvas/{t}/user/{district}", {"id": 900_000 + n, "name": "{first} {last}".format(**names),
                                                  "sortable": "{last}, {first}".format(**names)}
    yield MATRIX, f"matrix/{t}/user/{district}", {"id": 400_000 + n, "fp": _fp(district)}
    yield CLASS, f"class/{t}/person/{district}", names
    for j in range(ENROLMENTS_PER_STUDENT):
        section = n // STUDENTS_PER_SECTION * ENROLMENTS_PER_STUDENT + j  # three different sections
        sid = str(10_000 + section)
        yield CANVAS, f"canvas/{t}/student_enrollment/{student}/{sid}", {
            "id": 3_000_000 + n * ENROLMENTS_PER_STUDENT + j, "course": 50_000 + section // 12,
            "section": 70_000 + section, "user": 900_000 + n, "state": "active"}
        yield MATRIX, f"matrix/{t}/member/{district}/{sid}", 30_000 + section
        yield CLASS, f"class/{t}/enrollment/{district}/{sid}", {**names, "role": "student"}


def tenant_entries(tenant: str, entries: int) -> Iterator[tuple[str, str, Any]]:
    """Exactly ``entries`` distinct (handler, key, value) of one tenant: one section's entries
    before every ``STUDENTS_PER_SECTION / ENROLMENTS_PER_STUDENT`` students, as in a district."""
    per_section = STUDENTS_PER_SECTION // ENROLMENTS_PER_STUDENT
    made = n = 0
    while True:
        rows = (*(_section_entries(tenant, n // per_section) if n % per_section == 0 else ()),
                *_student_entries(tenant, n))
        for row in rows:
            yield row
            made += 1
            if made >= entries:
                return
        n += 1


def entry_shares(entries: int) -> Counter[str]:
    """Entries per handler and kind (``canvas/user``, ...) of one tenant of ``entries``."""
    return Counter(f"{key.split('/')[0]}/{key.split('/')[2]}" for _, key, _ in tenant_entries("t", entries))


@dataclass
class LedgerWrite:
    """What the ledger writer did."""

    entries: int
    transactions: int
    seconds: float
    bytes_per_record: float
    end_offsets: int = 0
    per_partition: dict[str, int] = field(default_factory=dict)


async def create_ledger_topic(bootstrap: str, namespace: str) -> int:
    """The worker's ``_ledger`` spec (24 partitions, compacted); returns its partition count."""
    spec = next(s for s in state_topics() if s.name == LEDGER)
    connection = KafkaConnection(bootstrap, namespace=namespace)
    await ensure_topics(connection, [spec])
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await probe.start()
    try:
        await topic_partitions(probe, connection.name(LEDGER))
    finally:
        await probe.stop()
    return spec.partitions


async def delete_ledger_topic(bootstrap: str, namespace: str) -> None:
    """Remove the bench's ledger topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([KafkaConnection(bootstrap, namespace=namespace).name(LEDGER)])
    finally:
        await admin.close()


async def write_ledger(bootstrap: str, namespace: str, run: str, tenants: list[str], entries: int,
                       txn_entries: int, progress: Any = None) -> LedgerWrite:
    """Every tenant's entries through ``Ledger.put`` and ``Ledger.flush``, one transaction per
    ``txn_entries`` (a fresh view per transaction, so the writer holds one transaction's entries)."""
    kafka = KafkaConnection(bootstrap, namespace=namespace)
    transactions = written = payload = 0
    started = time.perf_counter()
    async with TransactionalProducer(kafka, f"edusync.bench.state-restore-ledger.{run}",
                                     transaction_timeout_ms=120_000) as producer:
        for tenant in tenants:
            rows = tenant_entries(tenant, entries)
            done = False
            while not done:
                view = LedgerView(kafka, writer_id=f"bench-{run}")
                ledgers = {h: Ledger(view, h) for h in (CANVAS, CLASS, MATRIX)}
                in_txn = 0
                for handler, key, value in rows:
                    ledgers[handler].put(key, value)
                    in_txn += 1
                    if in_txn >= txn_entries:
                        break
                else:
                    done = True
                if not in_txn:
                    break
                async with producer.transaction() as txn:
                    flushed = [(ledger, await ledger.flush(txn)) for ledger in ledgers.values()]
                for ledger, sent in flushed:
                    ledger.committed(sent)
                    payload += sum(len(k) + len(orjson.dumps(v)) for k, v in sent.items())
                transactions += 1
                written += in_txn
                if progress is not None:
                    progress(in_txn)
    seconds = time.perf_counter() - started
    result = LedgerWrite(written, transactions, seconds, payload / max(written, 1))
    consumer = AIOKafkaConsumer(**kafka.options(), enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        parts = await topic_partitions(consumer, kafka.name(LEDGER))
        ends: dict[TopicPartition, int] = await consumer.end_offsets(parts)
        result.end_offsets = int(sum(ends.values()))
        result.per_partition = {str(tp.partition): int(n) for tp, n in sorted(ends.items()) if n}
    finally:
        await consumer.stop()
    return result


def run_write(bootstrap: str, namespace: str, run: str, tenants: list[str], entries: int, txn_entries: int,
              progress: Any = None) -> LedgerWrite:
    """``write_ledger`` on its own event loop."""
    return anyio.run(write_ledger, bootstrap, namespace, run, tenants, entries, txn_entries, progress)
