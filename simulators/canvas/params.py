"""Request parameters the way Canvas reads them: query string merged with a form or JSON body.

canvas.md §1.1: POST/PUT bodies default to form encoding, JSON is optional, ``a[]`` is an array
and ``a[b]`` a nested hash (Rails rules); booleans accept true/false, t/f, yes/no, y/n, on/off, 1/0.
"""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request

from simulators.canvas.responses import CanvasHTTPError

_KEY_PART = re.compile(r"\[([^\]]*)\]")
_TRUE = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "off", "0"})


def to_bool(value: Any) -> bool | None:
    """Canvas boolean parsing; ``None`` when the value is absent or not a boolean word."""
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _split_key(key: str) -> list[str]:
    head = key.split("[", 1)[0]
    return [head, *_KEY_PART.findall(key[len(head):])]


def _assign(container: dict[str, Any], parts: list[str], value: str) -> None:
    head, rest = parts[0], parts[1:]
    if not rest:
        container[head] = value
        return
    if rest[0] == "":
        items = container.get(head)
        if not isinstance(items, list):
            items = container[head] = []
        tail = rest[1:]
        if not tail:
            items.append(value)
            return
        # Rails starts a new hash in ``a[][b]`` when the last one already has key ``b``.
        if not items or not isinstance(items[-1], dict) or tail[0] in items[-1]:
            items.append({})
        _assign(items[-1], tail, value)
        return
    child = container.get(head)
    if not isinstance(child, dict):
        child = container[head] = {}
    _assign(child, rest, value)


def nest_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Turn flat form pairs into nested params: ``a[]`` lists and ``a[b]`` dicts."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        _assign(result, _split_key(key), value)
    return result


def _multipart_pairs(content_type: str, body: bytes) -> list[tuple[str, str]]:
    # python-multipart is not a dependency; the stdlib email parser reads form-data well enough.
    raw = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    message: EmailMessage = BytesParser(policy=policy.HTTP).parsebytes(raw)
    pairs: list[tuple[str, str]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            pairs.append((name, payload.decode("utf-8", "replace")))
    return pairs


async def read_params(request: Request) -> dict[str, Any]:
    """Query parameters overlaid with the body (JSON, urlencoded or multipart)."""
    params = nest_pairs(list(request.query_params.multi_items()))
    body = await request.body()
    if not body:
        return params
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/json":
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise CanvasHTTPError(400, {"errors": [{"message": "invalid JSON body"}]}) from exc
        if not isinstance(data, dict):
            raise CanvasHTTPError(400, {"errors": [{"message": "JSON body must be an object"}]})
        params.update(data)
    elif kind == "multipart/form-data":
        params.update(nest_pairs(_multipart_pairs(content_type, body)))
    else:
        params.update(nest_pairs(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)))
    return params


def nested(params: dict[str, Any], name: str) -> dict[str, Any]:
    """The ``name[...]`` hash of the parameters (empty when absent or not a hash)."""
    value = params.get(name)
    return value if isinstance(value, dict) else {}


def text(params: dict[str, Any], name: str) -> str | None:
    """A parameter as stripped text; None when absent. An empty string stays empty."""
    value = params.get(name)
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def text_list(params: dict[str, Any], name: str) -> list[str]:
    """``name[]`` (or a single ``name``) as a list of strings."""
    value = params.get(name)
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if not isinstance(v, dict | list)]
    if isinstance(value, dict):
        return [str(v) for v in value.values()]
    return [str(value)]
