"""Behaviour the seed leaves open, as switches (``GET``/``PUT /_sim/config``).

* ``deferred_create=False``: when true, ``POST /api/v1/classes`` takes the "Deferred" path and
  answers 201 ``{"class_deferred_id", "class_id", "ext_id"}`` (seed 001:L234-239); its real trigger
  is undocumented (B.6.1). ``POST /_sim/deferred/promote`` turns deferred records into classes.
* ``reuse_deleted_ext_class_id=True``: a deleted class's ``ext_class_id`` may be used again
  (matrix_class.md C5 recreates a restored course under the same external id). False keeps it
  reserved: a create gets the duplicate 400.
* ``duplicate_enrollment="error"``: a second POST for the same person (``ext_person_id`` or
  ``email``) in a class is a 400 ``{"error": "Enrollment exists for the person provided."}``;
  ``"update"`` updates the enrollment instead. Undocumented (B.6.6).
* ``put_creates_enrollment=False``: a PUT for a person not in the class is a 404 ``enrollment ...
  not found``; true creates the enrollment. Undocumented (B.6.8).
* ``users_page_limit=20``: the page size of ``GET /users?page=`` without ``limit`` (the seed's
  example asks ``limit=20``; the default is undocumented).
* ``throttle_next=0``: NOT NORMATIVE (the seed documents no rate limit, B.4): the next N API
  requests get 429 ``{"error": "Too Many Requests"}`` with ``Retry-After: 1``.
* ``org_host``: the host of invite and launch links.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SimConfig(BaseModel):
    """Every switch of the Class simulator."""

    model_config = ConfigDict(extra="forbid")

    deferred_create: bool = False
    reuse_deleted_ext_class_id: bool = True
    duplicate_enrollment: Literal["error", "update"] = "error"
    put_creates_enrollment: bool = False
    users_page_limit: int = Field(default=20, ge=1, le=1000)
    throttle_next: int = Field(default=0, ge=0)
    org_host: str = "mydemo.class.com"
