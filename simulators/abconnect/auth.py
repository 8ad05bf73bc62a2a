"""Server-side check of AB Connect query-string signatures (api/abconnect.md §1.2, §6.2)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from simulators.abconnect.signature import expected_signature


class AuthFailure(Exception):
    """Why a request's credentials were rejected; ``parameter`` names the query parameter at fault."""

    def __init__(self, detail: str, parameter: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.parameter = parameter


def resource_of(path: str, prefix: str = "/rest/v4.1/") -> str:
    """The signature's "resource": the first path segment after the API prefix, lowercase [INFERRED]."""
    rest = path[len(prefix):] if path.startswith(prefix) else path.lstrip("/")
    return rest.split("/", 1)[0].lower()


def verify(
    partners: Mapping[str, str], query: Mapping[str, str], *, method: str, path: str, now: float,
) -> str:
    """Return the authenticated partner id, or raise ``AuthFailure``.

    The method and resource restrictions are not sent but "inferred from the actual call"
    (L8591), so every permitted message form is tried: ``exp``, ``exp\\nuser``,
    ``exp\\nuser\\nMETHOD`` and ``exp\\nuser\\nMETHOD\\nresource``; never a resource without
    a method (L8593).
    """
    for name in ("partner.id", "auth.signature", "auth.expires"):
        if not query.get(name):
            raise AuthFailure(f"Missing required authentication parameter {name}.", name)
    partner_id = query["partner.id"]
    key = partners.get(partner_id)
    if key is None:
        raise AuthFailure("Unknown partner.id.", "partner.id")
    try:
        expires = int(query["auth.expires"])
    except ValueError:
        raise AuthFailure("auth.expires must be an integer number of seconds since the epoch.",
                          "auth.expires") from None
    if expires < now:
        raise AuthFailure("The signature has expired (auth.expires is in the past).", "auth.expires")
    user = query.get("user.id") or None
    # A '+' sent unencoded arrives as a space after form decoding; accept it as the '+' it was.
    given = query["auth.signature"].replace(" ", "+").encode()
    method_up = method.upper()
    candidates = [
        expected_signature(key, expires, user, None, None),
        expected_signature(key, expires, user, method_up, None),
        expected_signature(key, expires, user, method_up, resource_of(path)),
    ]
    if any(hmac.compare_digest(given, c.encode()) for c in candidates):
        return partner_id
    raise AuthFailure("The signature does not match the request.", "auth.signature")
