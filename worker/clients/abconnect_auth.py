"""AB Connect v4.1 request signing and query-string encoding (pure functions).

The signature is documented in seeds/002 L8335-8601 (reference: api/abconnect.md §1.2):
``base64(HMAC-SHA256(partner_key, "<expires>[\\nuser][\\nmethod][\\nresource]"))``, carried in
the query string as ``partner.id``, ``auth.signature``, ``auth.expires`` and optional ``user.id``.
The simulator imports these same functions to verify signatures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import quote

# Characters left literal in query values. The documented example URLs keep parentheses and
# commas readable (L524-555, L2310) but percent-encode spaces, quotes, '/', '+', '=' and '*'
# (the signature fragment at L8601 and the ``fields[standards]=%2A`` self link at L6467).
_VALUE_SAFE = "(),"
# Keys such as ``filter[standards]`` appear with literal brackets in every documented URL.
_KEY_SAFE = "[]"


def signature_message(
    expires: int, *, user_id: str | None = None, method: str | None = None, resource: str | None = None,
) -> str:
    """Build the documented message ``<expires>[\\nuser][\\nmethod][\\nresource]``.

    An empty user keeps its slot when a method follows (``1508419888\\n\\nGET``, L8588); a resource
    without a method is not allowed (L8593).
    """
    if resource is not None and method is None:
        raise ValueError("AB Connect does not allow a resource restriction without a method")
    parts = [str(int(expires))]
    if method is not None:
        parts += [user_id or "", method.upper()]
        if resource is not None:
            parts.append(resource.lower())
    elif user_id:
        parts.append(user_id)
    return "\n".join(parts)


def sign(
    partner_key: str, expires: int, *, user_id: str | None = None, method: str | None = None,
    resource: str | None = None,
) -> str:
    """Return the base64 HMAC-SHA256 signature of the documented message, as sent in ``auth.signature``."""
    message = signature_message(expires, user_id=user_id, method=method, resource=resource)
    digest = hmac.new(partner_key.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def auth_params(
    partner_id: str, signature: str, expires: int, *, user_id: str | None = None,
) -> list[tuple[str, str]]:
    """The authentication query parameters in the documented order (L8595-8597)."""
    params = [("partner.id", partner_id), ("auth.signature", signature), ("auth.expires", str(int(expires)))]
    if user_id:
        params.append(("user.id", user_id))
    return params


def encode_query(params: Iterable[tuple[str, str]]) -> str:
    """Percent-encode ``params`` as AB Connect expects: spaces as ``%20`` (never ``+``, which the
    server would read as a literal plus inside a base64 signature), brackets in keys kept."""
    return "&".join(f"{quote(k, safe=_KEY_SAFE)}={quote(v, safe=_VALUE_SAFE)}" for k, v in params)


def quote_literal(value: str) -> str:
    """Quote a string literal for a filter statement: single quotes, backslash-escaped (L943)."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"
