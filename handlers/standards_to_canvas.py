"""AB Connect standards events -> Canvas account outcome groups and outcomes, a batch at a time.

Canvas is brought in line with what AB Connect delivers *now*, not with the event's content, so a
replayed or reordered event converges to the same state and writes nothing when Canvas already
matches (``handlers/canvas_outcome_tree.py`` has the tree: one group per document, one subgroup
per section, one outcome per standard, each carrying the AB guid as ``vendor_guid``).

Per batch (one partition's events, in order):
- consecutive standard events of a tenant are read from AB Connect together, up to 100 guids a
  request (``filter[standards]=guid in (...)``), each guid once;
- Canvas is written only where the ledger's fingerprint of the outcome differs from AB Connect,
  so an unchanged standard costs no Canvas request at all. A ledger miss is a create, after the
  document's outcomes have been listed once since start-up (an outcome created just before a
  crash is found there, not created twice);
- document and section events, and the periodic reconcile requests, compare the whole document
  with Canvas, reading Canvas too: that is what repairs changes made in Canvas by hand.

Policies:
- Delivery removed (document or section): purged from Canvas at once, licence first: if AB
  Connect cannot be asked whether the removal still holds, the purge goes ahead anyway. A group
  left with no outcomes (its last standard deleted, its last section removed) goes too.
- Deleted standard: its outcome is unlinked, and Canvas deletes it with its last link. Canvas
  refuses that for an outcome already used to assess students; such an outcome keeps its link
  and is retitled ``[Deleted in AB Connect] ...`` so teachers see it is retired.
- A standard the partner may no longer read (AB answers 403) is skipped and counted as ``skipped``.
- An unknown ``target``/``change_type`` is dead-lettered with the reason, never guessed at.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import ValidationError

from handlers.canvas_outcome_tree import GroupRef, OutcomeTree, OutcomeWriter, same_guid
from handlers.standards_text import standard_outcome_text
from schemas.abconnect import RECONCILE_REQUESTED, ABConnectChangeV1, ReconcileRequestedV1
from schemas.envelope import CloudEvent
from worker.clients.abconnect import ABConnectClient
from worker.clients.abconnect_models import Standard
from worker.clients.canvas_models import Outcome as CanvasOutcome
from worker.clients.canvas_models import OutcomeGroupRef, OutcomeLink
from worker.clients.errors import (
    AmbiguousWriteError,
    ForbiddenError,
    NotFoundError,
    PermanentUpstreamError,
    UpstreamError,
)
from worker.errors import PermanentFailure, Verdict, classify
from worker.ledger import Ledger
from worker.metrics import Outcome
from worker.topics import ABCONNECT_EVENTS

log = structlog.get_logger(__name__)

HANDLER_NAME = "standards_to_canvas"
RETIRED_PREFIX = "[Deleted in AB Connect] "
KNOWN_EVENTS = frozenset({
    ("document", "added"), ("document", "removed"), ("section", "added"), ("section", "removed"),
    ("standard", "added"), ("standard", "modified"), ("standard", "deleted"),
})

Result = Outcome | BaseException


@dataclass
class StandardsTenant:
    """One tenant's AB Connect account and Canvas account."""

    ab: ABConnectClient
    tree: OutcomeTree


