"""The shipped Prometheus rules: they only name metrics the worker exports, and they behave as
their unit tests (deploy/prometheus/edusync-alerts.test.yml) say under ``promtool test rules``."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import worker.metrics  # noqa: F401  (registers the metrics)

RULES_DIR = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
RULES = RULES_DIR / "edusync-alerts.yml"
RULE_TESTS = RULES_DIR / "edusync-alerts.test.yml"
# Series Prometheus itself makes for every scrape target.
PROMETHEUS_SERIES = {"up"}


def _exported_names() -> set[str]:
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names


def rules() -> list[dict[str, str]]:
    """Every alerting rule of the shipped file."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_every_rule_expression_uses_exported_metrics() -> None:
    assert rules()
    exported = _exported_names()
    for rule in rules():
        used = set(re.findall(r"\bedusync_[a-z_]+", rule["expr"]))
        if not used:
            series = set(re.findall(r"\b([a-z_]+)\{", rule["expr"]))
            assert series and series <= PROMETHEUS_SERIES, f"{rule['alert']} names no edusync metric"
        assert used <= exported, f"{rule['alert']} names unknown metrics {used - exported}"


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make test` installs Debian's prometheus package"
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    run = subprocess.run([promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout


def test_the_rule_tests_cover_the_alerts_the_issue_asks_for() -> None:
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert {"EdusyncDeadLetters", "EdusyncPollerStale", "EdusyncDown", "EdusyncAbsent",
            "EdusyncCursorLagHigh", "EdusyncCredentialsRejected"} <= tested
    assert tested <= {rule["alert"] for rule in rules()}
