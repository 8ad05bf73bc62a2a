"""Reading MatrixLMS call arguments from a URL query string (seed 000:L27, matrix_class.md A.2).

The seed documents scalars (``class_id=1456``) and arrays (``user_ids[]=1&user_ids[]=2``) only.
How attribute bags and arrays of objects travel is undocumented (matrix_class.md A.2, Part D.1),
so every argument is accepted in each of these encodings (a simulator choice):

* Rails/Rack bracket nesting: ``user_ids[]=1``, ``attributes[first_name]=Ann``,
  ``grades[0][user_id]=5&grades[0][grade]=B%2B`` (indexed) or ``grades[][user_id]=5&grades[][grade]=B``
  (Rack starts a new element when a key repeats);
* a JSON string value: ``user_ids=[1,2]``, ``grades=[{"user_id":5,"grade":"B+"}]``,
  ``attributes={"first_name":"Ann"}``;
* for attribute bags, the flat form the seed's prose implies: ``first_name=Ann&last_name=Lee``.

A repeated scalar keeps its last value, as Rack does.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import orjson

from simulators.matrixlms.errors import bad_request

_KEY = re.compile(r"^[\[\]]*([^\[\]]+)\]*")
_ARRAY_CHILD = re.compile(r"^\[\]\[([^\[\]]+)\](.*)$")


def parse_query(query: str) -> dict[str, Any]:
    """The nested arguments of ``query`` (percent-decoded, blank values kept: a blank grade is valid)."""
    params: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        _normalize(params, name, value)
    return {key: _listify(value) for key, value in params.items()}


def _normalize(params: dict[str, Any], name: str, value: Any) -> None:
    """Rack's ``normalize_params``: put ``value`` at the bracket path ``name`` inside ``params``."""
    match = _KEY.match(name)
    if match is None:
        return
    key, after = match.group(1), name[match.end():]
    if after in ("", "["):
        params[key] = value
    elif after == "[]":
        current = params.get(key)
        if not isinstance(current, list):
            current = params[key] = []
        current.append(value)
    elif child := _ARRAY_CHILD.match(after):
        child_name = child.group(1) + child.group(2)
        current = params.get(key)
        if not isinstance(current, list):
            current = params[key] = []
        last = current[-1] if current else None
        if isinstance(last, dict) and not _has_path(last, child_name):
            _normalize(last, child_name, value)
        else:
            element: dict[str, Any] = {}
            _normalize(element, child_name, value)
            current.append(element)
    else:
        current = params.get(key)
        if not isinstance(current, dict):
            current = params[key] = {}
        _normalize(current, after, value)


def _has_path(params: dict[str, Any], name: str) -> bool:
    match = _KEY.match(name)
    if match is None:
        return False
    key, after = match.group(1), name[match.end():]
    if key not in params:
        return False
    if after.startswith("[") and after not in ("[", "[]") and isinstance(params[key], dict):
        return _has_path(params[key], after)
    return True


def _listify(value: Any) -> Any:
    """Indexed hashes (``grades[0][..]``, ``grades[1][..]``) become lists in index order."""
    if isinstance(value, dict):
        converted = {key: _listify(item) for key, item in value.items()}
        if converted and all(key.isdigit() for key in converted):
            return [converted[key] for key in sorted(converted, key=int)]
        return converted
    if isinstance(value, list):
        return [_listify(item) for item in value]
    return value


def _json_value(value: Any, opening: str) -> Any:
    """A JSON-string argument decoded, when it looks like one (``[`` or ``{`` first)."""
    if isinstance(value, str) and value.lstrip().startswith(opening):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            raise bad_request(f"Malformed JSON argument: {value[:40]}") from None
    return value


class Args:
    """The arguments of one call with typed accessors that raise the Matrix 400 on bad input."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def has(self, name: str) -> bool:
        """Whether ``name`` was passed at all."""
        return name in self.params

    def raw(self, name: str) -> Any:
        """The value as parsed, or None."""
        return self.params.get(name)

    def string(self, name: str, *, required: bool = False) -> str | None:
        """A scalar string argument."""
        value = self.params.get(name)
        if value is None:
            if required:
                raise bad_request(f"Missing argument: {name}")
            return None
        if not isinstance(value, str | int | float):
            raise bad_request(f"Argument {name} must be a single value")
        return str(value)

    def integer(self, name: str, *, required: bool = False, default: int | None = None) -> int | None:
        """An integer argument (ids are integers in every seed example)."""
        value = self.string(name, required=required)
        if value is None or value == "":
            if required:
                raise bad_request(f"Missing argument: {name}")
            return default
        return to_int(value, name)

    def required_int(self, name: str) -> int:
        """An integer argument that must be present."""
        value = self.integer(name, required=True)
        assert value is not None
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        """``true``/``false`` (seed 000: "value can be true or false"); also 1/0."""
        value = self.params.get(name)
        if value is None:
            value = self.options().get(name)
        return default if value is None else to_bool(value, name)

    def page(self) -> int:
        """The 1-based ``page`` (seed 000:L53); defaults to 1."""
        page = self.integer("page", default=1)
        assert page is not None
        if page < 1:
            raise bad_request("page must be a positive integer")
        return page

    def id_list(self, name: str) -> list[int]:
        """An array of ids: ``name[]=1&name[]=2`` or ``name=[1,2]``; required and non-empty."""
        value = _json_value(self.params.get(name), "[")
        if value is None:
            raise bad_request(f"Missing argument: {name}")
        if not isinstance(value, list):
            raise bad_request(f"Argument {name} must be an array ({name}[]=...)")
        if not value:
            raise bad_request(f"Argument {name} must not be empty")
        return [to_int(item, name) for item in value]

    def objects(self, name: str) -> list[dict[str, Any]]:
        """An array of objects (``grades``): bracket-nested or a JSON string."""
        value = _json_value(self.params.get(name), "[")
        if value is None:
            raise bad_request(f"Missing argument: {name}")
        if isinstance(value, dict):  # a single object: grades[user_id]=..&grades[grade]=..
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise bad_request(f"Argument {name} must be an array of objects")
        return value

    def bag(self, name: str, reserved: frozenset[str]) -> dict[str, Any]:
        """An attribute bag: ``name[key]=v``, ``name={json}`` or flat top-level ``key=v``.

        Flat arguments other than ``reserved`` (api_key, positional arguments, ...) are merged
        in; an explicit bag wins over a flat argument of the same name.
        """
        flat = {key: value for key, value in self.params.items() if key not in reserved and key != name}
        nested = _json_value(self.params.get(name), "{")
        if nested is None:
            nested = {}
        if not isinstance(nested, dict):
            raise bad_request(f"Argument {name} must be a set of attributes")
        return {**flat, **nested}

    def options(self) -> dict[str, Any]:
        """The ``options`` bag (``options[ignore_already_enrolled]=true`` or JSON), if any."""
        value = _json_value(self.params.get("options"), "{")
        return value if isinstance(value, dict) else {}


def to_int(value: Any, name: str) -> int:
    """Parse an id; booleans and fractions are rejected."""
    if isinstance(value, bool):
        raise bad_request(f"Argument {name} must be an integer")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise bad_request(f"Argument {name} must be an integer") from None


def to_bool(value: Any, name: str) -> bool:
    """``true``/``false``/``1``/``0`` (any case) or a JSON boolean."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0", ""):
        return False
    raise bad_request(f"Argument {name} must be true or false")
