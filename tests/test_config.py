"""Configuration loading: validation errors name file, line and field; secrets come from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.config import ConfigError, load_config

GOOD = """\
kafka:
  bootstrap_servers: 127.0.0.1:9092
ops:
  port: 9500
tenants:
  - id: district-a
    canvas:
      base_url: http://127.0.0.1:8001
      token: ${CANVAS_TOKEN}
    abconnect:
      base_url: http://127.0.0.1:8002
      partner_id: district-a
      partner_key: ${AB_KEY}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edusync.yaml"
    path.write_text(text)
    return path


def test_valid_file_loads_with_secrets_from_environment(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, GOOD), env={"CANVAS_TOKEN": "tok-123456", "AB_KEY": "k-abcdef"})
    tenant = config.tenants[0]
    assert config.ops.port == 9500
    assert tenant.canvas is not None and tenant.canvas.token.get_secret_value() == "tok-123456"
    assert "tok-123456" not in repr(config)


def test_wrong_type_names_file_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("port: 9500", "port: lots"))
    with pytest.raises(ConfigError) as err:
        load_config(path, env={"CANVAS_TOKEN": "x" * 8, "AB_KEY": "y" * 8})
    assert f"{path}:4: ops.port:" in str(err.value)


def test_missing_field_points_at_its_parent(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("      partner_id: district-a\n", ""))
    with pytest.raises(ConfigError) as err:
        load_config(path, env={"CANVAS_TOKEN": "x" * 8, "AB_KEY": "y" * 8})
    assert f"{path}:10: tenants[0].abconnect.partner_id: Field required" in str(err.value)


def test_unknown_field_is_rejected_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("  port: 9500", "  port: 9500\n  prot: 1"))
    with pytest.raises(ConfigError) as err:
        load_config(path, env={"CANVAS_TOKEN": "x" * 8, "AB_KEY": "y" * 8})
    assert f"{path}:5: ops.prot: unknown field" in str(err.value)


def test_unset_environment_variable_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    with pytest.raises(ConfigError) as err:
        load_config(path, env={"AB_KEY": "y" * 8})
    assert f"{path}:9: tenants[0].canvas.token: environment variable CANVAS_TOKEN is not set" in str(err.value)


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
           "ILLUMINATE_TOKEN_SECRET": "s" * 8}
    config = load_config(example, env=env)
    tenant = config.tenants[0]
    assert tenant.abconnect and tenant.canvas and tenant.illuminate
