"""AB Connect standards events -> Canvas account outcome groups and outcomes.

Every event is handled by comparing Canvas with what AB Connect delivers *now*, not by
replaying the event's content, so a replayed or reordered event converges to the same state
and writes nothing when Canvas already matches (see ``handlers/canvas_outcome_tree.py`` for
the tree: one group per document, one subgroup per section, one outcome per standard, each
carrying the AB guid as ``vendor_guid``).

Policies:
- Delivery removed (document or section): purged from Canvas at once, licence first: if AB
  Connect cannot be asked whether the removal still holds, the purge goes ahead anyway.
- Deleted standard: its outcome is unlinked, and Canvas deletes it with its last link. Canvas
  refuses that for an outcome already used to assess students; such an outcome keeps its link
  and is retitled ``[Deleted in AB Connect] ...`` so teachers see it is retired.
- A standard the partner may no longer read (AB answers 403) is skipped, as the AB
  documentation instructs, and counted as ``skipped``.
- An unknown ``target``/``change_type`` is dead-lettered with the reason, never guessed at.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from handlers.canvas_outcome_tree import GroupRef, OutcomeTree, OutcomeWriter, same_guid
from schemas.abconnect import ABConnectChangeV1
from schemas.envelope import CloudEvent
from worker.clients.abconnect import ABConnectClient
from worker.clients.abconnect_models import Standard
from worker.clients.canvas_models import OutcomeGroupRef, OutcomeLink
from worker.clients.errors import ForbiddenError, NotFoundError, PermanentUpstreamError, UpstreamError
from worker.handler_frame import Ledger, PermanentFailure
from worker.metrics import Outcome
from worker.topics import ABCONNECT_EVENTS

log = structlog.get_logger(__name__)

HANDLER_NAME = "standards_to_canvas"
RETIRED_PREFIX = "[Deleted in AB Connect] "
KNOWN_EVENTS = frozenset({
    ("document", "added"), ("document", "removed"), ("section", "added"), ("section", "removed"),
    ("standard", "added"), ("standard", "modified"), ("standard", "deleted"),
})


@dataclass
class StandardsTenant:
    """One tenant's AB Connect account and Canvas account."""

    ab: ABConnectClient
    tree: OutcomeTree


class StandardsToCanvas:
    """The standards flow's handler (idempotency key in Canvas: outcome ``vendor_guid``)."""

    name = HANDLER_NAME
    topics = (ABCONNECT_EVENTS,)

    def __init__(self, tenants: dict[str, StandardsTenant]) -> None:
        self.tenants = tenants

    async def handle(self, event: CloudEvent, ledger: Ledger) -> Outcome:
        """Bring Canvas in line with AB Connect for whatever the event touched."""
        change = event.payload(ABConnectChangeV1)
        tenant = self.tenants.get(event.tenant)
        if tenant is None:
            raise PermanentFailure(f"no Canvas configured for tenant {event.tenant!r}")
        kind = (change.target, change.change_type)
        if kind not in KNOWN_EVENTS:
            raise PermanentFailure(
                f"unknown AB Connect event target={change.target!r} change_type={change.change_type!r} "
                f"(seq {change.seq})"
            )
        sync = _Sync(event.tenant, tenant, ledger)
        before = tenant.tree.writes
        if change.target == "standard":
            if await sync.standard(_required(change.standard_guid, "standard_guid", change)) is Outcome.SKIPPED:
                return Outcome.SKIPPED
        else:
            doc = _required(change.document_guid, "document_guid", change)
            if kind == ("document", "removed"):
                await sync.document_removed(doc)
            elif kind == ("section", "removed"):
                await sync.section_removed(doc, _required(change.section_guid, "section_guid", change))
            else:
                await sync.document(doc)  # document or section added: reconcile the whole document
        return Outcome.APPLIED if tenant.tree.writes > before else Outcome.NOOP


def _required(value: str | None, field: str, change: ABConnectChangeV1) -> str:
    if not value:
        raise PermanentFailure(f"AB Connect {change.target} event seq {change.seq} has no {field}")
    return value


def _fingerprint(title: str, description: str) -> str:
    return hashlib.sha256(f"{title}\x1f{description}".encode()).hexdigest()[:16]


