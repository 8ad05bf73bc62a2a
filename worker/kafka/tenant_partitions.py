"""Which partition a tenant lives on, for the topics partitioned by tenant.

The control topic's partitions stand for tenants (a replica owns the pollers of the tenants of
its assigned partitions), and the pollers' state topics put each tenant on one partition, so
an owner restores and follows only its own tenants. The mapping is computed from a topic's
actual partition count; it stays put as long as that count does.
"""

from __future__ import annotations

import zlib


def tenant_partition(tenant: str, partitions: int) -> int:
    """The partition of ``tenant`` on a topic of ``partitions`` partitions (stable across processes)."""
    if partitions < 1:
        raise ValueError("a topic has at least one partition")
    return zlib.crc32(tenant.encode()) % partitions


def tenant_of(key: str) -> str:
    """The tenant of a state key (``<tenant>/...``)."""
    return key.split("/", 1)[0]
