"""The one error tree of edusync: every error it raises on purpose descends from ``EdusyncError``.

Three branches decide what the frames do, with one check (``classify``):

- ``RetriableError``: the same work may succeed later (timeouts, 5xx, throttling, a body we
  could not parse). Pollers keep their cursor and try again; handlers retry the event.
- ``CredentialsRejectedError``: the upstream refused our credentials or their scope. Retrying
  every event would fail the same way, so the component pauses (``/readyz`` false, a metric,
  one log line a minute) and tries again on a slow schedule. Never dead-lettered.
- ``PermanentError``: retrying the same work cannot fix it; a handler dead-letters the event.

Anything else a handler raises is a bug, dead-lettered with its traceback rather than blocking a
partition. ``PrerequisiteMissing`` is not a failure but a request to defer the event.
"""

from __future__ import annotations

from enum import StrEnum


class EdusyncError(Exception):
    """Root of every error edusync raises on purpose."""


class RetriableError(EdusyncError):
    """The same work may succeed if tried again later."""


class PermanentError(EdusyncError):
    """Retrying the same work cannot fix it."""


class CredentialsRejectedError(EdusyncError):
    """An upstream refused the credentials or their scope: pause, do not dead-letter."""


class PermanentFailure(PermanentError):
    """Raised by a handler for an event that retrying cannot fix; it is dead-lettered."""


class TransientFailure(RetriableError):
    """Raised by a handler for a failure that may pass on retry."""


class PrerequisiteMissing(EdusyncError):
    """The event needs something the target does not hold yet (an enrolment before its user).

    The handler frame parks the event durably and retries it when due, or at once when the
    ledger key ``waits_for`` (``handler/key``) is written; after the handler's deferral limit
    it is dead-lettered as "prerequisite never appeared: <reason>".
    """

    def __init__(self, reason: str, *, waits_for: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.waits_for = waits_for


class ConfigurationError(PermanentError):
    """A configuration file or value is invalid."""


class Verdict(StrEnum):
    """What a frame does with a failure."""

    RETRY = "retry"
    PAUSE = "pause"
    DEFER = "defer"
    DEAD_LETTER = "dead_letter"


def classify(exc: BaseException) -> Verdict:
    """The frames' one decision on a failure. ``TimeoutError`` is a deadline a handler set itself."""
    if isinstance(exc, CredentialsRejectedError):
        return Verdict.PAUSE
    if isinstance(exc, PrerequisiteMissing):
        return Verdict.DEFER
    if isinstance(exc, RetriableError | TimeoutError):
        return Verdict.RETRY
    return Verdict.DEAD_LETTER
