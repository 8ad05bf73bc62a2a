"""A hostile HTTP proxy in front of any simulator: the upstream misbehaving in the ways that hurt.

Put it between a client and a simulator and set a mode through ``PUT /_hostile/mode``:

- ``trickle``: the real answer, its body sent one byte every ``trickle_seconds``;
- ``retry_after``: 429 with ``Retry-After: <retry_after>`` (an hour, say);
- ``oversize``: 200 with an endless-looking JSON body of ``oversize_bytes``, chunked, no length;
- ``html200``: 200 with an HTML login page;
- ``wrong_type``: the real JSON with the first ``data[].attributes.<field>`` made a number;
- ``seq_jump``: the real JSON with the last ``data[].attributes.seq`` set to ``jump_to``.

``paths`` limits a mode to request paths containing one of its entries (the AB events feed, for
example); ``remaining`` to the next N such requests. ``/_sim/`` paths pass through untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import anyio
import httpx
import orjson
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

HostileKind = Literal["pass", "trickle", "retry_after", "oversize", "html200", "wrong_type", "seq_jump"]
_HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}
_LOGIN_PAGE = (b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form action='/login'>"
               b"<input name='user'><input type='password' name='pass'></form></body></html>")


class HostileMode(BaseModel):
    """What the proxy does to the requests it matches."""

    kind: HostileKind = "pass"
    paths: list[str] = Field(default_factory=list, description="substrings of the paths to affect; empty: all")
    remaining: int | None = Field(None, ge=0, description="affect only the next N matching requests")
    trickle_seconds: float = Field(5.0, ge=0)
    retry_after: str = "3600"
    oversize_bytes: int = Field(150 * 1024 * 1024, ge=1)
    field: str = Field("target", description="the attribute wrong_type turns into a number")
    jump_to: int = 10**12


class HostileProxy:
    """Forwards to ``upstream`` and applies the current ``HostileMode``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode = HostileMode()
        self.affected = 0
        self._client = httpx.AsyncClient(base_url=self.upstream, timeout=60)

    def app(self) -> Starlette:
        """The ASGI app: ``/_hostile/mode`` plus everything else forwarded."""
        return Starlette(routes=[
            Route("/_hostile/mode", self._mode, methods=["GET", "PUT"]),
            Route("/{path:path}", self._forward, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ])

    def set(self, mode: HostileMode) -> None:
        """Switch mode (also usable directly from a test in the same process)."""
        self.mode = mode

    async def _mode(self, request: Request) -> Response:
        if request.method == "PUT":
            self.set(HostileMode.model_validate(await request.json()))
        return JSONResponse({**self.mode.model_dump(), "affected": self.affected})

    def _matches(self, path: str) -> bool:
        mode = self.mode
        if mode.kind == "pass" or path.startswith("/_sim/"):
            return False
        if mode.paths and not any(p in path for p in mode.paths):
            return False
        if mode.remaining is not None:
            if mode.remaining <= 0:
                return False
            mode.remaining -= 1
        self.affected += 1
        return True

    async def _forward(self, request: Request) -> Response:
        path = request.url.path
        kind = self.mode.kind if self._matches(path) else "pass"
        if kind == "retry_after":
            error = {"errors": [{"status": "429", "title": "Too Many Requests", "detail": "slow down"}]}
            return JSONResponse(error, status_code=429, headers={"Retry-After": self.mode.retry_after})
        if kind == "html200":
            return Response(_LOGIN_PAGE, status_code=200, media_type="text/html")
        if kind == "oversize":
            return StreamingResponse(_endless_json(self.mode.oversize_bytes), media_type="application/json")
        upstream = await self._client.request(
            request.method, path, params=list(request.query_params.multi_items()),
            headers={k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS},
            content=await request.body(),
        )
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS}
        body = upstream.content
        if kind in ("wrong_type", "seq_jump"):
            body = self._patch(body, kind)
        if kind == "trickle":
            return StreamingResponse(_trickle(body, self.mode.trickle_seconds), status_code=upstream.status_code,
                                     headers=headers)
        return Response(body, status_code=upstream.status_code, headers=headers)

    def _patch(self, body: bytes, kind: str) -> bytes:
        try:
            doc: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        items = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(items, list) or not items:
            return body
        if kind == "wrong_type":
            items[0].setdefault("attributes", {})[self.mode.field] = 7
        else:
            items[-1].setdefault("attributes", {})["seq"] = self.mode.jump_to
        return orjson.dumps(doc)


async def _trickle(body: bytes, every: float) -> AsyncIterator[bytes]:
    # The wait comes first, so even an empty or one-byte body stalls for ``every`` seconds.
    await anyio.sleep(every)
    for i in range(len(body)):
        yield body[i:i + 1]
        await anyio.sleep(every)


async def _endless_json(size: int) -> AsyncIterator[bytes]:
    yield b'{"data": ["'
    chunk = b"x" * 65536
    sent = 0
    while sent < size:
        yield chunk
        sent += len(chunk)
    yield b'"]}'
