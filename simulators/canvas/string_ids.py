"""``Accept: application/json+canvas-string-ids`` (canvas.md §1.6, §5.7 item 1).

"This will cause Canvas to return even integer IDs as strings". The exact field set is not
documented; like Canvas's ``stringify_json_ids`` this renders ``id``, every ``*_id`` and every
``*_ids`` list as strings, plus the integer ids inside audit ``links`` objects (the seed's
CourseEvent example shows them as strings).
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ACCEPT_VALUE = "application/json+canvas-string-ids"


def _str_id(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def stringify_ids(data: Any, *, in_links: bool = False) -> Any:
    """A copy of ``data`` with integer ids rendered as strings."""
    if isinstance(data, list):
        return [stringify_ids(item, in_links=in_links) for item in data]
    if not isinstance(data, dict):
        return _str_id(data) if in_links else data
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "id" or key.endswith("_id"):
            out[key] = _str_id(value) if not isinstance(value, dict | list) else stringify_ids(value)
        elif key.endswith("_ids") and isinstance(value, list):
            out[key] = [_str_id(v) for v in value]
        elif key == "links" and isinstance(value, dict):
            out[key] = {k: stringify_ids(v, in_links=True) for k, v in value.items()}
        else:
            out[key] = stringify_ids(value)
    return out


def wants_string_ids(scope: Scope) -> bool:
    """True when the request's Accept header asks for string ids."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"accept" and ACCEPT_VALUE.encode() in value.lower():
            return True
    return False


class StringIdsMiddleware:
    """Rewrites JSON answers of ``/api/`` requests that ask for string ids."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/") or not wants_string_ids(scope):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def buffered(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            headers = list(start.get("headers", []))
            is_json = any(n.lower() == b"content-type" and b"json" in v.lower() for n, v in headers)
            if is_json and body:
                with contextlib.suppress(orjson.JSONDecodeError):
                    body = orjson.dumps(stringify_ids(orjson.loads(body)))
            headers = [(n, v) for n, v in headers if n.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, buffered)
