"""Accounts, users and id sequences: the core every Canvas resource hangs off.

Path ids accept the forms canvas.md §1.6 lists for accounts: the numeric id,
``sis_account_id:<value>`` (percent-decoded by the server) and ``self`` for the root account.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from simulators.canvas.responses import not_found


class IdSequence:
    """Monotonic integer ids per entity kind, like database primary keys."""

    def __init__(self) -> None:
        self._last: defaultdict[str, int] = defaultdict(int)

    def next(self, kind: str) -> int:
        """The next id for ``kind``."""
        self._last[kind] += 1
        return self._last[kind]

    def reserve(self, kind: str, value: int) -> None:
        """Make sure later ids for ``kind`` are above ``value``."""
        self._last[kind] = max(self._last[kind], value)

    def reset(self) -> None:
        """Start every sequence again at 1."""
        self._last.clear()


@dataclass
class Account:
    """A Canvas account (root or sub-account)."""

    id: int
    name: str
    sis_account_id: str | None = None
    parent_account_id: int | None = None
    root_id: int = 0

    def to_json(self) -> dict[str, Any]:
        """The subset of Canvas's Account object the simulator knows."""
        return {
            "id": self.id, "name": self.name, "sis_account_id": self.sis_account_id,
            "parent_account_id": self.parent_account_id,
            "root_account_id": None if self.parent_account_id is None else self.root_id,
        }


@dataclass
class User:
    """A Canvas user; for now only the owners of configured tokens."""

    id: int
    name: str


class AccountRegistry:
    """Accounts by id, with Canvas's id forms resolved."""

    def __init__(self, ids: IdSequence) -> None:
        self._ids = ids
        self.accounts: dict[int, Account] = {}
        self.users: dict[int, User] = {}

    def reset(self) -> None:
        """Forget every account and user."""
        self.accounts.clear()
        self.users.clear()

    def add(
        self, name: str, *, account_id: int | None = None, sis_account_id: str | None = None,
        parent_account_id: int | None = None,
    ) -> Account:
        """Create an account; the first account without a parent is the root."""
        if account_id is None:
            account_id = self._ids.next("account")
        else:
            self._ids.reserve("account", account_id)
        if parent_account_id is not None and parent_account_id not in self.accounts:
            raise ValueError(f"unknown parent account {parent_account_id}")
        account = Account(account_id, name, sis_account_id, parent_account_id)
        account.root_id = self.chain(parent_account_id)[-1] if parent_account_id is not None else account_id
        self.accounts[account_id] = account
        return account

    def add_user(self, user_id: int, name: str | None = None) -> User:
        """Register a user (idempotent)."""
        self._ids.reserve("user", user_id)
        user = self.users.get(user_id) or User(user_id, name or f"User {user_id}")
        self.users[user_id] = user
        return user

    def root(self) -> Account:
        """The root account (``self`` in paths)."""
        for account in self.accounts.values():
            if account.parent_account_id is None:
                return account
        raise not_found()

    def resolve(self, raw: str) -> Account:
        """An account from a path segment, or the Canvas 404."""
        if raw == "self":
            return self.root()
        if raw.startswith("sis_account_id:"):
            sis = raw[len("sis_account_id:"):]
            for candidate in self.accounts.values():
                if candidate.sis_account_id == sis:
                    return candidate
            raise not_found()
        account = self.accounts.get(int(raw)) if raw.isdigit() else None
        if account is None:
            raise not_found()
        return account

    def chain(self, account_id: int) -> list[int]:
        """``account_id`` followed by its ancestors, root last."""
        chain: list[int] = []
        current: int | None = account_id
        while current is not None and current not in chain:
            chain.append(current)
            current = self.accounts[current].parent_account_id if current in self.accounts else None
        return chain
