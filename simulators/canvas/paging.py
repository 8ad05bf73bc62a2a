"""Link-header pagination (canvas.md §1.3 and §5.2).

``per_page`` defaults to 10 and is clamped to 100; ``page`` picks the page. The ``Link`` header
lists absolute URLs for rel ``current``, ``next``, ``prev``, ``first`` and ``last`` (only those
that apply), each carrying every original query parameter except ``access_token``, which Canvas
never echoes into links. With ``opaque`` set, pages are encoded as bookmarks so a client that
builds page URLs itself breaks, as the docs warn.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from typing import TypeVar
from urllib.parse import quote, urlencode

from pydantic import BaseModel, Field
from starlette.requests import Request

T = TypeVar("T")

_BOOKMARK = "bookmark:"


class PagingConfig(BaseModel):
    """Page-size rules and link style, replaced through ``PUT /_sim/paging``."""

    default_per_page: int = Field(default=10, ge=1)
    max_per_page: int = Field(default=100, ge=1)
    include_last: bool = Field(default=True, description='emit rel="last" (Canvas may omit it)')
    opaque: bool = Field(default=False, description="encode page numbers as opaque bookmarks")


def _encode_page(page: int, opaque: bool) -> str:
    if not opaque:
        return str(page)
    return _BOOKMARK + base64.urlsafe_b64encode(f"[{page}]".encode()).decode().rstrip("=")


def _decode_page(raw: str | None) -> int:
    if not raw:
        return 1
    text = raw
    if raw.startswith(_BOOKMARK):
        token = raw[len(_BOOKMARK):]
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().strip("[]")
        except ValueError:
            return 1
    try:
        return max(1, int(text))
    except ValueError:
        return 1


def _per_page(raw: str | None, config: PagingConfig) -> int:
    try:
        value = int(raw) if raw else config.default_per_page
    except ValueError:
        value = config.default_per_page
    return min(max(1, value), config.max_per_page)


def base_url(request: Request) -> str:
    """The absolute URL of this request without its query, still percent-encoded as it was sent.

    The raw path keeps encoded SIS ids (``sis_course_id:CS%2F101%2E11%C3%A9``) intact in Link headers.
    """
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1").split("?", 1)[0] if isinstance(raw, bytes) else quote(request.url.path)
    return f"{request.url.scheme}://{request.url.netloc}{path}"


def paginate(request: Request, items: Sequence[T], config: PagingConfig) -> tuple[list[T], dict[str, str]]:
    """Slice ``items`` for this request; returns the page and the ``Link`` header to send."""
    per_page = _per_page(request.query_params.get("per_page"), config)
    page = _decode_page(request.query_params.get("page"))
    last = max(1, math.ceil(len(items) / per_page))
    start = (page - 1) * per_page
    chunk = list(items[start:start + per_page])

    base = base_url(request)
    kept = [
        (k, v) for k, v in request.query_params.multi_items() if k not in ("access_token", "page", "per_page")
    ]

    def link(target: int, rel: str) -> str:
        query = urlencode([*kept, ("page", _encode_page(target, config.opaque)), ("per_page", str(per_page))])
        return f'<{base}?{query}>; rel="{rel}"'

    links = [link(page, "current")]
    if page < last:
        links.append(link(page + 1, "next"))
    if page > 1:
        links.append(link(min(page - 1, last), "prev"))
    links.append(link(1, "first"))
    if config.include_last:
        links.append(link(last, "last"))
    return chunk, {"Link": ",".join(links)}
