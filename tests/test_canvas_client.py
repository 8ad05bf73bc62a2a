"""CanvasClient against the Canvas simulator over loopback HTTP (no mock transports)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from simulators.canvas import CanvasSimulator
from tests import canvas_fixtures
from tests.canvas_fixtures import ADMIN, EXPIRED, TEACHER
from tests.http_settings import http_settings
from worker.clients.canvas import CanvasClient
from worker.clients.errors import (
    AccessDeniedError,
    AmbiguousWriteError,
    AuthenticationError,
    ForbiddenError,
    MalformedResponseError,
    NotFoundError,
    PermanentUpstreamError,
    ThrottledError,
    TransientUpstreamError,
)
from worker.errors import Verdict, classify

ACCOUNT = "1"

pytestmark = pytest.mark.anyio

# The shared simulator and its server, as fixtures of this module.
sim = canvas_fixtures.sim
server = canvas_fixtures.server


@pytest.fixture
def url(sim: CanvasSimulator, server: str) -> str:
    sim.reset()
    return server


def client(url: str, token: str = ADMIN, *, max_retries: int = 5, timeout: float = 5.0, **kwargs: Any) -> CanvasClient:
    options: dict[str, Any] = {"max_pause": 0.05, **kwargs}
    return CanvasClient(url, token, http=http_settings(max_retries, timeout), **options)


def control(url: str, method: str, path: str, body: dict[str, Any]) -> None:
    httpx.request(method, url + path, json=body).raise_for_status()


def seed_group(sim: CanvasSimulator, n: int) -> int:
    """A subgroup of the root holding ``n`` outcomes, created directly in the simulator."""
    with sim.lock:
        root = sim.outcomes.root_group(sim.accounts.resolve(ACCOUNT))
        group = sim.outcomes.create_subgroup(root, title="Bulk", description=None, vendor_guid="bulk")
        for i in range(n):
            sim.outcomes.create_outcome(
                group, {"title": f"Std {i:03d}", "vendor_guid": f"g-{i:03d}", "description": f"d{i}"}
            )
        return group.id


# --- auth -------------------------------------------------------------------------------------


async def test_rejected_tokens_raise_authentication_error(url: str) -> None:
    for token in ("not-a-token", EXPIRED):
        async with client(url, token) as c:
            with pytest.raises(AuthenticationError) as info:
                await c.root_outcome_group(ACCOUNT)
            assert info.value.status == 401
            assert token not in str(info.value)  # secrets never reach error messages


async def test_missing_permission_is_access_denied_not_an_invalid_token(sim: CanvasSimulator, url: str) -> None:
    # canvas.md §1.2: 401 without WWW-Authenticate is a permission the token's user lacks. Like a
    # missing scope it pauses the component (FLOWS.md decision 8), so it is a credentials error.
    async with client(url, TEACHER) as c:
        root = await c.root_outcome_group(ACCOUNT)  # reading is allowed
        with pytest.raises(AccessDeniedError) as info:
            await c.create_outcome_subgroup(ACCOUNT, root.id, title="Nope")
        assert classify(info.value) is Verdict.PAUSE
        assert info.value.status == 401
        assert "lacks permission" in str(info.value) and "not authorized" in str(info.value)


# --- pagination -------------------------------------------------------------------------------


async def test_pagination_follows_next_links_past_100_links(sim: CanvasSimulator, url: str) -> None:
    gid = seed_group(sim, 230)
    async with client(url) as c:
        links = await c.group_outcome_links(ACCOUNT, gid)
        everything = await c.account_outcome_links(ACCOUNT)
    assert [link.outcome.vendor_guid for link in links] == [f"g-{i:03d}" for i in range(230)]
    assert links[229].outcome.description == "d229"  # outcome_style=full
    assert {link.group_id for link in links} == {gid}
    assert len(everything) == 230
    assert sim.stats.count("GET /api/v1/accounts/:id/outcome_groups/:id/outcomes", 200) == 3

    async with client(url, per_page=40) as c:
        pages = [len(page) async for page in c.pages(f"/api/v1/accounts/1/outcome_groups/{gid}/outcomes")]
    assert pages == [40, 40, 40, 40, 40, 30]


# --- outcome lifecycle ------------------------------------------------------------------------


async def test_full_outcome_lifecycle(sim: CanvasSimulator, url: str) -> None:
    async with client(url) as c:
        root = await c.root_outcome_group("self")
        assert (root.title, root.parent_outcome_group_id) == ("District A", None)

        doc = await c.create_outcome_subgroup(
            ACCOUNT, root.id, title="ELA Grade 3", description="Common Core", vendor_guid="doc-guid"
        )
        assert (doc.vendor_guid, doc.parent_outcome_group_id) == ("doc-guid", root.id)
        assert doc.description == "Common Core"
        sub = await c.create_outcome_subgroup(ACCOUNT, doc.id, title="Reading")
        assert [(g.id, g.parent_outcome_group_id) for g in await c.outcome_subgroups(ACCOUNT, doc.id)] == [
            (sub.id, doc.id)
        ]

        link = await c.create_linked_outcome(
            ACCOUNT, sub.id, title="RL.3.1", description="Ask and answer questions", vendor_guid="std-guid",
            display_name="Key ideas",
        )
        assert (link.group_id, link.outcome.vendor_guid, link.outcome.context_id) == (sub.id, "std-guid", 1)

        listed = await c.group_outcome_links(ACCOUNT, sub.id)
        assert [(x.outcome.title, x.outcome.description, x.outcome.display_name) for x in listed] == [
            ("RL.3.1", "Ask and answer questions", "Key ideas")
        ]
        by_guid = {x.outcome.vendor_guid: x for x in await c.account_outcome_links(ACCOUNT)}
        assert by_guid["std-guid"].outcome_id == link.outcome_id

        updated = await c.update_outcome(link.outcome_id, description="Ask and answer questions (rev)")
        assert updated.description == "Ask and answer questions (rev)"
        assert updated.title == "RL.3.1"
        fetched = await c.get_outcome(link.outcome_id)
        assert fetched.description == updated.description

        renamed = await c.update_outcome_group(ACCOUNT, sub.id, title="Reading: Literature")
        assert renamed.title == "Reading: Literature"
        assert (await c.outcome_group(ACCOUNT, sub.id)).title == "Reading: Literature"

        # Link into a second group, unlink from the first: the outcome survives the first unlink.
        moved = await c.link_outcome(ACCOUNT, doc.id, link.outcome_id)
        assert moved.group_id == doc.id
        await c.unlink_outcome(ACCOUNT, sub.id, link.outcome_id)
        assert (await c.get_outcome(link.outcome_id)).id == link.outcome_id
        await c.unlink_outcome(ACCOUNT, doc.id, link.outcome_id)
        with pytest.raises(NotFoundError):
            await c.get_outcome(link.outcome_id)

        await c.delete_outcome_group(ACCOUNT, doc.id)
        assert [g.id for g in await c.account_outcome_groups(ACCOUNT)] == [root.id]
    assert sim.stats.creates("outcome", "std-guid") == 1


async def test_client_errors_are_typed(url: str) -> None:
    async with client(url) as c:
        root = await c.root_outcome_group(ACCOUNT)
        with pytest.raises(NotFoundError):
            await c.get_outcome(9999)
        with pytest.raises(PermanentUpstreamError) as info:
            await c.create_linked_outcome(ACCOUNT, root.id, title=" ", description="", vendor_guid="x")
        assert info.value.status == 400
        assert "title can't be blank" in str(info.value)
        with pytest.raises(ValueError, match="unknown Canvas field"):
            await c.update_outcome_group(ACCOUNT, root.id, name="typo")


# --- throttling -------------------------------------------------------------------------------


async def test_tight_bucket_client_paces_itself_and_succeeds(sim: CanvasSimulator, url: str) -> None:
    control(url, "PUT", "/_sim/throttle", {"capacity": 4, "leak_rate": 40, "cost_per_request": 1})
    async with client(url, max_pause=0.1) as c:
        root = await c.root_outcome_group(ACCOUNT)  # one redirect: two requests
        assert c.budget.remaining is not None
        assert c.budget.remaining < 4
        for _ in range(20):
            group = await c.outcome_group(ACCOUNT, root.id)
            assert group.id == root.id
        assert c.budget.high_water == pytest.approx(4, abs=1)
        assert c.budget.last_cost == 1.0
        assert c.budget.paused_seconds > 0  # it slowed down instead of hammering the quota


async def test_rate_limit_403_retries_then_raises_throttled(sim: CanvasSimulator, url: str) -> None:
    control(url, "PUT", "/_sim/throttle", {"capacity": 1, "leak_rate": 0})
    async with client(url, max_retries=2) as c:
        await c.account_outcome_groups(ACCOUNT)
        with pytest.raises(ThrottledError) as info:
            await c.account_outcome_groups(ACCOUNT)
    assert info.value.status == 403
    assert info.value.retry_after is None  # Canvas sends no Retry-After; the quota headers pace the client
    assert c.budget.throttled == 3
    assert sim.stats.snapshot()["throttled"] == 3


async def test_403_forbidden_is_not_mistaken_for_rate_limit(sim: CanvasSimulator, url: str) -> None:
    control(url, "PUT", "/_sim/auth", {"unauthorized_status": 403})
    async with client(url, TEACHER) as c:
        with pytest.raises(ForbiddenError) as info:
            await c.create_outcome_subgroup(ACCOUNT, 1, title="x")
    assert not isinstance(info.value, ThrottledError)
    assert info.value.status == 403
    assert sim.stats.count("POST /api/v1/accounts/:id/outcome_groups/:id/subgroups") == 1  # no retries


async def test_429_variant_is_throttling_too(sim: CanvasSimulator, url: str) -> None:
    control(url, "PUT", "/_sim/throttle", {"capacity": 1, "leak_rate": 0, "status": 429})
    async with client(url, max_retries=1) as c:
        await c.outcome_group(ACCOUNT, 1)
        with pytest.raises(ThrottledError) as info:
            await c.outcome_group(ACCOUNT, 1)
    assert info.value.status == 429

    # With a refilling bucket the same client rides out the 429s and gets its answer.
    control(url, "PUT", "/_sim/throttle", {"capacity": 1, "leak_rate": 20, "status": 429})
    async with client(url, max_retries=8, max_pause=0.0) as c:
        groups = [await c.outcome_group(ACCOUNT, 1) for _ in range(4)]
    assert [g.id for g in groups] == [1, 1, 1, 1]
    assert c.budget.throttled > 0


# --- malformed bodies and server errors -------------------------------------------------------


async def test_html_error_page_is_malformed(url: str) -> None:
    control(url, "PUT", "/_sim/faults", {"html_error_rate": 1.0})
    async with client(url, max_retries=1) as c:
        with pytest.raises(MalformedResponseError) as info:
            await c.get_outcome(1)
    assert info.value.status == 502


async def test_truncated_body_is_malformed(url: str) -> None:
    control(url, "PUT", "/_sim/faults", {"malformed_rate": 1.0})
    async with client(url) as c:
        with pytest.raises(MalformedResponseError):
            await c.account_outcome_groups(ACCOUNT)


async def test_5xx_is_retried_until_it_passes(sim: CanvasSimulator, url: str) -> None:
    control(url, "PUT", "/_sim/faults", {"error_rate": 1.0, "remaining": 2})
    async with client(url) as c:
        groups = await c.account_outcome_groups(ACCOUNT)
    assert [g.title for g in groups] == ["District A"]
    assert sim.stats.count("GET /api/v1/accounts/:id/outcome_groups", 500) == 2


async def test_5xx_gives_up_after_max_retries_and_never_retries_posts(sim: CanvasSimulator, url: str) -> None:
    control(url, "PUT", "/_sim/faults", {"error_rate": 1.0})
    async with client(url, max_retries=2) as c:
        with pytest.raises(TransientUpstreamError) as info:
            await c.get_outcome(1)
        assert info.value.status == 500
        with pytest.raises(AmbiguousWriteError) as ambiguous:
            await c.create_outcome_subgroup(ACCOUNT, 1, title="x")
        assert classify(ambiguous.value) is Verdict.RETRY and "outcome unknown" in str(ambiguous.value)
    assert sim.stats.count("GET /api/v1/outcomes/:id", 500) == 3
    # A POST that failed may have been applied; the caller re-checks before creating again.
    assert sim.stats.count("POST /api/v1/accounts/:id/outcome_groups/:id/subgroups", 500) == 1


async def test_timeout_is_retried(sim: CanvasSimulator, url: str) -> None:
    control(url, "PUT", "/_sim/faults", {"timeout_rate": 1.0, "timeout_seconds": 1.0, "remaining": 1})
    async with client(url, timeout=0.3) as c:
        root = await c.outcome_group(ACCOUNT, 1)
    assert root.id == 1
