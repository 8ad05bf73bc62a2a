"""Users and their logins (pseudonyms), with Canvas's uniqueness rules.

Not in the seeds except delete/restore (seed 002:L16567-16587). Behaviour follows Canvas's public
REST API documentation: Users https://canvas.instructure.com/doc/api/users.html ("Create a
user", "Show user details", "Edit a user") and Logins https://canvas.instructure.com/doc/api/logins.html
("List user logins", "Edit a user login"). ``unique_id`` is unique per account (and
authentication provider), case-insensitively; ``sis_user_id`` is unique per root account.
Without manage_sis, ``pseudonym[sis_user_id]`` is silently dropped (FLOWS.md 2.3 trap 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulators.canvas.accounts import Account, AccountRegistry, IdSequence
from simulators.canvas.clock import iso, now
from simulators.canvas.params import nested, text, to_bool
from simulators.canvas.refs import parse_ref
from simulators.canvas.responses import CanvasHTTPError, not_found
from simulators.canvas.stats import Stats

ACTIVE = "active"
DELETED = "deleted"
UNIQUE_ID_TAKEN = "ID already in use for this account and authentication provider"


def sis_in_use(value: str) -> str:
    """Canvas's message for a SIS id that another object holds."""
    return f'SIS ID "{value}" is already in use'


@dataclass
class LoginRecord:
    """A pseudonym: how a user logs in to one root account."""

    id: int
    user_id: int
    account_id: int
    unique_id: str
    sis_user_id: str | None = None
    integration_id: str | None = None
    workflow_state: str = ACTIVE
    created_at: str | None = None


@dataclass
class UserRecord:
    """A Canvas user with its logins and communication channel."""

    id: int
    name: str
    sortable_name: str
    short_name: str
    email: str | None = None
    workflow_state: str = "registered"
    created_at: str | None = None
    login_ids: list[int] = field(default_factory=list)


def _sortable(name: str) -> str:
    parts = name.split()
    return f"{parts[-1]}, {' '.join(parts[:-1])}" if len(parts) > 1 else name


def user_errors(pseudonym: dict[str, Any]) -> CanvasHTTPError:
    """The 400 ``users_controller#create`` renders: errors per object, pseudonym errors inside."""
    return CanvasHTTPError(400, {"errors": {"user": {}, "pseudonym": pseudonym, "observee": {}, "pairing_code": {}}})


def _attr_error(attribute: str, error_type: str, message: str) -> dict[str, Any]:
    return {attribute: [{"attribute": attribute, "type": error_type, "message": message}]}


