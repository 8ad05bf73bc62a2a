"""Keep a percent-encoded ``/`` inside one path segment (canvas.md §1.6, §5.5 item 3).

"the SIS ID ``CS/101.11é`` is encoded and escaped as ``CS%2F101%2E11%C3%A9``". The ASGI server
decodes ``%2F`` into a real slash, which would split the segment and miss the route, so this
middleware rebuilds the path from ``raw_path`` and parks an encoded slash as a private-use
character that ``restore_slashes`` turns back into ``/`` when the id is resolved.
"""

from __future__ import annotations

from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

ENCODED_SLASH = "\ue000"


def restore_slashes(segment: str) -> str:
    """A path parameter with its encoded slashes back."""
    return segment.replace(ENCODED_SLASH, "/")


class SisPathMiddleware:
    """Re-derive ``scope['path']`` segment by segment when the raw path holds ``%2F``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if isinstance(raw, bytes) and b"%2f" in raw.lower():
            text = raw.decode("latin-1").split("?", 1)[0]
            segments = [unquote(part).replace("/", ENCODED_SLASH) for part in text.split("/")]
            scope = {**scope, "path": "/".join(segments)}
        await self.app(scope, receive, send)
