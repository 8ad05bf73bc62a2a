"""Canvas-specific failures, each on the branch of ``worker.clients.errors`` that says what to do."""

from __future__ import annotations

from worker.clients.errors import AuthenticationError, NotFoundError, PermanentUpstreamError


class TokenExpiredError(AuthenticationError):
    """401 with ``WWW-Authenticate`` whose body says the access token expired (canvas.md §1.2:
    "If the token is deleted or expires, the application will get a 401 Unauthorized"). A client
    holding a refresh token refreshes once and repeats the request; a static token pauses."""


class SisIdNotStoredError(PermanentUpstreamError):
    """Canvas created the object but did not keep the SIS id we sent (FLOWS.md 2.3 trap 2: without
    ``manage_sis`` Canvas drops ``sis_*_id`` silently). The object is never returned as a success:
    the next look-up by SIS id would miss it and create it again, on every event."""


class AuditLogUnavailableError(NotFoundError):
    """An audit feed answered 404: auditors storage is not configured on this Canvas (canvas.md
    App. A.3 "If auditors storage is not configured, the endpoint returns not_found"), or the
    account or course does not exist. It must never look like an empty feed."""


class ProgressFailedError(PermanentUpstreamError):
    """An asynchronous Canvas job (a Progress object, canvas.md §1.9) ended ``failed``."""
