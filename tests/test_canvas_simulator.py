"""The Canvas simulator over real loopback HTTP: auth bodies, Link headers, throttling, outcomes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from simulators.canvas import CanvasSimulator, ThrottleConfig
from simulators.canvas.throttle import Throttle
from tests import canvas_fixtures
from tests.canvas_fixtures import ADMIN, EXPIRED, TEACHER

# The shared simulator and its server, as fixtures of this module.
sim = canvas_fixtures.sim
server = canvas_fixtures.server

GROUPS = "/api/v1/accounts/1/outcome_groups"


@pytest.fixture
def http(sim: CanvasSimulator, server: str) -> Iterator[httpx.Client]:
    sim.reset()
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        yield client


def seed_group(sim: CanvasSimulator, n: int, title: str = "Bulk") -> int:
    """A subgroup of account 1's root holding ``n`` freshly created outcomes."""
    with sim.lock:
        root = sim.outcomes.root_group(sim.accounts.resolve("1"))
        group = sim.outcomes.create_subgroup(root, title=title, description=None, vendor_guid=title.lower())
        for i in range(n):
            sim.outcomes.create_outcome(group, {"title": f"Std {i:03d}", "vendor_guid": f"g-{i:03d}"})
        return group.id


# --- authentication ---------------------------------------------------------------------------


def test_token_failures_use_documented_401_bodies(http: httpx.Client, server: str) -> None:
    path = "/api/v1/accounts/1/outcome_group_links"
    missing = httpx.get(server + path)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json() == {
        "status": "unauthenticated", "errors": [{"message": "user authorization required"}]
    }

    for token in ("nope", EXPIRED):
        bad = httpx.get(server + path, headers={"Authorization": f"Bearer {token}"})
        assert bad.status_code == 401
        assert "www-authenticate" in bad.headers
        assert bad.json() == {"errors": [{"message": "Invalid access token."}]}

    via_query = httpx.get(server + path, params={"access_token": ADMIN})
    assert via_query.status_code == 200


def test_permission_failure_is_401_without_www_authenticate_or_configured_403(
    http: httpx.Client, server: str,
) -> None:
    path = "/api/v1/accounts/1/outcome_groups/1/subgroups"
    teacher = {"Authorization": f"Bearer {TEACHER}"}
    assert httpx.get(server + path, headers=teacher).status_code == 200  # reading is allowed
    denied = httpx.post(server + path, json={"title": "x"}, headers=teacher)
    assert denied.status_code == 401
    assert "www-authenticate" not in denied.headers
    assert denied.json()["status"] == "unauthorized"

    http.put("/_sim/auth", json={"unauthorized_status": 403}).raise_for_status()
    forbidden = httpx.post(server + path, json={"title": "x"}, headers=teacher)
    assert forbidden.status_code == 403
    assert "Rate Limit" not in forbidden.text


# --- pagination -------------------------------------------------------------------------------


def test_link_header_has_canvas_format_and_drops_access_token(
    sim: CanvasSimulator, http: httpx.Client, server: str,
) -> None:
    gid = seed_group(sim, 25)
    path = f"/api/v1/accounts/1/outcome_groups/{gid}/outcomes"
    response = httpx.get(
        server + path, params={"outcome_style": "full", "per_page": 10, "page": 2, "access_token": ADMIN}
    )
    assert response.status_code == 200
    assert len(response.json()) == 10
    base = f"{server}{path}?outcome_style=full"
    expected = ",".join([
        f'<{base}&page=2&per_page=10>; rel="current"',
        f'<{base}&page=3&per_page=10>; rel="next"',
        f'<{base}&page=1&per_page=10>; rel="prev"',
        f'<{base}&page=1&per_page=10>; rel="first"',
        f'<{base}&page=3&per_page=10>; rel="last"',
    ])
    assert response.headers["link"] == expected

    first = http.get(path)
    assert len(first.json()) == 10  # default per_page
    assert set(first.links) == {"current", "next", "first", "last"}
    last = http.get(path, params={"page": 3})
    assert [x["outcome"]["title"] for x in last.json()] == [f"Std {i:03d}" for i in range(20, 25)]
    assert "next" not in last.links
    clamped = http.get(path, params={"per_page": 500})
    assert len(clamped.json()) == 25
    assert "per_page=100" in clamped.links["current"]["url"]


def test_opaque_bookmark_pages_can_be_followed(sim: CanvasSimulator, http: httpx.Client) -> None:
    gid = seed_group(sim, 12)
    http.put("/_sim/paging", json={"opaque": True, "include_last": False}).raise_for_status()
    url: str | None = f"/api/v1/accounts/1/outcome_groups/{gid}/outcomes?per_page=5"
    titles: list[str] = []
    while url:
        response = http.get(url)
        assert "last" not in response.links
        titles += [x["outcome"]["title"] for x in response.json()]
        url = response.links.get("next", {}).get("url")
        assert url is None or "page=bookmark%3A" in url
    assert titles == [f"Std {i:03d}" for i in range(12)]


