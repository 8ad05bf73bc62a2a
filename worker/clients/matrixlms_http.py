"""How MatrixLMS answers, for the shared HTTP layer: the rate-limit exception and "Invalid API
key" known by their messages, and error texts that never carry what the request sent.

Errors are 401 (authentication) or 400 for everything else, always ``{"message": ...}`` (seed
000:L43-49). The rate-limit exception's status and text are undocumented (matrix_class.md A.4:
"Detect it by message content, not by status alone"); the simulator answers 400 "Rate limit
exceeded". Every argument of a call, personal data included, is in its URL (000:L27), and an
upstream message may echo one ("Invalid date for birthdate: ..."), so error texts are scrubbed
of the values the request sent, and a body that is not JSON is described, never quoted.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import orjson

from worker.clients.errors import AuthenticationError, MalformedResponseError, UpstreamError
from worker.clients.http import ResponseClassifier, UpstreamHTTP, is_html
from worker.redaction import MASK

INVALID_API_KEY = "Invalid API key"  # 000:L49
# The exception's text is undocumented (A.4); the simulator says "Rate limit exceeded".
RATE_LIMIT_TEXT = re.compile(r"rate[ _-]?limit", re.IGNORECASE)
# Argument names whose values are not personal data and may stay in an echoed error text.
_SAFE_KEYS = frozenset({
    "api_version", "page", "class_id", "class_ids", "user_id", "user_ids", "assignment_id", "organization_id",
    "ignore_already_enrolled", "send_notification", "archived", "style", "private", "top_tab", "tabs",
    "start_at", "finish_at", "grade", "account_types", "change_password", "update_password",
    "send_login_instructions", "student", "teacher", "course_code", "section_code",
})


def _error_message(response: httpx.Response) -> str | None:
    """The ``message`` of a ``{"message": ...}`` error body (000:L43-49), or None."""
    if not response.content or is_html(response):
        return None
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) else None


def scrub(text: str, request: httpx.Request | None) -> str:
    """``text`` with every value ``request`` sent masked, except ids, flags and other safe arguments."""
    if request is None:
        return text
    for key, value in request.url.params.multi_items():
        leaf = key.rstrip("[]").rsplit("[", 1)[-1].rstrip("]")
        if leaf in _SAFE_KEYS or len(value) < 2 or value.isdigit():
            continue
        text = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", MASK, text)
    return text


class MatrixClassifier(ResponseClassifier):
    """MatrixLMS's meanings: the rate-limit exception and "Invalid API key" known by their
    messages, whatever their status; any error text scrubbed of the values the request sent."""

    def throttled(self, response: httpx.Response) -> bool:
        """A 429, or any error whose message speaks of the rate limit (A.4: a 400 in the simulator)."""
        if response.status_code == 429:
            return True
        if response.status_code < 400:
            return False
        message = _error_message(response)
        return message is not None and RATE_LIMIT_TEXT.search(message) is not None

    def classify(self, response: httpx.Response, where: str) -> UpstreamError | None:
        """The base classification, with "Invalid API key" as rejected credentials and the text scrubbed."""
        error = super().classify(response, where)
        if (error is not None and not isinstance(error, AuthenticationError)
                and 400 <= response.status_code < 500 and _error_message(response) == INVALID_API_KEY):
            error = self.rejected(response, f"{where}: {INVALID_API_KEY}")
        if error is not None:
            # Upstream texts may echo an argument ("Invalid date for birthdate: ..."); the
            # message of an exception ends up in logs and dead letters.
            error.args = (scrub(str(error), _request_of(response)),)
        return error


def _request_of(response: httpx.Response) -> httpx.Request | None:
    try:
        return response.request
    except RuntimeError:  # a response built without its request
        return None


class MatrixHTTP(UpstreamHTTP):
    """The shared layer with one change: a body that is not JSON is never quoted in the error
    (a truncated user list is personal data)."""

    def parse_json(self, response: httpx.Response, where: str = "") -> Any:
        """The JSON body, or ``MalformedResponseError`` giving only its size and type."""
        try:
            return super().parse_json(response, where)
        except MalformedResponseError:
            kind = "an HTML page" if is_html(response) else "unparseable JSON"
            raise MalformedResponseError(
                self.system, f"{where}: {kind} ({len(response.content)} bytes) instead of JSON",
                status=response.status_code) from None
