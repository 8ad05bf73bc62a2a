"""One restore of ``bench.state_restore``, in a fresh process so its RSS is its own.

    python -m bench.state_restore_child --bootstrap B --namespace N --tenants t1[,t2...] --kinds k1,k2 --out F
    python -m bench.state_restore_child --bootstrap B --namespace N --tenants t1[,t2...] --ledger acquire --out F

Restores ``SnapshotStore(kafka, tenant, kinds)`` for every given tenant (concurrently, as a
replica starting its pollers would) from the ``edusync._snapshots`` topic of namespace ``N``, and
writes a JSON object: wall seconds, records kept, records read from Kafka (every committed
record the reader handed over, kept or not), RSS before and after (psutil) and the peak during
the restore (``VmHWM`` after resetting it through ``/proc/self/clear_refs``). Imports nothing
the restore does not need, so the baseline RSS is the worker's.

With ``--ledger acquire`` it is instead ``LedgerView.acquire(tenants)`` (with the view's follower
running, as in a worker: acquire returns once the follower has caught up), with ``--ledger
restore`` ``LedgerView.restore()`` of the whole ``edusync._ledger``; kept is then the view's
entries.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import psutil
from aiokafka import ConsumerRecord

import worker.ledger as ledger_module
import worker.pollers.snapshot_store as snapshot_store_module
from worker.kafka import reader
from worker.kafka.connection import KafkaConnection
from worker.ledger import LedgerView
from worker.logs import configure_logging
from worker.pollers.snapshot_store import SnapshotStore


class ReadCounter:
    """Counts the records ``committed_batches`` yields, whether the store keeps them or not."""

    def __init__(self) -> None:
        self.records = 0
        self.batches = 0

    def install(self, module: Any = snapshot_store_module) -> None:
        """Route the snapshot store's (or ``module``'s) reads through this counter (a per-batch
        ``len``, nothing per record)."""
        inner = reader.committed_batches

        async def counted(*args: Any, **kwargs: Any) -> AsyncIterator[list[ConsumerRecord[bytes, bytes]]]:
            async for records in inner(*args, **kwargs):
                self.records += len(records)
                self.batches += 1
                yield records

        module.committed_batches = counted


def reset_peak() -> bool:
    """Reset the kernel's high-water mark of this process's RSS (Linux ``clear_refs``), so the peak
    read afterwards is the restore's own, not the imports'; False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_mb(reset: bool) -> float:
    """The RSS high-water mark (since ``reset_peak``, else since the process started), in MiB."""
    if reset:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """This process's resident set size now, in MiB."""
    return float(psutil.Process().memory_info().rss) / 2**20


async def restore(bootstrap: str, namespace: str, tenants: list[str], kinds: list[str],
                  timeout: float) -> dict[str, Any]:
    """Restore one store per tenant; return what was measured."""
    configure_logging("warning")
    counter = ReadCounter()
    counter.install()
    kafka = KafkaConnection(bootstrap, namespace=namespace)
    stores = [SnapshotStore(kafka, tenant, kinds) for tenant in tenants]
    rss_before = rss_mb()
    reset = reset_peak()
    started = time.perf_counter()
    kept: dict[str, int] = {}

    async def one(store: SnapshotStore) -> None:
        kept[store.tenant] = await store.restore(timeout=timeout)

    async with anyio.create_task_group() as tg:
        for store in stores:
            tg.start_soon(one, store)
    seconds = time.perf_counter() - started
    rss_after = rss_mb()  # the stores are still referenced: this is what a running replica holds
    return {
        "namespace": namespace, "tenants": tenants, "seconds": seconds, "kept": sum(kept.values()),
        "kept_by_tenant": kept, "read": counter.records, "batches": counter.batches,
        "store_seconds": {s.tenant: s.restore_seconds for s in stores},
        "rss_before_mb": rss_before, "rss_after_mb": rss_after,
        "peak_rss_mb": peak_mb(reset), "peak_since_restore": reset,
        "held": sum(len(s) for s in stores),
    }


async def ledger(bootstrap: str, namespace: str, tenants: list[str], mode: str, timeout: float) -> dict[str, Any]:
    """``LedgerView.acquire(tenants)`` or ``LedgerView.restore()``; return what was measured."""
    configure_logging("warning")
    counter = ReadCounter()
    counter.install(ledger_module)
    view = LedgerView(KafkaConnection(bootstrap, namespace=namespace))
    rss_before = rss_mb()
    reset = reset_peak()
    started = time.perf_counter()
    if mode == "restore":
        await view.restore(timeout=timeout)
    else:
        async with anyio.create_task_group() as tg:
            tg.start_soon(view.follow)
            await view.acquire(frozenset(tenants), timeout=timeout)
            tg.cancel_scope.cancel()
    seconds = time.perf_counter() - started
    rss_after = rss_mb()  # the view is still referenced: this is what a running replica holds
    by_tenant: dict[str, int] = {}
    for key in view._data:
        tenant = ledger_module.ledger_tenant(key)
        by_tenant[tenant] = by_tenant.get(tenant, 0) + 1
    return {
        "namespace": namespace, "tenants": tenants, "mode": mode, "seconds": seconds, "kept": len(view),
        "kept_by_tenant": by_tenant, "read": counter.records, "batches": counter.batches,
        "rss_before_mb": rss_before, "rss_after_mb": rss_after,
        "peak_rss_mb": peak_mb(reset), "peak_since_restore": reset, "held": len(view),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, restore, write the JSON result."""
    parser = argparse.ArgumentParser(prog="python -m bench.state_restore_child", description=__doc__.split("\n")[0])
    for name in ("--bootstrap", "--namespace", "--tenants", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--kinds", default="", help="the snapshot kinds (without --ledger)")
    parser.add_argument("--ledger", choices=("acquire", "restore"), help="the ledger view instead of snapshots")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    tenants = args.tenants.split(",")
    if args.ledger:
        result = anyio.run(ledger, args.bootstrap, args.namespace, tenants, args.ledger, args.timeout)
    else:
        result = anyio.run(restore, args.bootstrap, args.namespace, tenants, args.kinds.split(","), args.timeout)
    Path(args.out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
