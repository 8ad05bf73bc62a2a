"""Class API error bodies (seed 001:L1380-1435, matrix_class.md B.3).

Every error is ``{"error": "<text>"}``; validation failures add ``"data": {field: [messages]}``.
Documented texts: the duplicate ``ext_class_id`` 400, the missing-scope 403, the unknown-class 404
and the validation envelope with "The email format is invalid.". Other messages follow the same
(Laravel-style) wording and are the simulator's own.
"""

from __future__ import annotations

from typing import Any

VALIDATION_FAILED = "Request failed validation"


class ClassError(Exception):
    """Raised by route code; rendered as JSON with ``status``."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def error(status: int, text: str) -> ClassError:
    """A plain ``{"error": text}``."""
    return ClassError(status, {"error": text})


def validation(errors: dict[str, list[str]]) -> ClassError:
    """400 ``{"error": "Request failed validation", "data": {...}}`` (seed 001:L1401-1410)."""
    return ClassError(400, {"error": VALIDATION_FAILED, "data": errors})


def duplicate_ext_class_id(ext_class_id: str) -> ClassError:
    """The documented duplicate body, exactly (seed 001:L1392-1397)."""
    return error(400, f"Class exists for external class ID provided: {ext_class_id}.")


def scope_required(scope: str) -> ClassError:
    """403 ``Api key scope <scope> required`` (seed 001:L1413-1418)."""
    return error(403, f"Api key scope {scope} required")


def class_not_found(identifier: str) -> ClassError:
    """404 ``class <id> not found`` (seed 001:L1424-1428), echoing whichever identifier was used."""
    return error(404, f"class {identifier} not found")


def not_found(kind: str, identifier: Any) -> ClassError:
    """404 for users, enrollments, templates and schedules (wording modelled on the class 404)."""
    return error(404, f"{kind} {identifier} not found")
