"""``edusync demo --bootstrap`` on a broker a real deployment uses: the demo works in its own Kafka
namespace, so it creates no topic and joins no consumer group of the deployment's, and it deletes
its own topics when it ends."""

from __future__ import annotations

import re
import subprocess
import sys

import anyio
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from deploy.local_kafka import free_port
from worker.demo import DEMO_NAMESPACE_PREFIX

pytestmark = [pytest.mark.anyio, pytest.mark.slow(40)]


async def _topics_and_groups(bootstrap: str) -> tuple[set[str], set[str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        groups = {g[0] for g in await admin.list_consumer_groups()}
        return set(await admin.list_topics()), groups
    finally:
        await admin.close()


async def test_demo_on_a_shared_broker_keeps_to_its_own_namespace(kafka_bootstrap: str) -> None:
    topics_before, groups_before = await _topics_and_groups(kafka_bootstrap)
    command = [sys.executable, "-m", "worker", "demo", "--bootstrap", kafka_bootstrap, "--duration", "4",
               "--documents", "2", "--standards-per-document", "5", "--students", "40", "--ops-port", str(free_port())]
    # The groups seen while the demo runs (an empty group without offsets vanishes once it ends).
    seen: set[str] = set()
    output = bytearray()
    with anyio.fail_after(280):  # a hang guard
        async with await anyio.open_process(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:

            async def read_output() -> None:
                assert proc.stdout is not None
                async for chunk in proc.stdout:
                    output.extend(chunk)

            async with anyio.create_task_group() as tg:
                tg.start_soon(read_output)
                while proc.returncode is None:
                    seen |= (await _topics_and_groups(kafka_bootstrap))[1]
                    with anyio.move_on_after(0.5):
                        await proc.wait()
    out = output.decode(errors="replace")
    assert proc.returncode == 0, out[-4000:]
    match = re.search(rf"Kafka namespace ({DEMO_NAMESPACE_PREFIX}-\d+):", out)
    assert match, out[-2000:]
    namespace = match.group(1)
    assert re.search(rf"deleted the demo's [1-9]\d* topics in namespace {namespace}", out), out[-2000:]

    topics_after, groups_after = await _topics_and_groups(kafka_bootstrap)
    new_groups = (seen | groups_after) - groups_before
    assert {g for g in new_groups if g.startswith(f"{namespace}.")}, "the demo's handlers should have joined groups"
    assert {g for g in new_groups if not g.startswith(f"{namespace}.")} == set()
    # Its own topics are gone again (Kafka's internal topics appear with the first group and transaction).
    assert {t for t in topics_after - topics_before if not t.startswith("__")} == set()
    assert {t for t in topics_after if t.startswith(f"{namespace}.")} == set()
