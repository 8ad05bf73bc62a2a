"""The ledger view's parent index: ``children`` lists the entries under one key without a scan,
and stays right through writes, forgets and rollbacks (the roster handlers' rename fan-out reads
a person's enrolments this way), rollbacks fall back to what the topic holds, and a view holds
only the tenants it acquires."""

from __future__ import annotations

import anyio
import pytest

from worker.kafka.producer import TransactionalProducer
from worker.kafka.tenant_partitions import tenant_partition
from worker.ledger import Ledger, LedgerView
from worker.topics import CONTROL_PARTITIONS, TopicSpec, ensure_topics


def _ledger() -> Ledger:
    # No restore, no broker: these are the view's local writes, which is what the index tracks.
    return Ledger(LedgerView("127.0.0.1:1"), "roster_to_class")


def test_children_lists_direct_entries_only() -> None:
    ledger = _ledger()
    ledger.put("person/s-1/enrollment/sec-1", {"class": 1})
    ledger.put("person/s-1/enrollment/sec-2", {"class": 2})
    ledger.put("person/s-1/enrollment/sec-2/extra", {"deeper": True})
    ledger.put("person/s-2/enrollment/sec-1", {"class": 1})
    assert ledger.children("person/s-1/enrollment") == {
        "person/s-1/enrollment/sec-1": {"class": 1},
        "person/s-1/enrollment/sec-2": {"class": 2},
    }
    # Another handler's entries under the same path are not ours.
    Ledger(ledger.view, "roster_to_canvas").put("person/s-1/enrollment/sec-9", {"class": 9})
    assert set(ledger.children("person/s-1/enrollment")) == {
        "person/s-1/enrollment/sec-1", "person/s-1/enrollment/sec-2"}


def test_forget_and_rollback_keep_the_index_right() -> None:
    ledger = _ledger()
    ledger.put("class/c-1/member/a", 1)
    # As ``flush`` then a committed transaction would leave it: nothing staged, nothing to undo.
    flushed, ledger._staged = ledger._staged, {}
    ledger.committed(flushed)
    ledger.put("class/c-1/member/b", 2)
    ledger.put("class/c-1/member/a", None)
    assert ledger.children("class/c-1/member") == {"class/c-1/member/b": 2}
    assert ledger.rollback() == 2
    assert ledger.children("class/c-1/member") == {"class/c-1/member/a": 1}
    assert ledger.children("class/c-2/member") == {}


@pytest.mark.anyio
async def test_a_key_written_again_during_a_commit_rolls_back_to_the_committed_value(
    kafka_bootstrap: str, unique: str,
) -> None:
    # The handler frame commits while its lanes keep writing. A key written again during that
    # commit, then caught in the next, failed, transaction, must fall back to what the topic holds
    # (bench/chaos: broker restarts fail commits), not to what it held before the first commit.
    topic = f"ledger-{unique}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(topic, partitions=1, compact=True)])
    ledger = Ledger(LedgerView(kafka_bootstrap, topic=topic), "roster_to_class")
    ledger.put("enrollment/s-1/sec-1", {"last": "Anderson"})
    async with TransactionalProducer(kafka_bootstrap, f"ledger-test-{unique}") as producer:
        async with producer.transaction() as txn:
            flushed = await ledger.flush(txn)
            ledger.put("enrollment/s-1/sec-1", {"last": "Thomas"})  # a lane, while the commit is in flight
        ledger.committed(flushed)
        with pytest.raises(RuntimeError):
            async with producer.transaction() as txn:
                await ledger.flush(txn)
                raise RuntimeError("the broker went away")
    assert ledger.rollback() == 1
    assert ledger.get("enrollment/s-1/sec-1") == {"last": "Anderson"}
    restored = LedgerView(kafka_bootstrap, topic=topic)
    await restored.restore(timeout=30)
    assert restored.get("roster_to_class/enrollment/s-1/sec-1") == {"last": "Anderson"}


