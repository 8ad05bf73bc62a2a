"""``get_version``: "a simple integer (1, 2, 3, etc.)", e.g. ``{"version":1}`` (seed 000:L33-35, L59)."""

from __future__ import annotations

from typing import Any

from simulators.matrixlms.functions.base import Call, Function

API_VERSION = 1


def get_version(call: Call) -> Any:
    """The API version as ``{"version": 1}``."""
    return {"version": API_VERSION}


FUNCTIONS: dict[str, Function] = {"get_version": get_version}
