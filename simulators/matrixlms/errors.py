"""MatrixLMS error answers (seed 000:L43-49, matrix_class.md A.3).

Authentication failures are HTTP 401, everything else HTTP 400, and the body is always a JSON
object with the single field ``message``. Only "Invalid API key" is a documented text; every other
message here is the simulator's own wording (marked inferred where it is raised).
"""

from __future__ import annotations

INVALID_API_KEY = "Invalid API key"


class MatrixError(Exception):
    """Raised anywhere in a call; rendered as ``{"message": ...}`` with ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def bad_request(message: str) -> MatrixError:
    """The generic 400 every non-authentication failure uses."""
    return MatrixError(message, 400)


def unauthorized(message: str = INVALID_API_KEY) -> MatrixError:
    """401; the documented text is ``Invalid API key`` (seed 000:L49)."""
    return MatrixError(message, 401)
