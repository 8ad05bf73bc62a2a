"""OAuth2 refresh in CanvasClient against the simulator's token endpoint (canvas.md §1.2).

Refresh before expiry, refresh on a 401 that says "expired", one refresh for many concurrent
requests, a POST repeated after a refresh (it was refused, not applied), a revoked refresh token
pausing the component, and static tokens unchanged.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from simulators.canvas import CanvasSimulator
from tests import canvas_fixtures
from tests.http_settings import http_settings
from worker.clients.canvas import CanvasClient, OAuthCredentials
from worker.clients.canvas_errors import TokenExpiredError
from worker.clients.canvas_oauth import OAuthToken
from worker.clients.errors import AuthenticationError
from worker.errors import Verdict, classify

pytestmark = pytest.mark.anyio

sim = canvas_fixtures.sim
server = canvas_fixtures.server


@pytest.fixture
def url(sim: CanvasSimulator, server: str) -> str:
    sim.reset()
    return server


def oauth_client(sim: CanvasSimulator, url: str, *, margin: float = 0.0, concurrency: int = 1,
                 refresh_token: str | None = None, secret: str | None = None) -> CanvasClient:
    creds = OAuthCredentials(client_id=sim.oauth.config.client_id,
                             client_secret=secret or sim.oauth.config.client_secret,
                             refresh_token=refresh_token or sim.oauth.add_refresh_token(1), refresh_margin=margin)
    return CanvasClient(url, oauth=creds, http=http_settings(2, 5.0), max_pause=0.0, concurrency=concurrency)


def control(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> None:
    httpx.request(method, url + path, json=body).raise_for_status()


def refreshes(c: CanvasClient) -> int:
    assert isinstance(c.tokens, OAuthToken)
    return c.tokens.refreshes


async def test_first_call_fetches_a_token_and_refreshes_before_expiry(sim: CanvasSimulator, url: str) -> None:
    control(url, "PUT", "/_sim/oauth", {"access_token_lifetime": 2})
    async with oauth_client(sim, url, margin=1.0) as c:
        await c.get_account("self")
        assert refreshes(c) == 1
        first = c.tokens.current()
        await c.get_account("self")
        assert refreshes(c) == 1  # still fresh
        await anyio.sleep(1.1)  # within the margin of expiry now
        await c.get_account("self")
        assert refreshes(c) == 2 and c.tokens.current() != first
    assert sim.stats.count(status=401) == 0, "the token was renewed before Canvas had to refuse it"


async def test_expired_401_refreshes_once_and_repeats_the_request(sim: CanvasSimulator, url: str) -> None:
    async with oauth_client(sim, url) as c:
        await c.get_account("self")
        control(url, "POST", "/_sim/oauth/expire")
        # A POST refused with 401 was never applied: repeating it after the refresh is safe.
        course = (await c.create_course("1", name="Bio", sis_course_id="C-1")).value
        assert refreshes(c) == 2
    assert sim.stats.count("POST /api/v1/accounts/:id/courses", 401) == 1
    assert sim.stats.count("POST /api/v1/accounts/:id/courses", 200) == 1
    assert sim.stats.creates("course", "C-1") == 1 and course.sis_course_id == "C-1"


async def test_concurrent_requests_share_one_refresh(sim: CanvasSimulator, url: str) -> None:
    async with oauth_client(sim, url, concurrency=8) as c:
        await c.get_account("self")
        control(url, "POST", "/_sim/oauth/expire")
        results: list[str] = []

        async def one() -> None:
            results.append((await c.get_account("self")).id)

        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(one)
        assert results == ["1"] * 8
        assert refreshes(c) == 2, "eight requests met the expired token; one refresh served them all"
    assert sim.stats.count("GET /api/v1/accounts/:id", 401) >= 2


async def test_revoked_refresh_token_pauses(sim: CanvasSimulator, url: str) -> None:
    async with oauth_client(sim, url, refresh_token="never-issued") as c:
        with pytest.raises(AuthenticationError) as info:
            await c.get_account("self")
    assert classify(info.value) is Verdict.PAUSE
    assert "OAuth2 refresh refused" in str(info.value) and "never-issued" not in str(info.value)

    old_secret = sim.oauth.config.client_secret
    control(url, "PUT", "/_sim/oauth", {"client_secret": "rotated"})
    async with oauth_client(sim, url, secret=old_secret) as c:
        with pytest.raises(AuthenticationError, match="refresh refused"):
            await c.get_account("self")


async def test_static_tokens_are_never_refreshed(sim: CanvasSimulator, url: str) -> None:
    sim.add_token("static-expired", {"user_id": 1, "expires_at": 1.0, "expired_message": "Expired access token"})
    async with CanvasClient(url, "static-expired", http=http_settings(2, 5.0)) as c:
        with pytest.raises(TokenExpiredError) as info:
            await c.get_account("self")
    assert classify(info.value) is Verdict.PAUSE
    assert sim.stats.count("GET /api/v1/accounts/:id", 401) == 1
    async with CanvasClient(url, canvas_fixtures.ADMIN, http=http_settings(2, 5.0)) as c:
        assert (await c.get_account("self")).id == "1"
    with pytest.raises(ValueError):
        CanvasClient(url)