# --- throttling -------------------------------------------------------------------------------


def test_quota_headers_and_403_rate_limit_body(sim: CanvasSimulator, http: httpx.Client) -> None:
    http.put("/_sim/throttle", json={"capacity": 3, "leak_rate": 0, "cost_per_request": 1}).raise_for_status()
    remaining = []
    for _ in range(3):
        ok = http.get("/api/v1/accounts/1/outcome_groups")
        assert ok.status_code == 200
        assert float(ok.headers["x-request-cost"]) == 1.0
        remaining.append(float(ok.headers["x-rate-limit-remaining"]))
    assert remaining == [2.0, 1.0, 0.0]
    refused = http.get("/api/v1/accounts/1/outcome_groups")
    assert refused.status_code == 403
    assert refused.text == "403 Forbidden (Rate Limit Exceeded)\n"
    assert refused.headers["x-request-cost"] == "0.0"
    assert http.get("/_sim/state").status_code == 200  # control API is never throttled
    assert http.get("/_sim/stats").json()["throttled"] == 1


def test_throttle_can_answer_429_and_refills(sim: CanvasSimulator, http: httpx.Client) -> None:
    http.put("/_sim/throttle", json={"capacity": 1, "leak_rate": 0, "status": 429}).raise_for_status()
    assert http.get("/api/v1/outcomes/1").status_code == 404  # costs the only unit
    refused = http.get("/api/v1/outcomes/1")
    assert refused.status_code == 429
    assert "Rate Limit Exceeded" in refused.text
    # Throttle buckets are per token: another token still has its quota.
    other = http.get("/api/v1/outcomes/1", headers={"Authorization": f"Bearer {TEACHER}"})
    assert other.status_code == 404
    http.put("/_sim/throttle", json={"status": 403}).raise_for_status()  # reconfiguring empties buckets
    assert http.get("/api/v1/outcomes/1").status_code == 404
    assert http.put("/_sim/throttle", json={"status": 500}).status_code == 422


def test_parallel_requests_pay_a_preflight_penalty_that_is_credited_back() -> None:
    throttle = Throttle(ThrottleConfig(capacity=10, leak_rate=0, cost_per_request=1, preflight_penalty=4))
    first = throttle.admit("t")
    second = throttle.admit("t")  # arrives while the first is in flight
    assert first is not None and second is not None
    assert (first.penalty, second.penalty) == (0.0, 4.0)
    assert throttle.remaining("t") == 6.0
    assert throttle.finish(second) == (1.0, 9.0)  # penalty back, real cost charged
    assert throttle.finish(first) == (1.0, 8.0)


# --- outcome groups and outcomes ----------------------------------------------------------------


def test_root_outcome_group_redirects_to_the_group(http: httpx.Client, server: str) -> None:
    response = http.get("/api/v1/accounts/self/root_outcome_group")
    assert response.status_code == 302
    assert response.headers["location"] == f"{server}/api/v1/accounts/1/outcome_groups/1"
    group = http.get(response.headers["location"]).json()
    assert group["title"] == "District A"
    assert "parent_outcome_group" not in group


def test_outcome_style_abbrev_omits_description(sim: CanvasSimulator, http: httpx.Client) -> None:
    created = http.post(
        "/api/v1/accounts/1/outcome_groups/1/outcomes",
        json={
            "title": "RL.1", "description": "Read closely", "vendor_guid": "AB-1", "display_name": "Reading",
        },
    )
    assert created.status_code == 200
    path = "/api/v1/accounts/1/outcome_groups/1/outcomes"
    abbrev = http.get(path).json()[0]["outcome"]
    full = http.get(path, params={"outcome_style": "full"}).json()[0]["outcome"]
    assert "description" not in abbrev
    assert abbrev["vendor_guid"] == "AB-1"
    assert full["description"] == "Read closely"
    assert full["display_name"] == "Reading"
    links = http.get("/api/v1/accounts/1/outcome_group_links", params={"outcome_style": "full"}).json()
    assert [(link["outcome"]["vendor_guid"], link["outcome_group"]["id"]) for link in links] == [("AB-1", 1)]


