"""From a tenant's Illuminate flow settings to its pollers.

One ``IlluminateClient`` and one ``SnapshotStore`` per tenant, shared by that tenant's pollers
(one per snapshot entity, one per score endpoint). The store is not restored here: the first
poll of any of these pollers restores every kind they registered with a single read of
``edusync._snapshots``, and a poller whose transaction did not commit reloads only its own kind
(it notices from the cursor's ``seq``). So ``worker.components.poller_component`` can wrap each
poller unchanged (``worker/wiring.py`` does), and a component restart needs no store factory.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from worker.clients.illuminate import IlluminateClient
from worker.poller_frame import Poller
from worker.pollers.illuminate_scope import ScopeSource
from worker.pollers.illuminate_scores import IlluminateScoresPoller
from worker.pollers.illuminate_snapshot import IlluminateSnapshotPoller
from worker.pollers.snapshot_diff import DeletionGuard
from worker.pollers.snapshot_store import SnapshotStore

if TYPE_CHECKING:
    from worker.flows.illuminate_changes import IlluminateChangesSettings


def illuminate_source(base_url: str) -> str:
    """The CloudEvents ``source`` of an instance: ``illuminate:<host>/<directory>``."""
    parts = urlsplit(base_url)
    path = parts.path.removesuffix("/").removesuffix("/rest_server.php")
    return f"illuminate:{parts.netloc}{path}"


def district_today(zone: str) -> Callable[[], date]:
    """Today's date in the district's time zone (the watermark is a local date, ref 6.2 B.1)."""
    tz = ZoneInfo(zone)
    return lambda: datetime.now(tz).date()


def illuminate_pollers(
    tenant_id: str, cfg: IlluminateChangesSettings, client: IlluminateClient, snapshots: SnapshotStore, *,
    source: str, today: Callable[[], date] | None = None,
) -> list[Poller]:
    """Every Illuminate poller of one tenant: snapshot diff per entity, ``modified_after`` per
    score endpoint. ``snapshots`` must be this tenant's store; ``today`` overrides the clock."""
    if snapshots.tenant != tenant_id:
        raise ValueError(f"snapshot store of tenant {snapshots.tenant!r} given for tenant {tenant_id!r}")
    session = (cfg.session_start, cfg.session_end) if cfg.session_start and cfg.session_end else None
    scopes = ScopeSource(client, cfg.snapshot_scope, session)
    guard = DeletionGuard(cfg.max_delete_share, cfg.deletion_guard_min_count)
    pollers: list[Poller] = [
        IlluminateSnapshotPoller(tenant_id, entity, client, snapshots, source=source, scopes=scopes, guard=guard)
        for entity in cfg.snapshot_entities
    ]
    # Scores always ask for an explicit session range: the Group and Standard variants default
    # to today's roster otherwise (ref 6.2 B.3).
    score_scopes = scopes if cfg.snapshot_scope == "session" else ScopeSource(client, "session", session)
    pollers += [
        IlluminateScoresPoller(
            tenant_id, endpoint, client, snapshots, source=source, scopes=score_scopes,
            today=today or district_today(cfg.district_timezone), guard=guard,
            reconcile_every=cfg.scores_reconcile_every, overlap_days=cfg.overlap_days,
        )
        for endpoint in cfg.score_endpoints
    ]
    return pollers