class StandardsToCanvas:
    """The standards flow's handler (idempotency key in Canvas: outcome ``vendor_guid``)."""

    name = HANDLER_NAME
    topics = (ABCONNECT_EVENTS,)

    def __init__(self, tenants: Mapping[str, StandardsTenant]) -> None:
        self.tenants = dict(tenants)

    def partitions_changed(self) -> None:
        """Another replica may have written outcomes meanwhile: list documents again before creating."""
        for tenant in self.tenants.values():
            tenant.tree.verified.clear()

    async def handle_batch(self, events: Sequence[CloudEvent], ledger: Ledger) -> list[Result]:
        """Apply one partition's events in order; see the module docstring."""
        results: list[Result | None] = [None] * len(events)
        i = 0
        while i < len(events):
            run = _standard_run(events, i)
            try:
                if run > i:
                    await self._standards(events, range(i, run), ledger, results)
                    i = run
                else:
                    results[i] = await self._one(events[i], ledger)
                    i += 1
            except Exception as exc:  # classified here: a retriable failure stops the batch there
                if classify(exc) in (Verdict.RETRY, Verdict.PAUSE):
                    first = next(j for j in range(i, len(events)) if results[j] is None)
                    return [r for r in results[:first] if r is not None] + [exc] * (len(events) - first)
                if run > i:
                    raise  # a permanent failure of the run: the frame isolates the event that causes it
                results[i] = exc
                i += 1
        return [r for r in results if r is not None]

    def _tenant(self, event: CloudEvent) -> StandardsTenant:
        tenant = self.tenants.get(event.tenant)
        if tenant is None:
            raise PermanentFailure(f"no Canvas configured for tenant {event.tenant!r}")
        return tenant

    async def _one(self, event: CloudEvent, ledger: Ledger) -> Outcome:
        """A document, section or reconcile event, or an event the flow does not know."""
        tenant = self._tenant(event)
        sync = _Sync(event.tenant, tenant, ledger)
        before = tenant.tree.writes
        if event.type == RECONCILE_REQUESTED:
            await sync.document(event.payload(ReconcileRequestedV1).document_guid)
        else:
            change = _change(event)
            doc = _required(change.document_guid, "document_guid", change)
            kind = (change.target, change.change_type)
            if kind == ("document", "removed"):
                await sync.document_removed(doc)
            elif kind == ("section", "removed"):
                await sync.section_removed(doc, _required(change.section_guid, "section_guid", change))
            else:
                await sync.document(doc)  # document or section added: reconcile the whole document
        return Outcome.APPLIED if tenant.tree.writes > before else Outcome.NOOP

    async def _standards(self, events: Sequence[CloudEvent], indexes: range, ledger: Ledger,
                         results: list[Result | None]) -> None:
        """A run of standard events of one tenant: one bulk read from AB, one pass over Canvas."""
        tenant = self._tenant(events[indexes[0]])
        sync = _Sync(events[indexes[0]].tenant, tenant, ledger)
        changes = [_change(events[i]) for i in indexes]
        guids = [_required(c.standard_guid, "standard_guid", c) for c in changes]
        found = await tenant.ab.standards_by_guid(guids)
        done: set[str] = set()
        for i, guid in zip(indexes, guids, strict=True):
            key = guid.lower()
            if key in done:
                results[i] = Outcome.NOOP  # the same standard earlier in this batch: already reconciled
                continue
            before = tenant.tree.writes
            outcome = await sync.standard(guid, found.get(key))
            done.add(key)
            results[i] = outcome or (Outcome.APPLIED if tenant.tree.writes > before else Outcome.NOOP)


def _change(event: CloudEvent) -> ABConnectChangeV1:
    change = event.payload(ABConnectChangeV1)
    if (change.target, change.change_type) not in KNOWN_EVENTS:
        raise PermanentFailure(
            f"unknown AB Connect event target={change.target!r} change_type={change.change_type!r} (seq {change.seq})"
        )
    return change


def _standard_run(events: Sequence[CloudEvent], start: int) -> int:
    """The end of the run of known standard events of one tenant starting at ``start`` (``start``
    itself when ``events[start]`` is not one)."""
    end = start
    while end < len(events) and events[end].tenant == events[start].tenant:
        event = events[end]
        if event.type == RECONCILE_REQUESTED:
            break
        try:
            change = _change(event)
        except (PermanentFailure, ValidationError):
            break
        if change.target != "standard":
            break
        end += 1
    return end


def _required(value: str | None, field: str, change: ABConnectChangeV1) -> str:
    if not value:
        raise PermanentFailure(f"AB Connect {change.target} event seq {change.seq} has no {field}")
    return value


def fingerprint(title: str, description: str) -> str:
    """What the ledger keeps of an outcome's text: equal fingerprints mean nothing to write."""
    return hashlib.sha256(f"{title}\x1f{description}".encode()).hexdigest()[:16]


