"""What a replica restores from ``edusync._snapshots`` when it owns one tenant of many: the
tenant-partitioned layout of today against the single-read-and-filter layout of before.

    python -m bench.state_restore [--bootstrap B] [--tenants 10] [--records 300000] [--ledger-entries 50000] [--quick]

It writes ``--tenants`` x ``--records`` snapshot records in the real ``SnapshotStore`` format
(key ``<tenant>/<kind>/<natural key>``, value ``stored_value(hash)``; kinds and their shares
those of an Illuminate district, see ``KIND_SHARES``) twice, with one transactional producer in
transactions of ``--txn-records`` records:

A. today: into the ``edusync._snapshots`` topic as the worker creates it (``state_topics()``: 24
   partitions, compacted), each tenant on ``tenant_partition(tenant, 24)``, in namespace
   ``<run>-a``;
B. before: into a 1-partition ``edusync._snapshots`` of namespace ``<run>-b``, where a tenant's
   partition is the only one, so a store reads every tenant's records and keeps its own by
   prefix, which is what every store did before.

Then, each in a fresh process (``bench.state_restore_child``), ``SnapshotStore(kafka, tenant,
kinds).restore()``: for one tenant alone on its partition under A; for one tenant sharing its
partition (if the hash put two on one); for the same lone tenant under B; and for all tenants at
once under A (a replica owning everything, stores restoring concurrently). Each gives wall
seconds, records kept, records read from Kafka and RSS before and after; the report gives per
million kept records the seconds and MB of RSS, records read per record kept, the ratios B/A, a
cost model (seconds per kept and per skipped record) and from it an extrapolation to a host of
100 districts with a million records each.

The ledger part (``bench.state_restore_ledger``) then writes ``--tenants`` x ``--ledger-entries``
handler ledger entries (the roster handlers' key shapes and values) with ``Ledger.put`` +
``Ledger.flush`` into ``edusync._ledger`` as ``state_topics()`` creates it (24 partitions, keyed
by tenant), and measures in fresh processes ``LedgerView.acquire({one tenant})`` (today, with the
view's follower running), the same for a tenant sharing its partition, ``LedgerView.restore()``
of the whole topic (before: every replica) and ``acquire`` of every tenant. The report says
whether other work shared the machine (``bench.other_load``: CPU time outside the bench's process
tree).

It starts its own Kafka 3.9.1 on free ports in ``var/bench-state-restore-<run>/`` (removed at
the end) unless ``--bootstrap`` or ``KAFKA_BOOTSTRAP_SERVERS`` names one; its topics are in its
own namespaces and are deleted at the end either way. Writes ``bench/reports/state_restore.md``,
``.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.other_load import LoadSummary, OtherLoad
from bench.report import REPORTS_DIR, machine_info, md_table
from bench.state_restore_ledger import (
    LedgerWrite,
    create_ledger_topic,
    delete_ledger_topic,
    entry_shares,
    run_write,
)
from deploy.local_kafka import KAFKA_VERSION, LocalKafka, free_port
from worker.clients.illuminate_models import join_key
from worker.kafka.connection import KafkaConnection
from worker.kafka.producer import PRODUCER_SETTINGS
from worker.kafka.reader import topic_partitions
from worker.kafka.tenant_partitions import tenant_partition
from worker.pollers.snapshot_store import SnapshotStore, stored_value
from worker.topics import SNAPSHOTS, TopicSpec, ensure_topics, state_topics

ROOT = Path(__file__).resolve().parent.parent
# Records per kind in a 200,000-student Illuminate district (bench/reports/illuminate_snapshot.md).
KIND_SHARES: tuple[tuple[str, int], ...] = (
    ("students", 200_000), ("staff", 8_000), ("courses", 1_538), ("terms", 40), ("sections", 18_456),
    ("enrollments", 200_000), ("rosters", 553_680),
)
KINDS = [kind for kind, _ in KIND_SHARES]
# The host the "what this means" paragraph extrapolates to.
HOST_DISTRICTS = 100
HOST_RECORDS = 1_000_000
EARLIER_PROBE = "about 2.2 µs and 400 bytes per kept record"

console = Console(stderr=True, highlight=False)


# -- the records ------------------------------------------------------------------------------------


def kind_counts(records: int) -> dict[str, int]:
    """How many of a tenant's ``records`` are of each kind (the district's proportions, summing up)."""
    total = sum(n for _, n in KIND_SHARES)
    counts = {kind: max(1, records * n // total) for kind, n in KIND_SHARES}
    counts["rosters"] += records - sum(counts.values())
    return counts


def natural_keys(kind: str, count: int) -> Iterator[str]:
    """``count`` distinct natural keys shaped like the Illuminate pollers' (parts joined by ``join_key``)."""
    for i in range(count):
        if kind == "students":
            yield str(1_000_000 + i)
        elif kind == "staff":
            yield str(200_000 + i)
        elif kind == "courses":
            yield f"C{i:05d}"
        elif kind == "terms":
            yield join_key(str(2000 + i // 4), f"T{i % 4}")
        elif kind == "sections":
            yield str(10_000 + i)
        elif kind == "enrollments":
            yield join_key(str(1_000_000 + i), str(i % 41), "2023-08-15")
        else:  # rosters: section / student
            yield join_key(str(10_000 + i % 18_456), str(1_000_000 + i // 3))


def tenant_records(tenant: str, records: int, seed: int) -> Iterator[tuple[bytes, bytes]]:
    """The (key, value) pairs of one tenant, as ``SnapshotStore`` writes them; one in 500 pending."""
    store = SnapshotStore("unused:9092", tenant)  # only for its key format; never restored here
    rng = random.Random(seed)
    n = 0
    for kind, count in kind_counts(records).items():
        for natural in natural_keys(kind, count):
            n += 1
            value = stored_value(rng.getrandbits(64), pending=n % 500 == 0)
            yield store.key(kind, natural).encode(), orjson.dumps(value)


def tenant_names(count: int, partitions: int) -> list[str]:
    """The bench's tenants: ``district-00``.. and, if crc32 happens to give each its own partition,
    the last one swapped for the next ``district-NN`` that shares the first one's partition, so the
    cost of a neighbour on the partition is measured too (a host of 100 tenants on 24 partitions
    always has them)."""
    names = [f"district-{i:02d}" for i in range(count)]
    if count < 3 or len({tenant_partition(t, partitions) for t in names}) < count:
        return names
    first = tenant_partition(names[0], partitions)
    extra = next(f"district-{i:02d}" for i in range(count, 100 * partitions)
                 if tenant_partition(f"district-{i:02d}", partitions) == first)
    return [*names[:-1], extra]


# -- writing ----------------------------------------------------------------------------------------


@dataclass
class Layout:
    """One topic layout: its namespace and partition count."""

    name: str
    namespace: str
    partitions: int

    def partition(self, tenant: str) -> int:
        return tenant_partition(tenant, self.partitions)


@dataclass
class WriteResult:
    """What the writer did."""

    records_per_layout: int
    transactions: int
    seconds: float
    bytes_per_record: float
    end_offsets: dict[str, int] = field(default_factory=dict)  # per layout, summed over partitions


class BatchWriter:
    """Fills one ``BatchBuilder`` per topic partition and hands full ones to the producer."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, partition: int) -> None:
        self.producer = producer
        self.topic = topic
        self.partition = partition
        self.batch = producer.create_batch()
        self.futures: list[asyncio.Future[Any]] = []

    async def append(self, key: bytes, value: bytes) -> None:
        if self.batch.append(key=key, value=value, timestamp=None) is None:
            await self.flush()
            if self.batch.append(key=key, value=value, timestamp=None) is None:
                raise RuntimeError("a record does not fit an empty batch")

    async def flush(self) -> None:
        if self.batch.record_count():
            self.futures.append(await self.producer.send_batch(self.batch, self.topic, partition=self.partition))
            self.batch = self.producer.create_batch()


async def write_records(bootstrap: str, run: str, layouts: list[Layout], tenants: list[str], records: int,
                        txn_records: int) -> WriteResult:
    """Write every tenant's records into each layout's topic, in large transactions (both layouts in
    the same transactions). Batches go straight to the transactional producer (``send_batch``): the
    same records and transactions as ``Transaction.send`` would make, about five times faster."""
    connection = KafkaConnection(bootstrap, namespace=layouts[0].namespace)
    txn_id = connection.name(f"edusync.bench.state-restore.{run}")
    producer = AIOKafkaProducer(**connection.options(), transactional_id=txn_id, client_id=txn_id,
                                transaction_timeout_ms=120_000, **PRODUCER_SETTINGS)
    await producer.start()
    topics = {x.name: KafkaConnection(bootstrap, namespace=x.namespace).name(SNAPSHOTS) for x in layouts}
    for topic in topics.values():
        await producer.partitions_for(topic)  # just created: wait until the producer knows it
    total = len(tenants) * records
    transactions, written, payload = 0, 0, 0
    started = time.perf_counter()
    try:
        with Progress(TextColumn("[bold]writing[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=False) as progress:
            task = progress.add_task(f"{len(tenants)} x {records:,} records into A and B", total=total)
            for t, tenant in enumerate(tenants):
                pending = iter(tenant_records(tenant, records, seed=t))
                done = False
                while not done:
                    async with producer.transaction():
                        writers = [BatchWriter(producer, topics[x.name], x.partition(tenant)) for x in layouts]
                        in_txn = 0
                        for key, value in pending:
                            for w in writers:
                                await w.append(key, value)
                            payload += len(key) + len(value)
                            in_txn += 1
                            if in_txn % 20_000 == 0:
                                progress.update(task, advance=20_000)
                            if in_txn >= txn_records:
                                break
                        else:
                            done = True
                        for w in writers:
                            await w.flush()
                        await asyncio.gather(*(f for w in writers for f in w.futures))
                        progress.update(task, advance=in_txn % 20_000)
                        written += in_txn
                    transactions += 1
    finally:
        await producer.stop()
    seconds = time.perf_counter() - started
    result = WriteResult(written, transactions, seconds, payload / max(written, 1))
    for layout in layouts:
        result.end_offsets[layout.name] = await end_offset_total(bootstrap, layout)
    return result


async def end_offset_total(bootstrap: str, layout: Layout) -> int:
    """The sum of the layout topic's end offsets (records plus one commit marker per transaction
    and partition)."""
    connection = KafkaConnection(bootstrap, namespace=layout.namespace)
    consumer = AIOKafkaConsumer(**connection.options(), enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        topic = connection.name(SNAPSHOTS)
        parts = [TopicPartition(topic, p) for p in range(layout.partitions)]
        return int(sum((await consumer.end_offsets(parts)).values()))
    finally:
        await consumer.stop()


async def create_topics(bootstrap: str, layouts: list[Layout]) -> None:
    """The worker's ``_snapshots`` spec, with each layout's partition count."""
    spec = next(s for s in state_topics() if s.name == SNAPSHOTS)
    for layout in layouts:
        await ensure_topics(KafkaConnection(bootstrap, namespace=layout.namespace),
                            [replace(spec, partitions=layout.partitions)])
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await probe.start()
    try:  # until the metadata shows the new topics (else the producer warns while it waits)
        for layout in layouts:
            await topic_partitions(probe, KafkaConnection(bootstrap, namespace=layout.namespace).name(SNAPSHOTS))
    finally:
        await probe.stop()


async def delete_topics(bootstrap: str, layouts: list[Layout]) -> None:
    """Remove the bench's topics (they hold millions of records)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([KafkaConnection(bootstrap, namespace=x.namespace).name(SNAPSHOTS)
                                   for x in layouts])
    finally:
        await admin.close()


# -- restoring --------------------------------------------------------------------------------------


@dataclass
class Restore:
    """One measured restore (the child's JSON plus what it stands for)."""

    label: str
    layout: str
    tenants: list[str]
    seconds: float
    kept: int
    read: int
    rss_before_mb: float
    rss_after_mb: float
    peak_rss_mb: float
    repeats: list[float] = field(default_factory=list)  # wall seconds of every repeat

    @property
    def rss_mb(self) -> float:
        return self.rss_after_mb - self.rss_before_mb

    @property
    def seconds_per_million(self) -> float:
        return self.seconds / self.kept * 1e6 if self.kept else 0.0

    @property
    def mb_per_million(self) -> float:
        return self.rss_mb / self.kept * 1e6 if self.kept else 0.0

    @property
    def peak_mb_per_million(self) -> float:
        return (self.peak_rss_mb - self.rss_before_mb) / self.kept * 1e6 if self.kept else 0.0

    @property
    def read_per_kept(self) -> float:
        return self.read / self.kept if self.kept else 0.0

    @property
    def us_per_read(self) -> float:
        return self.seconds / self.read * 1e6 if self.read else 0.0

    def summary(self) -> dict[str, Any]:
        return asdict(self) | {"rss_mb": self.rss_mb, "seconds_per_million_kept": self.seconds_per_million,
                               "mb_per_million_kept": self.mb_per_million,
                               "peak_mb_per_million_kept": self.peak_mb_per_million,
                               "read_per_kept": self.read_per_kept, "us_per_record_read": self.us_per_read}


def run_child(bootstrap: str, layout: Layout, tenants: list[str], out: Path,
              ledger: str | None = None) -> dict[str, Any]:
    """One restore in a fresh process (of the ledger view, ``acquire`` or ``restore``, if ``ledger``)."""
    what = ["--ledger", ledger] if ledger else ["--kinds", ",".join(KINDS)]
    cmd = [sys.executable, "-m", "bench.state_restore_child", "--bootstrap", bootstrap, "--namespace",
           layout.namespace, "--tenants", ",".join(tenants), *what, "--out", str(out)]
    subprocess.run(cmd, check=True, cwd=ROOT)
    data: dict[str, Any] = json.loads(out.read_text())
    return data


@dataclass(frozen=True)
class Case:
    """One restore to measure: a label, a layout and the tenants whose stores restore."""

    label: str
    layout: Layout
    tenants: list[str]
    ledger: str | None = None  # the ledger view's "acquire" or "restore" instead of snapshot stores


def measure(bootstrap: str, cases: list[Case], repeats: int, workdir: Path) -> list[Restore]:
    """``repeats`` rounds of every case, interleaved (a change in the machine's load then touches
    every case alike); per case the run of median wall time stands for them all."""
    runs: dict[str, list[dict[str, Any]]] = {c.label: [] for c in cases}
    with Progress(TextColumn("[bold]restoring[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("", total=repeats * len(cases))
        for i in range(repeats):
            for case in cases:
                progress.update(task, description=f"round {i + 1}/{repeats}: {case.label}")
                out = workdir / f"restore-{i}-{len(runs[case.label])}-{uuid.uuid4().hex[:6]}.json"
                runs[case.label].append(run_child(bootstrap, case.layout, case.tenants, out, case.ledger))
                progress.advance(task)
    results = []
    for case in cases:
        done = sorted(runs[case.label], key=lambda r: float(r["seconds"]))
        mid = done[(len(done) - 1) // 2]
        result = Restore(case.label, case.layout.name, case.tenants, mid["seconds"], mid["kept"], mid["read"],
                         mid["rss_before_mb"], mid["rss_after_mb"], mid["peak_rss_mb"],
                         [float(r["seconds"]) for r in runs[case.label]])
        console.print(f"  {case.label}: kept {result.kept:,}, read {result.read:,} in {result.seconds:.2f} s "
                      f"(runs {', '.join(f'{s:.2f}' for s in result.repeats)}); RSS {result.rss_before_mb:.0f} -> "
                      f"{result.rss_after_mb:.0f} MB (peak {result.peak_rss_mb:.0f}); "
                      f"{result.seconds_per_million:.2f} s and {result.mb_per_million:.0f} MB per M kept")
        results.append(result)
    return results


# -- the cost model and the extrapolation -----------------------------------------------------------


@dataclass(frozen=True)
class CostModel:
    """Restore time = ``fixed_s`` + kept x ``kept_us`` + skipped x ``skip_us``; RSS = ``fixed_mb`` +
    kept x ``kept_bytes``. The fixed part (consumer start, metadata, end offsets) is per store."""

    fixed_s: float
    fixed_mb: float
    kept_us: float
    skip_us: float
    kept_bytes: float

    @classmethod
    def fit(cls, empty: Restore, a: Restore, b: Restore) -> CostModel:
        """From an empty tenant's restore and the same tenant's under A and under B (same records kept,
        more skipped in B)."""
        skip_a, skip_b = a.read - a.kept, b.read - b.kept
        skip_us = (b.seconds - a.seconds) / (skip_b - skip_a) * 1e6 if skip_b != skip_a else 0.0
        kept_us = ((a.seconds - empty.seconds) * 1e6 - skip_a * skip_us) / a.kept
        return cls(empty.seconds, empty.rss_mb, kept_us, skip_us, (a.rss_mb - empty.rss_mb) * 2**20 / a.kept)

    def seconds(self, kept: float, read: float, stores: int = 1) -> float:
        return stores * self.fixed_s + (kept * self.kept_us + (read - kept) * self.skip_us) / 1e6


@dataclass(frozen=True)
class HostRow:
    """One replica of a host of districts, under both layouts (an extrapolation)."""

    what: str
    districts: float
    kept: float
    read_a: float
    read_b: float
    seconds_a: float
    seconds_b: float
    rss_gb: float


def host_rows(model: CostModel, districts: int, records: int, partitions: int) -> list[HostRow]:
    """Expected restores per replica for ``districts`` tenants of ``records`` each on ``partitions``.

    Under A a tenant's store reads its partition: its own records plus, on average, (districts - 1)
    / partitions other tenants'; co-owned tenants each read their shared partition again (one
    store per tenant). Under B every store reads every record. Replicas restore their stores
    concurrently on one event loop, so their times add up."""
    per_partition = 1 + (districts - 1) / partitions  # tenants on a tenant's partition, itself included
    rows: list[HostRow] = []
    for replicas in (partitions, 4, 1):
        owned = districts / replicas
        kept = owned * records
        read_a = owned * per_partition * records
        read_b = owned * districts * records
        what = ("one partition (24 replicas)" if replicas == partitions else
                f"{partitions // replicas} partitions ({replicas} replicas)" if replicas > 1 else
                "everything (1 replica)")
        stores = round(owned)
        rows.append(HostRow(what, owned, kept, read_a, read_b, model.seconds(kept, read_a, stores),
                            model.seconds(kept, read_b, stores), kept * model.kept_bytes / 2**30))
    return rows


def occupancy(districts: int, partitions: int) -> Counter[int]:
    """Tenants per partition for ``district-000``.. names: how unevenly crc32 spreads them."""
    return Counter(tenant_partition(f"district-{i:03d}", partitions) for i in range(districts))


# -- the report -------------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:,.1f} min"
    return f"{seconds / 3600:,.1f} h"


def _millions(n: float) -> str:
    return f"{n / 1e6:,.1f} M" if n < 1e9 else f"{n / 1e9:,.2f} G"


def write_report(data: dict[str, Any], restores: list[Restore], model: CostModel, out_dir: Path,
                 ledger: LedgerPart, load: LoadSummary) -> Path:
    """Markdown, JSON and PNG into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    by = {r.label: r for r in restores}
    a, b = by["A: one tenant"], by["B: one tenant"]
    a_all = by["A: all tenants"]
    rows_host = host_rows(model, HOST_DISTRICTS, HOST_RECORDS, data["partitions"])
    occ = occupancy(HOST_DISTRICTS, data["partitions"])
    sizes = sorted(occ.values())
    one = rows_host[0]
    host_one_a = model.seconds(HOST_RECORDS, HOST_RECORDS * (1 + (HOST_DISTRICTS - 1) / data["partitions"]))
    host_one_b = model.seconds(HOST_RECORDS, HOST_RECORDS * HOST_DISTRICTS)
    write = data["write"]
    round_ratios = [tb / ta for ta, tb in zip(a.repeats, b.repeats, strict=True)]
    data["b_over_a_wall_by_round"] = round_ratios
    layout_rows = [[t, str(p), str(data["tenants_per_partition"][str(p)])] for t, p in data["partition_of"].items()]
    lines = [
        "# State restore: one tenant's snapshots and ledger from tenant-partitioned topics",
        "",
        f"Produced by `python -m bench.state_restore{' --quick' if data['quick'] else ''}` "
        f"({data['tenants']} tenants x {data['records']:,} snapshot records and {ledger.entries:,} ledger "
        f"entries each; ran in {data['wall_seconds']:.0f} s wall, of which writing {write['seconds']:.0f} s and "
        f"{ledger.write.seconds:.0f} s). Each snapshot restore is "
        "`SnapshotStore(kafka, tenant, kinds=<the seven Illuminate kinds>).restore()` in a fresh process "
        "(the ledger's `LedgerView.acquire` and `restore()`: the Ledger section); "
        + (f"median by wall time of {data['repeats']} interleaved rounds." if data["repeats"] > 1 else "one run each."),
        "",
        "- **A (today)**: `edusync._snapshots` as `state_topics()` creates it (24 partitions, compacted), "
        "every tenant on `tenant_partition(tenant, 24)`; a store reads its tenant's partition only.",
        "- **B (before)**: the same records in a 1-partition `edusync._snapshots`; the tenant's partition "
        "is the whole topic, so the store reads every tenant's records and keeps its own by key prefix.",
        "",
        f"Records: key `<tenant>/<kind>/<natural key>`, value `stored_value(hash)` (one in 500 pending), "
        f"{write['bytes_per_record']:.0f} bytes of key + value on average; kinds in an Illuminate district's "
        f"proportions ({', '.join(f'{k} {n:,}' for k, n in kind_counts(data['records']).items())} per tenant). "
        f"Written by one transactional producer (batches handed to `send_batch`, about five times faster "
        f"than `Transaction.send` per record) in {write['transactions']} transactions of up to "
        f"{data['txn_records']:,} records per layout (both layouts in the same transactions), "
        f"{write['records_per_layout'] * 2 / write['seconds']:,.0f} records/s.",
        "",
        "## Results",
        "",
        md_table(["restore", "tenants", "kept", "read from Kafka", "read / kept", "wall s", "s per M kept",
                  "µs per record read", "RSS before -> after (peak during) MB", "MB RSS per M kept"],
                 [[r.label, str(len(r.tenants)), f"{r.kept:,}", f"{r.read:,}", f"{r.read_per_kept:.2f}",
                   f"{r.seconds:.2f}", f"{r.seconds_per_million:.2f}", f"{r.us_per_read:.2f}",
                   f"{r.rss_before_mb:.0f} -> {r.rss_after_mb:.0f} ({r.peak_rss_mb:.0f})",
                   f"{r.mb_per_million:.0f}"] for r in restores], "llrrrrrrrr"),
        "",
        "B / A for the same tenant (same records kept):",
        "",
        md_table(["measure", "A (today)", "B (before)", "B / A"], [
            ["records read", f"{a.read:,}", f"{b.read:,}", f"{b.read / a.read:.1f}x"],
            ["records read per record kept", f"{a.read_per_kept:.2f}", f"{b.read_per_kept:.2f}",
             f"{b.read_per_kept / a.read_per_kept:.1f}x"],
            ["wall seconds", f"{a.seconds:.2f}", f"{b.seconds:.2f}", f"{b.seconds / a.seconds:.1f}x"],
            ["wall seconds, B / A within each round: median (range)", "", "",
             f"{statistics.median(round_ratios):.1f}x ({min(round_ratios):.1f}-{max(round_ratios):.1f})"],
            ["seconds per M kept", f"{a.seconds_per_million:.2f}", f"{b.seconds_per_million:.2f}",
             f"{b.seconds_per_million / a.seconds_per_million:.1f}x"],
            ["MB RSS per M kept (after restore)", f"{a.mb_per_million:.0f}", f"{b.mb_per_million:.0f}",
             f"{b.mb_per_million / a.mb_per_million:.2f}x"],
            ["MB peak RSS per M kept", f"{a.peak_mb_per_million:.0f}", f"{b.peak_mb_per_million:.0f}",
             f"{b.peak_mb_per_million / a.peak_mb_per_million:.2f}x"],
        ], "lrrr"),
        "",
        f"All tenants in one process under A ({len(a_all.tenants)} stores restoring concurrently): "
        f"{a_all.seconds_per_million:.2f} s and {a_all.mb_per_million:.0f} MB RSS per M kept against "
        f"{a.seconds_per_million:.2f} s and {a.mb_per_million:.0f} MB for one tenant, "
        + ("so the per-record cost does not grow with the number of tenants held"
           if a_all.seconds_per_million / a.seconds_per_million < 1.2 else
           f"{a_all.seconds_per_million / a.seconds_per_million:.2f}x the single tenant's per record kept")
        + f", though it reads {a_all.read_per_kept:.2f} records per record kept (tenants sharing a partition "
        f"each read all of it; {a_all.us_per_read:.2f} µs per record read against {a.us_per_read:.2f})"
        + (". Its memory per record is a little lower: the store's fixed part is spread over more records."
           if a_all.mb_per_million < a.mb_per_million else "."),
        "",
        "![seconds and MB per million kept, records read per kept](state_restore.png)",
        "",
        "## Cost model",
        "",
        f"From an empty tenant's restore (the fixed cost of a store: {model.fixed_s:.2f} s and "
        f"{model.fixed_mb:.0f} MB, consumer start, metadata, end offsets) and the same tenant under A and B: "
        f"**{model.kept_us:.2f} µs per kept record** (fetch, decode, "
        f"parse the JSON value, fill the section) and **{model.skip_us:.2f} µs per skipped record** (fetch, "
        f"decode into a `ConsumerRecord`, the prefix test); **{model.kept_bytes:.0f} bytes of RSS per kept "
        f"record**; skipped records cost no lasting memory. (The earlier probe of the filter-by-prefix "
        f"store: {EARLIER_PROBE}.)",
        "",
        load.sentence() + (" So absolute times may be high and vary between repeats " if load.shared else
                           " Repeats varied ")
        + f"({', '.join(f'{r.label} {min(r.repeats):.2f}-{max(r.repeats):.2f} s' for r in restores)}); "
        "the ratios between layouts, measured back to back, are the firmer result. "
        "Check against the restores the model was not fitted on: "
        + "; ".join(f"{r.label}: predicted {model.seconds(r.kept, r.read, len(r.tenants)):.2f} s, "
                    f"measured {r.seconds:.2f} s"
                    for r in restores if r is not a and r is not b) + ".",
        "",
        "## What this means (an extrapolation)",
        "",
        f"A host of {HOST_DISTRICTS} districts with {HOST_RECORDS:,} snapshot records each, on "
        f"{data['partitions']} partitions, extrapolated linearly from the per-record costs above (not "
        "measured at that size; one core per replica, a broker as fast as this local one, and RSS for the "
        f"records only, not the interpreter's {a.rss_before_mb:.0f} MB):",
        "",
        f"- **One district's store** under A reads its partition: its own million plus on average "
        f"{(HOST_DISTRICTS - 1) / data['partitions']:.1f} other districts' (a partition holds "
        f"{HOST_DISTRICTS / data['partitions']:.1f} districts on average; with names district-000..099 crc32 "
        f"puts {sizes[0]} to {sizes[-1]} on a partition), about "
        f"{_millions(HOST_RECORDS * (1 + (HOST_DISTRICTS - 1) / data['partitions']))} records in "
        f"{_duration(host_one_a)} ({_duration(model.seconds(HOST_RECORDS, HOST_RECORDS * sizes[-1]))} on the "
        f"partition of {sizes[-1]}). Under B the store read all {_millions(HOST_RECORDS * HOST_DISTRICTS)} "
        f"in {_duration(host_one_b)}, {host_one_b / host_one_a:.0f}x as long. Both keep the same million "
        f"records, about {HOST_RECORDS * model.kept_bytes / 2**20:,.0f} MB of RSS.",
        "",
        md_table(["a replica owning", "districts", "records kept", "read under A", "restore under A",
                  "read under B", "restore under B", "RSS of the records"],
                 [[r.what, f"{r.districts:.1f}", _millions(r.kept), _millions(r.read_a), _duration(r.seconds_a),
                   _millions(r.read_b), _duration(r.seconds_b), f"{r.rss_gb:.1f} GB"] for r in rows_host],
                 "lrrrrrrr"),
        "",
        f"So partitioning by tenant turns the restore of a replica with one partition ({one.districts:.1f} "
        f"districts) from {_duration(one.seconds_b)} into {_duration(one.seconds_a)}; memory is unchanged "
        "because it was always only the kept records. What A still reads more than once: each tenant's store "
        "reads its whole partition, so districts sharing a partition re-read each other's records "
        f"({1 + (HOST_DISTRICTS - 1) / data['partitions']:.1f} records read per kept at this host, the "
        "'read under A' column), where one read per partition shared by its tenants' stores would read "
        "each record once. A single replica of everything needs "
        f"{rows_host[-1].rss_gb:.0f} GB for the records alone under either layout.",
        "",
        *ledger_lines(ledger, data["partitions"]),
        "## Layout of the bench's tenants under A",
        "",
        md_table(["tenant", "partition (of 24)", "tenants on it"], layout_rows, "lrr"),
        "",
        f"One tenant: {a.tenants[0]} (alone on its partition)" + (
            f"; shared: {by['A: one tenant, shared partition'].tenants[0]}" if "A: one tenant, shared partition" in by
            else "") + ".",
        "",
        "## Machine",
        "",
        md_table(["", ""], [[k, v] for k, v in data["machine"].items()] + [[
            "load average (1, 5, 15 min) at start / end",
            " / ".join(", ".join(f"{x:.1f}" for x in data["load_average"][k]) for k in ("start", "end"))], [
            "cores busy with other work: mean (peak)",
            f"{load.mean_other_cores:.2f} ({load.peak_other_cores:.2f}) of {load.cores}"
            + (" (shared)" if load.shared else "")]]),
        "",
    ]
    path = out_dir / "state_restore.md"
    path.write_text("\n".join(lines))
    payload = data | {"restores": [r.summary() for r in restores], "model": asdict(model),
                      "host": {"districts": HOST_DISTRICTS, "records": HOST_RECORDS, "extrapolated": True,
                               "replicas": [asdict(r) for r in rows_host],
                               "one_store_seconds": {"A": host_one_a, "B": host_one_b},
                               "tenants_per_partition_for_district_names": sizes},
                      "ledger": ledger.summary(), "other_load": load.as_dict()}
    (out_dir / "state_restore.json").write_text(json.dumps(payload, indent=1))
    _plot(restores, ledger.restores, out_dir / "state_restore.png")
    return path


def _plot(restores: list[Restore], ledger: list[Restore], path: Path) -> None:
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("SnapshotStore restore: A = tenant-partitioned (today), B = one partition (before)", restores)]
    if ledger:
        rows.append(("LedgerView: A = acquire(tenants) of the tenant-keyed topic (today), "
                     "B = restore() of the whole topic (before)", ledger))
    fig = plt.figure(figsize=(14, 4.8 * len(rows)), layout="constrained")
    for sub, (title, part) in zip(fig.subfigures(len(rows), 1, squeeze=False)[:, 0], rows, strict=True):
        labels = [textwrap.fill(r.label.removeprefix("ledger "), 16) for r in part]
        colors = ["#4c72b0" if r.layout == "A" else "#dd8452" for r in part]
        panels = [("seconds per million kept", [r.seconds_per_million for r in part], "{:.2f}"),
                  ("MB RSS per million kept", [r.mb_per_million for r in part], "{:.0f}"),
                  ("records read per record kept", [r.read_per_kept for r in part], "{:.1f}")]
        if part is ledger:  # the view keeps all it reads: what differs is how much, so show that
            panels = [("wall seconds", [r.seconds for r in part], "{:.2f}"),
                      ("MB RSS held after", [r.rss_mb for r in part], "{:.0f}"), panels[0]]
        for ax, (name, values, fmt) in zip(sub.subplots(1, 3), panels, strict=True):
            bars = ax.bar(range(len(values)), values, color=colors)
            ax.set_xticks(range(len(values)), labels, fontsize=8)
            ax.set_title(name, fontsize=10)
            for bar, v in zip(bars, values, strict=True):
                ax.annotate(fmt.format(v), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=8)
            ax.margins(y=0.15)
        sub.suptitle(title, fontsize=11, weight="bold")
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the ledger -------------------------------------------------------------------------------------


@dataclass
class LedgerPart:
    """The ledger's write and its measured restores."""

    tenants: list[str]
    entries: int
    txn_entries: int
    partitions: int
    write: LedgerWrite
    empty: Restore  # acquire of a tenant on a partition with no entries: the fixed cost
    restores: list[Restore]

    def by(self, prefix: str) -> Restore:
        return next(r for r in self.restores if r.label.startswith(prefix))

    def expected(self, r: Restore) -> int:
        """Entries the view should hold: every tenant's after a restore, else those of every tenant on
        the acquired partitions (a view holds whole partitions, neighbours included)."""
        if r.label.startswith(LEDGER_B):
            return self.entries * len(self.tenants)
        held = {tenant_partition(t, self.partitions) for t in r.tenants}
        return self.entries * sum(tenant_partition(t, self.partitions) in held for t in self.tenants)

    def summary(self) -> dict[str, Any]:
        return {"tenants": len(self.tenants), "entries_per_tenant": self.entries, "txn_entries": self.txn_entries,
                "write": asdict(self.write), "empty_acquire": self.empty.summary(),
                "restores": [r.summary() for r in self.restores],
                "entries_by_kind_per_tenant": dict(entry_shares(self.entries)),
                "kept_as_expected": all(r.kept == self.expected(r) for r in self.restores)}


LEDGER_A_EMPTY = "ledger A: acquire a tenant with no entries"
LEDGER_A_ONE = "ledger A: acquire one tenant"
LEDGER_A_SHARED = "ledger A: acquire one tenant, shared partition"
LEDGER_B = "ledger B: restore() of the whole topic"
LEDGER_A_ALL = "ledger A: acquire all tenants"


def run_ledger(bootstrap: str, args: argparse.Namespace, run_id: str, tenants: list[str], alone: str,
               shared: str | None, nobody: str, workdir: Path) -> LedgerPart:
    """Write the ledger topic, measure acquire and restore in fresh processes, delete the topic."""
    namespace = f"bench-sr-{run_id}-l"
    partitions = anyio.run(create_ledger_topic, bootstrap, namespace)
    today, before = Layout("A", namespace, partitions), Layout("B", namespace, partitions)
    try:
        with Progress(TextColumn("[bold]writing[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task(f"{len(tenants)} x {args.ledger_entries:,} ledger entries",
                                     total=len(tenants) * args.ledger_entries)
            write = run_write(bootstrap, namespace, run_id, tenants, args.ledger_entries, args.ledger_txn_entries,
                              lambda n: progress.advance(task, n))
        console.print(f"  wrote {write.entries:,} ledger entries in {write.seconds:.1f} s "
                      f"({write.transactions} transactions); end offsets {write.end_offsets:,}")
        cases = [Case(LEDGER_A_EMPTY, today, [nobody], "acquire"), Case(LEDGER_A_ONE, today, [alone], "acquire")]
        if shared is not None:
            cases.append(Case(LEDGER_A_SHARED, today, [shared], "acquire"))
        cases += [Case(LEDGER_B, before, [alone], "restore"), Case(LEDGER_A_ALL, today, tenants, "acquire")]
        empty, *restores = measure(bootstrap, cases, args.repeats, workdir)
    finally:
        anyio.run(delete_ledger_topic, bootstrap, namespace)
    part = LedgerPart(tenants, args.ledger_entries, args.ledger_txn_entries, partitions, write, empty, restores)
    for r in restores:
        if r.kept != part.expected(r):
            console.print(f"[red]{r.label}: kept {r.kept:,}, expected {part.expected(r):,}[/]")
    return part


def ledger_lines(part: LedgerPart, partitions: int) -> list[str]:
    """The report's ledger section."""
    a, b, a_all = part.by(LEDGER_A_ONE), part.by(LEDGER_B), part.by(LEDGER_A_ALL)
    write = part.write
    shares = entry_shares(part.entries)
    rounds = [tb / ta for ta, tb in zip(a.repeats, b.repeats, strict=True)]
    n = len(part.tenants)
    spread = ", ".join(f"{r.label.removeprefix('ledger ')} {min(r.repeats):.2f}-{max(r.repeats):.2f} s"
                       for r in part.restores)
    return [
        "## Ledger: one tenant's handler entries from the tenant-keyed `edusync._ledger`",
        "",
        f"{n} tenants x {part.entries:,} handler ledger entries in the roster handlers' key shapes and "
        f"values ({', '.join(f'{k} {v:,}' for k, v in shares.most_common())} per tenant; keys "
        "`<handler>/<target>/<tenant>/...`, e.g. `roster_to_canvas/canvas/<tenant>/student_enrollment/"
        "<student>/<section>`), "
        f"{write.bytes_per_record:.0f} bytes of key + value on average, written by `Ledger.put` and "
        f"`Ledger.flush` in {write.transactions} transactions of a `TransactionalProducer` (up to "
        f"{part.txn_entries:,} entries each; orjson value, the writer header, the tenant's partition: the "
        f"records a handler commits), {write.entries / write.seconds:,.0f} entries/s. The topic is the one "
        f"`state_topics()` creates ({partitions} partitions, compacted); the tenants sit on the partitions "
        "of the layout table below. Each case runs in a fresh process:",
        "",
        "- **A (today)**: `LedgerView.acquire({tenant})` with the view's follower running, as a slot runner "
        "does at its start: reads the tenant's partition to its end, then returns once the follower has "
        "caught up (the follower consumer's start is in the time). The view holds whole partitions: a "
        "tenant sharing its partition brings its neighbour's entries along (the 'shared partition' row).",
        "- **B (before)**: `LedgerView.restore()`: reads the whole topic and keeps every tenant's entries, "
        "which every replica did at start-up whatever it owned.",
        "",
        md_table(["restore", "tenants", "kept", "read from Kafka", "read / kept", "wall s", "s per M kept",
                  "µs per record read", "RSS before -> after (peak during) MB", "MB RSS per M kept"],
                 [[r.label.removeprefix("ledger "), str(n if r is b else len(r.tenants)), f"{r.kept:,}",
                   f"{r.read:,}", f"{r.read_per_kept:.2f}", f"{r.seconds:.2f}", f"{r.seconds_per_million:.2f}",
                   f"{r.us_per_read:.2f}", f"{r.rss_before_mb:.0f} -> {r.rss_after_mb:.0f} ({r.peak_rss_mb:.0f})",
                   f"{r.mb_per_million:.0f}"] for r in part.restores], "llrrrrrrrr"),
        "",
        f"B / A for a replica owning one tenant ({a.tenants[0]}); B holds all {n} tenants' entries:",
        "",
        md_table(["measure", "A: acquire", "B: restore()", "B / A"], [
            ["records read", f"{a.read:,}", f"{b.read:,}", f"{b.read / a.read:.1f}x"],
            ["entries kept", f"{a.kept:,}", f"{b.kept:,}", f"{b.kept / a.kept:.1f}x"],
            ["wall seconds", f"{a.seconds:.2f}", f"{b.seconds:.2f}", f"{b.seconds / a.seconds:.1f}x"],
            ["wall seconds, B / A within each round: median (range)", "", "",
             f"{statistics.median(rounds):.1f}x ({min(rounds):.1f}-{max(rounds):.1f})"],
            ["MB RSS held after", f"{a.rss_mb:.0f}", f"{b.rss_mb:.0f}", f"{b.rss_mb / a.rss_mb:.1f}x"],
            ["seconds per M kept", f"{a.seconds_per_million:.2f}", f"{b.seconds_per_million:.2f}",
             f"{b.seconds_per_million / a.seconds_per_million:.2f}x"],
            ["MB RSS per M kept", f"{a.mb_per_million:.0f}", f"{b.mb_per_million:.0f}",
             f"{b.mb_per_million / a.mb_per_million:.2f}x"],
        ], "lrrr"),
        "",
        f"A replica owning every tenant (`acquire` of all {len(a_all.tenants)}) keeps what `restore()` keeps: "
        f"{a_all.kept:,} entries in {a_all.seconds:.2f} s against {b.seconds:.2f} s "
        f"({a_all.seconds / b.seconds:.2f}x), {a_all.rss_mb:.0f} MB against {b.rss_mb:.0f} MB. Per million "
        f"kept entries `restore()` costs about {b.seconds_per_million:.1f} s and {b.mb_per_million:.0f} MB "
        "(orjson values in a dict plus the parent index). An acquire has a fixed part, measured by "
        f"acquiring a tenant whose partition holds no entries: {part.empty.seconds:.2f} s and "
        f"{part.empty.rss_mb:.0f} MB (the follower consumer's start, metadata, last stable offsets, the "
        f"catch-up); without it the single tenant's acquire is {a.seconds - part.empty.seconds:.2f} s, "
        f"{max(a.seconds - part.empty.seconds, 0.0) / a.kept * 1e6:.1f} s per M kept. Repeats: "
        f"{spread}.",
        "",
    ]


# -- the run ----------------------------------------------------------------------------------------


def choose_tenants(tenants: list[str], partitions: int) -> tuple[str, str | None, dict[str, int], Counter[int]]:
    """A tenant alone on its partition (else the first), and one on the most crowded partition if
    any partition holds two or more."""
    part = {t: tenant_partition(t, partitions) for t in tenants}
    crowd = Counter(part.values())
    alone = next((t for t in tenants if crowd[part[t]] == 1), tenants[0])
    busiest, count = crowd.most_common(1)[0]
    shared = next(t for t in tenants if part[t] == busiest) if count > 1 else None
    return alone, shared, part, crowd


def empty_tenant(partition_of: dict[str, int], partitions: int) -> str:
    """A tenant name on a partition no bench tenant uses: its restore is the fixed cost of a store."""
    used = set(partition_of.values())
    names = (f"district-{i}" for i in range(100, 100 + 100 * partitions))
    return next(t for t in names if tenant_partition(t, partitions) not in used)


def run(bootstrap: str, args: argparse.Namespace, workdir: Path, started: float, load: OtherLoad) -> Path:
    """Write, restore, report: the snapshots, then the ledger."""
    run_id = uuid.uuid4().hex[:8]
    load_start = os.getloadavg()
    spec: TopicSpec = next(s for s in state_topics() if s.name == SNAPSHOTS)
    layout_a = Layout("A", f"bench-sr-{run_id}-a", spec.partitions)
    layout_b = Layout("B", f"bench-sr-{run_id}-b", 1)
    layouts = [layout_a, layout_b]
    tenants = tenant_names(args.tenants, spec.partitions)
    alone, shared, part, crowd = choose_tenants(tenants, layout_a.partitions)
    console.print(f"[bold]state restore[/]: {args.tenants} tenants x {args.records:,} records; A = "
                  f"{layout_a.partitions} partitions ({len(crowd)} used, up to {max(crowd.values())} tenants on one), "
                  f"B = 1 partition; broker {bootstrap}")
    anyio.run(create_topics, bootstrap, layouts)
    try:
        write = anyio.run(write_records, bootstrap, run_id, layouts, tenants, args.records, args.txn_records)
        console.print(f"  wrote {write.records_per_layout:,} records per layout in {write.seconds:.1f} s "
                      f"({write.transactions} transactions); end offsets {write.end_offsets}")
        cases = [Case("A: tenant with no records", layout_a, [empty_tenant(part, layout_a.partitions)]),
                 Case("A: one tenant", layout_a, [alone])]
        if shared is not None:
            cases.append(Case("A: one tenant, shared partition", layout_a, [shared]))
        cases += [Case("B: one tenant", layout_b, [alone]), Case("A: all tenants", layout_a, tenants)]
        empty, *restores = measure(bootstrap, cases, args.repeats, workdir)
    finally:
        anyio.run(delete_topics, bootstrap, layouts)
    ledger = run_ledger(bootstrap, args, run_id, tenants, alone, shared, empty_tenant(part, layout_a.partitions),
                        workdir)
    model = CostModel.fit(empty, restores[0], next(r for r in restores if r.layout == "B"))
    data: dict[str, Any] = {
        "quick": args.quick, "tenants": args.tenants, "records": args.records, "txn_records": args.txn_records,
        "repeats": args.repeats, "partitions": layout_a.partitions, "write": asdict(write),
        "partition_of": part, "tenants_per_partition": {str(p): n for p, n in sorted(crowd.items())},
        "machine": machine_info(args.kafka_label or f"local {KAFKA_VERSION}"),
        "wall_seconds": time.monotonic() - started, "empty_restore": empty.summary(),
        "load_average": {"start": load_start, "end": os.getloadavg()},
    }
    for r in restores:
        if r.kept != args.records * len(r.tenants):
            console.print(f"[red]{r.label}: kept {r.kept:,}, expected {args.records * len(r.tenants):,}[/]")
    data["kept_as_expected"] = all(r.kept == args.records * len(r.tenants) for r in restores)
    data["median_repeat_spread"] = statistics.median(
        (max(r.repeats) - min(r.repeats)) / r.seconds for r in restores) if args.repeats > 1 else 0.0
    summary = load.stop()
    console.print(f"  {summary.sentence()}")
    return write_report(data, restores, model, args.out_dir, ledger, summary)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments; start a broker unless one is given; run; report."""
    parser = argparse.ArgumentParser(prog="python -m bench.state_restore", description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
                        help="a running broker (default: start one under var/)")
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--records", type=int, default=300_000, help="snapshot records per tenant")
    parser.add_argument("--txn-records", type=int, default=250_000, help="records per transaction and layout")
    parser.add_argument("--repeats", type=int, default=5,
                        help="rounds of every restore, interleaved (the median is reported)")
    parser.add_argument("--ledger-entries", type=int, default=50_000, help="ledger entries per tenant")
    parser.add_argument("--ledger-txn-entries", type=int, default=50_000, help="ledger entries per transaction")
    parser.add_argument("--quick", action="store_true",
                        help="4 tenants x 20,000 records and 5,000 ledger entries, one repeat")
    parser.add_argument("--out-dir", type=Path, default=REPORTS_DIR)
    args = parser.parse_args(argv)
    if args.quick:
        args.tenants, args.records, args.repeats, args.ledger_entries = 4, 20_000, 1, 5_000
    args.kafka_label = f"given broker {args.bootstrap}" if args.bootstrap else None
    started = time.monotonic()
    load = OtherLoad().start()
    workdir = ROOT / "var" / f"bench-state-restore-{uuid.uuid4().hex[:8]}"
    workdir.mkdir(parents=True)
    broker: LocalKafka | None = None
    try:
        bootstrap = args.bootstrap
        if not bootstrap:
            broker = LocalKafka(data_dir=workdir / "kafka", port=free_port(), controller_port=free_port())
            with console.status("starting Kafka"):
                bootstrap = broker.up()
        path = run(bootstrap, args, workdir, started, load)
        console.print(f"report: {path} ({time.monotonic() - started:.0f} s)")
        return 0
    finally:
        if broker is not None:
            broker.down()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
