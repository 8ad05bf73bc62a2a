"""Names, partitions and layout on the real broker: namespaced names, the ownership assignment,
tenant-partitioned state, and the start-up check of replication settings."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.clients.rate_limit import TokenBucket
from worker.config import ConfigError, KafkaConfig, load_config
from worker.kafka.connection import KafkaConnection
from worker.kafka.producer import TransactionalProducer
from worker.kafka.tenant_partitions import tenant_partition
from worker.ownership import assign_slots, balanced_rendezvous
from worker.replica_share import ReplicaShare
from worker.state_store import StateStore
from worker.topics import CONTROL_PARTITIONS, CURSORS, TopicLayoutError, TopicSpec, ensure_topics, state_topics

pytestmark = pytest.mark.anyio


def test_namespace_renames_every_logical_name_and_the_default_changes_nothing() -> None:
    default, ns = KafkaConnection("h:1"), KafkaConnection("h:1", namespace="district9")
    assert default.name("edusync._cursors") == "edusync._cursors"
    assert ns.name("edusync._cursors") == "district9._cursors"
    assert ns.name("edusync.handler.standards_to_canvas.r1") == "district9.handler.standards_to_canvas.r1"
    assert ns.name("test42.standards_to_canvas") == "district9.test42.standards_to_canvas"


replica_ids = st.lists(st.text("abcdefghij0123456789-", min_size=1, max_size=8), min_size=1, max_size=9, unique=True)


@given(replica_ids, st.integers(1, 64))
def test_ownership_assigns_every_partition_once_and_evenly(replicas: list[str], partitions: int) -> None:
    out = balanced_rendezvous(range(partitions), replicas)
    owned = sorted(p for parts in out.values() for p in parts)
    assert owned == list(range(partitions))
    sizes = [len(parts) for parts in out.values()]
    assert max(sizes) - min(sizes) <= 1


@settings(max_examples=100)
@given(replica_ids, st.integers(1, 64))
def test_ownership_is_sticky_a_new_replica_takes_a_share_and_leaves_the_rest(replicas: list[str],
                                                                            partitions: int) -> None:
    before = balanced_rendezvous(range(partitions), replicas)
    after = balanced_rendezvous(range(partitions), [*replicas, "zz-new"])
    moved = sum(1 for r in replicas for p in before[r] if p not in after[r])
    # The newcomer's share moves, and at most as many again to even out the remainders (a
    # stateless assignment cannot do the minimum always; a reshuffle would move nearly all).
    assert moved <= 2 * len(after["zz-new"]) + len(replicas)
    assert balanced_rendezvous(range(partitions), list(reversed(replicas))) == before, "order does not matter"


def test_slots_with_tenants_are_spread_evenly_even_when_most_slots_are_empty() -> None:
    tenants = [f"d{i}" for i in range(1, 7)]  # bench/chaos' six districts
    replicas = ["r1", "r2", "r3"]
    occupied = {tenant_partition(t, CONTROL_PARTITIONS) for t in tenants}
    assert len(occupied) == 6
    out = assign_slots(range(CONTROL_PARTITIONS), replicas, tenants)
    assert sorted(p for ps in out.values() for p in ps) == list(range(CONTROL_PARTITIONS)), "each slot once"
    assert [len(set(out[r]) & occupied) for r in replicas] == [2, 2, 2]
    assert [len(out[r]) for r in replicas] == [8, 8, 8]
    # Sticky like the rendezvous it is built on: the same replicas give the same answer.
    assert assign_slots(range(CONTROL_PARTITIONS), list(reversed(replicas)), tenants) == out


def test_a_bucket_takes_its_share_of_the_account_budget() -> None:
    share = ReplicaShare()
    bucket = TokenBucket(5.0, 25.0, share=share)
    assert (bucket.rate, bucket.burst) == (5.0, 25.0)
    share.update(2)
    assert (bucket.rate, bucket.burst) == (2.5, 12.5)
    share.update(40)
    assert bucket.burst == 1.0, "never below one request"


def test_an_account_is_divided_among_the_replicas_that_own_its_tenants_only() -> None:
    share = ReplicaShare()
    slots = 24
    # Three tenants in three different slots; an AB partner shared by two of them, one by the third.
    a, b, c = (next(f"{p}{i}" for i in range(100) if tenant_partition(f"{p}{i}", slots) == slot)
               for p, slot in (("a", 1), ("b", 2), ("c", 3)))
    for tenant in (a, b):
        share.use("abconnect|shared", tenant)
    share.use("abconnect|own", c)
    shared = TokenBucket(5.0, 25.0, share=share.account("abconnect|shared"))
    own = TokenBucket(5.0, 25.0, share=share.account("abconnect|own"))
    unknown = TokenBucket(5.0, 25.0, share=share.account("abconnect|nobody"))
    share.update(3)  # no owners known yet: every live replica may spend every account
    assert (shared.rate, own.rate, unknown.rate) == (5 / 3, 5 / 3, 5 / 3)
    share.update(3, {"r1": [1, 2], "r2": [3], "r3": [0, 4]}, slots)
    assert (shared.rate, own.rate) == (5.0, 5.0), "each account is spent by one replica"
    assert unknown.rate == 5 / 3
    share.update(3, {"r1": [1], "r2": [2, 3], "r3": [0, 4]}, slots)
    assert (shared.rate, shared.burst, own.rate) == (2.5, 12.5, 5.0), "the shared partner is spent on two"
    share.update(1)
    assert shared.rate == 5.0


def test_a_bucket_refills_from_empty_after_a_reassignment() -> None:
    # The account may have moved here from a replica that just spent its burst; the upstream
    # still counts that, so the new owner must not start with a full bucket of its own.
    share = ReplicaShare()
    bucket = TokenBucket(5.0, 25.0, share=share.account("abconnect|p"))
    assert bucket.use() == 0.0, "a fresh bucket is full"
    share.update(2, {"r1": [0], "r2": [1]}, 24)
    bucket._refill()
    assert bucket.use() > 0.99, "emptied by the new assignment"


async def test_tenant_state_lives_on_its_tenants_partition_and_an_owner_restores_only_that(
    kafka_bootstrap: str, unique: str,
) -> None:
    kafka = KafkaConnection(kafka_bootstrap, namespace=f"st{unique}")
    await ensure_topics(kafka, state_topics())
    tenants = [f"t{unique}{i}" for i in range(8)]
    writer = StateStore(kafka, CURSORS)
    await writer.restore()
    async with TransactionalProducer(kafka, f"test.writer.{unique}") as producer, producer.transaction() as txn:
        for t in tenants:
            await writer.put(txn, f"{t}/poller", {"cursor": t})
    admin = AIOKafkaAdminClient(**kafka.options())
    await admin.start()
    try:
        described = await admin.describe_topics([kafka.name(CURSORS)])
    finally:
        await admin.close()
    count = len(described[0]["partitions"])
    one = StateStore(kafka, CURSORS, tenant=tenants[0])
    await one.restore()
    same_partition = [t for t in tenants if tenant_partition(t, count) == tenant_partition(tenants[0], count)]
    assert sorted(k.split("/")[0] for k, _ in one.items()) == sorted(same_partition)
    assert one.get(f"{tenants[0]}/poller") == {"cursor": tenants[0]}
    everything = StateStore(kafka, CURSORS)
    await everything.restore()
    assert len(everything) == len(tenants)


async def test_start_up_refuses_topics_whose_replication_differs_from_the_config(
    kafka_bootstrap: str, unique: str,
) -> None:
    kafka = KafkaConnection(kafka_bootstrap, namespace=f"rf{unique}")
    spec = TopicSpec("edusync.layout-check", partitions=1)
    admin = AIOKafkaAdminClient(**kafka.options())
    await admin.start()
    try:  # made by hand, with a stricter min ISR than the configuration's
        await admin.create_topics([NewTopic(kafka.name(spec.name), 1, 1, topic_configs={"min.insync.replicas": "2"})])
    finally:
        await admin.close()
    with pytest.raises(TopicLayoutError, match=r"layout-check: min.insync.replicas 2, configured 1"):
        await ensure_topics(kafka, [spec], replication=1, min_insync=1)
    with pytest.raises(TopicLayoutError, match="replication factor"):
        await ensure_topics(kafka, [spec], replication=2, min_insync=2)
    await anyio.lowlevel.checkpoint()


def test_kafka_security_and_replication_settings_are_validated_with_their_line(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "edusync.yaml"
    path.write_text("kafka:\n  bootstrap_servers: h:1\n  security:\n    protocol: SASL_SSL\n    username: u\n")
    with pytest.raises(ConfigError, match=r"edusync.yaml:3: kafka.security: .*needs sasl_mechanism, password"):
        load_config(path)
    path.write_text("kafka:\n  replication_factor: 1\n  min_insync_replicas: 2\n")
    with pytest.raises(ConfigError, match="min_insync_replicas 2 exceeds replication_factor 1"):
        load_config(path)
    assert KafkaConfig(replica_id="pod-7").connection().namespace == "edusync"
