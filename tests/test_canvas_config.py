"""Canvas configuration: a static token or an OAuth2 block (validated), and the canvas_audit flow's
settings, through the real loader with line-precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.clients.canvas_oauth import OAuthToken, StaticToken
from worker.config import ConfigError, load_config
from worker.flows.canvas_audit import CanvasAuditSettings
from worker.registry import ClientPool
from worker.systems.canvas import CANVAS, CanvasConfig
from worker.wiring import build_wiring

OAUTH = """\
tenants:
  - id: district-a
    systems:
      canvas:
        base_url: http://127.0.0.1:8001
        oauth:
          client_id: "10000000000001"
          client_secret: ${CANVAS_SECRET}
          refresh_token: ${CANVAS_REFRESH}
    flows:
      canvas_audit:
        grade_course_ids: ["101", "sis_course_id:CS/101"]
"""
ENV = {"CANVAS_SECRET": "s" * 12, "CANVAS_REFRESH": "r" * 24}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edusync.yaml"
    path.write_text(text)
    return path


def test_oauth_block_loads_and_builds_a_refreshing_client(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, OAUTH), env=ENV)
    canvas = config.tenants[0].systems.canvas
    assert canvas.token is None and canvas.oauth is not None
    assert "r" * 24 not in repr(config)
    creds = canvas.oauth_credentials()
    assert creds is not None and creds.refresh_token == "r" * 24 and creds.token_url == "/login/oauth2/token"
    client = CANVAS.client(canvas)
    assert isinstance(client.tokens, OAuthToken)
    wiring = build_wiring(config)
    assert [spec.poller.name for spec in wiring.pollers] == ["canvas.course_events", "canvas.grade_changes"]
    flow = config.tenants[0].flows.canvas_audit
    assert flow.grade_course_ids == ["101", "sis_course_id:CS/101"] and flow.lag_seconds == 120


def test_static_token_still_works_and_credentials_key_the_quota() -> None:
    static = CanvasConfig(base_url="http://c", token="tok-1")  # type: ignore[arg-type]
    assert isinstance(CANVAS.client(static).tokens, StaticToken)
    oauth = CanvasConfig.model_validate({"base_url": "http://c", "oauth": {
        "client_id": "1", "client_secret": "s", "refresh_token": "r", "access_token": "a"}})
    refreshed = CanvasConfig.model_validate({"base_url": "http://c", "oauth": {
        "client_id": "1", "client_secret": "s", "refresh_token": "r", "access_token": "b"}})
    assert CANVAS.credential(oauth) == CANVAS.credential(refreshed) != CANVAS.credential(static)
    assert "tok-1" not in CANVAS.credential(static)
    pool = ClientPool()
    assert pool.get(CANVAS, oauth) is pool.get(CANVAS, refreshed), "one grant, one client, one quota"


@pytest.mark.parametrize(("replace", "message"), [
    (("        oauth:\n", "        token: ${CANVAS_SECRET}\n        oauth:\n"), "not both"),
    (("          refresh_token: ${CANVAS_REFRESH}\n", ""), "refresh_token: Field required"),
    (("          client_id: \"10000000000001\"\n", "          client_id: \"\"\n"), "client_id"),
])
def test_invalid_canvas_credentials_name_file_and_field(tmp_path: Path, replace: tuple[str, str], message: str) -> None:
    path = _write(tmp_path, OAUTH.replace(*replace))
    with pytest.raises(ConfigError) as err:
        load_config(path, env=ENV)
    assert f"{path}:" in str(err.value) and "systems.canvas" in str(err.value)
    assert message in str(err.value)


def test_neither_token_nor_oauth_is_an_error() -> None:
    with pytest.raises(ValueError, match="either token or oauth"):
        CanvasConfig(base_url="http://c")


def test_canvas_audit_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="once"):
        CanvasAuditSettings(grade_course_ids=["1", "1"])
    with pytest.raises(ValueError, match="nothing to follow"):
        CanvasAuditSettings(course_events=False)
    with pytest.raises(ValueError):
        CanvasAuditSettings(overlap_seconds=0)
    window = CanvasAuditSettings(lag_seconds=5, overlap_seconds=60).window()
    assert (window.lag.total_seconds(), window.overlap.total_seconds(), window.max_events) == (5, 60, 10_000)
