"""Every Prometheus metric edusync exports, defined once.

Names follow Prometheus conventions: ``edusync_`` prefix, base units (seconds),
``_total`` on counters. Import the objects; never repeat a metric name elsewhere.
"""

from __future__ import annotations

import contextvars
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterable
from enum import StrEnum
from importlib import metadata
from pathlib import Path

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

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


class Kind(StrEnum):
    """What sort of component a ``LAST_SUCCESS`` series belongs to."""

    POLLER = "poller"
    HANDLER = "handler"


class PollError(StrEnum):
    """The ``error`` label of ``POLL_ERRORS``: a fixed set, so every series can exist from the start."""

    CREDENTIALS = "credentials"  # 401/403 on the account: the poller pauses
    THROTTLED = "throttled"
    TRANSIENT = "transient"  # 5xx, connection failures, timeouts of one request
    MALFORMED = "malformed"  # HTML, truncated or invalid bodies, implausible data
    DEADLINE = "deadline"  # the whole poll over its deadline
    OTHER = "other"


# Statuses of ``UPSTREAM_REQUESTS`` created at 0 per system and tenant, so the first 5xx or 401
# after a start is an increase the alerts see. Other statuses appear when they first happen.
PRIMED_STATUSES = ("200", "401", "403", "429", "500", "503", "error")
# The ``reason`` label of ``UPSTREAM_RETRIES`` (worker/clients/http.py: retry_reason).
RETRY_REASONS = ("throttled", "transient", "malformed", "too_large")
# The ``tenant`` label of work no configured tenant can be named for (a foreign event, a mixed batch).
UNATTRIBUTED = "unattributed"

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
    "Poll cycles that failed and were retried without moving the cursor, by class of error (PollError).",
    ["tenant", "poller", "error"],
)
POLL_INTERVAL = Gauge(
    "edusync_poll_interval_seconds",
    "The longest rest a poller takes between two polls (its interval, 4x with idle backoff): staleness "
    "alerts allow for it.",
    ["tenant", "poller"],
)
CURSOR_LAG = Gauge(
    "edusync_cursor_lag_seconds",
    "Seconds between now and the upstream time the cursor covers (the newest event, or the last poll that "
    "found nothing more); computed at scrape time, so it grows while polls fail.",
    ["tenant", "poller"],
)
UPSTREAM_REQUESTS = Counter(
    "edusync_upstream_requests_total",
    "HTTP requests made to upstream systems, by tenant and response status ('error' for no response).",
    ["system", "tenant", "status"],
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
    "Events processed by handlers, by tenant and outcome.",
    ["handler", "tenant", "outcome"],
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
COMPONENT_STATE = Gauge(
    "edusync_component_state",
    "1 for the state a poller or handler is in (starting, ready, paused, degraded, restarting, stopped), else 0.",
    ["component", "state"],
)
LAST_SUCCESS = Gauge(
    "edusync_last_success_timestamp_seconds",
    "Unix time of a component's last success (a committed poll; a handler commit, or a handler found caught up); "
    "set to the component's first start until then.",
    ["kind", "tenant", "name"],
)
BUILD_INFO = Gauge(
    "edusync_build_info",
    "Always 1; the labels name the running build.",
    ["version", "revision", "python"],
)
HANDLER_BACKLOG = Gauge(
    "edusync_handler_backlog_events",
    "Records a handler runner has not handled yet: last stable offset minus its position, plus those fetched "
    "and waiting in its lanes.",
    ["handler", "component"],
)
RATE_BUDGET_USE = Gauge(
    "edusync_rate_budget_use_ratio",
    "Share of a client-side rate budget in use (0..1): a token bucket's spent tokens, a MatrixLMS site's calls "
    "in its rolling window.",
    ["system", "budget"],
)
WALK_PAGE = Gauge(
    "edusync_walk_page",
    "Page a snapshot poller's current walk has reached (0 between walks).",
    ["tenant", "poller"],
)
WALK_PAGES = Gauge(
    "edusync_walk_pages",
    "Pages of a snapshot poller's current walk (0 between walks).",
    ["tenant", "poller"],
)
WALKS_COMPLETED = Gauge(
    "edusync_walks_completed",
    "Complete walks a snapshot poller has made, as its cursor records.",
    ["tenant", "poller"],
)
INITIAL_SYNC = Gauge(
    "edusync_initial_sync_in_progress",
    "1 while a snapshot poller has not completed its first walk (the initial sync), else 0.",
    ["tenant", "poller"],
)

# The tenants of the running configuration: the only values a ``tenant`` label takes besides
# ``UNATTRIBUTED`` (event fields are free text from Kafka; a label set must stay bounded).
_known_tenants: set[str] = set()
# The tenant whose work the current task does, for the HTTP layer's ``tenant`` label.
current_tenant: contextvars.ContextVar[str] = contextvars.ContextVar("edusync_tenant", default=UNATTRIBUTED)
_started: set[tuple[str, str, str]] = set()


def know_tenants(tenants: Iterable[str]) -> None:
    """Admit ``tenants`` (the configuration's) as ``tenant`` label values."""
    _known_tenants.update(tenants)


def tenant_label(tenant: str | None) -> str:
    """``tenant`` if it is a configured tenant, else ``UNATTRIBUTED``."""
    return tenant if tenant is not None and tenant in _known_tenants else UNATTRIBUTED


def mark_started(kind: Kind, tenant: str, name: str) -> None:
    """Give a component's ``LAST_SUCCESS`` its first value (now) unless it has one: a component
    that never succeeds then goes stale from its start instead of having no series at all."""
    key = (kind.value, tenant_label(tenant), name)
    if key not in _started:
        _started.add(key)
        LAST_SUCCESS.labels(*key).set(time.time())


def mark_success(kind: Kind, tenant: str, name: str) -> None:
    """A component of ``tenant`` succeeded just now."""
    key = (kind.value, tenant_label(tenant), name)
    _started.add(key)
    LAST_SUCCESS.labels(*key).set(time.time())


def prime_handler(handler: str, tenants: Iterable[str]) -> None:
    """Create every outcome series of ``handler`` for ``tenants`` at 0."""
    for tenant in tenants:
        for outcome in Outcome:
            HANDLER_EVENTS.labels(handler, tenant_label(tenant), outcome.value)


def prime_poller(tenant: str, poller: str) -> None:
    """Create every error series of one poller at 0."""
    for error in PollError:
        POLL_ERRORS.labels(tenant, poller, error.value)


def prime_upstream(system: str, tenant: str) -> None:
    """Create the usual status series of one system and tenant at 0, and its retry and throttling series."""
    for status in PRIMED_STATUSES:
        UPSTREAM_REQUESTS.labels(system, tenant_label(tenant), status)
    for reason in RETRY_REASONS:
        UPSTREAM_RETRIES.labels(system, reason)
    UPSTREAM_THROTTLE_WAIT.labels(system)


_budgets: dict[str, int] = {}


def watch_budget(system: str, use: Callable[[], float]) -> None:
    """Report one rate budget's use (0..1, read at scrape time) as ``RATE_BUDGET_USE``; budgets of
    one system are numbered in creation order, never named (a name could carry a credential)."""
    n = _budgets[system] = _budgets.get(system, 0) + 1
    RATE_BUDGET_USE.labels(system, str(n)).set_function(lambda: min(1.0, max(0.0, use())))


def total(name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels`` (0 if none): for readers that
    do not care about the other labels, such as the tenant."""
    value = 0.0
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                value += sample.value
    return value


def publish_build_info() -> None:
    """Set ``BUILD_INFO`` for this process: the package version, the git revision (``EDUSYNC_REVISION``,
    else the checkout's, else "unknown") and the Python version."""
    try:
        version = metadata.version("edusync")
    except metadata.PackageNotFoundError:
        version = "unknown"
    BUILD_INFO.labels(version, _revision(), platform.python_version()).set(1)


def _revision() -> str:
    given = os.environ.get("EDUSYNC_REVISION")
    if given:
        return given[:40]
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown" if out.returncode == 0 else "unknown"
