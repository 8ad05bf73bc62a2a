"""Typed errors raised by every upstream API client, on the branches of ``worker.errors``.

Callers decide from the class alone:

- retriable (``TransientUpstreamError``, ``ThrottledError``, ``MalformedResponseError``,
  ``AmbiguousWriteError``): retried with backoff, never skipping work. A poller never moves its
  cursor past a page it could not read whole and typed.
- credentials rejected (``AuthenticationError``, ``AccessDeniedError``): the component pauses.
- permanent (``PermanentUpstreamError`` and below): the request itself is wrong or the entity
  is gone; a handler dead-letters the event.
"""

from __future__ import annotations

from worker.errors import CredentialsRejectedError, EdusyncError, PermanentError, RetriableError


class UpstreamError(EdusyncError):
    """Base class for failures talking to an upstream system; the message names system and status."""

    def __init__(self, system: str, message: str, *, status: int | None = None) -> None:
        self.system = system
        self.status = status
        prefix = f"{system}: HTTP {status}: " if status is not None else f"{system}: "
        super().__init__(prefix + message)


class TransientUpstreamError(UpstreamError, RetriableError):
    """A failure that may pass if retried: timeouts, connection errors, 5xx."""


class ThrottledError(TransientUpstreamError):
    """The upstream answered with its rate-limit response; ``retry_after`` is its advice in seconds."""

    def __init__(
        self, system: str, message: str, *, status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(system, message, status=status)
        self.retry_after = retry_after


class MalformedResponseError(UpstreamError, RetriableError):
    """The upstream answered something we cannot parse or validate (HTML, truncated JSON,
    missing or wrongly typed fields). Nothing derived from it is published."""


class ResponseTooLargeError(MalformedResponseError):
    """The body exceeded the configured size cap; it was not read into memory."""


class ImplausibleDataError(MalformedResponseError):
    """The answer parses but cannot be true (a cursor jumping implausibly far, for example)."""


class AmbiguousWriteError(UpstreamError, RetriableError):
    """A write whose outcome is unknown (timeout, 5xx, lost answer): it may have been applied.
    Never retried blindly; the caller looks the object up before trying again."""


class PermanentUpstreamError(UpstreamError, PermanentError):
    """A failure that retrying cannot fix: a 4xx other than throttling and credentials."""


class NotFoundError(PermanentUpstreamError):
    """The entity does not exist upstream."""


class ForbiddenError(PermanentUpstreamError):
    """The credentials are valid but may not read or write this one entity."""


class ConflictError(PermanentUpstreamError):
    """The write collides with an existing object (an external id already taken)."""


class AuthenticationError(UpstreamError, CredentialsRejectedError):
    """Credentials were rejected (bad signature, invalid or expired token, invalid API key)."""


class AccessDeniedError(AuthenticationError):
    """Valid credentials without the scope or permission the work needs at all."""
