"""``submission[posted_grade]`` to score and grade, per the assignment's ``grading_type``.

Not in the seeds (canvas.md §3.9). Canvas's public REST API documentation, Submissions
https://canvas.instructure.com/doc/api/submissions.html ("Grade or comment on a submission"):
"The assignment grade for the submission, as a string. The string can be: a number (points),
a percentage ('40%'), a letter grade ('B+' or 'A-'), or 'pass'/'complete'/'fail'/'incomplete'".
Letter grades use Canvas's default grading scheme; a letter maps to the top of its band minus
one point, as ``GradingStandard#grade_to_score`` does.
"""

from __future__ import annotations

from simulators.canvas.responses import CanvasHTTPError

GRADING_TYPES = ("pass_fail", "percent", "letter_grade", "gpa_scale", "points", "not_graded")
# Canvas's default grading scheme: letter and lower bound (fraction of points possible).
DEFAULT_SCHEME: tuple[tuple[str, float], ...] = (
    ("A", 0.94), ("A-", 0.90), ("B+", 0.87), ("B", 0.84), ("B-", 0.80), ("C+", 0.77), ("C", 0.74),
    ("C-", 0.70), ("D+", 0.67), ("D", 0.64), ("D-", 0.61), ("F", 0.0),
)
_PASS = ("complete", "pass")
_FAIL = ("incomplete", "fail")


def invalid_grade(posted: str) -> CanvasHTTPError:
    """A posted grade the grading type cannot read."""
    return CanvasHTTPError(400, {"errors": {"grade": [
        {"attribute": "grade", "type": "invalid", "message": f"{posted!r} is not a valid grade"}
    ]}})


def number_text(value: float) -> str:
    """Canvas's ``round_if_whole``: ``10.0`` -> ``"10"``, ``13.5`` -> ``"13.5"``."""
    rounded = round(value, 2)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:g}"


def _letter_for(fraction: float) -> str:
    for letter, lower in DEFAULT_SCHEME:
        if fraction + 1e-9 >= lower:
            return letter
    return DEFAULT_SCHEME[-1][0]


def _letter_score(letter: str, points: float) -> float | None:
    for index, (name, lower) in enumerate(DEFAULT_SCHEME):
        if name.lower() == letter.lower():
            if index == 0:
                return points
            above = DEFAULT_SCHEME[index - 1][1]
            return round(max(lower * 100, above * 100 - 1.0) / 100 * points, 2)
    return None


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def score_to_grade(score: float, grading_type: str, points: float | None) -> str:
    """The grade string Canvas stores for a score."""
    pp = points or 0.0
    if grading_type == "percent":
        return f"{number_text(score / pp * 100 if pp else 0.0)}%"
    if grading_type in ("letter_grade", "gpa_scale"):
        return _letter_for(score / pp if pp else 1.0)
    if grading_type == "pass_fail":
        return "complete" if score > 0 or pp == 0 else "incomplete"
    return number_text(score)


def posted_to_score(posted: str, grading_type: str, points: float | None) -> tuple[float | None, str | None]:
    """``(score, grade)`` for a posted grade; blank clears both. Raises the 400 for nonsense."""
    text = posted.strip()
    if not text:
        return None, None
    if grading_type == "not_graded":
        raise invalid_grade(posted)
    pp = points or 0.0
    lowered = text.lower()
    if grading_type == "pass_fail":
        if lowered in _PASS:
            return pp, "complete"
        if lowered in _FAIL:
            return 0.0, "incomplete"
    score: float | None = None
    if text.endswith("%"):
        percent = _as_number(text[:-1])
        score = None if percent is None else round(percent / 100 * pp, 2)
    else:
        number = _as_number(text)
        if number is not None:
            score = round(number / 100 * pp, 2) if grading_type == "percent" else number
        elif grading_type in ("letter_grade", "gpa_scale"):
            score = _letter_score(text, pp)
            if score is not None:
                return score, next(name for name, _ in DEFAULT_SCHEME if name.lower() == lowered)
    if score is None:
        raise invalid_grade(posted)
    return score, score_to_grade(score, grading_type, points)
