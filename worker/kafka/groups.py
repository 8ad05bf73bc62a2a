"""Consumer-group housekeeping the admin client lacks: deleting a group."""

from __future__ import annotations

import anyio
import structlog
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import DeleteGroupsRequest

from worker.kafka.connection import Kafka, connect

log = structlog.get_logger(__name__)
ATTEMPTS = 20


async def delete_group(kafka: Kafka, group: str) -> None:
    """Delete logical consumer group ``group`` (it must have no members). aiokafka's admin client
    has no call for it, so the DeleteGroups request goes to the group's coordinator directly."""
    connection = connect(kafka)
    physical = connection.name(group)
    admin = AIOKafkaAdminClient(**connection.options())
    await admin.start()
    try:
        for attempt in range(ATTEMPTS):
            node = await admin.find_coordinator(physical)
            response = await admin._send_request_to_node(node, DeleteGroupsRequest([physical]))
            errors = [code for _, code in response.results if code]
            if not errors:
                log.info("consumer group deleted", group=physical)
                return
            error = for_code(errors[0])
            # A member that just left may still count for a moment (NON_EMPTY_GROUP, coordinator moves).
            if attempt == ATTEMPTS - 1 or not (error.retriable or error.errno == 68):
                raise error(f"deleting consumer group {physical}")
            await anyio.sleep(0.5)
    finally:
        await admin.close()
