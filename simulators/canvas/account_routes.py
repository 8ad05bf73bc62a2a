"""HTTP routes for reading accounts (seed 002:L16494-16880; 003:L318; canvas.md §3.2, §4 "Accounts").

``GET /api/v1/accounts`` (the accounts the caller administers: every root account here),
``GET /api/v1/accounts/:id`` ("given by id or sis sis_account_id", plus ``self``) and
``GET /api/v1/accounts/:account_id/sub_accounts`` (``recursive``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from simulators.canvas.accounts import Account
from simulators.canvas.api import begin
from simulators.canvas.paging import paginate
from simulators.canvas.params import to_bool
from simulators.canvas.responses import CanvasJSONResponse

if TYPE_CHECKING:
    from simulators.canvas.state import CanvasSimulator


def account_json(account: Account) -> dict[str, Any]:
    """The seed's Account object (quotas and the like as Canvas's defaults)."""
    return {
        **account.to_json(), "uuid": f"sim-account-{account.id}", "workflow_state": "active",
        "default_time_zone": "America/Denver", "integration_id": None, "sis_import_id": None,
        "default_storage_quota_mb": 500, "default_user_storage_quota_mb": 50, "default_group_storage_quota_mb": 50,
    }


class AccountRoutes:
    """Account read handlers of one simulator."""

    def __init__(self, sim: CanvasSimulator) -> None:
        self.sim = sim

    def routes(self) -> list[BaseRoute]:
        """The API routes."""
        return [
            Route("/api/v1/accounts", self.list_accounts, methods=["GET"]),
            Route("/api/v1/accounts/{account_id}", self.show, methods=["GET"]),
            Route("/api/v1/accounts/{account_id}/sub_accounts", self.sub_accounts, methods=["GET"]),
        ]

    async def list_accounts(self, request: Request) -> Response:
        """Root accounts, by id."""
        await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            roots = sorted((a for a in self.sim.accounts.accounts.values() if a.parent_account_id is None),
                           key=lambda a: a.id)
            page, headers = paginate(request, roots, self.sim.paging)
            return CanvasJSONResponse([account_json(a) for a in page], headers=headers)

    async def show(self, request: Request) -> Response:
        """One account by id, ``sis_account_id:`` or ``self``."""
        await begin(request, self.sim.tokens)
        with self.sim.lock:
            return CanvasJSONResponse(account_json(self.sim.accounts.resolve(request.path_params["account_id"])))

    async def sub_accounts(self, request: Request) -> Response:
        """Direct sub-accounts (all descendants with ``recursive=true``), by id."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            account = self.sim.accounts.resolve(request.path_params["account_id"])
            recursive = bool(to_bool(call.params.get("recursive")))
            found = [
                a for a in self.sim.accounts.accounts.values() if a.id != account.id and (
                    account.id in self.sim.accounts.chain(a.id) if recursive else a.parent_account_id == account.id
                )
            ]
            page, headers = paginate(request, sorted(found, key=lambda a: a.id), self.sim.paging)
            return CanvasJSONResponse([account_json(a) for a in page], headers=headers)
