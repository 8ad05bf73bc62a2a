"""The checked-in Grafana dashboard is what deploy/grafana_dashboard.py generates, has the panels
the operators asked for, and queries only metrics the worker exports."""

from __future__ import annotations

import json
import re

from deploy.grafana_dashboard import OUTPUT, render
from tests.test_alert_rules import _exported_names


def panel_queries(board: dict[str, object]) -> dict[str, list[str]]:
    """Each panel's title and its PromQL expressions."""
    panels = board["panels"]
    assert isinstance(panels, list)
    return {p["title"]: [t["expr"] for t in p.get("targets", [])] for p in panels}


def test_the_checked_in_dashboard_is_the_generated_one() -> None:
    assert OUTPUT.read_text() == render(), "run: python -m deploy.grafana_dashboard"


def test_every_panel_queries_exported_metrics() -> None:
    queries = panel_queries(json.loads(OUTPUT.read_text()))
    exported = _exported_names()
    for title, exprs in queries.items():
        assert exprs, title
        for expr in exprs:
            used = set(re.findall(r"\bedusync_[a-z_]+", expr))
            assert used and used <= exported, (title, used - exported)


def test_the_panels_cover_what_operators_watch() -> None:
    exprs = " ".join(e for es in panel_queries(json.loads(OUTPUT.read_text())).values() for e in es)
    for needle in ("edusync_last_success_timestamp_seconds", "edusync_events_published_total",
                   "edusync_handler_events_total", 'outcome="dead_lettered"', "edusync_handler_deferred_events",
                   "edusync_upstream_requests_total", "edusync_upstream_throttle_wait_seconds_total",
                   "edusync_rate_budget_use_ratio", "histogram_quantile(0.95", "edusync_handler_backlog_events",
                   "edusync_walk_page", "edusync_initial_sync_in_progress"):
        assert needle in exprs, needle


def test_every_panel_is_complete_for_grafana() -> None:
    board = json.loads(OUTPUT.read_text())
    assert board["uid"] and board["title"] == "edusync"
    assert {v["name"] for v in board["templating"]["list"]} == {"datasource", "tenant"}
    for panel in board["panels"]:
        assert isinstance(panel["options"], dict), panel["title"]  # null options break panel editors
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert all(t["refId"] for t in panel["targets"])
