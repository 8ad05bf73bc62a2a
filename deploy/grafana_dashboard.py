"""The edusync Grafana dashboard, built as code with grafana-foundation-sdk.

``python -m deploy.grafana_dashboard`` writes deploy/grafana/edusync.json (checked in; a test
asserts it equals what this module generates). Metric names come from worker/metrics.py.
Queries use two dashboard variables: ``$datasource`` (a Prometheus data source) and ``$tenant``
(a regex over the configured tenants, "All" by default).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from worker.metrics import (
    COMPONENT_STATE,
    CURSOR_LAG,
    END_TO_END_LATENCY,
    EVENTS_PUBLISHED,
    HANDLER_BACKLOG,
    HANDLER_DEFERRED,
    HANDLER_EVENTS,
    INITIAL_SYNC,
    LAST_SUCCESS,
    POLL_ERRORS,
    RATE_BUDGET_USE,
    UPSTREAM_REQUESTS,
    UPSTREAM_RETRIES,
    UPSTREAM_THROTTLE_WAIT,
    WALK_PAGE,
    WALK_PAGES,
    Outcome,
)

OUTPUT = Path(__file__).resolve().parent / "grafana" / "edusync.json"
UID = "edusync-overview"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
TENANT = 'tenant=~"$tenant"'
WINDOW = "5m"  # rate windows: a few scrapes at any sensible interval


def _name(metric: object) -> str:
    """The exposed name of a prometheus_client metric (counters with ``_total``)."""
    name: str = metric._name  # type: ignore[attr-defined]
    kind: str = metric._type  # type: ignore[attr-defined]
    return f"{name}_total" if kind == "counter" else name


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel and its legend."""

    expr: str
    legend: str


def _target(query: Query, ref: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(query.expr).legend_format(query.legend).ref_id(ref).datasource(DATASOURCE)


def _series(title: str, description: str, unit: str, *queries: Query, stack: bool = False) -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).description(description).unit(unit).datasource(DATASOURCE)
             .height(8).span(12).fill_opacity(10 if not stack else 60)
             .legend(common_builders.VizLegendOptions().display_mode(common.LegendDisplayMode.LIST)
                     .placement(common.LegendPlacement.BOTTOM).show_legend(True))
             .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                      .sort(common.SortOrder.DESCENDING)))
    for i, query in enumerate(queries):
        panel = panel.with_target(_target(query, chr(ord("A") + i)))
    return panel


def freshness_queries() -> list[Query]:
    """Per tenant and component: seconds since the last success."""
    return [Query(f"time() - max by (kind, tenant, name) ({_name(LAST_SUCCESS)}{{{TENANT}}})",
                  "{{tenant}} {{kind}} {{name}}")]