class _Sync:
    """The reconciliation steps for the events of one tenant."""

    def __init__(self, tenant_id: str, tenant: StandardsTenant, ledger: Ledger) -> None:
        self.tenant_id = tenant_id
        self.ab = tenant.ab
        self.tree = tenant.tree
        self.outcomes = OutcomeWriter(tenant.tree)
        self.ledger = ledger

    # -- documents and sections ---------------------------------------------------------------

    def _doc(self, doc_guid: str) -> AbstractAsyncContextManager[None]:
        """One document's writes at a time: a standard's events reach several lanes (AB events
        are keyed by event, not by standard), and two lanes that both miss an outcome in the ledger
        would both create it (bench/chaos: an outcome created twice)."""
        return self.tree.locks.hold(doc_guid.lower())

    async def document(self, doc_guid: str) -> None:
        """Make the document's groups and outcomes equal AB's deliverable standards, reading Canvas."""
        async with self._doc(doc_guid):
            await self._document(doc_guid)

    async def _document(self, doc_guid: str) -> None:
        try:
            doc = await self.ab.document(doc_guid)
        except (NotFoundError, ForbiddenError):
            await self._purge_document(doc_guid)
            return
        root = await self.tree.root_id()
        group = await self.tree.ensure_group(root, doc.guid, doc.descr or doc.guid)
        existing = await self._outcomes_under(group)
        seen: set[str] = set()
        # Each standard once: the client pages by GUID and refuses an answer that goes back.
        async for std in self.ab.iter_standards(document_guid=doc.guid):
            target = await self._group_for(group, std)
            await self._upsert(std, doc.guid, target, existing.get(std.guid.lower()))
            seen.add(std.guid.lower())
        unseen = [guid for guid in existing if guid not in seen]
        if unseen:
            # Not met by the walk: AB changed meanwhile, or the standard is gone. Ask before
            # unlinking an outcome teachers may use.
            now = await self.ab.standards_by_guid(unseen)
            for guid in unseen:
                current = now.get(guid)
                if current is None or current.deleted or not same_guid(current.document_guid, doc.guid):
                    await self._retire(guid, existing[guid])
        delivered_sections = {s.guid.lower() for s in doc.sections}
        for guid, sub in (await self.tree.subgroups(group.id)).items():
            if guid not in delivered_sections:
                await self.tree.delete_group(group.id, sub)

    async def document_removed(self, doc_guid: str) -> None:
        """Purge the document unless AB says it is delivered again (then reconcile it)."""
        async with self._doc(doc_guid):
            await self._document_removed(doc_guid)

    async def _document_removed(self, doc_guid: str) -> None:
        try:
            await self.ab.document(doc_guid)
        except (NotFoundError, ForbiddenError):
            await self._purge_document(doc_guid)
            return
        except UpstreamError as exc:
            if classify(exc) is Verdict.PAUSE:
                raise
            log.warning("AB Connect unreachable; purging the removed document anyway (licence first)",
                        tenant=self.tenant_id, document=doc_guid, error=str(exc))
            await self._purge_document(doc_guid)
            return
        await self._document(doc_guid)

    async def section_removed(self, doc_guid: str, section_guid: str) -> None:
        """Purge the section's group unless AB says it is delivered again; a document left with no
        deliverable standard goes too (a replay must find nothing left to delete)."""
        async with self._doc(doc_guid):
            await self._section_removed(doc_guid, section_guid)

    async def _section_removed(self, doc_guid: str, section_guid: str) -> None:
        try:
            page = await self.ab.standards_page(section_guid=section_guid, limit=1)
            delivered = bool(page.standards)
        except (NotFoundError, ForbiddenError):
            delivered = False
        except UpstreamError as exc:
            if classify(exc) is Verdict.PAUSE:
                raise
            log.warning("AB Connect unreachable; purging the removed section anyway (licence first)",
                        tenant=self.tenant_id, section=section_guid, error=str(exc))
            delivered = False
        if delivered:
            await self._document(doc_guid)
            return
        root = await self.tree.root_id()
        group = await self.tree.find_group(root, doc_guid)
        if group is None:
            return
        section = await self.tree.find_group(group.id, section_guid)
        if section is not None:
            await self.tree.delete_group(group.id, section)
        self._forget(lambda entry: entry.get("section") == section_guid.lower())
        try:
            await self.ab.document(doc_guid)
        except (NotFoundError, ForbiddenError):
            await self._purge_document(doc_guid)

    async def _purge_document(self, doc_guid: str) -> None:
        root = await self.tree.root_id()
        group = await self.tree.find_group(root, doc_guid)
        if group is not None:
            await self.tree.delete_group(root, group)
            log.info("purged document from Canvas", tenant=self.tenant_id, document=doc_guid)
        self._forget(lambda entry: entry.get("document") == doc_guid.lower())

    # -- standards ----------------------------------------------------------------------------

    async def standard(self, guid: str, std: Standard | None) -> Outcome | None:
        """Create, update or retire one standard's outcome from the bulk read ``std`` (None: not in
        the answer); SKIPPED when AB forbids reading it."""
        if std is None:
            try:
                std = await self.ab.standard(guid)
            except ForbiddenError:
                log.info("standard no longer deliverable; skipped", tenant=self.tenant_id, standard=guid)
                return Outcome.SKIPPED
            except NotFoundError as exc:
                raise PermanentFailure(f"AB Connect does not know standard {guid}") from exc
        if not std.document_guid:
            raise PermanentFailure(f"AB Connect standard {guid} has no document")
        async with self._doc(std.document_guid):
            await self._standard(guid, std)
        return None

    async def _standard(self, guid: str, std: Standard) -> None:
        assert std.document_guid
        entry = self._entry(guid)
        if std.deleted:
            link = await self._known_link(guid, entry, std.document_guid)
            if link is not None:
                await self._retire(guid.lower(), link)
            return
        title, description = standard_outcome_text(std)
        if entry and entry.get("hash") == fingerprint(title, description) and entry.get("document") == \
                std.document_guid.lower() and entry.get("section") == (std.section_guid or "").lower():
            return  # Canvas holds what we last wrote, and AB has not changed since
        root = await self.tree.root_id()
        group = await self.tree.ensure_group(root, std.document_guid, std.document_descr or std.document_guid)
        target = await self._group_for(group, std)
        await self._upsert(std, std.document_guid, target, await self._known_link(guid, entry, std.document_guid))

    async def _known_link(self, guid: str, entry: dict[str, Any] | None, doc_guid: str) -> OutcomeLink | None:
        """The standard's outcome in Canvas: from the ledger without a request when it knows one;
        else the document's listing, done once per document since start-up."""
        if entry and entry.get("outcome_id") and entry.get("group_id"):
            return _link_from(entry, guid)
        if doc_guid.lower() in self.tree.verified:
            return None
        root = await self.tree.root_id()
        group = await self.tree.find_group(root, doc_guid)
        if group is None:
            return None
        return (await self._outcomes_under(group)).get(guid.lower())

    async def _group_for(self, doc_group: GroupRef, std: Standard) -> GroupRef:
        if not std.section_guid:
            return doc_group
        return await self.tree.ensure_group(doc_group.id, std.section_guid, std.section_descr or std.section_guid)

    async def _outcomes_under(self, doc_group: GroupRef) -> dict[str, OutcomeLink]:
        """Every managed outcome in the document's group and its section groups, by guid. The
        ledger learns any it did not know (with the text Canvas holds), so from now on the
        document counts as verified: a ledger miss is an outcome that does not exist."""
        links: dict[str, OutcomeLink] = {}
        doc = doc_group.vendor_guid.lower()
        subgroups = await self.tree.subgroups(doc_group.id, fresh=True)
        for section, group_id in [("", doc_group.id), *((g, ref.id) for g, ref in subgroups.items())]:
            for link in await self.tree.links(group_id):
                guid = (link.outcome.vendor_guid or "").lower()
                if guid and guid not in links:
                    links[guid] = link
                    self._learn(guid, link, doc, section)
        self.tree.verified.add(doc)
        return links

    def _learn(self, guid: str, link: OutcomeLink, document: str, section: str) -> None:
        entry = self._entry(guid)
        if entry and entry.get("outcome_id") == link.outcome_id and entry.get("group_id") == link.group_id:
            return
        text = fingerprint(link.outcome.title, link.outcome.description or "")
        self.ledger.put(self._key(guid), {"outcome_id": link.outcome_id, "group_id": link.group_id,
                                          "document": document, "section": section, "hash": text})

    async def _upsert(self, std: Standard, doc_guid: str, group: GroupRef, link: OutcomeLink | None) -> None:
        title, description = standard_outcome_text(std)
        if link is None:
            link = await self._create(group, std, doc_guid, title, description)
        else:
            outcome = link.outcome
            if outcome.title != title or (outcome.description or "") != description:
                try:
                    await self.outcomes.update(outcome.id, title, description)
                except NotFoundError:
                    # Deleted in Canvas by hand since the ledger saw it: make it again.
                    self._drop(std.guid)
                    link = await self._create(group, std, doc_guid, title, description)
            if link.group_id != group.id:
                await self.outcomes.move(link.outcome_id, link.group_id, group.id)
        self._record(std, doc_guid, link.outcome_id, group.id, fingerprint(title, description))

    async def _create(self, group: GroupRef, std: Standard, doc_guid: str, title: str, description: str) -> OutcomeLink:
        """A new outcome for ``std``. If the answer is lost the outcome may exist: the document is
        no longer verified, so the retry lists it and adopts what the lost POST made (bench/chaos
        found an outcome created twice when the retry trusted the ledger's miss)."""
        try:
            return await self.outcomes.create(group.id, std.guid, title, description)
        except AmbiguousWriteError:
            self.tree.verified.discard(doc_guid.lower())
            raise

    async def _retire(self, guid: str, link: OutcomeLink) -> None:
        try:
            await self.outcomes.unlink(link.group_id, link.outcome_id)
        except PermanentUpstreamError as exc:
            # Canvas keeps the last link of an outcome used in assessments (see module docstring).
            outcome = await self.tree.canvas.get_outcome(link.outcome_id)
            if not outcome.title.startswith(RETIRED_PREFIX):
                await self.outcomes.update(link.outcome_id, RETIRED_PREFIX + outcome.title, outcome.description or "")
            log.warning("outcome kept (Canvas refused to unlink it); retitled as deleted",
                        tenant=self.tenant_id, standard=guid, outcome=link.outcome_id, reason=str(exc))
            return
        entry = self._entry(guid) or {}
        self._drop(guid)
        await self._drop_empty_groups(entry.get("document"), entry.get("section"))

    async def _drop_empty_groups(self, document: str | None, section: str | None) -> None:
        """After the last outcome of a section (or a document) went, its group goes too, as the
        next full reconcile of the document would do."""
        if not document:
            return
        root = await self.tree.root_id()
        doc_group = await self.tree.find_group(root, document)
        if doc_group is None:
            return
        if document not in self.tree.verified:
            await self._outcomes_under(doc_group)  # the ledger must know every outcome before we count
        left = [e for _, e in self._entries() if e.get("document") == document]
        if not left:
            await self.tree.delete_group(root, doc_group)
            return
        if section and not any(e.get("section") == section for e in left):
            group = await self.tree.find_group(doc_group.id, section)
            if group is not None:
                await self.tree.delete_group(doc_group.id, group)

    # -- ledger -------------------------------------------------------------------------------

    def _key(self, guid: str) -> str:
        return f"canvas/{self.tenant_id}/outcome/{guid.lower()}"

    def _entry(self, guid: str) -> dict[str, Any] | None:
        entry = self.ledger.get(self._key(guid))
        return entry if isinstance(entry, dict) else None

    def _entries(self) -> list[tuple[str, dict[str, Any]]]:
        return [(k, e) for k, e in self.ledger.items(f"canvas/{self.tenant_id}/outcome/") if isinstance(e, dict)]

    def _record(self, std: Standard, doc_guid: str, outcome_id: int, group_id: int, fp: str) -> None:
        entry = {"outcome_id": outcome_id, "group_id": group_id, "document": doc_guid.lower(),
                 "section": (std.section_guid or "").lower(), "hash": fp}
        if self.ledger.get(self._key(std.guid)) != entry:
            self.ledger.put(self._key(std.guid), entry)

    def _drop(self, guid: str) -> None:
        if self._entry(guid) is not None:
            self.ledger.put(self._key(guid), None)

    def _forget(self, match: Callable[[dict[str, Any]], bool]) -> None:
        for key, entry in self._entries():
            if match(entry):
                self.ledger.put(key, None)


def _link_from(entry: dict[str, Any], guid: str) -> OutcomeLink:
    """The outcome's link as the ledger knows it, without a request. Its text is unknown (empty),
    so an upsert through it always writes: it is used only once the fingerprint differs."""
    outcome = CanvasOutcome(id=int(entry["outcome_id"]), title="", vendor_guid=guid)
    return OutcomeLink(outcome_group=OutcomeGroupRef(id=int(entry["group_id"])), outcome=outcome)


__all__ = ["HANDLER_NAME", "StandardsTenant", "StandardsToCanvas", "fingerprint", "same_guid"]