@pytest.mark.anyio
async def test_a_view_holds_and_follows_only_the_partitions_of_the_tenants_it_acquires(
    kafka_bootstrap: str, unique: str,
) -> None:
    topic = f"ledger-owned-{unique}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(topic, partitions=CONTROL_PARTITIONS, compact=True)])
    # Two tenants on different partitions, as two slots would be.
    mine, other = (next(f"t{unique}{i}" for i in range(200)
                        if tenant_partition(f"t{unique}{i}", CONTROL_PARTITIONS) == slot) for slot in (3, 4))
    writer = Ledger(LedgerView(kafka_bootstrap, topic=topic), "roster_to_class")
    async with TransactionalProducer(kafka_bootstrap, f"ledger-owner-{unique}") as producer:
        for tenant in (mine, other):
            writer.put(f"class/{tenant}/class/1", {"ext": tenant})
        async with producer.transaction() as txn:
            writer.committed(await writer.flush(txn))

        view = LedgerView(kafka_bootstrap, topic=topic)
        async with anyio.create_task_group() as tg:
            tg.start_soon(view.follow)
            await view.acquire(frozenset({mine}))
            assert view.get(f"roster_to_class/class/{mine}/class/1") == {"ext": mine}
            assert view.get(f"roster_to_class/class/{other}/class/1") is None, "another slot's entries stay out"
            # Later commits reach the view for its partitions only.
            for tenant in (mine, other):
                writer.put(f"class/{tenant}/class/2", {"ext": tenant})
            async with producer.transaction() as txn:
                writer.committed(await writer.flush(txn))
            await view.catch_up(timeout=30)
            assert view.get(f"roster_to_class/class/{mine}/class/2") == {"ext": mine}
            assert view.get(f"roster_to_class/class/{other}/class/2") is None
            view.release(frozenset({mine}))
            assert len(view) == 0, "a released slot's entries are forgotten"
            await view.acquire(frozenset({other}))
            assert dict(view.items("")) == {f"roster_to_class/class/{other}/class/1": {"ext": other},
                                            f"roster_to_class/class/{other}/class/2": {"ext": other}}
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_commit_that_landed_although_it_failed_is_settled_from_the_topic(
    kafka_bootstrap: str, unique: str,
) -> None:
    # A broker restart can cut off a commit's answer after the commit landed: the frame is told it
    # failed and rolls its writes back, yet the topic holds them (bench/chaos: a MatrixLMS member
    # rolled back this way made the later drop a no-op, and the student stayed in the class). The
    # follower skips this process's own records, so only reading the topic again can tell.
    topic = f"ledger-doubt-{unique}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(topic, partitions=CONTROL_PARTITIONS, compact=True)])
    tenant = f"t{unique}"
    view = LedgerView(kafka_bootstrap, topic=topic)
    async with anyio.create_task_group() as tg:
        tg.start_soon(view.follow)
        await view.acquire(frozenset({tenant}))
        ledger = Ledger(view, "roster_to_matrixlms")
        async with TransactionalProducer(kafka_bootstrap, f"ledger-doubt-{unique}") as producer:
            ledger.put(f"matrix/{tenant}/member/s-1/sec-1", 584)
            ledger.put(f"matrix/{tenant}/member/s-2/sec-1", 585)
            async with producer.transaction() as txn:
                await ledger.flush(txn)
            # Told "failed" after all: the frame's except branch.
            assert ledger.rollback() == 2
            assert ledger.get(f"matrix/{tenant}/member/s-1/sec-1") is None
            # A transaction that really failed is settled too: to what the topic holds before it.
            ledger.put(f"matrix/{tenant}/member/s-3/sec-1", 586)
            with pytest.raises(RuntimeError):
                async with producer.transaction() as txn:
                    await ledger.flush(txn)
                    raise RuntimeError("the broker went away")
            ledger.rollback()
        # The handler's next runner acquires the slot's tenants: the view settles the doubtful keys.
        await view.acquire(frozenset({tenant}))
        assert ledger.get(f"matrix/{tenant}/member/s-1/sec-1") == 584
        assert ledger.get(f"matrix/{tenant}/member/s-2/sec-1") == 585
        assert ledger.get(f"matrix/{tenant}/member/s-3/sec-1") is None
        assert ledger.children(f"matrix/{tenant}/member/s-1") == {f"matrix/{tenant}/member/s-1/sec-1": 584}
        assert await view.settle() == 0, "nothing is left in doubt"
        tg.cancel_scope.cancel()
