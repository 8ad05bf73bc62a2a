"""Tenant ownership through Kafka's group membership.

Every replica joins one consumer group on the control topic (``edusync._pollers``), whose
partitions are tenant slots (``tenant_partition``). The group's leader assigns the partitions
(``TenantAssignor``); a replica runs exactly the work of the slots it is assigned: the pollers of
their tenants and a runner per handler for them (worker/tenant_slots.py). On a revocation that
work finishes the transaction in hand and stops before the group moves on; the next owner's
transactional producers, with the same per-poller and per-slot ids, fence a zombie.
The leader also tells each member how many live replicas there are and who owns which slot,
which splits each account's rate budget among the owners of its tenants (``worker.replica_share``).
Nothing is ever consumed from the control topic: the membership is the point.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

import anyio
import anyio.abc
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata

from worker.components import Component
from worker.concurrency import task_group
from worker.config import WorkerConfig
from worker.health import Health, State
from worker.kafka.errors import BrokerUnavailableError, require_broker
from worker.kafka.tenant_partitions import tenant_partition
from worker.metrics import OWNERSHIP_REBALANCES, TENANTS_OWNED
from worker.replica_share import REPLICAS, ReplicaShare
from worker.shutdown import StopToken
from worker.topics import POLLER_CONTROL, poller_group

log = structlog.get_logger(__name__)

COMPONENT = "ownership"
Supervise = Callable[[Component, StopToken, Health, float], Awaitable[None]]
# The work of one owned slot: its tenants' pollers and its handler runners.
SlotComponents = Callable[[int, frozenset[str]], list[Component]]


def _rank(replica: str, partition: int) -> bytes:
    return hashlib.blake2b(f"{replica}/{partition}".encode(), digest_size=8).digest()


def balanced_rendezvous(partitions: Iterable[int], replicas: Iterable[str]) -> dict[str, list[int]]:
    """Each partition to the replica that ranks it highest (rendezvous hashing), then the overfull
    hand their weakest-ranked partitions to the next-best replica with room, until each holds
    P // N or one more. Sticky: a replica's ranks depend only on its own id, so a restarted
    replica gets its partitions back and a new one takes its share from the others."""
    members = sorted(set(replicas))
    out: dict[str, list[int]] = {m: [] for m in members}
    if not members:
        return out
    parts = sorted(partitions)
    order = {p: sorted(members, key=lambda m: _rank(m, p), reverse=True) for p in parts}
    for p in parts:
        out[order[p][0]].append(p)
    base, extra = divmod(len(parts), len(members))
    # The extra slots go to the replicas most partitions prefer.
    quota = {m: base + (1 if i < extra else 0)
             for i, m in enumerate(sorted(members, key=lambda m: (-len(out[m]), m)))}
    spill = []
    for m in members:
        held = sorted(out[m], key=lambda p: _rank(m, p))  # weakest first
        while len(held) > quota[m]:
            spill.append(held.pop(0))
        out[m] = held
    for p in sorted(spill):
        taker = next(m for m in order[p] if len(out[m]) < quota[m])
        out[taker].append(p)
    return {m: sorted(ps) for m, ps in out.items()}


def assign_slots(partitions: Iterable[int], replicas: Iterable[str], tenants: Iterable[str]) -> dict[str, list[int]]:
    """Slots to replicas: the slots holding tenants are balanced on their own, then the empty
    ones, so a few tenants on many slots still spread evenly (bench/chaos: 6 tenants on 24 slots
    left one of three replicas with 4% of the tenant-time when all slots were balanced as one)."""
    parts = sorted(partitions)
    occupied = {tenant_partition(t, len(parts)) for t in tenants} if parts else set()
    busy = balanced_rendezvous([p for p in parts if p in occupied], replicas)
    idle = balanced_rendezvous([p for p in parts if p not in occupied], replicas)
    return {m: sorted(busy.get(m, []) + idle.get(m, [])) for m in sorted(set(busy) | set(idle))}


class TenantAssignor:
    """The group's assignment strategy: balanced rendezvous over replica ids, and in the
    assignment's user data the live membership (replica count, duplicate replica ids, and whether
    the members run different tenant lists, which would leave some tenants without pollers)."""

    name = "edusync-tenants"
    version = 0

    def __init__(self, replica_id: str, tenants: Iterable[str],
                 on_assignment: Callable[[dict[str, object]], None]) -> None:
        self.replica_id = replica_id
        self.tenants = sorted(tenants)
        self.tenants_digest = hashlib.blake2b(",".join(self.tenants).encode(), digest_size=8).hexdigest()
        self._on_assignment = on_assignment

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        """What this member tells the leader: its topics, replica id and tenant list digest."""
        user_data = json.dumps({"replica": self.replica_id, "tenants": self.tenants_digest}).encode()
        return ConsumerProtocolMemberMetadata(self.version, sorted(topics), user_data)

    def assign(
        self, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata],
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        """Run by the leader: partitions by replica id; members sharing an id split its share."""
        by_replica: dict[str, list[str]] = defaultdict(list)
        digests = set()
        for member_id, meta in sorted(members.items()):
            about = _member_info(meta.user_data)
            by_replica[str(about.get("replica") or member_id)].append(member_id)
            digests.add(str(about.get("tenants")))
        topics = sorted({t for meta in members.values() for t in meta.subscription})
        shares: dict[str, dict[str, list[int]]] = defaultdict(dict)
        owners: dict[str, list[int]] = defaultdict(list)  # replica id -> slots (the one topic)
        slots = 0
        for topic in topics:
            partitions = cluster.partitions_for_topic(topic) or set()
            slots = max(slots, len(partitions))
            for replica, parts in assign_slots(partitions, by_replica, self.tenants).items():
                owners[replica].extend(parts)
                ids = by_replica[replica]
                for i, member_id in enumerate(ids):
                    shares[member_id][topic] = parts[i::len(ids)]
        info = {"members": len(members), "replicas": sorted(by_replica),
                "duplicates": sorted(r for r, ids in by_replica.items() if len(ids) > 1),
                "mismatched": len(digests) > 1, "owners": dict(owners), "slots": slots}
        user_data = json.dumps(info).encode()
        return {
            member_id: ConsumerProtocolMemberAssignment(
                self.version, sorted((t, sorted(p)) for t, p in shares[member_id].items()), user_data)
            for member_id in members
        }

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:
        """Every member: hand the leader's membership summary on."""
        self._on_assignment(_member_info(assignment.user_data))


