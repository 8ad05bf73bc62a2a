"""The ledger part of ``bench.state_restore``: its entries are the roster handlers' shapes, the
records on the broker are what ``Ledger.flush`` writes, and the child's acquire and restore hold
what the report claims; ``OtherLoad`` tells other work from the bench's own."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from bench.other_load import LoadSummary, OtherLoad
from bench.state_restore_ledger import (
    create_ledger_topic,
    delete_ledger_topic,
    entry_shares,
    tenant_entries,
    write_ledger,
)
from worker.kafka.connection import KafkaConnection
from worker.kafka.reader import topic_partitions
from worker.kafka.tenant_partitions import tenant_partition
from worker.ledger import WRITER_HEADER, ledger_tenant
from worker.topics import LEDGER

ROOT = Path(__file__).resolve().parent.parent


def test_entries_are_distinct_keys_of_the_tenant_in_the_handlers_shapes() -> None:
    rows = list(tenant_entries("district-07", 5_000))
    assert len(rows) == 5_000
    assert len({(h, k) for h, k, _ in rows}) == 5_000
    assert {ledger_tenant(f"{h}/{k}") for h, k, _ in rows} == {"district-07"}
    prefixes = {h: k.split("/")[0] for h, k, _ in rows}
    assert prefixes == {"roster_to_canvas": "canvas", "roster_to_class": "class", "roster_to_matrixlms": "matrix"}
    shares = entry_shares(5_000)
    assert shares["canvas/student_enrollment"] > shares["canvas/user"] > shares["canvas/section"] > 0


@pytest.mark.anyio
async def test_written_records_are_what_ledger_flush_sends(kafka_bootstrap: str, unique: str) -> None:
    namespace = f"t-srl-{unique}"
    tenants = ["district-01", "district-02", "district-28"]
    partitions = await create_ledger_topic(kafka_bootstrap, namespace)
    try:
        write = await write_ledger(kafka_bootstrap, namespace, unique, tenants, 700, 300)
        assert (write.entries, write.transactions) == (2_100, 9)
        assert write.end_offsets == 2_100 + 9  # one commit marker per transaction (one partition each)
        kafka = KafkaConnection(kafka_bootstrap, namespace=namespace)
        consumer = AIOKafkaConsumer(**kafka.options(), isolation_level="read_committed", enable_auto_commit=False,
                                    group_id=None)
        await consumer.start()
        try:
            parts = await topic_partitions(consumer, kafka.name(LEDGER))
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            seen: dict[str, object] = {}
            while len(seen) < 2_100:
                for records in (await consumer.getmany(timeout_ms=2_000)).values():
                    for rec in records:
                        assert rec.key is not None and rec.value is not None
                        key = rec.key.decode()
                        assert rec.partition == tenant_partition(ledger_tenant(key), partitions)
                        assert dict(rec.headers)[WRITER_HEADER] == f"bench-{unique}".encode()
                        seen[key] = orjson.loads(rec.value)
        finally:
            await consumer.stop()
        expected = {f"{h}/{k}": v for t in tenants for h, k, v in tenant_entries(t, 700)}
        assert seen == expected

        def child(mode: str, who: list[str]) -> dict[str, int]:
            out = ROOT / "var" / f"srl-{unique}-{mode}.json"
            out.parent.mkdir(exist_ok=True)
            subprocess.run([sys.executable, "-m", "bench.state_restore_child", "--bootstrap", kafka_bootstrap,
                            "--namespace", namespace, "--tenants", ",".join(who), "--ledger", mode,
                            "--out", str(out)], check=True, cwd=ROOT)
            result = json.loads(out.read_text())
            out.unlink()
            return {"kept": result["kept"], "read": result["read"], **result["kept_by_tenant"]}

        # district-01 is alone on its partition among these tenants: its acquire holds its entries only.
        assert tenant_partition("district-01", partitions) not in {tenant_partition(t, partitions)
                                                                    for t in tenants[1:]}
        assert child("acquire", ["district-01"]) == {"kept": 700, "read": 700, "district-01": 700}
        assert child("restore", ["district-01"]) == {"kept": 2_100, "read": 2_100,
                                                     **{t: 700 for t in tenants}}
    finally:
        await delete_ledger_topic(kafka_bootstrap, namespace)


def test_other_load_counts_a_foreign_process_but_not_the_bench_itself() -> None:
    burn = [sys.executable, "-c", "import time\nwhile time.process_time() < 1.5: pass\n"]  # 1.5 CPU seconds
    own = OtherLoad(interval=0.5).start()
    subprocess.run(burn, check=True)  # a child of the sampling process: the bench's own work
    mine = own.stop()
    assert mine.mean_own_cores * mine.seconds >= 1.4
    # Sampled from another process, the same burn is foreign work.
    probe = ("import json, sys\nfrom bench.other_load import OtherLoad\nload = OtherLoad(interval=0.5).start()\n"
             "print('ready', flush=True)\nsys.stdin.read()\nprint(json.dumps(load.stop().as_dict()))\n")
    sampler = subprocess.Popen([sys.executable, "-c", probe], cwd=ROOT, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert sampler.stdout is not None and sampler.stdout.readline().strip() == "ready"
    subprocess.run(burn, check=True)
    out, _ = sampler.communicate("")
    seen = json.loads(out)
    assert seen["mean_other_cores"] * seen["seconds"] >= 1.4
    assert seen["mean_own_cores"] * seen["seconds"] < 0.5


def test_load_summary_says_shared_only_above_the_threshold() -> None:
    quiet = LoadSummary(10.0, 2, 0.1, 0.3, 1.0, 2.0)
    busy = LoadSummary(10.0, 2, 1.2, 1.9, 1.0, 2.0)
    assert not quiet.shared and quiet.sentence().startswith("No other load")
    assert busy.shared and busy.sentence().startswith("The machine was shared with other work")
    assert Counter(k for k in busy.as_dict()) >= Counter({"shared": 1, "mean_other_cores": 1})
