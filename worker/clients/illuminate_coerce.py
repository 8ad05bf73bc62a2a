"""Coercion of Illuminate's inconsistent JSON typing into one normal form.

Illuminate returns the same logical value in different JSON types depending on the
endpoint (and sometimes within one response). Every rule below cites the engineering
reference ``/work/shared/api/illuminate.md`` as "ref Lnnn" and the original document
``/work/shared/seeds/004_c1122b37c3228a72.txt`` as "seed Lnnn".

Normal form:

- ids -> ``str`` (numbers and numeric strings compare equal);
- booleans -> ``bool`` from any of the four encodings;
- literal ``"NULL"`` / ``"null"`` strings -> ``None``;
- ``results`` -> always a list;
- numbers-as-strings -> ``Decimal`` (normalised, so "50.00" == 50);
- comma-separated or PostgreSQL-array strings -> tuple of str.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

# Rule N (ref L288; seed L322, L408 Students `aka_*`/`name_suffix`/`cellphone` = "NULL";
# Behavior and Gradebook use "null"): the literal strings mean "no value". Only these exact
# spellings are treated as null, so a surname such as "Null" survives.
NULL_STRINGS = frozenset({"NULL", "null"})

# Rule B (ref L283-L287): the four boolean encodings.
#  - PostgreSQL "t"/"f" in most places (ref L284; seed L322 `is_hispanic`, L1057 `primary_teacher`);
#  - JSON true/false (ref L285: Attendance Flags, SchoolFocusPermissions, Assessment View);
#  - integer 1/0 (ref L286, L816: StudentSpecialEd `is_specialed`);
#  - the string "1" (ref L287: Behavior `instructional_support_indicator`, a "Yes or No indicator").
_TRUE_STRINGS = frozenset({"t", "true", "1", "y", "yes", "on"})
_FALSE_STRINGS = frozenset({"f", "false", "0", "n", "no", "off"})

# Field names documented as booleans (ref L284-L287). Used only by `coerce_record`, the
# generic raw-dict pass; the typed models declare their boolean fields explicitly.
BOOLEAN_FIELDS = frozenset({
    "is_hispanic", "active", "is_active", "primary_teacher", "is_primary_ada", "mastered",
    "resides_with", "legal_guardian", "emergency_contact", "is_primary", "is_mailing",
    "is_excused", "is_missing", "use_for_calc", "use_for_aggregate", "use_category_weights",
    "email_opt_out", "has_variable_credits", "is_specialed", "is_intervention", "tech_prep",
    "is_mastery", "is_rubric", "success", "instructional_support_indicator",
})

# Rule I (ref L50, L278-L281): every `*_id` field is an identifier whose JSON type varies
# (seed L1172: Assessments `"assessment_id":1014` next to `"assessment_id":"999"`; numbers on
# Students/Users/Roster, strings on the aggregates, ref L279-L280). `local_site_code` is the
# site's district id (ref L3475).
ID_EXTRA_FIELDS = frozenset({"local_site_code"})


def coerce_null(value: Any) -> Any:
    """Rule N: ``"NULL"``/``"null"`` -> ``None``; anything else unchanged."""
    if isinstance(value, str) and value in NULL_STRINGS:
        return None
    return value


def coerce_id(value: Any) -> str | None:
    """Rule I: an id as a JSON number or string -> ``str``; null, "", "NULL" -> ``None``."""
    if value is None:
        return None
    if isinstance(value, bool):
        # A boolean is never an id; accepting it would hide a shifted column.
        raise ValueError(f"boolean {value!r} where an id was expected")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        raise ValueError(f"non-integral number {value!r} where an id was expected")
    if isinstance(value, str):
        text = value.strip()
        if not text or text in NULL_STRINGS:
            return None
        return text
    raise ValueError(f"{type(value).__name__} where an id was expected")


def coerce_bool(value: Any) -> bool | None:
    """Rule B: "t"/"f", true/false, 1/0, "1"/"0" (and yes/no) -> ``bool``; null-ish -> ``None``."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE_STRINGS:
            return True
        if text in _FALSE_STRINGS:
            return False
        if not text or value in NULL_STRINGS:
            return None
    raise ValueError(f"{value!r} is not a recognised Illuminate boolean")


