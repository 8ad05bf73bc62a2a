"""The simulator's whole state: the organisation's data, keys, switches, faults and statistics.
Usable directly from tests; the control API calls the same methods.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from simulators.classroom.auth import DEMO_SECRET, ApiKey, KeyRegistry
from simulators.classroom.config import SimConfig
from simulators.classroom.examples import load_examples
from simulators.classroom.generator import SeedSpec, generate
from simulators.classroom.render import class_json, deferred_json, enrollment_json, iso_now, template_json, user_json
from simulators.classroom.stats import Stats
from simulators.classroom.store import ClassStore
from simulators.faults import FaultInjector


class ClassSimulator:
    """An in-memory Class organisation.

    ``keys`` maps each accepted secret to an ``ApiKey`` (scopes, expiry); by default one demo
    secret with every scope. ``examples`` loads the records behind the seed's examples.
    """

    def __init__(
        self, *, keys: Mapping[str, ApiKey | Mapping[str, Any]] | None = None, config: SimConfig | None = None,
        examples: bool = True,
    ) -> None:
        registry = {s: k if isinstance(k, ApiKey) else ApiKey.model_validate(dict(k))
                    for s, k in (keys or {DEMO_SECRET: ApiKey()}).items()}
        # Route handlers run on the server's event-loop thread while tests touch the same objects
        # from their own thread, so every read-modify-write holds this lock.
        self.lock = threading.RLock()
        self.keys = KeyRegistry(registry)
        self.faults = FaultInjector()
        self.stats = Stats()
        self._initial_config = config or SimConfig()
        self.config = self._initial_config
        self.examples = examples
        self.store = ClassStore()
        self.reset()

    def reset(self, *, examples: bool | None = None) -> None:
        """Construction-time keys and switches, no faults, an empty organisation (plus examples)."""
        with self.lock:
            self.keys.reset()
            self.faults.clear()
            self.stats.reset()
            self.config = self._initial_config
            self.store = ClassStore()
            if self.examples if examples is None else examples:
                load_examples(self.store)

    def seed(self, spec: SeedSpec, *, examples: bool | None = None) -> dict[str, int]:
        """Replace the organisation with a generated one; returns the counts."""
        with self.lock:
            store = ClassStore()
            store.ids.reset(spec.seed)
            if self.examples if examples is None else examples:
                load_examples(store)
            generate(store, spec)
            self.store = store
            return store.counts()

    def configure(self, changes: Mapping[str, Any]) -> SimConfig:
        """Partial update of the switches."""
        with self.lock:
            self.config = SimConfig.model_validate({**self.config.model_dump(), **changes})
            return self.config

    def take_throttle(self) -> bool:
        """Spend one unit of the non-normative throttle; True if this request must get a 429."""
        with self.lock:
            if self.config.throttle_next <= 0:
                return False
            self.config = self.config.model_copy(update={"throttle_next": self.config.throttle_next - 1})
            return True

    def promote_deferred(self, deferred_id: int | None = None) -> list[str]:
        """Turn deferred records (one, or all) into live classes; returns their class ids.

        How a deferred class becomes a regular one is undocumented (Part D.9); this keeps its
        class_id, ext_class_id and roster.
        """
        with self.lock:
            promoted = []
            for record in self.store.classes.values():
                if record.deferred_id is not None and deferred_id in (None, record.deferred_id):
                    record.deferred_id = None
                    record.updated_at = iso_now()
                    promoted.append(record.class_id)
            return promoted

    def snapshot(self, *, counts_only: bool = False) -> dict[str, Any]:
        """The JSON served by ``GET /_sim/state``."""
        with self.lock:
            store = self.store
            body: dict[str, Any] = {"counts": store.counts(), "deleted_ext_class_ids": sorted(store.deleted_ext_ids)}
            if counts_only:
                return body
            host = self.config.org_host
            body["classes"] = [
                {**(deferred_json(r) if r.deferred_id is not None else class_json(r, host)),
                 "deferred": r.deferred_id is not None, "timezone": r.timezone, "instructor_email": r.email,
                 "enrollments": [enrollment_json(e) for e in r.enrollments]}
                for r in store.classes.values()
            ]
            body["users"] = [user_json(u) for u in store.users.values()]
            body["templates"] = [template_json(t) for t in store.templates.values()]
            body["schedules"] = [
                {"schedule_id": s.schedule_id, "class_id": s.class_id, "start_time": s.start_time,
                 "end_time": s.end_time, "timezone": s.timezone} for s in store.schedules.values()
            ]
            return body
