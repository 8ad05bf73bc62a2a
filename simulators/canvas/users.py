"""HTTP routes for users and logins.

Seed: ``DELETE /api/v1/accounts/:account_id/users/:user_id`` and
``PUT /api/v1/accounts/:account_id/users/:user_id/restore`` (002:L16567-16587). The rest is not in
the seeds and follows Canvas's public REST API documentation:
- Users https://canvas.instructure.com/doc/api/users.html: "Create a user"
  (``POST /api/v1/accounts/:account_id/users``), "Show user details" (``GET /api/v1/users/:id``),
  "Edit a user" (``PUT /api/v1/users/:id``), "List users in account"
  (``GET /api/v1/accounts/:account_id/users``).
- Logins https://canvas.instructure.com/doc/api/logins.html: "List user logins"
  (``GET /api/v1/users/:user_id/logins``, ``GET /api/v1/accounts/:account_id/logins``),
  "Edit a user login" (``PUT /api/v1/accounts/:account_id/logins/:id``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from simulators.canvas.api import begin
from simulators.canvas.paging import paginate
from simulators.canvas.params import text
from simulators.canvas.responses import CanvasJSONResponse, not_found
from simulators.canvas.user_store import LoginRecord, UserRecord, UserStore

if TYPE_CHECKING:
    from simulators.canvas.state import CanvasSimulator


def user_json(store: UserStore, user: UserRecord) -> dict[str, Any]:
    """A User with the SIS fields of its primary login."""
    login = store.primary_login(user)
    return {
        "id": user.id, "name": user.name, "created_at": user.created_at, "sortable_name": user.sortable_name,
        "short_name": user.short_name, "sis_user_id": login.sis_user_id if login else None,
        "integration_id": login.integration_id if login else None, "sis_import_id": None,
        "login_id": login.unique_id if login else None, "email": user.email,
    }


def login_json(login: LoginRecord) -> dict[str, Any]:
    """A Login (pseudonym)."""
    return {
        "id": login.id, "user_id": login.user_id, "account_id": login.account_id, "unique_id": login.unique_id,
        "sis_user_id": login.sis_user_id, "integration_id": login.integration_id,
        "authentication_provider_id": None, "authentication_provider_type": None,
        "workflow_state": login.workflow_state, "declared_user_type": None, "created_at": login.created_at,
    }


class UserRoutes:
    """User and login handlers of one simulator."""

    def __init__(self, sim: CanvasSimulator) -> None:
        self.sim = sim

    def routes(self) -> list[BaseRoute]:
        """The API routes."""
        acct = "/api/v1/accounts/{account_id}"
        return [
            Route(acct + "/users", self.create, methods=["POST"]),
            Route(acct + "/users", self.list_account_users, methods=["GET"]),
            Route(acct + "/users/{user_id}", self.delete, methods=["DELETE"]),
            Route(acct + "/users/{user_id}/restore", self.restore, methods=["PUT"]),
            Route(acct + "/logins", self.list_account_logins, methods=["GET"]),
            Route(acct + "/logins/{login_id}", self.update_login, methods=["PUT"]),
            Route("/api/v1/users/{user_id}", self.show, methods=["GET"]),
            Route("/api/v1/users/{user_id}", self.update, methods=["PUT"]),
            Route("/api/v1/users/{user_id}/logins", self.list_user_logins, methods=["GET"]),
        ]

    @property
    def store(self) -> UserStore:
        """The simulator's user store."""
        return self.sim.users

    async def create(self, request: Request) -> Response:
        """Create a user with one login; duplicate unique_id / sis_user_id answer a typed 400."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            account = self.sim.accounts.resolve(request.path_params["account_id"])
            user, _ = self.store.create(account, call.params, can_manage_sis=call.principal.can_manage_sis)
            return CanvasJSONResponse(user_json(self.store, user))

    async def list_account_users(self, request: Request) -> Response:
        """Users with a login in the account, ``search_term`` on name, login and SIS id."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            account = self.sim.accounts.resolve(request.path_params["account_id"])
            users = self.store.in_account(account, text(call.params, "search_term"))
            page, headers = paginate(request, users, self.sim.paging)
            return CanvasJSONResponse([user_json(self.store, u) for u in page], headers=headers)

    async def show(self, request: Request) -> Response:
        """``GET /users/:id`` by id, ``self``, ``sis_user_id:`` or ``sis_login_id:``."""
        call = await begin(request, self.sim.tokens)
        with self.sim.lock:
            user = self.store.resolve(request.path_params["user_id"], call.principal.user_id)
            return CanvasJSONResponse(user_json(self.store, user))

    async def update(self, request: Request) -> Response:
        """``PUT /users/:id`` with ``user[name|short_name|sortable_name|email]``."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            user = self.store.resolve(request.path_params["user_id"], call.principal.user_id)
            self.store.update(user, call.params)
            return CanvasJSONResponse(user_json(self.store, user))

    async def delete(self, request: Request) -> Response:
        """Seed: delete the user from the root account (its enrollments there are deleted too)."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            account = self.sim.accounts.resolve(request.path_params["account_id"])
            user = self.store.resolve(request.path_params["user_id"], call.principal.user_id)
            self.store.delete(user, account.root_id)
            for enrollment in self.sim.enrollments.enrollments.values():
                if enrollment.user_id == user.id and enrollment.root_account_id == account.root_id:
                    enrollment.enrollment_state = "deleted"
                    enrollment.touch()
            return CanvasJSONResponse(user_json(self.store, user))

    async def restore(self, request: Request) -> Response:
        """Seed: restore the user and its most recently deleted login."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            account = self.sim.accounts.resolve(request.path_params["account_id"])
            user = self.store.resolve(request.path_params["user_id"], call.principal.user_id, include_deleted=True)
            self.store.restore(user, account.root_id)
            return CanvasJSONResponse(user_json(self.store, user))

    async def list_user_logins(self, request: Request) -> Response:
        """The user's active logins."""
        call = await begin(request, self.sim.tokens)
        with self.sim.lock:
            user = self.store.resolve(request.path_params["user_id"], call.principal.user_id)
            page, headers = paginate(request, self.store.logins_of(user), self.sim.paging)
            return CanvasJSONResponse([login_json(lg) for lg in page], headers=headers)

    async def list_account_logins(self, request: Request) -> Response:
        """Active logins of the account's root."""
        await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            account = self.sim.accounts.resolve(request.path_params["account_id"])
            logins = sorted((lg for lg in self.store.logins.values()
                             if lg.account_id == account.root_id and lg.workflow_state == "active"),
                            key=lambda lg: lg.id)
            page, headers = paginate(request, logins, self.sim.paging)
            return CanvasJSONResponse([login_json(lg) for lg in page], headers=headers)

    async def update_login(self, request: Request) -> Response:
        """Change ``login[unique_id|sis_user_id|integration_id]``; SIS fields need manage_sis."""
        call = await begin(request, self.sim.tokens, manage=True)
        with self.sim.lock:
            account = self.sim.accounts.resolve(request.path_params["account_id"])
            login = self.store.login(request.path_params["login_id"])
            if login.account_id != account.root_id:
                raise not_found()
            self.store.update_login(login, call.params, can_manage_sis=call.principal.can_manage_sis)
            return CanvasJSONResponse(login_json(login))