class _Sync:
    """The reconciliation steps for one event of one tenant."""

    def __init__(self, tenant_id: str, tenant: StandardsTenant, ledger: Ledger) -> None:
        self.tenant_id = tenant_id
        self.ab = tenant.ab
        self.tree = tenant.tree
        self.outcomes = OutcomeWriter(tenant.tree)
        self.ledger = ledger

    # -- documents and sections ---------------------------------------------------------------

    async def document(self, doc_guid: str) -> None:
        """Make the document's groups and outcomes equal AB's deliverable standards."""
        try:
            doc = await self.ab.document(doc_guid)
        except (NotFoundError, ForbiddenError):
            await self._purge_document(doc_guid)
            return
        root = await self.tree.root_id()
        group = await self.tree.ensure_group(root, doc.guid, doc.descr or doc.guid)
        existing = await self._outcomes_under(group)
        seen: set[str] = set()
        async for std in self.ab.iter_standards(document_guid=doc.guid):
            target = await self._group_for(group, std)
            await self._upsert(std, doc.guid, target, existing.get(std.guid.lower()))
            seen.add(std.guid.lower())
        for guid, link in existing.items():
            if guid not in seen:
                await self._retire(guid, link)
        delivered_sections = {s.guid.lower() for s in doc.sections}
        for guid, sub in (await self.tree.subgroups(group.id)).items():
            if guid not in delivered_sections:
                await self.tree.delete_group(group.id, sub)

    async def document_removed(self, doc_guid: str) -> None:
        """Purge the document unless AB says it is delivered again (then reconcile it)."""
        try:
            await self.ab.document(doc_guid)
        except (NotFoundError, ForbiddenError):
            await self._purge_document(doc_guid)
            return
        except UpstreamError as exc:
            log.warning("AB Connect unreachable; purging the removed document anyway (licence first)",
                        tenant=self.tenant_id, document=doc_guid, error=str(exc))
            await self._purge_document(doc_guid)
            return
        await self.document(doc_guid)

    async def section_removed(self, doc_guid: str, section_guid: str) -> None:
        """Purge the section's group unless AB says it is delivered again."""
        try:
            page = await self.ab.standards_page(section_guid=section_guid, limit=1)
            delivered = bool(page.standards)
        except (NotFoundError, ForbiddenError):
            delivered = False
        except UpstreamError as exc:
            log.warning("AB Connect unreachable; purging the removed section anyway (licence first)",
                        tenant=self.tenant_id, section=section_guid, error=str(exc))
            delivered = False
        if delivered:
            await self.document(doc_guid)
            return
        root = await self.tree.root_id()
        group = await self.tree.find_group(root, doc_guid)
        if group is None:
            return
        section = await self.tree.find_group(group.id, section_guid)
        if section is not None:
            await self.tree.delete_group(group.id, section)
            self._forget(lambda entry: entry.get("section") == section_guid.lower())

    async def _purge_document(self, doc_guid: str) -> None:
        root = await self.tree.root_id()
        group = await self.tree.find_group(root, doc_guid)
        if group is not None:
            await self.tree.delete_group(root, group)
            log.info("purged document from Canvas", tenant=self.tenant_id, document=doc_guid)
        self._forget(lambda entry: entry.get("document") == doc_guid.lower())

    # -- standards ----------------------------------------------------------------------------

    async def standard(self, guid: str) -> Outcome | None:
        """Create, update or retire one standard's outcome; SKIPPED when AB forbids reading it."""
        try:
            std = await self.ab.standard(guid)
        except ForbiddenError:
            log.info("standard no longer deliverable; skipped", tenant=self.tenant_id, standard=guid)
            return Outcome.SKIPPED
        except NotFoundError as exc:
            raise PermanentFailure(f"AB Connect does not know standard {guid}") from exc
        if not std.document_guid:
            raise PermanentFailure(f"AB Connect standard {guid} has no document")
        root = await self.tree.root_id()
        if std.deleted:
            group = await self.tree.find_group(root, std.document_guid)
            if group is not None:
                link = await self._find_outcome(guid, group)
                if link is not None:
                    await self._retire(guid.lower(), link)
            return None
        group = await self.tree.ensure_group(root, std.document_guid, std.document_descr or std.document_guid)
        target = await self._group_for(group, std)
        await self._upsert(std, std.document_guid, target, await self._find_outcome(guid, group))
        return None

    async def _find_outcome(self, guid: str, doc_group: GroupRef) -> OutcomeLink | None:
        """The standard's outcome: one GET through the ledger when it knows the outcome, else the
        full listing of the document's groups (the look-up before any create)."""
        entry = self.ledger.get(self._key(guid))
        if isinstance(entry, dict) and entry.get("outcome_id"):
            try:
                outcome = await self.tree.canvas.get_outcome(int(entry["outcome_id"]))
            except NotFoundError:
                outcome = None
            if outcome is not None and same_guid(outcome.vendor_guid, guid):
                return OutcomeLink(outcome_group=OutcomeGroupRef(id=int(entry["group_id"])), outcome=outcome)
        return (await self._outcomes_under(doc_group)).get(guid.lower())

    async def _group_for(self, doc_group: GroupRef, std: Standard) -> GroupRef:
        if not std.section_guid:
            return doc_group
        return await self.tree.ensure_group(doc_group.id, std.section_guid, std.section_descr or std.section_guid)

    async def _outcomes_under(self, doc_group: GroupRef) -> dict[str, OutcomeLink]:
        """Every managed outcome in the document's group and its section groups, by guid.

        This listing is the look-up before every create: an outcome that exists anywhere in
        the document is found and moved or updated, never created twice.
        """
        links: dict[str, OutcomeLink] = {}
        groups = [doc_group.id, *(g.id for g in (await self.tree.subgroups(doc_group.id, fresh=True)).values())]
        for group_id in groups:
            for link in await self.tree.links(group_id):
                if link.outcome.vendor_guid:
                    links.setdefault(link.outcome.vendor_guid.lower(), link)
        return links

    async def _upsert(self, std: Standard, doc_guid: str, group: GroupRef, link: OutcomeLink | None) -> None:
        title, description = std.outcome_fields()
        if link is None:
            link = await self.outcomes.create(group.id, std.guid, title, description)
        else:
            outcome = link.outcome
            if outcome.title != title or (outcome.description or "") != description:
                await self.outcomes.update(outcome.id, title, description)
            if link.group_id != group.id:
                await self.outcomes.move(outcome.id, link.group_id, group.id)
        self._record(std, doc_guid, link.outcome_id, group.id, _fingerprint(title, description))

    async def _retire(self, guid: str, link: OutcomeLink) -> None:
        try:
            await self.outcomes.unlink(link.group_id, link.outcome_id)
        except PermanentUpstreamError as exc:
            # Canvas keeps the last link of an outcome used in assessments (see module docstring).
            if not link.outcome.title.startswith(RETIRED_PREFIX):
                await self.outcomes.update(
                    link.outcome_id, RETIRED_PREFIX + link.outcome.title, link.outcome.description or ""
                )
            log.warning("outcome kept (Canvas refused to unlink it); retitled as deleted",
                        tenant=self.tenant_id, standard=guid, outcome=link.outcome_id, reason=str(exc))
            return
        self.ledger.put(self._key(guid), None)

    # -- ledger -------------------------------------------------------------------------------

    def _key(self, guid: str) -> str:
        return f"canvas/{self.tenant_id}/outcome/{guid.lower()}"

    def _record(self, std: Standard, doc_guid: str, outcome_id: int, group_id: int, fingerprint: str) -> None:
        entry = {"outcome_id": outcome_id, "group_id": group_id, "document": doc_guid.lower(),
                 "section": (std.section_guid or "").lower(), "hash": fingerprint}
        if self.ledger.get(self._key(std.guid)) != entry:
            self.ledger.put(self._key(std.guid), entry)

    def _forget(self, match: Callable[[dict[str, Any]], bool]) -> None:
        prefix = f"canvas/{self.tenant_id}/outcome/"
        for key, entry in self.ledger.items(prefix):
            if isinstance(entry, dict) and match(entry):
                self.ledger.put(key, None)
