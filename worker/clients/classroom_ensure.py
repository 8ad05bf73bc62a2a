"""Create-or-find for "Class" classes: a duplicate create is answered by reading and comparing.

``ext_class_id`` is unique in Class, and a second create with it is refused with a 400 (seed 001
L1393-1397, B.7). That is the idempotency key. A lost create answer (``AmbiguousWriteError``:
timeout, 5xx, or a gateway 504 after Class applied it) is settled by a read, never by a blind
retry. If the read finds nothing, creating again is safe: the worst answer is the duplicate 400.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import structlog

from worker.clients.classroom_errors import SYSTEM, ClassExistsError
from worker.clients.classroom_models import AnyClass, ClassInfo, CreatedClass, DeferredClass, malformed
from worker.clients.classroom_specs import ClassSpec
from worker.clients.errors import AmbiguousWriteError, ConflictError

if TYPE_CHECKING:
    from worker.clients.classroom import ClassroomClient

log = structlog.get_logger(__name__)

Outcome = Literal["created", "existed", "lost_answer"]


@dataclass(frozen=True)
class EnsuredClass:
    """What ``ensure_class`` found or did.

    ``outcome`` is one of:

    - ``created``: our POST made the class;
    - ``existed``: the duplicate 400, so it was already there;
    - ``lost_answer``: a create's answer was lost and the class was then found. It may be ours
      or an older one; Class cannot say.

    ``patched`` names the fields PATCHed to match. ``unpatchable`` names the differences PATCH
    cannot fix (the instructor, B.6.4; FLOWS.md 2.4 trap 1), for the caller to count.
    """

    record: AnyClass
    outcome: Outcome
    patched: tuple[str, ...] = ()
    unpatchable: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether Class may have changed: created, patched, or a lost create that may have applied."""
        return self.outcome != "existed" or bool(self.patched)


async def ensure_class(client: ClassroomClient, spec: ClassSpec, *, read_back: bool = False) -> EnsuredClass:
    """Make sure the class of ``spec.ext_class_id`` exists with ``spec``'s name and description,
    creating it at most once.

    The create comes first: one request in the common case. On the duplicate 400, or when the
    create's answer was lost, the class is read by ``ext_class_id`` (live, then deferred), and its
    name and description are PATCHed if they differ. A fresh create's record is built from the
    201 and ``spec``, unless ``read_back`` asks for one more GET.
    """
    ext = spec.ext_class_id
    if ext is None:
        raise ValueError("ensure_class needs spec.ext_class_id: it is the idempotency key (B.7)")
    lost = False
    for attempt in (1, 2):
        try:
            created = await client.create_class(spec)
        except ClassExistsError:
            break
        except AmbiguousWriteError:
            lost = True
            found = await client.find_class(ext_class_id=ext)
            if found is not None:
                return await _reconcile(client, spec, found, "lost_answer")
            if attempt == 2:
                raise
            log.info("classroom.create.retry_after_lost_answer", ext_class_id=ext)
            continue
        record = None if read_back else record_from_create(spec, created)
        if record is None:
            record = await client.find_class(ext_class_id=ext)
            if record is None:
                raise malformed(f"class {ext!r} was created (201) but cannot be read back")
        # Created by this POST, even when an earlier one was lost: had that one been applied,
        # this one would have got the duplicate 400.
        return EnsuredClass(record=record, outcome="created")
    found = await client.find_class(ext_class_id=ext)
    if found is None:
        # Class says the id is taken but holds no class with it. A deleted class may keep its
        # ext_class_id reserved (undocumented, FLOWS.md 2.4 trap 3). Retrying cannot help.
        raise ConflictError(SYSTEM, f"ext_class_id {ext!r} is refused as existing but no class has it "
                            "(reserved by a deleted class?)", status=400)
    return await _reconcile(client, spec, found, "lost_answer" if lost else "existed")


async def _reconcile(client: ClassroomClient, spec: ClassSpec, found: AnyClass, outcome: Outcome) -> EnsuredClass:
    name = spec.class_name if found.class_name != spec.class_name else None
    # A None description is not managed (ClassSpec): never sent, so never compared.
    description = spec.class_description if found.class_description != spec.class_description else None
    changes = tuple(f for f, v in (("class_name", name), ("class_description", description)) if v is not None)
    record = found
    if changes:
        if isinstance(found, DeferredClass):
            record = await client.update_class(class_deferred_id=found.class_deferred_id, class_name=name,
                                               class_description=description)
        else:
            record = await client.update_class(class_id=found.class_id, class_name=name,
                                               class_description=description)
    unpatchable: list[str] = []
    if isinstance(found, ClassInfo) and found.host is not None and found.host != spec.host:
        unpatchable.append("host")
    if isinstance(found, DeferredClass) and found.email and found.email.lower() != spec.email.lower():
        unpatchable.append("email")
    log.debug("classroom.ensure_class", ext_class_id=spec.ext_class_id, outcome=outcome, patched=list(changes),
              unpatchable=unpatchable)
    return EnsuredClass(record=record, outcome=outcome, patched=changes, unpatchable=tuple(unpatchable))


def record_from_create(spec: ClassSpec, created: CreatedClass) -> AnyClass | None:
    """The class as the 201 and ``spec`` describe it, or ``None`` when the answer lacks its id."""
    if created.class_id is None:
        return None
    if created.deferred:
        if created.class_deferred_id is None:
            return None
        return DeferredClass(class_deferred_id=created.class_deferred_id, class_id=created.class_id,
                             ext_class_id=created.ext_class_id or spec.ext_class_id, email=spec.email,
                             class_name=spec.class_name, class_description=spec.class_description)
    return ClassInfo(class_id=created.class_id, ext_class_id=spec.ext_class_id, class_name=spec.class_name,
                     class_description=spec.class_description, meeting_id=created.meeting_id, host=spec.host,
                     invite_link=created.invite_link, password=spec.meeting_passcode)
