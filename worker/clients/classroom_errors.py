"""What the "Class" API's answers mean: its typed errors and the classifier that raises them.

Reference: /work/shared/api/matrix_class.md Part B (``B.n``) and seed 001 (``seed L<n>``).
Every error body is ``{"error": "<text>"}``, validation failures add ``"data"`` (B.3, seed
L1389-1435). The mapping, decided here once for every call:

- 401 "The API key is malformed or the Authorization Header is not included" (seed L1432):
  ``AuthenticationError``; an expired key is presumably a 401 too (B.1, undocumented).
- 403 "The API key does not include the required scopes" (seed L1433), body ``Api key scope
  class:write required`` (seed L1414-1418): ``MissingScopeError``, an ``AccessDeniedError``
  naming the scope. Class documents no other 403, so every 403 is this one: the component
  pauses (FLOWS.md 4.8) rather than dead-lettering each event of a key that lacks a scope.
- 400 ``Class exists for external class ID provided: X.`` (seed L1393-1397): ``ClassExistsError``
  (a ``ConflictError``) carrying ``X``, so ``ensure_class`` can read and compare.
- 400 ``Request failed validation`` with ``data`` (seed L1401-1410): ``ClassValidationError``
  naming every field message; any other 400: ``PermanentUpstreamError`` with the ``error`` text.
- 404: ``NotFoundError``; 429 (undocumented, handled defensively, B.4) and 5xx: retriable, by
  the shared layer's defaults.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import orjson

from worker.clients.errors import AccessDeniedError, ConflictError, PermanentUpstreamError, UpstreamError
from worker.clients.http import ResponseClassifier, is_html, message_from

SYSTEM = "classroom"

# seed L1416: "Api key scope class:write required". Scopes are "<resource>:<read|write>" (B.1).
_SCOPE_TEXT = re.compile(r"\bApi key scope\s+(\S+)\s+required\b", re.IGNORECASE)
# seed L1395: "Class exists for external class ID provided: 074c697e-....". The id is a free
# string (B.6.6) that may itself hold dots, so only the one final period is the sentence's.
_EXISTS_TEXT = re.compile(r"^Class exists for external class ID provided: (.*?)\.?\s*$", re.DOTALL)
VALIDATION_TEXT = "Request failed validation"  # seed L1403


class MissingScopeError(AccessDeniedError):
    """The key is valid but lacks ``scope`` (403, seed L1414-1418): pause, never dead-letter.

    ``scope`` is ``None`` when a 403 did not name one (not documented, but still a scope problem:
    the seed's only meaning of 403 is "does not include the required scopes").
    """

    def __init__(self, message: str, *, scope: str | None, status: int | None = 403) -> None:
        super().__init__(SYSTEM, message, status=status)
        self.scope = scope


class ClassExistsError(ConflictError):
    """A create with an ``ext_class_id`` that Class already holds (400, seed L1393-1397)."""

    def __init__(self, ext_class_id: str, message: str, *, status: int | None = 400) -> None:
        super().__init__(SYSTEM, message, status=status)
        self.ext_class_id = ext_class_id


class ClassValidationError(PermanentUpstreamError):
    """400 "Request failed validation"; ``fields`` maps each field to Class's messages (seed L1401-1410)."""

    def __init__(self, message: str, *, fields: dict[str, list[str]], status: int | None = 400) -> None:
        super().__init__(SYSTEM, message, status=status)
        self.fields = fields


def missing_scope(text: str) -> str | None:
    """The scope a 403 text names (``"class:write"``), or ``None``."""
    match = _SCOPE_TEXT.search(text)
    return match.group(1) if match else None


def existing_ext_class_id(text: str) -> str | None:
    """The ``ext_class_id`` of the duplicate-create text, or ``None`` for any other text."""
    match = _EXISTS_TEXT.match(text.strip())
    return match.group(1) if match else None


def validation_fields(body: Any) -> dict[str, list[str]]:
    """``data`` of a validation body as field -> messages; anything else in it becomes text."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        return {}
    return {str(field): [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])] for field, msgs in data.items()}


def error_text(body: Any) -> str:
    """The ``error`` text of a Class error body (B.3), else the common shapes' message."""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return message_from(body)


def _json_or_none(response: httpx.Response) -> Any:
    if not response.content or is_html(response):
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


class ClassroomClassifier(ResponseClassifier):
    """Class's meanings of 400 and 403 on top of the shared HTTP defaults (see the module text)."""

    def __init__(self) -> None:
        super().__init__(SYSTEM)

    def classify(self, response: httpx.Response, where: str) -> UpstreamError | None:
        """The typed error of ``response`` (``None`` on success)."""
        status = response.status_code
        if status == 403:
            text = self.detail(response)
            scope = missing_scope(text)
            what = f"the API key lacks scope {scope}" if scope else "the API key lacks a required scope"
            return MissingScopeError(f"{what}: {where}: {text}", scope=scope, status=status)
        if status == 400:
            body = _json_or_none(response)
            text = error_text(body) if body is not None else self.detail(response)
            ext = existing_ext_class_id(text)
            if ext is not None:
                return ClassExistsError(ext, f"{where}: {text}", status=status)
            fields = validation_fields(body)
            if fields:
                return ClassValidationError(f"{where}: {self.detail(response)}", fields=fields, status=status)
            return PermanentUpstreamError(SYSTEM, f"{where}: {text[:300]}", status=status)
        return super().classify(response, where)

    def detail(self, response: httpx.Response) -> str:
        """The ``error`` text, with the validation messages of ``data`` appended."""
        body = _json_or_none(response)
        if body is None:
            return super().detail(response)
        text = error_text(body)
        fields = validation_fields(body)
        if fields:
            text += ": " + "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in sorted(fields.items()))
        return text[:300]
