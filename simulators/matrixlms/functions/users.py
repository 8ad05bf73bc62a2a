"""User functions (seed 000:L59-195, matrix_class.md A.6.2, A.7).

``add_user`` is an upsert matched by userid, student ID, teacher ID, then name + birth date;
``update_user`` raises when nothing matches. Both return ``{"id": <int>, "userid": "<str>"}``
("Returns the ID and userid", key names inferred, A.3). Archive, reactivate and delete return
``true`` (undocumented) and are all-or-nothing over their ids (inferred).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from simulators.matrixlms.errors import MatrixError, bad_request
from simulators.matrixlms.functions.base import RESERVED, Call, Function, page_of
from simulators.matrixlms.params import to_bool, to_int
from simulators.matrixlms.records import ROLE_FLAGS, USER_INT_FIELDS, USER_TEXT_FIELDS, User
from simulators.matrixlms.render import user_info

SPECIAL = frozenset({"account_types", "change_password", "update_password", "send_login_instructions",
                     "from_name"})
ACCOUNT_TYPES = frozenset({*ROLE_FLAGS, "partial_administrator"})
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Constraint names of get_users_that_match (A.6.2): the prose says studentID/teacherID, the
# user-info fields say student_id/teacher_id; both are accepted (DESIGN CHOICE there).
_CONSTRAINT_ALIASES = {"studentID": "student_id", "teacherID": "teacher_id"}
_CONSTRAINTS = frozenset({
    "organization_id", "first_name", "last_name", "email", "phone", "userid", "student_id", "teacher_id",
    "year_of_graduation", "birthdate", "nick_name", "country", "state", "zip", *ROLE_FLAGS, "archived",
    "job_title_id",
})


def _text(value: Any) -> str | None:
    """A scalar attribute as stored: a blank value clears the field."""
    text = None if value is None else str(value)
    return text or None


def _attributes(call: Call) -> dict[str, Any]:
    attrs = call.args.bag("attributes", RESERVED)
    allowed = frozenset({*USER_TEXT_FIELDS, *USER_INT_FIELDS, *ROLE_FLAGS, *SPECIAL,
                         *call.store.custom_user_fields})
    call.reject_unknown(list(attrs), allowed)
    for name, value in attrs.items():
        if isinstance(value, dict | list):
            raise bad_request(f"Attribute {name} must be a single value")
    birthdate = _text(attrs.get("birthdate"))
    if birthdate is not None and not _DATE.match(birthdate):
        raise bad_request(f"Invalid date for birthdate (expected YYYY-MM-DD): {birthdate}")
    return attrs


def _match_keys(attrs: dict[str, Any]) -> dict[str, str | None]:
    return {k: _text(attrs.get(k)) for k in ("userid", "student_id", "teacher_id", "first_name",
                                             "last_name", "birthdate")}


def _apply(user: User, attrs: dict[str, Any], call: Call, *, creating: bool) -> None:
    update_password = to_bool(attrs.get("update_password", False), "update_password")
    for name in USER_TEXT_FIELDS:
        if name not in attrs:
            continue
        if name == "password" and not creating and not update_password:
            continue  # "Set to true if you want the password of an existing account to be updated"
        setattr(user, name, _text(attrs[name]))
    for name in USER_INT_FIELDS:
        if name in attrs:
            value = _text(attrs[name])
            setattr(user, name, None if value is None else to_int(value, name))
    for name in ROLE_FLAGS:
        if name in attrs:
            setattr(user, name, to_bool(attrs[name], name))
    if "account_types" in attrs:
        types = {t.strip() for t in str(attrs["account_types"]).split(",") if t.strip()}
        unknown = sorted(types - ACCOUNT_TYPES)
        if unknown:
            raise bad_request(f"Unknown account type: {unknown[0]}")
        for name in ROLE_FLAGS:  # partial_administrator is accepted but has no user-info flag
            setattr(user, name, name in types)
    for name in call.store.custom_user_fields:
        if name in attrs:
            user.custom[name] = _text(attrs[name])


def _update(existing: User, attrs: dict[str, Any], call: Call) -> dict[str, Any]:
    # Changes go to a copy, stored only when every attribute was valid: a 400 changes nothing.
    updated = replace(existing, custom=dict(existing.custom))
    _apply(updated, attrs, call, creating=False)
    call.store.users[updated.id] = updated
    return {"id": updated.id, "userid": updated.userid}


def _default_userid(call: Call, user: User) -> str:
    base = re.sub(r"[^a-z0-9.]", "", f"{user.first_name}.{user.last_name}".lower()) or "user"
    taken = {u.userid for u in call.store.users.values()}
    return base if base not in taken else f"{base}{user.id}"


def add_user(call: Call) -> Any:
    """Upsert: update the matching account, else create one (seed 000:L169-170)."""
    attrs = _attributes(call)
    store = call.store
    existing = store.match_user(_match_keys(attrs), call.config.name_birthdate_match)
    if existing is not None:
        return _update(existing, attrs, call)
    for required in ("first_name", "last_name"):
        if not _text(attrs.get(required)):
            raise bad_request(f"Missing attribute: {required}")  # inferred: a new account needs a name
    user = User(id=store.next_id("user", store.users), joined_at=call.now)
    if "account_types" not in attrs and not any(name in attrs for name in ROLE_FLAGS):
        user.student = True  # inferred default account type
    _apply(user, attrs, call, creating=True)
    if user.userid is None:
        user.userid = _default_userid(call, user)  # inferred: every account has a login userid
    store.users[user.id] = user
    return {"id": user.id, "userid": user.userid}


def update_user(call: Call) -> Any:
    """Update the matching account; "If a match is not found, an exception is returned" (000:L172)."""
    attrs = _attributes(call)
    existing = call.store.match_user(_match_keys(attrs), call.config.name_birthdate_match)
    if existing is None:
        raise bad_request("No user matches the given userid, student ID, teacher ID or name and birth date")
    return _update(existing, attrs, call)


def get_my_account(call: Call) -> Any:
    """Info about the caller's account."""
    if call.caller_id is None:
        raise MatrixError("The API key has no account")
    return user_info(call.store.user(call.caller_id), call.store)