class UserStore:
    """Users and logins of every root account."""

    def __init__(self, accounts: AccountRegistry, ids: IdSequence, stats: Stats) -> None:
        self._accounts = accounts
        self._ids = ids
        self._stats = stats
        self.users: dict[int, UserRecord] = {}
        self.logins: dict[int, LoginRecord] = {}
        # Logins by (field, value), oldest first, whatever their state: a scan of every login per
        # create made a 20,000-student sync quadratic (a third of the simulator's time at the end).
        self._index: dict[tuple[str, str], list[int]] = {}

    def reset(self) -> None:
        """Drop every created user and login."""
        self.users = {}
        self.logins = {}
        self._index = {}

    @staticmethod
    def _keys(login: LoginRecord) -> list[tuple[str, str]]:
        keys = [("unique_id", login.unique_id.lower())]
        keys += [(f, v) for f, v in (("sis_user_id", login.sis_user_id), ("integration_id", login.integration_id)) if v]
        return keys

    def _indexed(self, field_name: str, value: str) -> list[LoginRecord]:
        """The logins whose ``field_name`` is ``value`` (case-insensitive for ``unique_id``), oldest first."""
        key = value.lower() if field_name == "unique_id" else value
        return [self.logins[i] for i in self._index.get((field_name, key), ())]

    def _unindex(self, login: LoginRecord) -> None:
        for key in self._keys(login):
            self._index[key].remove(login.id)

    def _reindex(self, login: LoginRecord) -> None:
        for key in self._keys(login):
            ids = self._index.setdefault(key, [])
            ids.append(login.id)
            ids.sort()  # oldest first, as the scan over the insertion-ordered dict gave

    # --- look-ups -----------------------------------------------------------------------------

    def record(self, user_id: int) -> UserRecord:
        """A user by id, creating the record for a token owner the core registry knows."""
        user = self.users.get(user_id)
        if user is None:
            core = self._accounts.users.get(user_id)
            if core is None:
                raise not_found()
            user = UserRecord(core.id, core.name, _sortable(core.name), core.name, created_at=iso(now()))
            self.users[user_id] = user
        return user

    def logins_of(self, user: UserRecord, *, include_deleted: bool = False) -> list[LoginRecord]:
        """The user's logins, oldest first."""
        found = [self.logins[i] for i in user.login_ids]
        return [lg for lg in found if include_deleted or lg.workflow_state == ACTIVE]

    def primary_login(self, user: UserRecord) -> LoginRecord | None:
        """The first active login (what Canvas shows as sis_user_id / login_id)."""
        active = self.logins_of(user)
        return active[0] if active else None

    def resolve(self, raw: str, caller_id: int, *, include_deleted: bool = False) -> UserRecord:
        """A user from a path segment or body value: id, ``self``, ``sis_user_id:``, ``sis_login_id:``..."""
        ref = parse_ref(raw)
        user: UserRecord | None = None
        if ref.kind == "self":
            user = self.record(caller_id)
        elif ref.kind == "id":
            user = self.record(ref.as_int())
        elif ref.kind in ("sis_user_id", "sis_login_id", "sis_integration_id"):
            field_name = {"sis_user_id": "sis_user_id", "sis_login_id": "unique_id",
                          "sis_integration_id": "integration_id"}[ref.kind]
            for login in self._indexed(field_name, ref.value):
                if include_deleted or login.workflow_state == ACTIVE:
                    user = self.users[login.user_id]
                    break
        if user is None or (user.workflow_state == DELETED and not include_deleted):
            raise not_found()
        return user

    def login(self, raw: str) -> LoginRecord:
        """A login by id (or ``sis_login_id:``)."""
        ref = parse_ref(raw)
        if ref.kind == "sis_login_id":
            for login in self._indexed("unique_id", ref.value):
                return login
            raise not_found()
        login_found = self.logins.get(ref.as_int())
        if login_found is None:
            raise not_found()
        return login_found

    def _clash(self, root_id: int, *, unique_id: str | None = None, sis_user_id: str | None = None,
               integration_id: str | None = None, ignore: int | None = None) -> str | None:
        for field_name, value in (("unique_id", unique_id), ("sis_user_id", sis_user_id),
                                  ("integration_id", integration_id)):
            if value is None:
                continue
            for login in self._indexed(field_name, value):
                if login.id != ignore and login.workflow_state == ACTIVE and login.account_id == root_id:
                    return field_name
        return None

    # --- writes -------------------------------------------------------------------------------

    def create(self, account: Account, params: dict[str, Any], *, can_manage_sis: bool) -> tuple[UserRecord, bool]:
        """``POST /accounts/:id/users``; returns (user, reactivated)."""
        user_p, pseudo_p, channel_p = nested(params, "user"), nested(params, "pseudonym"), nested(
            params, "communication_channel"
        )
        root_id = account.root_id
        unique_id = text(pseudo_p, "unique_id")
        if not unique_id:
            raise user_errors(_attr_error("unique_id", "too_short", "is too short (minimum is 1 character)"))
        # Without manage_sis Canvas drops the SIS fields silently and still creates the user.
        sis_user_id = text(pseudo_p, "sis_user_id") if can_manage_sis else None
        integration_id = text(pseudo_p, "integration_id") if can_manage_sis else None
        sis_user_id = sis_user_id or None
        integration_id = integration_id or None
        if sis_user_id and to_bool(params.get("enable_sis_reactivation")):
            revived = self._reactivate(root_id, sis_user_id)
            if revived is not None:
                return revived, True
        clash = self._clash(root_id, unique_id=unique_id, sis_user_id=sis_user_id, integration_id=integration_id)
        if clash == "unique_id":
            raise user_errors(_attr_error("unique_id", "taken", UNIQUE_ID_TAKEN))
        if clash == "sis_user_id" and sis_user_id:
            raise user_errors(_attr_error("sis_user_id", "taken", sis_in_use(sis_user_id)))
        if clash == "integration_id" and integration_id:
            message = f'Integration ID "{integration_id}" is already in use'
            raise user_errors(_attr_error("integration_id", "taken", message))
        name = text(user_p, "name") or unique_id
        uid = self._ids.next("user")
        stamp = iso(now())
        user = UserRecord(
            uid, name, text(user_p, "sortable_name") or _sortable(name), text(user_p, "short_name") or name,
            email=text(channel_p, "address") if text(channel_p, "type") in (None, "email") else None,
            created_at=stamp,
        )
        self.users[uid] = user
        self._accounts.add_user(uid, name)
        self._add_login(user, root_id, unique_id, sis_user_id, integration_id)
        self._stats.record_create("user", sis_user_id)
        return user, False

    def _add_login(
        self, user: UserRecord, root_id: int, unique_id: str, sis_user_id: str | None, integration_id: str | None,
    ) -> LoginRecord:
        lid = self._ids.next("login")
        login = LoginRecord(lid, user.id, root_id, unique_id, sis_user_id, integration_id, created_at=iso(now()))
        self.logins[lid] = login
        self._reindex(login)
        user.login_ids.append(lid)
        return login

    def _reactivate(self, root_id: int, sis_user_id: str) -> UserRecord | None:
        """``enable_sis_reactivation``: revive a deleted login holding ``sis_user_id``, and its user."""
        for login in self._indexed("sis_user_id", sis_user_id):
            if login.account_id == root_id and login.workflow_state == DELETED:
                login.workflow_state = ACTIVE
                user = self.users[login.user_id]
                user.workflow_state = "registered"
                return user
        return None

    def update(self, user: UserRecord, params: dict[str, Any]) -> UserRecord:
        """``PUT /users/:id``: name, short_name, sortable_name, email."""
        user_p = nested(params, "user")
        name = text(user_p, "name")
        if name:
            user.name = name
            self._accounts.add_user(user.id, name).name = name
        for attr in ("short_name", "sortable_name", "email"):
            value = text(user_p, attr)
            if value is not None:
                setattr(user, attr, value or None if attr == "email" else value)
        return user

    def update_login(self, login: LoginRecord, params: dict[str, Any], *, can_manage_sis: bool) -> LoginRecord:
        """``PUT /accounts/:id/logins/:id`` with ``login[unique_id|sis_user_id|integration_id]``."""
        login_p = nested(params, "login")
        unique_id = text(login_p, "unique_id")
        sis_user_id = text(login_p, "sis_user_id")
        integration_id = text(login_p, "integration_id")
        if (sis_user_id is not None or integration_id is not None) and not can_manage_sis:
            raise CanvasHTTPError(401, {"errors": [{"message": "user not authorized to perform that action"}]})
        if unique_id and self._clash(login.account_id, unique_id=unique_id, ignore=login.id):
            raise CanvasHTTPError(400, {"errors": _attr_error("unique_id", "taken", UNIQUE_ID_TAKEN)})
        if sis_user_id and self._clash(login.account_id, sis_user_id=sis_user_id, ignore=login.id):
            raise CanvasHTTPError(400, {"errors": _attr_error("sis_user_id", "taken", sis_in_use(sis_user_id))})
        self._unindex(login)
        if unique_id:
            login.unique_id = unique_id
        if sis_user_id is not None:
            login.sis_user_id = sis_user_id or None
        if integration_id is not None:
            login.integration_id = integration_id or None
        self._reindex(login)
        return login

    def delete(self, user: UserRecord, root_id: int) -> UserRecord:
        """Seed 002:L16567: remove the user from the root account (its logins there are deleted)."""
        for login in self.logins_of(user):
            if login.account_id == root_id:
                login.workflow_state = DELETED
        if not self.logins_of(user):
            user.workflow_state = DELETED
        return user

    def restore(self, user: UserRecord, root_id: int) -> UserRecord:
        """Seed 002:L16587: "Restore a user record along with the most recently deleted pseudonym"."""
        deleted = [lg for lg in self.logins_of(user, include_deleted=True)
                   if lg.workflow_state == DELETED and lg.account_id == root_id]
        if deleted:
            deleted[-1].workflow_state = ACTIVE
        user.workflow_state = "registered"
        return user

    def in_account(self, account: Account, search_term: str | None = None) -> list[UserRecord]:
        """Users with an active login in the account's root, by sortable name."""
        found = []
        for user in self.users.values():
            logins = [lg for lg in self.logins_of(user) if lg.account_id == account.root_id]
            if not logins or user.workflow_state == DELETED:
                continue
            if search_term:
                needle = search_term.lower()
                haystack = [user.name.lower(), *(lg.unique_id.lower() for lg in logins),
                            *((lg.sis_user_id or "").lower() for lg in logins)]
                if not any(needle in h for h in haystack):
                    continue
            found.append(user)
        return sorted(found, key=lambda u: (u.sortable_name.lower(), u.id))

    def counts(self) -> dict[str, int]:
        """Created users and active logins."""
        return {
            "users": sum(u.workflow_state != DELETED for u in self.users.values() if u.login_ids),
            "logins": sum(lg.workflow_state == ACTIVE for lg in self.logins.values()),
        }
