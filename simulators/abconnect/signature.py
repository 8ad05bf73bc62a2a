"""The AB Connect signature as the server computes it, written from the documentation alone
(seeds/002 L8335-8601, api/abconnect.md §1.2), independently of the client's signer, so a
client bug cannot be hidden by the simulator agreeing with it."""

from __future__ import annotations

import base64
import hashlib
import hmac


def expected_signature(key: str, expires: int, user: str | None, method: str | None, resource: str | None) -> str:
    """``base64(HMAC-SHA256(key, "<expires>[\\n<user>[\\n<METHOD>[\\n<resource>]]]"))``. With a method
    the user slot is always present, empty if there is no user (L8588)."""
    lines = [str(expires)]
    if method is None:
        if user:
            lines.append(user)
    else:
        lines += [user or "", method.upper()]
        if resource is not None:
            lines.append(resource.lower())
    mac = hmac.new(key.encode("utf-8"), "\n".join(lines).encode("utf-8"), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")
