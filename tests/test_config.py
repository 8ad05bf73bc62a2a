"""Configuration loading: validation errors name file, line and field; secrets come from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.config import ConfigError, enabled_flows, load_config
from worker.flows import FLOWS
from worker.systems import SYSTEMS

GOOD = """\
kafka:
  bootstrap_servers: 127.0.0.1:9092
ops:
  port: 9500
tenants:
  - id: district-a
    systems:
      canvas:
        base_url: http://127.0.0.1:8001
        token: ${CANVAS_TOKEN}
      abconnect:
        base_url: http://127.0.0.1:8002
        partner_id: district-a
        partner_key: ${AB_KEY}
    flows:
      standards:
"""
ENV = {"CANVAS_TOKEN": "x" * 8, "AB_KEY": "y" * 8}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edusync.yaml"
    path.write_text(text)
    return path


def test_valid_file_loads_with_secrets_from_environment(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, GOOD), env={"CANVAS_TOKEN": "tok-123456", "AB_KEY": "k-abcdef"})
    tenant = config.tenants[0]
    assert config.ops.port == 9500
    assert tenant.systems.canvas.token.get_secret_value() == "tok-123456"
    assert "tok-123456" not in repr(config)
    assert enabled_flows(tenant) == ["standards"], "a flow named with no settings is on, with defaults"
    assert tenant.flows.standards.poll_interval_seconds == 5.0


def test_wrong_type_names_file_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("port: 9500", "port: lots"))
    with pytest.raises(ConfigError) as err:
        load_config(path, env=ENV)
    assert f"{path}:4: ops.port:" in str(err.value)


def test_missing_field_points_at_its_parent(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("        partner_id: district-a\n", ""))
    with pytest.raises(ConfigError) as err:
        load_config(path, env=ENV)
    assert f"{path}:11: tenants[0].systems.abconnect.partner_id: Field required" in str(err.value)


def test_unknown_field_is_rejected_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("  port: 9500", "  port: 9500\n  prot: 1"))
    with pytest.raises(ConfigError) as err:
        load_config(path, env=ENV)
    assert f"{path}:5: ops.prot: unknown field" in str(err.value)


def test_unset_environment_variable_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    with pytest.raises(ConfigError) as err:
        load_config(path, env={"AB_KEY": "y" * 8})
    assert f"{path}:10: tenants[0].systems.canvas.token: environment variable CANVAS_TOKEN is not set" in str(err.value)


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "kafka:\n  bootstrap_servers: [unclosed\nops: {}\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+: YAML syntax error"):
        load_config(path)


def test_duplicate_tenant_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "tenants:\n  - id: a\n  - id: a\n")
    with pytest.raises(ConfigError, match="tenant id 'a' appears twice"):
        load_config(path)


def test_the_shipped_example_configuration_is_valid() -> None:
    example = Path(__file__).resolve().parent.parent / "deploy" / "edusync.example.yaml"
    env = {"AB_PARTNER_KEY": "k" * 8, "CANVAS_TOKEN": "t" * 8, "ILLUMINATE_CONSUMER_SECRET": "c" * 8,
           "ILLUMINATE_TOKEN_SECRET": "s" * 8, "CLASS_API_KEY": "a" * 8, "MATRIXLMS_API_KEY": "m" * 8}
    config = load_config(example, env=env)
    tenant = config.tenants[0]
    assert enabled_flows(tenant) == [f.name for f in FLOWS], "the example shows every flow"
    assert all(getattr(tenant.systems, s.name) is not None for s in SYSTEMS), "and every system"


def test_a_flow_without_its_systems_is_an_error_at_the_flow(tmp_path: Path) -> None:
    text = GOOD.replace("      canvas:\n        base_url: http://127.0.0.1:8001\n        token: ${CANVAS_TOKEN}\n", "")
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, env=ENV)
    assert f"{path}:13: tenants[0].flows.standards: flow 'standards' needs system(s) canvas" in str(err.value)


def test_unknown_flow_and_unknown_handler_are_named(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD + "      standrads: {}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, env=ENV)
    assert f"{path}:17: tenants[0].flows.standrads: unknown field" in str(err.value)
    path = _write(tmp_path, "handlers:\n  nope: {}\n" + GOOD)
    with pytest.raises(ConfigError, match=r"handlers: Value error, unknown handler\(s\) \['nope'\]"):
        load_config(path, env=ENV)


def test_a_disabled_flow_is_off(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("      standards:\n", "      standards:\n        enabled: false\n"))
    assert enabled_flows(load_config(path, env=ENV).tenants[0]) == []


def test_a_flow_without_the_flow_whose_events_it_consumes_is_an_error_at_the_flow(tmp_path: Path) -> None:
    text = GOOD.replace("      abconnect:", """      illuminate:
        base_url: http://127.0.0.1:8003/live/rest_server.php
        consumer_key: k
        consumer_secret: s
        token: t
        token_secret: u
      classroom:
        base_url: http://127.0.0.1:8004/api/v1
        api_key: ${CANVAS_TOKEN}
        timezone: America/Chicago
      abconnect:""") + "      roster_classroom:\n        sis_prefix: d1\n"
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, env=ENV)
    line = text.splitlines().index("      roster_classroom:") + 1
    assert (f"{path}:{line}: tenants[0].flows.roster_classroom: flow 'roster_classroom' consumes the events of "
            "flow(s) illuminate_changes: enable them under flows: too") in str(err.value)
