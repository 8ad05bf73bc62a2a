"""Request checks that answer with the documented validation envelope (B.3, B.9.4).

Messages use the wording of the seed's one example ("The email format is invalid.", Laravel
style); the others ("The class name field is required.", ...) are the simulator's own.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Collection, Mapping
from typing import Any

import orjson
from starlette.requests import Request

from simulators.classroom.errors import error, validation

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


async def json_body(request: Request, *, required: bool = False) -> dict[str, Any]:
    """The JSON object body; malformed JSON or a non-object is a 400 (B.3: "malformed syntax")."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise validation({"body": ["A JSON request body is required."]})
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise error(400, "Malformed JSON body") from None
    if not isinstance(body, dict):
        raise error(400, "The request body must be a JSON object")
    return body


def present(source: Mapping[str, Any], name: str) -> bool:
    """Whether ``name`` carries a value (absent, null and "" do not)."""
    return source.get(name) not in (None, "")


def exactly_one(source: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str, Any]:
    """The one identifier given among ``names``; none or several is a 400 (seed 001:L80-84)."""
    given = [name for name in names if present(source, name)]
    if len(given) != 1:
        raise validation({names[0]: [f"Exactly one of {', '.join(names)} is required."]})
    return given[0], source[given[0]]


def first_of(source: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str, Any]:
    """The first identifier given among ``names`` (precedence order); none is a 400."""
    for name in names:
        if present(source, name):
            return name, source[name]
    raise validation({names[0]: [f"One of {', '.join(names)} is required."]})


def query_bool(value: str | None, name: str) -> bool:
    """A boolean query parameter (``deferred=true``)."""
    if value is None or value == "":
        return False
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise validation({name: [f"The {name} field must be true or false."]})


class Checker:
    """Collects field errors of one body and raises them together."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.errors: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        """Record one message for ``name``."""
        self.errors.setdefault(name, []).append(message)

    def string(self, name: str, *, required: bool = False) -> str | None:
        """A string field."""
        value = self.body.get(name)
        label = name.replace("_", " ")
        if value is None or value == "":
            if required:
                self.add(name, f"The {label} field is required.")
            return None
        if not isinstance(value, str):
            self.add(name, f"The {label} must be a string.")
            return None
        return value

    def email(self, name: str = "email", *, required: bool = False) -> str | None:
        """An e-mail address ("The email format is invalid.", seed 001:L1405-1407)."""
        value = self.string(name, required=required)
        if value is not None and not _EMAIL.match(value):
            self.add(name, f"The {name.replace('_', ' ')} format is invalid.")
            return None
        return value

    def choice(self, name: str, choices: Collection[str], default: str | None = None) -> str | None:
        """One of ``choices``; absent gives ``default``."""
        value = self.string(name)
        if value is None:
            return default
        if value not in choices:
            self.add(name, f"The selected {name.replace('_', ' ')} is invalid.")
            return default
        return value

    def integer(self, name: str, *, required: bool = False, source: Mapping[str, Any] | None = None) -> int | None:
        """An integer field (Unix seconds, ids)."""
        value = (source or self.body).get(name)
        if value is None:
            if required:
                self.add(name, f"The {name.replace('_', ' ')} field is required.")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(name, f"The {name.replace('_', ' ')} must be an integer.")
            return None
        return value

    def timezone(self, name: str = "timezone") -> str | None:
        """An IANA time-zone id (seed 001: "Time Zone ID values from the Time Zone Database")."""
        value = self.string(name, required=True)
        if value is not None and value not in _timezones():
            self.add(name, f"The selected {name} is invalid.")
            return None
        return value

    def done(self) -> None:
        """Raise the validation 400 if anything was recorded."""
        if self.errors:
            raise validation(self.errors)
