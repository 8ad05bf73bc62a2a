"""The shipped Prometheus rules only name metrics the worker exports."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import worker.metrics  # noqa: F401  (registers the metrics)

RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "edusync-alerts.yml"


def _exported_names() -> set[str]:
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


def test_every_rule_expression_uses_exported_metrics() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert rules
    exported = _exported_names()
    for rule in rules:
        used = set(re.findall(r"\bedusync_[a-z_]+", rule["expr"]))
        assert used, rule["alert"]
        assert used <= exported, f"{rule['alert']} names unknown metrics {used - exported}"
