"""The flow and system registries: clients shared per credential, and central modules that name no flow."""

from __future__ import annotations

import re
from pathlib import Path

from worker.clients.abconnect import ABConnectClient
from worker.config import load_config
from worker.flows import FLOWS, event_types, handler_names
from worker.pollers.abconnect_events import ABConnectEventsPoller
from worker.pollers.standards_reconcile import StandardsReconcilePoller
from worker.systems import SYSTEMS
from worker.wiring import build_wiring

ROOT = Path(__file__).resolve().parent.parent
TWO_TENANTS = """\
tenants:
  - id: district-a
    systems:
      abconnect: {base_url: "http://ab/rest/v4.1", partner_id: shared, partner_key: "${AB_KEY}"}
      canvas: {base_url: "http://canvas-a", token: "${TOKEN_A}"}
    flows: {standards: {}}
  - id: district-b
    systems:
      abconnect: {base_url: "http://ab/rest/v4.1", partner_id: shared, partner_key: "${AB_KEY}"}
      canvas: {base_url: "http://canvas-b", token: "${TOKEN_B}"}
    flows: {standards: {}}
"""


def test_one_client_per_system_and_credential_is_shared_by_every_flow_poller_and_handler(tmp_path: Path) -> None:
    path = tmp_path / "edusync.yaml"
    path.write_text(TWO_TENANTS)
    config = load_config(path, env={"AB_KEY": "k" * 8, "TOKEN_A": "a" * 8, "TOKEN_B": "b" * 8})
    wiring = build_wiring(config)
    # Two tenants on one AB Connect account: one client, one token bucket for the account's 5/s.
    ab_clients = {id(p.poller.client) for p in wiring.pollers  # type: ignore[attr-defined]
                  if isinstance(p.poller, ABConnectEventsPoller | StandardsReconcilePoller)}
    assert len(ab_clients) == 1
    [handler] = wiring.handlers
    tenants = handler.tenants  # type: ignore[attr-defined]
    assert {id(t.ab) for t in tenants.values()} == ab_clients, "the handler reads AB through the same client"
    assert len({id(t.tree.canvas) for t in tenants.values()}) == 2, "two Canvas tokens: two quotas"
    assert len(wiring.clients) == 3
    assert all(isinstance(t.ab, ABConnectClient) for t in tenants.values())


def test_the_registries_are_complete_and_consistent() -> None:
    names = [f.name for f in FLOWS]
    assert len(names) == len(set(names)) and len(handler_names()) == len(set(handler_names()))
    assert {s.name for s in SYSTEMS} >= {s.name for f in FLOWS for s in f.systems}
    for flow in FLOWS:
        # A flow either publishes events or consumes another flow's (the roster flows).
        assert flow.event_types or flow.requires, f"{flow.name} publishes nothing and consumes nothing"
        assert all(t.startswith("edusync.") for t in flow.event_types)
        assert all(name in names for name in flow.requires), f"{flow.name} requires an unknown flow"
    assert len(event_types()) == sum(len(f.event_types) for f in FLOWS), "two flows claim one event type"


def test_central_modules_name_no_flow_and_no_system() -> None:
    # Adding a flow is its modules plus one registry line: the modules every flow passes through
    # must not know any flow or system by name.
    central = ["worker/wiring.py", "worker/config.py", "worker/cli.py", "worker/runtime.py", "worker/replay.py",
               "worker/operations.py", "worker/components.py", "simulators/serve_all.py", "schemas/export.py"]
    words = {f.name for f in FLOWS} | {s.name for s in SYSTEMS} | {"standards_to_canvas"}
    pattern = re.compile(r"(?<![-\w])(" + "|".join(map(re.escape, sorted(words))) + r")(?![-\w])")
    for path in central:
        hits = pattern.findall((ROOT / path).read_text())
        assert not hits, f"{path} names {sorted(set(hits))}"