def _member_info(user_data: bytes) -> dict[str, object]:
    try:
        info = json.loads(user_data or b"{}")
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


@dataclass
class _SlotRun:
    """The components of one owned slot, and how to stop them."""

    stop: StopToken = field(default_factory=StopToken)
    done: list[anyio.Event] = field(default_factory=list)
    scopes: list[anyio.CancelScope] = field(default_factory=list)  # one per component, past the grace period


class TenantOwnership(ConsumerRebalanceListener):  # type: ignore[misc]
    """A component that holds this replica's place in the ownership group and runs the work of
    the slots it is assigned, each component under the supervisor, until a stop request."""

    def __init__(self, config: WorkerConfig, slot_components: SlotComponents, supervise: Supervise,
                 *, share: ReplicaShare = REPLICAS) -> None:
        self.config = config
        self.kafka = config.kafka.connection()
        self.tenants = sorted(t.id for t in config.tenants)
        self._slot_components = slot_components
        self._supervise = supervise
        self._share = share
        self._runs: dict[int, _SlotRun] = {}
        self._tenants_of: dict[int, frozenset[str]] = {}
        self._group: anyio.abc.TaskGroup | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._health = Health()
        self._stop = StopToken()

    @property
    def owned(self) -> list[str]:
        """The tenants whose work runs here now."""
        return sorted(t for slot in self._runs for t in self._tenants_of.get(slot, ()))

    def component(self) -> Component:
        """The supervised component."""
        return Component(COMPONENT, self.run)

    async def run(self, stop: StopToken, health: Health) -> None:
        """Join the group, run the owned slots' work, leave the group on a stop request."""
        self._stop, self._health = stop, health
        kafka = self.config.kafka
        session_ms = int(kafka.session_timeout_seconds * 1000)
        consumer = self._consumer = AIOKafkaConsumer(
            **self.kafka.options(), group_id=self.kafka.name(poller_group(kafka.consumer_group_prefix)),
            client_id=f"edusync-ownership-{kafka.replica_id}", enable_auto_commit=False,
            session_timeout_ms=session_ms, heartbeat_interval_ms=max(1000, session_ms // 5),
            # The listener stops pollers, which may finish a commit first: give it time.
            rebalance_timeout_ms=max(60_000, int(self.config.runtime.shutdown_grace_seconds * 2000)),
            partition_assignment_strategy=(
                TenantAssignor(kafka.replica_id, self.tenants, self._membership),),
        )
        consumer.subscribe([self.kafka.name(POLLER_CONTROL)], listener=self)
        try:
            async with task_group() as tg:
                self._group = tg
                patience = max(30.0, kafka.broker_patience_seconds)
                try:
                    with anyio.fail_after(patience):
                        await consumer.start()
                except TimeoutError as exc:
                    raise BrokerUnavailableError(
                        f"Kafka broker {self.kafka.bootstrap} unreachable: ownership group not joined in "
                        f"{patience:.0f}s") from exc
                last_contact = time.monotonic()
                while not stop.stopping:
                    # Fetching keeps the membership alive (max.poll.interval); the topic stays empty.
                    with anyio.move_on_after(1.0):
                        await consumer.getmany(timeout_ms=500)
                    if time.monotonic() - last_contact > 10:
                        await require_broker(consumer, self.kafka.bootstrap, kafka.broker_patience_seconds)
                        last_contact = time.monotonic()
                # Stop the work before leaving, so the next owners start after our last commit.
                await self._release(list(self._runs))
                tg.cancel_scope.cancel()
        finally:
            self._group = None
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await consumer.stop()  # leaves the group: the others rebalance at once
            TENANTS_OWNED.set(0)
            self._share.update(1)

    def _membership(self, info: dict[str, object]) -> None:
        members, owners, slots = info.get("members"), info.get("owners"), info.get("slots")
        if isinstance(members, int):
            self._share.update(members, owners if isinstance(owners, dict) else None,
                               slots if isinstance(slots, int) else 0)
        duplicates = info.get("duplicates") or []
        if duplicates:
            log.error("several live replicas share a replica id; their handler producers fence each other: "
                      "give each replica its own (EDUSYNC_REPLICA_ID or kafka.replica_id)", replica_ids=duplicates)
        if info.get("mismatched"):
            log.error("the replicas of this group run different tenant lists, so some tenants may have no "
                      "poller: give every replica the same configuration, or each deployment its own "
                      "kafka.namespace or consumer_group_prefix", replicas=info.get("replicas"))

    # -- the rebalance listener ----------------------------------------------------------------

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Stop every poller (eager rebalancing revokes everything); each finishes its commit."""
        if self._runs:
            await self._release(list(self._runs))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Start the work of the slots on ``assigned`` that hold tenants."""
        OWNERSHIP_REBALANCES.inc()
        consumer, group = self._consumer, self._group
        if consumer is None or group is None or self._stop.stopping:
            return
        count = len(consumer.partitions_for_topic(self.kafka.name(POLLER_CONTROL)) or ())
        mine = {tp.partition for tp in assigned}
        by_slot: dict[int, set[str]] = defaultdict(set)
        for tenant in self.tenants:
            if count and (slot := tenant_partition(tenant, count)) in mine:
                by_slot[slot].add(tenant)
        for slot, members in sorted(by_slot.items()):
            if slot not in self._runs:
                self._tenants_of[slot] = frozenset(members)
                self._start(group, slot)
        tenants = self.owned
        TENANTS_OWNED.set(len(tenants))
        self._health.set(COMPONENT, State.READY)
        log.info("pollers assigned", replica=self.config.kafka.replica_id, tenants=tenants,
                 slots=sorted(self._runs), partitions=sorted(mine), replicas=self._share.members)

    def _start(self, group: anyio.abc.TaskGroup, slot: int) -> None:
        run = self._runs[slot] = _SlotRun()
        patience = self.config.kafka.broker_patience_seconds
        for component in self._slot_components(slot, self._tenants_of[slot]):
            finished, scope = anyio.Event(), anyio.CancelScope()
            run.done.append(finished)
            run.scopes.append(scope)
            group.start_soon(self._one, component, run.stop, scope, patience, finished)

    async def _one(self, component: Component, stop: StopToken, scope: anyio.CancelScope, patience: float,
                   finished: anyio.Event) -> None:
        try:
            with scope:
                await self._supervise(component, stop, self._health, patience)
        finally:
            self._health.forget(component.name)
            finished.set()

    async def _release(self, slots: list[int]) -> None:
        """Stop the work of ``slots`` and wait for it (a commit in hand is finished)."""
        tenants = sorted(t for slot in slots for t in self._tenants_of.get(slot, ()))
        runs = [self._runs.pop(slot) for slot in slots if slot in self._runs]
        for run in runs:
            run.stop.set()
        grace = self.config.runtime.shutdown_grace_seconds
        with anyio.move_on_after(grace) as waited:
            for run in runs:
                for finished in run.done:
                    await finished.wait()
        if waited.cancelled_caught:
            # The partitions move on now; a poll still running would race the next owner.
            log.warning("pollers did not stop within the grace period; cancelled", tenants=tenants,
                        grace_seconds=grace)
            for run in runs:
                for scope in run.scopes:
                    scope.cancel()
        TENANTS_OWNED.set(len(self.owned))
        if tenants:
            log.info("pollers revoked", replica=self.config.kafka.replica_id, tenants=tenants, slots=sorted(slots))
