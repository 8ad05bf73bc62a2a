"""Keyset ("bookmark") paging for the audit feeds (canvas.md §5.2 items 4-5, App. A.7).

Canvas pages its audit logs with a ``BookmarkedCollection``: the ``page`` parameter of each Link is
``bookmark:`` plus base64 JSON of the last row's sort key, so a client can only follow links, and
new rows at the head of a newest-first feed never shift later pages. ``rel="last"`` is omitted
("may also be excluded if the total count is too expensive to compute") and so is ``prev``.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

from starlette.requests import Request

from simulators.canvas.paging import base_url
from simulators.canvas.responses import CanvasHTTPError

PREFIX = "bookmark:"
Key = tuple[int, int]


def encode(key: Key) -> str:
    """The opaque page token for a sort key."""
    raw = json.dumps([key[0], str(key[1])], separators=(",", ":")).encode()
    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(raw: str | None) -> Key | None:
    """The sort key behind a page token; None for the first page; 400 for a bad token."""
    if raw in (None, "", "first"):
        return None
    assert raw is not None
    try:
        if not raw.startswith(PREFIX):
            raise ValueError(raw)
        token = raw[len(PREFIX):]
        second, tie = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(second), int(tie)
    except (ValueError, TypeError) as exc:
        raise CanvasHTTPError(400, {"errors": [{"message": "invalid page bookmark"}]}) from exc


def per_page(request: Request, default: int, maximum: int) -> int:
    """``per_page`` clamped to [1, maximum]."""
    try:
        value = int(request.query_params.get("per_page") or default)
    except ValueError:
        value = default
    return min(max(1, value), maximum)


def link_header(request: Request, size: int, next_key: Key | None) -> dict[str, str]:
    """``current``, ``next`` (when there is more) and ``first`` links, every query parameter kept."""
    base = base_url(request)
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("access_token", "page", "per_page")]
    current = request.query_params.get("page") or "first"

    def link(page: str, rel: str) -> str:
        return f'<{base}?{urlencode([*kept, ("page", page), ("per_page", str(size))])}>; rel="{rel}"'

    links = [link(current, "current")]
    if next_key is not None:
        links.append(link(encode(next_key), "next"))
    links.append(link("first", "first"))
    return {"Link": ",".join(links)}