def test_validation_errors_are_answered_like_canvas(http: httpx.Client) -> None:
    missing_title = http.post("/api/v1/accounts/1/outcome_groups/1/outcomes", json={"description": "x"})
    assert missing_title.status_code == 400
    assert missing_title.json() == {
        "errors": {"title": [{"attribute": "title", "type": "blank", "message": "can't be blank"}]}
    }
    bad_method = http.post(
        "/api/v1/accounts/1/outcome_groups/1/outcomes", json={"title": "x", "calculation_method": "median"}
    )
    assert bad_method.status_code == 400
    assert "calculation_method" in bad_method.json()["errors"]
    # Canvas renders a bare "error" when a subgroup fails to save or the root is edited.
    assert http.post("/api/v1/accounts/1/outcome_groups/1/subgroups", json={}).json() == "error"
    assert http.put("/api/v1/accounts/1/outcome_groups/1", json={"title": "New"}).status_code == 400
    assert http.get("/api/v1/accounts/1/outcome_groups/999").status_code == 404
    assert http.get("/api/v1/accounts/77/outcome_groups").json() == {
        "errors": [{"message": "The specified resource does not exist."}]
    }


def test_form_encoded_bodies_with_nested_ratings(http: httpx.Client) -> None:
    body = (
        "title=Outcome+Title&vendor_guid=customid9000&mastery_points=3"
        "&ratings[][description]=Exceeds&ratings[][points]=5"
        "&ratings[][description]=Meets&ratings[][points]=3"
    )
    response = http.post(
        "/api/v1/accounts/1/outcome_groups/1/outcomes", content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    outcome = response.json()["outcome"]
    assert outcome["ratings"] == [
        {"description": "Exceeds", "points": 5.0}, {"description": "Meets", "points": 3.0},
    ]
    assert (outcome["points_possible"], outcome["mastery_points"]) == (5.0, 3.0)
    multipart = http.post("/api/v1/accounts/1/outcome_groups/1/subgroups", files={"title": (None, "Via -F")})
    assert multipart.json()["title"] == "Via -F"


def test_unlinking_the_last_link_deletes_the_outcome(sim: CanvasSimulator, http: httpx.Client) -> None:
    a = http.post("/api/v1/accounts/1/outcome_groups/1/subgroups", json={"title": "A"}).json()["id"]
    b = http.post("/api/v1/accounts/1/outcome_groups/1/subgroups", json={"title": "B"}).json()["id"]
    oid = http.post(f"{GROUPS}/{a}/outcomes", json={"title": "O"}).json()["outcome"]["id"]
    linked = http.put(f"/api/v1/accounts/1/outcome_groups/{b}/outcomes/{oid}")
    assert linked.status_code == 200
    again = http.put(f"/api/v1/accounts/1/outcome_groups/{b}/outcomes/{oid}")
    assert again.json()["url"] == linked.json()["url"]  # linked into a group only once
    assert http.get("/_sim/state").json()["counts"]["outcome_links"] == 2

    assert http.delete(f"/api/v1/accounts/1/outcome_groups/{a}/outcomes/{oid}").status_code == 200
    assert http.get(f"/api/v1/outcomes/{oid}").status_code == 200  # still linked in B
    http.put(f"/_sim/outcomes/{oid}/alignment", json={"aligned": True}).raise_for_status()
    blocked = http.delete(f"/api/v1/accounts/1/outcome_groups/{b}/outcomes/{oid}")
    assert blocked.status_code == 400
    assert "aligned" in blocked.json()["message"]
    http.put(f"/_sim/outcomes/{oid}/alignment", json={"aligned": False}).raise_for_status()
    assert http.delete(f"/api/v1/accounts/1/outcome_groups/{b}/outcomes/{oid}").status_code == 200
    assert http.get(f"/api/v1/outcomes/{oid}").status_code == 404
    assert http.delete(f"/api/v1/accounts/1/outcome_groups/{b}/outcomes/{oid}").status_code == 404


def test_delete_group_cascades_but_keeps_outcomes_linked_elsewhere(http: httpx.Client) -> None:
    parent = http.post("/api/v1/accounts/1/outcome_groups/1/subgroups", json={"title": "P"}).json()["id"]
    child = http.post(f"{GROUPS}/{parent}/subgroups", json={"title": "C"}).json()["id"]
    gone = http.post(f"/api/v1/accounts/1/outcome_groups/{child}/outcomes", json={"title": "gone"}).json()
    kept = http.post(f"/api/v1/accounts/1/outcome_groups/{child}/outcomes", json={"title": "kept"}).json()
    http.put(f"/api/v1/accounts/1/outcome_groups/1/outcomes/{kept['outcome']['id']}").raise_for_status()

    assert http.delete(f"/api/v1/accounts/1/outcome_groups/{parent}").status_code == 200
    assert http.get(f"/api/v1/accounts/1/outcome_groups/{child}").status_code == 404
    assert http.get(f"/api/v1/outcomes/{gone['outcome']['id']}").status_code == 404
    assert http.get(f"/api/v1/outcomes/{kept['outcome']['id']}").status_code == 200
    assert http.delete("/api/v1/accounts/1/outcome_groups/1").status_code == 400  # never the root


def test_update_group_moves_it_but_refuses_cycles(http: httpx.Client) -> None:
    a = http.post("/api/v1/accounts/1/outcome_groups/1/subgroups", json={"title": "A"}).json()["id"]
    b = http.post(f"/api/v1/accounts/1/outcome_groups/{a}/subgroups", json={"title": "B"}).json()["id"]
    assert http.put(f"{GROUPS}/{a}", json={"parent_outcome_group_id": b}).status_code == 400
    moved = http.put(
        f"/api/v1/accounts/1/outcome_groups/{b}", json={"parent_outcome_group_id": 1, "vendor_guid": "v-b"}
    ).json()
    assert moved["parent_outcome_group"]["id"] == 1
    assert moved["vendor_guid"] == "v-b"
    subgroups = http.get("/api/v1/accounts/1/outcome_groups/1/subgroups").json()
    assert [g["title"] for g in subgroups] == ["A", "B"]
    assert "description" not in subgroups[0]  # abbreviated form


def test_accounts_by_sis_id_and_outcomes_available_from_ancestors(http: httpx.Client) -> None:
    sub = http.post(
        "/_sim/accounts", json={"name": "School", "sis_account_id": "SCH-1", "parent_account_id": 1}
    )
    sub_root = sub.json()["root_outcome_group_id"]
    outcome = http.post("/api/v1/accounts/1/outcome_groups/1/outcomes", json={"title": "District std"}).json()
    oid = outcome["outcome"]["id"]
    linked = http.put(f"/api/v1/accounts/sis_account_id:SCH-1/outcome_groups/{sub_root}/outcomes/{oid}")
    assert linked.status_code == 200
    assert linked.json()["context_id"] == sub.json()["id"]
    sub_groups = f"/api/v1/accounts/{sub.json()['id']}/outcome_groups"
    local = http.post(f"{sub_groups}/{sub_root}/outcomes", json={"title": "L"})
    local_id = local.json()["outcome"]["id"]
    # A school's own outcome is not available to the district above it.
    assert http.put(f"/api/v1/accounts/1/outcome_groups/1/outcomes/{local_id}").status_code == 400
    assert http.get("/api/v1/accounts/sis_account_id:NOPE/outcome_groups").status_code == 404


# --- control API ------------------------------------------------------------------------------


def test_state_stats_and_reset(sim: CanvasSimulator, http: httpx.Client) -> None:
    group = http.post(f"{GROUPS}/1/subgroups", json={"title": "G", "vendor_guid": "doc-1"})
    gid = group.json()["id"]
    for _ in range(2):
        http.post(f"{GROUPS}/{gid}/outcomes", json={"title": "T", "vendor_guid": "std-1"})
    state = http.get("/_sim/state").json()
    assert state["counts"] == {
        "accounts": 1, "users": 3, "outcome_groups": 2, "outcomes": 2, "outcome_links": 2,
    }
    g = next(x for x in state["accounts"][0]["outcome_groups"] if x["id"] == gid)
    assert (g["vendor_guid"], g["parent_outcome_group_id"]) == ("doc-1", 1)
    assert [o["vendor_guid"] for o in g["outcomes"]] == ["std-1", "std-1"]

    stats = http.get("/_sim/stats").json()
    assert stats["creates_by_vendor_guid"]["outcome"] == {"std-1": 2}
    assert stats["duplicate_vendor_guids"]["outcome"] == ["std-1"]
    assert stats["requests"]["POST /api/v1/accounts/:id/outcome_groups/:id/outcomes"] == {"200": 2}
    assert sim.stats.creates("outcome_group", "doc-1") == 1

    assert http.post("/_sim/reset").json() == {"reset": True}
    assert http.get("/_sim/state").json()["counts"]["outcomes"] == 0
    assert http.get("/_sim/stats").json()["total"] == 0


def test_faults_apply_to_api_only_and_are_counted(http: httpx.Client) -> None:
    http.put("/_sim/faults", json={"error_rate": 1.0, "remaining": 1}).raise_for_status()
    assert http.get("/api/v1/accounts/1/outcome_groups").status_code == 500
    assert http.get("/api/v1/accounts/1/outcome_groups").status_code == 200
    stats = http.get("/_sim/stats").json()
    assert stats["requests"]["GET /api/v1/accounts/:id/outcome_groups"] == {"200": 1, "500": 1}
