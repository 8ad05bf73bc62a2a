"""The part of a Canvas account's outcome tree that edusync manages for AB Connect:

    root group -> one group per AB document (vendor_guid = document guid)
               -> one subgroup per AB section (vendor_guid = section guid)
               -> one outcome per AB standard (vendor_guid = standard guid)

Group ids are cached per process; a cached id Canvas no longer knows raises
``TransientFailure`` after clearing the cache, so the retry looks it up afresh.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.clients.canvas import CanvasClient
from worker.clients.canvas_models import OutcomeGroup, OutcomeLink
from worker.clients.errors import NotFoundError
from worker.concurrency import KeyedLocks
from worker.errors import TransientFailure


def same_guid(a: str | None, b: str | None) -> bool:
    """AB guids are case-insensitive; Canvas keeps whatever case it was given."""
    return a is not None and b is not None and a.lower() == b.lower()


@dataclass(frozen=True)
class GroupRef:
    """A managed group: its Canvas id and the AB guid it stands for."""

    id: int
    vendor_guid: str
    title: str | None


class OutcomeTree:
    """Find-or-create operations on the managed groups of one Canvas account."""

    def __init__(self, canvas: CanvasClient, account_id: str) -> None:
        self.canvas = canvas
        self.account_id = account_id
        self._root: int | None = None
        # parent group id -> {lower-case vendor_guid: group}, from the last listing of that parent
        self._children: dict[int, dict[str, GroupRef]] = {}
        # Documents whose Canvas outcomes were listed in full since start-up (or the last
        # rebalance): any outcome of theirs is now in the ledger, so a ledger miss means "create".
        self.verified: set[str] = set()
        self.writes = 0
        # Per document: the lanes of the tenant's standards handler write one document at a time.
        self.locks = KeyedLocks()

    async def root_id(self) -> int:
        """The account's root outcome group."""
        if self._root is None:
            self._root = (await self.canvas.root_outcome_group(self.account_id)).id
        return self._root

    def forget(self) -> None:
        """Drop every cached id (after Canvas said one no longer exists) and every verification."""
        self._children.clear()
        self._root = None
        self.verified.clear()

    async def _load(self, parent_id: int) -> dict[str, GroupRef]:
        try:
            listed = await self.canvas.outcome_subgroups(self.account_id, parent_id)
        except NotFoundError as exc:
            self.forget()
            raise TransientFailure(f"Canvas group {parent_id} vanished; looking it up again") from exc
        children = {g.vendor_guid.lower(): _ref(g) for g in listed if g.vendor_guid}
        self._children[parent_id] = children
        return children

    async def subgroups(self, parent_id: int, *, fresh: bool = False) -> dict[str, GroupRef]:
        """Managed subgroups of ``parent_id`` by lower-case vendor_guid (a copy: safe to delete while
        iterating)."""
        if fresh or parent_id not in self._children:
            return dict(await self._load(parent_id))
        return dict(self._children[parent_id])

    async def find_group(self, parent_id: int, vendor_guid: str) -> GroupRef | None:
        """The subgroup of ``parent_id`` standing for ``vendor_guid``; a cache miss asks Canvas."""
        found = (await self.subgroups(parent_id)).get(vendor_guid.lower())
        if found is None:
            found = (await self.subgroups(parent_id, fresh=True)).get(vendor_guid.lower())
        return found

    async def ensure_group(self, parent_id: int, vendor_guid: str, title: str) -> GroupRef:
        """Find the subgroup, creating it (or fixing its title) when needed."""
        found = await self.find_group(parent_id, vendor_guid)
        if found is None:
            created = await self.canvas.create_outcome_subgroup(
                self.account_id, parent_id, title=title, vendor_guid=vendor_guid
            )
            self.writes += 1
            found = _ref(created)
        elif found.title != title:
            await self.canvas.update_outcome_group(self.account_id, found.id, title=title)
            self.writes += 1
            found = GroupRef(found.id, found.vendor_guid, title)
        self._children.setdefault(parent_id, {})[vendor_guid.lower()] = found
        return found

    async def delete_group(self, parent_id: int, group: GroupRef) -> None:
        """Delete a managed group with its subgroups and the outcomes only it links."""
        try:
            await self.canvas.delete_outcome_group(self.account_id, group.id)
            self.writes += 1
        except NotFoundError:
            pass  # already gone: the purge this asked for has happened
        self._children.get(parent_id, {}).pop(group.vendor_guid.lower(), None)
        self._children.pop(group.id, None)

    async def links(self, group_id: int) -> list[OutcomeLink]:
        """Outcome links of one group, full outcomes (vendor_guid, title, description)."""
        try:
            return await self.canvas.group_outcome_links(self.account_id, group_id)
        except NotFoundError as exc:
            self.forget()
            raise TransientFailure(f"Canvas group {group_id} vanished; looking it up again") from exc


def _ref(group: OutcomeGroup) -> GroupRef:
    return GroupRef(group.id, group.vendor_guid or "", group.title)


class OutcomeWriter:
    """Writes to outcomes in managed groups, counting every write so a handler can tell
    'applied' from 'no-op'."""

    def __init__(self, tree: OutcomeTree) -> None:
        self.tree = tree

    @property
    def _canvas(self) -> CanvasClient:
        return self.tree.canvas

    async def create(self, group_id: int, vendor_guid: str, title: str, description: str) -> OutcomeLink:
        """Create an outcome linked into ``group_id``."""
        link = await self._canvas.create_linked_outcome(
            self.tree.account_id, group_id, title=title, description=description, vendor_guid=vendor_guid
        )
        self.tree.writes += 1
        return link

    async def update(self, outcome_id: int, title: str, description: str) -> None:
        """Set title and description."""
        await self._canvas.update_outcome(outcome_id, title=title, description=description)
        self.tree.writes += 1

    async def move(self, outcome_id: int, from_group: int, to_group: int) -> None:
        """Move the link of an outcome to another group."""
        await self._canvas.link_outcome(self.tree.account_id, to_group, outcome_id, move_from=from_group)
        self.tree.writes += 1

    async def unlink(self, group_id: int, outcome_id: int) -> None:
        """Remove the link (Canvas deletes the outcome with its last link)."""
        try:
            await self._canvas.unlink_outcome(self.tree.account_id, group_id, outcome_id)
        except NotFoundError:
            return  # already unlinked
        self.tree.writes += 1
