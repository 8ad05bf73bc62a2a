"""Every Prometheus metric edusync exports, defined once.

Names follow Prometheus conventions: ``edusync_`` prefix, base units (seconds),
``_total`` on counters. Import the objects; never repeat a metric name elsewhere.
"""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import Counter, Gauge, Histogram

# Buckets from 5 ms to ~10 min: a handler applies in milliseconds, a backlog takes minutes.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Outcome(StrEnum):
    """What a handler did with one event."""

    APPLIED = "applied"
    NOOP = "noop"
    ECHO = "echo"
    SKIPPED = "skipped"
    RETRIED = "retried"
    DEFERRED = "deferred"
    DEAD_LETTERED = "dead_lettered"


EVENTS_PUBLISHED = Counter(
    "edusync_events_published_total",
    "Change events published to Kafka by pollers.",
    ["tenant", "poller", "topic"],
)
POLL_DURATION = Histogram(
    "edusync_poll_duration_seconds",
    "Time for one poll cycle: fetch upstream pages and commit the transaction.",
    ["tenant", "poller"],
    buckets=_LATENCY_BUCKETS,
)
POLL_ERRORS = Counter(
    "edusync_poll_errors_total",
    "Poll cycles that failed and were retried without moving the cursor.",
    ["tenant", "poller", "error"],
)
CURSOR_LAG = Gauge(
    "edusync_cursor_lag_seconds",
    "Seconds between now and the upstream time of the newest event the cursor covers.",
    ["tenant", "poller"],
)
UPSTREAM_REQUESTS = Counter(
    "edusync_upstream_requests_total",
    "HTTP requests made to upstream systems, by response status ('error' for no response).",
    ["system", "status"],
)
UPSTREAM_RETRIES = Counter(
    "edusync_upstream_retries_total",
    "Requests the HTTP layer sent again after a failed attempt, by what failed "
    "(throttled, transient, malformed, too_large).",
    ["system", "reason"],
)
UPSTREAM_THROTTLE_WAIT = Counter(
    "edusync_upstream_throttle_wait_seconds_total",
    "Seconds spent waiting on client-side rate limits and server throttling.",
    ["system"],
)
HANDLER_EVENTS = Counter(
    "edusync_handler_events_total",
    "Events processed by handlers, by outcome.",
    ["handler", "outcome"],
)
RECONCILE_REPAIRS = Counter(
    "edusync_reconcile_repairs_total",
    "Differences a periodic reconcile found in a target and repaired (for 'class_missing': reported only).",
    ["handler", "kind"],
)
END_TO_END_LATENCY = Histogram(
    "edusync_end_to_end_latency_seconds",
    "Seconds from an event's time to the moment its handler committed the result.",
    ["handler"],
    buckets=_LATENCY_BUCKETS,
)
DELETIONS_HELD = Gauge(
    "edusync_snapshot_deletions_held",
    "Deletions a snapshot-diff poller is holding back because they exceed the safety share.",
    ["tenant", "poller"],
)
COMPONENT_UP = Gauge(
    "edusync_component_up",
    "1 while a poller or handler loop is running and healthy, else 0.",
    ["component"],
)
COMPONENT_PAUSED = Gauge(
    "edusync_component_paused",
    "1 while a poller or handler is paused because an upstream rejected its credentials or scope.",
    ["component"],
)
HANDLER_DEFERRED = Gauge(
    "edusync_handler_deferred_events",
    "Events a handler has parked until their prerequisite appears in the target.",
    ["handler"],
)
HANDLER_PARTITIONS_BUSY = Gauge(
    "edusync_handler_partitions_busy",
    "Partitions a handler is working on right now (bounded by its concurrency).",
    ["handler"],
)
REPLICAS_LIVE = Gauge(
    "edusync_replicas_live",
    "Live replicas in the poller-ownership group, as of the last rebalance; rate budgets are split by it.",
)
TENANTS_OWNED = Gauge(
    "edusync_tenants_owned",
    "Tenants whose pollers this replica runs (its share of the ownership group's partitions).",
)
OWNERSHIP_REBALANCES = Counter(
    "edusync_ownership_rebalances_total",
    "Poller-ownership assignments this replica received (each one stops and starts the pollers that moved).",
)
