"""MatrixLMS call arguments: the attributes edusync sends, and how they travel in a GET's URL.

Every call is ``GET /api/<function>?api_key=...&<args>`` (seed 000:L27). The encoding is one
fixed choice, pure and testable:

- scalars ``name=value``, percent-encoded; booleans ``true``/``false`` (A.2), dates
  ``YYYY-MM-DD`` (000:L27);
- attribute bags (``add_user(attributes)``, ``get_*_that_match(constraints)``) and options flat
  at the top level, "in the form attribute1=value1&attribute2=value2" (000:L170, L207);
- arrays ``name[]=v`` repeated, with the brackets literal as in the seed's example
  ``user_ids[]=1&user_ids[]=2`` (000:L40);
- arrays of objects (``grades``) Rails/Rack style, ``grades[][user_id]=5&grades[][grade]=B%2B``:
  undocumented (matrix_class.md A.2, Part D.1), the reading the seed's ``XXX[]`` rule and its Ruby
  ``=>`` notation suggest. Every element carries the same keys in the same order, which is what
  lets Rack start a new element at each repeated key. The simulator accepts it (params.py).

URLs are bounded: ``chunk_by_url`` splits a list of ids (or grades) into as few calls as fit
under the configured URL limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from typing import Literal, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

RESERVED_ARGS = frozenset({"api_key", "api_version", "page"})  # every call's own arguments (000:L27, L53)
Scalar = str | int | float | bool | date
Element = Scalar | Mapping[str, Scalar]
ArgValue = Scalar | Sequence[Element] | None
T = TypeVar("T")

AccountType = Literal["student", "teacher", "assistant", "manager", "monitor", "administrator",
                      "partial_administrator"]
ClassStyle = Literal["Instructor", "Self paced", "Blended"]
TopTab = Literal["News", "Lessons", "Custom", "CurrentLesson", "Agenda"]


class UserAttributes(BaseModel):
    """``add_user``/``update_user`` attributes (A.6.2). Send ``userid`` and ``student_id`` (or
    ``teacher_id``) every time: then the upsert matches by id, never by name and birth date,
    which twins share (FLOWS.md 2.5 trap 3)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    userid: str | None = None
    student_id: str | None = None
    teacher_id: str | None = None
    first_name: str | None = Field(default=None, repr=False)
    last_name: str | None = Field(default=None, repr=False)
    email: str | None = Field(default=None, repr=False)
    birthdate: date | None = Field(default=None, repr=False)
    phone: str | None = Field(default=None, repr=False)
    password: SecretStr | None = None
    year_of_graduation: str | None = None
    organization_id: int | None = None
    account_types: tuple[AccountType, ...] | None = None
    change_password: bool | None = None
    update_password: bool | None = None
    send_login_instructions: bool | None = None
    custom: Mapping[str, str] = Field(default_factory=dict, repr=False, description="the site's custom fields")

    @field_validator("custom")
    @classmethod
    def _custom_names(cls, custom: Mapping[str, str]) -> Mapping[str, str]:
        # Custom fields travel flat beside the others: one named like an argument would replace it.
        taken = RESERVED_ARGS | set(cls.model_fields)
        clash = sorted(name for name in custom if name in taken or not name.isidentifier())
        if clash:
            raise ValueError(f"custom field names {clash} are not allowed")
        return custom

    @property
    def has_id_key(self) -> bool:
        """Whether the upsert matches by an id (userid, student ID, teacher ID; seed 000:L170)."""
        return bool(self.userid or self.student_id or self.teacher_id)

    def args(self) -> dict[str, ArgValue]:
        """The flat query arguments (unset attributes are not sent)."""
        out: dict[str, ArgValue] = {}
        for name in type(self).model_fields:
            if name in ("custom", "password", "account_types"):
                continue
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.password is not None:
            out["password"] = self.password.get_secret_value()
        if self.account_types is not None:
            out["account_types"] = ",".join(self.account_types)  # "A comma-separated list" (A.6.2)
        for name, value in self.custom.items():
            out.setdefault(name, value)
        return out