def panels() -> list[Builder[model.Panel]]:
    """Every panel, in dashboard order."""
    outcomes = _name(HANDLER_EVENTS)
    latency = f"{_name(END_TO_END_LATENCY)}_bucket"
    quantiles = [Query(f"histogram_quantile({q}, sum by (le, handler) (rate({latency}[{WINDOW}])))",
                       f"p{int(q * 100)} {{{{handler}}}}") for q in (0.5, 0.95, 0.99)]
    return [
        stat.Panel().title("Components not ready").description(
            "Pollers and handlers in any state but ready (paused: credentials rejected; degraded: failing).")
        .datasource(DATASOURCE).height(4).span(6).graph_mode(common.BigValueGraphMode.AREA)
        .with_target(_target(Query(f'sum({_name(COMPONENT_STATE)}{{state!="ready"}})', "not ready"), "A")),
        stat.Panel().title("Initial syncs running").description(
            "Snapshot pollers that have not completed their first walk.")
        .datasource(DATASOURCE).height(4).span(6).graph_mode(common.BigValueGraphMode.AREA)
        .with_target(_target(Query(f"sum({_name(INITIAL_SYNC)}{{{TENANT}}})", "initial syncs"), "A")),
        table.Panel().title("Component states").description("The state each poller and handler reports now.")
        .datasource(DATASOURCE).height(4).span(12).show_header(True)
        .with_target(_target(Query(f"max by (component, state) ({_name(COMPONENT_STATE)}) == 1",
                                   "{{component}}: {{state}}"), "A")),
        _series("Freshness: time since last success",
                "Per tenant: seconds since each poller last committed a poll and each handler last committed or "
                "was found caught up. Grows through an outage.", "s", *freshness_queries()),
        _series("Cursor lag", "How far each poller's cursor is behind upstream time (grows while polls fail).",
                "s", Query(f"max by (tenant, poller) ({_name(CURSOR_LAG)}{{{TENANT}}})", "{{tenant}} {{poller}}")),
        _series("Events published", "Change events pollers publish to Kafka, per second.", "ops",
                Query(f"sum by (tenant, topic) (rate({_name(EVENTS_PUBLISHED)}{{{TENANT}}}[{WINDOW}]))",
                      "{{tenant}} {{topic}}")),
        _series("Handler outcomes", "Events handlers processed, by outcome, per second.", "ops",
                Query(f"sum by (handler, outcome) (rate({outcomes}{{{TENANT}}}[{WINDOW}]))",
                      "{{handler}} {{outcome}}"), stack=True),
        _series("Dead letters (last hour)", "Events each handler sent to its DLQ; inspect with edusync dlq show.",
                "short", Query(f'sum by (handler, tenant) (increase({outcomes}{{outcome="{Outcome.DEAD_LETTERED}",'
                               f'{TENANT}}}[1h]))', "{{handler}} {{tenant}}")),
        _series("Deferred events", "Events parked until their prerequisite appears in the target.", "short",
                Query(f"sum by (handler) ({_name(HANDLER_DEFERRED)})", "{{handler}}")),
        _series("Consumer lag (handler backlog)",
                "Records each handler has not handled yet (last stable offset minus position, plus buffered).",
                "short", Query(f"sum by (handler) ({_name(HANDLER_BACKLOG)})", "{{handler}}")),
        _series("Upstream requests per system", "HTTP requests to each upstream, by status, per second.", "reqps",
                Query(f"sum by (system, status) (rate({_name(UPSTREAM_REQUESTS)}{{{TENANT}}}[{WINDOW}]))",
                      "{{system}} {{status}}")),
        _series("Upstream throttling per system",
                "Seconds per second spent waiting on rate limits, and retried requests by reason.", "short",
                Query(f"sum by (system) (rate({_name(UPSTREAM_THROTTLE_WAIT)}[{WINDOW}]))", "{{system}} waiting"),
                Query(f"sum by (system, reason) (rate({_name(UPSTREAM_RETRIES)}[{WINDOW}]))",
                      "{{system}} retries: {{reason}}")),
        _series("Rate-budget use", "Share of each client-side rate budget in use (1 = waiting for budget).",
                "percentunit", Query(f"max by (system, budget) ({_name(RATE_BUDGET_USE)})", "{{system}} #{{budget}}")),
        _series("End-to-end latency", "Seconds from an event's time until its handler committed the result.",
                "s", *quantiles),
        _series("Poll errors (15 min)", "Failed polls by class of error; the cursor does not move.", "short",
                Query(f"sum by (tenant, poller, error) (increase({_name(POLL_ERRORS)}{{{TENANT}}}[15m]))",
                      "{{tenant}} {{poller}} {{error}}")),
        _series("Walk progress", "The page each snapshot poller's current walk has reached, of how many.", "short",
                Query(f"max by (tenant, poller) ({_name(WALK_PAGE)}{{{TENANT}}})", "{{tenant}} {{poller}} page"),
                Query(f"max by (tenant, poller) ({_name(WALK_PAGES)}{{{TENANT}}})", "{{tenant}} {{poller}} pages")),
    ]


def build() -> model.Dashboard:
    """The dashboard model."""
    board = (
        dash.Dashboard("edusync").uid(UID).tags(["edusync"]).refresh("30s").time("now-1h", "now")
        .timezone("browser").editable()
        .description("Freshness, throughput, failures and budgets of the edusync worker (built by "
                     "deploy/grafana_dashboard.py).")
        .with_variable(dash.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(dash.QueryVariable("tenant").label("Tenant").datasource(DATASOURCE)
                       .query(f"label_values({_name(LAST_SUCCESS)}, tenant)").include_all(True).all_value(".*")
                       .multi(True).refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED))
    )
    for panel in panels():
        board = board.with_panel(panel)
    return board.build()


def render() -> str:
    """The dashboard as the JSON text that is checked in."""
    return json.dumps(build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main() -> int:
    """Write (or with ``--check``, compare) deploy/grafana/edusync.json."""
    text = render()
    if "--check" in sys.argv[1:]:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is out of date: run python -m deploy.grafana_dashboard", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
