"""The shared HTTP layer's settings as the client tests think of them: retries and a timeout."""

from __future__ import annotations

from worker.backoff import Backoff
from worker.clients.http import HTTPSettings

FAST = Backoff(base=0.01, cap=0.05)


def http_settings(max_retries: int = 5, timeout: float = 30.0, backoff: Backoff = FAST) -> HTTPSettings:
    """``max_retries`` retries after the first attempt, each attempt within ``timeout``."""
    return HTTPSettings(max_attempts=max_retries + 1, attempt_timeout_seconds=timeout,
                        request_deadline_seconds=max(2 * timeout, 1.0), backoff_base_seconds=backoff.base,
                        backoff_cap_seconds=backoff.cap)
