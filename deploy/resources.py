"""The example configuration and the Prometheus alert rules, as shipped in the wheel.

Read through ``importlib.resources``, so they work from an installed wheel, a zip or a checkout.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

# Paths inside the ``deploy`` package; pyproject.toml's package-data ships exactly these.
EXAMPLE_CONFIG = ("edusync.example.yaml",)
ALERT_RULES = ("prometheus", "edusync-alerts.yml")


def _resource(parts: tuple[str, ...]) -> Traversable:
    node = files("deploy")
    for part in parts:
        node = node / part
    return node


def example_config_resource() -> Traversable:
    """The example worker configuration (``deploy/edusync.example.yaml``) as a resource."""
    return _resource(EXAMPLE_CONFIG)


def alert_rules_resource() -> Traversable:
    """The Prometheus alerting rules (``deploy/prometheus/edusync-alerts.yml``) as a resource."""
    return _resource(ALERT_RULES)


def example_config() -> str:
    """The text of the example worker configuration, for ``edusync config example``."""
    return example_config_resource().read_text(encoding="utf-8")


def alert_rules() -> str:
    """The text of the Prometheus alerting rules."""
    return alert_rules_resource().read_text(encoding="utf-8")