class ClassAttributes(BaseModel):
    """``add_class``/``edit_class`` attributes (A.6.5). ``course_code``/``section_code`` are not
    documented as settable, so they are not offered; the name must be unique (FLOWS.md 2.5 trap 2)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    description: str | None = None
    style: ClassStyle | None = None
    start_at: date | None = None
    finish_at: date | None = None
    private: bool | None = None
    top_tab: TopTab | None = None
    picture: str | None = None
    tabs: tuple[str, ...] | None = None

    def args(self) -> dict[str, ArgValue]:
        """The flat query arguments (unset attributes are not sent)."""
        out: dict[str, ArgValue] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            out[name] = ",".join(value) if name == "tabs" else value  # "A comma-separate list" (A.6.5)
        return out


class GradeEntry(BaseModel):
    """One element of ``set_grades_for_assignment``'s ``grades``: "{'user_id' => user_id, 'grade' =>
    grade}"; a grade is a letter (B+), a number (3.1), a percentage (15%), '' or X/M/I/AB (000:L574)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: int
    grade: str

    def args(self) -> dict[str, Scalar]:
        """The element's keys, always in this order (see the module docstring)."""
        return {"user_id": self.user_id, "grade": self.grade}


def scalar_text(value: Scalar) -> str:
    """The wire text of a scalar: ``true``/``false``, ISO dates, numbers as Python prints them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def encode_pairs(args: Mapping[str, ArgValue]) -> list[tuple[str, str]]:
    """(key, text) pairs of the arguments in order; ``None`` is not sent."""
    pairs: list[tuple[str, str]] = []
    for name, value in args.items():
        if value is None:
            continue
        if isinstance(value, str | int | float | bool | date):
            pairs.append((name, scalar_text(value)))
            continue
        objects = [item for item in value if isinstance(item, Mapping)]
        if objects and len(objects) != len(value):
            raise ValueError(f"argument {name}: mixes objects and scalars")
        if objects:
            pairs.extend(_object_pairs(name, objects))
        else:
            pairs.extend((f"{name}[]", scalar_text(item)) for item in value if not isinstance(item, Mapping))
    return pairs


def _object_pairs(name: str, items: Sequence[Mapping[str, Scalar]]) -> Iterable[tuple[str, str]]:
    keys = list(items[0])
    for item in items:
        if list(item) != keys:
            # Rack splits ``name[][k]`` elements where a key repeats: only uniform elements are safe.
            raise ValueError(f"argument {name}: every element needs the keys {keys} in that order")
        for key in keys:
            yield f"{name}[][{key}]", scalar_text(item[key])


def query_string(pairs: Iterable[tuple[str, str]]) -> str:
    """``k=v&...``: values fully percent-encoded, brackets in keys kept literal (000:L40)."""
    return "&".join(f"{quote(key, safe='[]')}={quote(text, safe='')}" for key, text in pairs)


def chunk_by_url(base_bytes: int, items: Sequence[T], encode: Callable[[T], str], limit: int) -> list[list[T]]:
    """Split ``items`` into consecutive runs whose URL (``base_bytes`` plus ``&`` and each item's
    encoded arguments) stays within ``limit`` bytes; one run when everything fits.

    Raises ``ValueError`` when even one item does not fit.
    """
    chunks: list[list[T]] = []
    current: list[T] = []
    size = base_bytes
    for item in items:
        cost = 1 + len(encode(item).encode())
        if base_bytes + cost > limit:
            raise ValueError(f"one item needs a URL of {base_bytes + cost} bytes, over the limit of {limit}")
        if current and size + cost > limit:
            chunks.append(current)
            current, size = [], base_bytes
        current.append(item)
        size += cost
    if current:
        chunks.append(current)
    return chunks


def unique(ids: Iterable[int]) -> list[int]:
    """Ids without repeats, first occurrence first (a repeated id would count once anyway)."""
    return list(dict.fromkeys(ids))
