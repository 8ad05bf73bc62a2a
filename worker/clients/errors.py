"""Typed errors raised by every upstream API client.

Handlers and pollers decide what to do from the class alone: a ``TransientUpstreamError``
is retried with backoff and never skips work; a ``PermanentUpstreamError`` cannot be
fixed by retrying (bad request, missing entity, forbidden) and goes to the dead-letter
topic; a ``MalformedResponseError`` means the upstream answered something we cannot
parse, which a poller must never turn into a cursor move.
"""

from __future__ import annotations


class UpstreamError(Exception):
    """Base class for failures talking to an upstream system."""

    def __init__(self, system: str, message: str, *, status: int | None = None) -> None:
        self.system = system
        self.status = status
        prefix = f"{system}: HTTP {status}: " if status is not None else f"{system}: "
        super().__init__(prefix + message)


class TransientUpstreamError(UpstreamError):
    """A failure that may pass if retried: timeouts, connection errors, 5xx."""


class ThrottledError(TransientUpstreamError):
    """The upstream answered with its rate-limit response."""

    def __init__(
        self, system: str, message: str, *, status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(system, message, status=status)
        self.retry_after = retry_after


class PermanentUpstreamError(UpstreamError):
    """A failure that retrying cannot fix: 4xx other than throttling."""


class AuthenticationError(PermanentUpstreamError):
    """Credentials were rejected (bad signature, expired or invalid token)."""


class NotFoundError(PermanentUpstreamError):
    """The entity does not exist upstream."""


class ForbiddenError(PermanentUpstreamError):
    """The credentials are valid but may not read or write this entity."""


class MalformedResponseError(UpstreamError):
    """The upstream answered with a body we cannot parse or validate (HTML, truncated JSON,
    missing or wrongly typed fields). Treated as transient by pollers: the cursor stays put."""