def get_all_users(call: Call) -> Any:
    """All users, 100 per page."""
    users = [call.store.users[i] for i in sorted(call.store.users)]
    return [user_info(u, call.store) for u in page_of(users, call.args.page())]


def get_users_with_ids(call: Call) -> Any:
    """The users with the given ids (``user_ids[]``), in the order asked; unknown ids are a 400."""
    store = call.store
    return [user_info(store.user(i), store) for i in call.args.id_list("user_ids")]


def _matches(user: User, name: str, wanted: Any, custom: tuple[str, ...]) -> bool:
    if name in ROLE_FLAGS or name == "archived":
        return bool(getattr(user, name)) == to_bool(wanted, name)
    if name in USER_INT_FIELDS:
        return bool(getattr(user, name) == to_int(wanted, name))
    actual = user.custom.get(name) if name in custom else getattr(user, name)
    return actual is not None and str(actual).strip().lower() == str(wanted).strip().lower()


def get_users_that_match(call: Call) -> Any:
    """Users matching all constraints (exact, case-insensitive), 100 per page (000:L79)."""
    store = call.store
    raw = call.args.bag("constraints", RESERVED | {"page"})
    constraints = {_CONSTRAINT_ALIASES.get(k, k): v for k, v in raw.items()}
    for name in constraints:
        if name not in _CONSTRAINTS and name not in store.custom_user_fields:
            raise bad_request(f"Unsupported constraint: {name}")
    users = [
        store.users[i] for i in sorted(store.users)
        if all(_matches(store.users[i], n, v, store.custom_user_fields) for n, v in constraints.items())
    ]
    return [user_info(u, store) for u in page_of(users, call.args.page())]


def _users(call: Call) -> list[User]:
    return [call.store.user(i) for i in call.args.id_list("user_ids")]


def archive_users(call: Call) -> Any:
    """Archive the users (000:L189)."""
    for user in _users(call):
        if not user.archived:
            user.archived, user.archived_at = True, call.now
    return True


def reactivate_users(call: Call) -> Any:
    """Reactivate archived users (000:L191)."""
    for user in _users(call):
        user.archived, user.archived_at = False, None
    return True


def delete_users(call: Call) -> Any:
    """Delete the users, with their enrollments and grades (permanence undocumented; simulated as permanent)."""
    for user in _users(call):
        call.store.delete_user(user.id)
    return True


def is_authenticated(call: Call) -> Any:
    """``true`` if the password is correct for the userid, else ``false`` (A.6.1)."""
    userid = call.args.string("userid", required=True)
    password = call.args.string("password", required=True)
    return any(u.userid == userid and u.password is not None and u.password == password
               for u in call.store.users.values())


FUNCTIONS: dict[str, Function] = {
    "add_user": add_user, "update_user": update_user, "get_my_account": get_my_account,
    "get_all_users": get_all_users, "get_users_with_ids": get_users_with_ids,
    "get_users_that_match": get_users_that_match, "archive_users": archive_users,
    "reactivate_users": reactivate_users, "delete_users": delete_users, "is_authenticated": is_authenticated,
}
