"""``edusync config check --connect``: reach Kafka and every tenant's upstreams with the file's credentials.

One line per check; each check runs within its own deadline so a silent host cannot stall the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio

from worker.config import WorkerConfig
from worker.credential_probes import probe
from worker.redaction import redact
from worker.runtime import wait_for_kafka
from worker.systems import SYSTEMS

KAFKA_PATIENCE_SECONDS = 10.0
PROBE_SECONDS = 30.0


@dataclass(frozen=True)
class Check:
    """One thing checked and how it went."""

    subject: str
    ok: bool
    detail: str

    def line(self) -> str:
        """``ok      <subject>: <detail>`` or ``failed  ...``."""
        return f"{'ok' if self.ok else 'failed':<7} {self.subject}: {self.detail}"


async def check_kafka(config: WorkerConfig) -> Check:
    """The broker answers with the configured TLS/SASL."""
    kafka = config.kafka
    subject = f"kafka {kafka.bootstrap_servers} ({kafka.security.protocol}, namespace {kafka.namespace})"
    try:
        await wait_for_kafka(kafka.connection(), min(kafka.broker_patience_seconds, KAFKA_PATIENCE_SECONDS))
    except Exception as exc:
        return Check(subject, False, _reason(exc))
    return Check(subject, True, "reachable, credentials accepted")


async def check_upstreams(config: WorkerConfig) -> list[Check]:
    """One probe per (tenant, configured system), all at once; results in configuration order."""
    jobs = [(tenant.id, system, settings) for tenant in config.tenants for system in SYSTEMS
            if (settings := getattr(tenant.systems, system.name, None)) is not None]
    results: list[Check | None] = [None] * len(jobs)

    async def one(i: int) -> None:
        tenant, system, settings = jobs[i]
        subject = f"tenant {tenant} {system.name} {getattr(settings, 'base_url', '')}".rstrip()
        try:
            with anyio.fail_after(PROBE_SECONDS):
                results[i] = Check(subject, True, await probe(system, settings))
        except TimeoutError:
            results[i] = Check(subject, False, f"no answer within {PROBE_SECONDS:.0f}s")
        except Exception as exc:  # any failure is a finding to print, not a crash
            results[i] = Check(subject, False, _reason(exc))

    async with anyio.create_task_group() as tg:
        for i in range(len(jobs)):
            tg.start_soon(one, i)
    return [r for r in results if r is not None]


async def connect_checks(config: WorkerConfig) -> list[Check]:
    """Kafka first, then every upstream."""
    return [await check_kafka(config), *await check_upstreams(config)]


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return str(redact(f"{type(exc).__name__}: {text}"))