def coerce_count(value: Any) -> int:
    """Envelope counts (ref L282: `num_results` is a string on Assessments, seed L1172 "785",
    and on Attendance) -> ``int``; anything non-integral is malformed."""
    if isinstance(value, bool):
        raise ValueError(f"boolean {value!r} where a count was expected")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise ValueError(f"{value!r} is not a count")


def coerce_results(value: Any) -> list[Any]:
    """Rule R (ref L273, L3462; seed L2118 Gradebook `"results":{...}`): ``results`` may be a
    single object instead of an array; an object is a one-element list, null an empty one."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value]
    raise ValueError(f"`results` is a {type(value).__name__}, expected a list or an object")


def coerce_text(value: Any) -> str | None:
    """Free text: Rule N for null strings; numbers become ``str`` (ref L3477 Courses
    `school_course_id` 2623 vs "HA800"; ref L1212 MasterSchedule `room_number` 204)."""
    if value is None or (isinstance(value, str) and value in NULL_STRINGS):
        return None
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, str):
        return value
    raise ValueError(f"{type(value).__name__} where text was expected")


def coerce_date_text(value: Any) -> Any:
    """Dates and timestamps (ref L234-L242): null strings and "" -> ``None``; the string is
    then parsed by pydantic ("YYYY-MM-DD", "YYYY-MM-DD HH:MM:SS[.ffffff][+HH]")."""
    if isinstance(value, str) and (not value.strip() or value in NULL_STRINGS):
        return None
    return value


def coerce_decimal(value: Any) -> Decimal | None:
    """Rule D (ref L289; seed L1282 `"points":"5"`, `"percent_correct":"50.00"`): numbers sent
    as strings -> ``Decimal``, normalised so "50.00", "50" and 50 are one value."""
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            raise ValueError(f"boolean {value!r} where a number was expected")
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text or text in NULL_STRINGS:
            return None
        value = text
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError) as exc:
        raise ValueError(f"{value!r} is not a number") from exc
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    # normalize() gives 5E+1 for 50; quantizing to an integer keeps the plain form.
    normal = number.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal


def coerce_int(value: Any) -> int | None:
    """Integers that are sometimes strings (ref L289 "counts"; Users `state_user_id`)."""
    number = coerce_decimal(value)
    if number is None:
        return None
    if number != number.to_integral_value():
        raise ValueError(f"{value!r} is not an integer")
    return int(number)


def coerce_list(value: Any) -> tuple[str, ...]:
    """Rule L (ref L290-L292): "10, 11, 3" (Courses `site_ids`, Assessments `grade_levels`) and
    PostgreSQL array literals "{A,B,C}" (Assessment View) -> tuple of str; a JSON list too."""
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(s for s in (coerce_text(v) for v in value) if s is not None)
    if isinstance(value, int) and not isinstance(value, bool):
        return (str(value),)
    if isinstance(value, str):
        text = value.strip()
        if text in NULL_STRINGS:
            return ()
        if text.startswith("{") and text.endswith("}"):
            text = text[1:-1]
        return tuple(part.strip() for part in text.split(",") if part.strip())
    raise ValueError(f"{type(value).__name__} where a list was expected")


def is_id_field(name: str) -> bool:
    """Rule I applies to every `*_id` field and `local_site_code`."""
    return name.endswith("_id") or name in ID_EXTRA_FIELDS


def coerce_record(raw: dict[str, Any]) -> dict[str, Any]:
    """The generic pass over one raw record: Rule N on every value, Rule I on id fields,
    Rule B on documented boolean fields. Other values (dates, numbers) are left as sent;
    the typed models in ``illuminate_models`` finish the job."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str) and value in NULL_STRINGS:
            out[key] = None
        elif is_id_field(key):
            try:
                out[key] = coerce_id(value)
            except ValueError:
                out[key] = value  # keep what was sent; the typed model reports it precisely
        elif key in BOOLEAN_FIELDS:
            try:
                out[key] = coerce_bool(value)
            except ValueError:
                out[key] = value
        else:
            out[key] = value
    return out
