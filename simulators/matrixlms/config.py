"""The behaviour the seed leaves open, as switches (``GET``/``PUT /_sim/config``).

Defaults and why:

* ``readd_unenrolled="reenroll"``: ``add_students_to_class`` with a student whose enrollment is
  marked ``unenrolled`` enrolls them again (clearing the ``unenrolled*`` fields). ``"error"`` treats
  them as already enrolled (fails the batch unless ``ignore_already_enrolled``). Undocumented
  (matrix_class.md A.6.4, FLOWS 2.5 trap 5).
* ``remove_non_member="ignore"``: ``remove_students_from_class`` skips users that are not (or no
  longer) enrolled and does not count them; ``"error"`` fails the whole call. Undocumented.
* ``name_birthdate_match="without_ids"``: ``add_user``/``update_user`` fall back to name plus birth
  date only when the call carries none of userid, student_id, teacher_id. ``"always"`` is the
  literal reading of seed 000:L170 (any matching key updates, so a twin with new ids overwrites
  the other twin).
* ``strict_attributes=True``: an attribute the simulator does not know is a 400, so a client typo
  shows up in tests; real MatrixLMS may ignore it (undocumented).
* ``class_codes_settable=False``: ``course_code``/``section_code``/``semester`` are readable but not
  documented as settable (A.6.5), so ``add_class``/``edit_class`` refuse them (strict) or ignore them.
* ``class_name_match="exact"``: ``get_classes_that_match(name=...)`` compares whole names
  (case-insensitive); ``"contains"`` is a substring search. Undocumented.
* ``accept_post=False``: the seed says every call is an HTTP GET (000:L27); POST is a 400 unless
  enabled (then form fields are read like query arguments).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from simulators.matrixlms.ratelimit import RateLimitConfig


class SimConfig(BaseModel):
    """Every switch of the MatrixLMS simulator."""

    model_config = ConfigDict(extra="forbid")

    readd_unenrolled: Literal["reenroll", "error"] = "reenroll"
    remove_non_member: Literal["ignore", "error"] = "ignore"
    name_birthdate_match: Literal["without_ids", "always"] = "without_ids"
    strict_attributes: bool = True
    class_codes_settable: bool = False
    class_name_match: Literal["exact", "contains"] = "exact"
    accept_post: bool = False
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
