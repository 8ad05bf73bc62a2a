"""Object references in paths and bodies: numeric ids, ``sis_*_id:`` prefixes and ``self``.

canvas.md §1.6 / §5.5: "objects are referenced by internal IDs. You can also reference objects by
SIS ID, by prepending the SIS ID with the name of the SIS field, like sis_course_id:". SIS ids
arrive percent-decoded (``sis_path.py`` keeps an encoded ``/`` inside one path segment).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulators.canvas.responses import not_found
from simulators.canvas.sis_path import restore_slashes

_PREFIXES = (
    "sis_account_id", "sis_course_id", "sis_section_id", "sis_term_id", "sis_user_id", "sis_login_id",
    "sis_integration_id", "sis_assignment_id", "lti_context_id",
)


@dataclass(frozen=True)
class Ref:
    """A parsed reference: ``kind`` is ``id``, ``self`` or one of the ``sis_*`` prefixes."""

    kind: str
    value: str

    def as_int(self) -> int:
        """The numeric id, or the Canvas 404 for anything that is not one."""
        if self.kind != "id" or not self.value.isdigit():
            raise not_found()
        return int(self.value)


def parse_ref(raw: Any) -> Ref:
    """Split ``sis_course_id:CS/101`` into ``Ref("sis_course_id", "CS/101")``; numbers stay ``id``."""
    text = restore_slashes(str(raw)).strip()
    if text == "self":
        return Ref("self", text)
    head, sep, tail = text.partition(":")
    if sep and head in _PREFIXES:
        return Ref(head, tail)
    return Ref("id", text)
