"""The data of one MatrixLMS site and the look-ups every function shares.

Ids are integers auto-incremented per kind (matrix_class.md A.9.6); a fixed id (the seed's class
1456) is skipped by the sequence. Callers hold the simulator's lock.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from dataclasses import dataclass, field
from typing import Literal

from simulators.matrixlms.errors import bad_request
from simulators.matrixlms.records import Assignment, Course, Enrollment, Grade, User

MatchMode = Literal["without_ids", "always"]
ID_KEYS = ("userid", "student_id", "teacher_id")


def _norm(value: str | None) -> str | None:
    return value.strip().lower() if value is not None else None


class UserTable(dict[int, User]):
    """The site's users by id, with an index of the keys ``add_user`` matches on.

    Matching by scanning every user made a district's 20,000 creates quadratic (about 15 ms a
    call at the end). Users are only ever stored whole (``table[id] = user``; updates store a
    changed copy), so the index follows assignments and removals. Among several matches the one
    stored first wins, as the scan in insertion order did.
    """

    def __init__(self) -> None:
        super().__init__()
        self._index: dict[tuple[str, object], set[int]] = {}
        self._order: dict[int, int] = {}
        self._seq = 0

    @staticmethod
    def _keys(user: User) -> list[tuple[str, object]]:
        keys: list[tuple[str, object]] = [(k, _norm(getattr(user, k))) for k in ID_KEYS if getattr(user, k)]
        if user.first_name and user.last_name and user.birthdate:
            keys.append(("name", (_norm(user.first_name), _norm(user.last_name), user.birthdate)))
        return keys

    def __setitem__(self, user_id: int, user: User) -> None:
        old = self.get(user_id)
        if old is not None:
            self._unindex(user_id, old)
        else:
            self._seq += 1
            self._order[user_id] = self._seq
        super().__setitem__(user_id, user)
        for key in self._keys(user):
            self._index.setdefault(key, set()).add(user_id)

    def __delitem__(self, user_id: int) -> None:
        self._unindex(user_id, self[user_id])
        self._order.pop(user_id, None)
        super().__delitem__(user_id)

    def pop(self, user_id: int, *default: User | None) -> User | None:  # type: ignore[override]
        """Remove and return a user (the index follows)."""
        if user_id in self:
            user = self[user_id]
            del self[user_id]
            return user
        if default:
            return default[0]
        raise KeyError(user_id)

    def _unindex(self, user_id: int, user: User) -> None:
        for key in self._keys(user):
            ids = self._index.get(key)
            if ids is not None:
                ids.discard(user_id)
                if not ids:
                    del self._index[key]

    def first(self, key: str, value: object) -> User | None:
        """The first stored user whose ``key`` (an id key, or "name") equals ``value`` (normalised)."""
        ids = self._index.get((key, value))
        if not ids:
            return None
        return self[min(ids, key=self._order.__getitem__)]


@dataclass
class SiteStore:
    """Users, classes, members, assignments and grades of one site."""

    name: str
    custom_user_fields: tuple[str, ...] = ()
    api_enabled: bool = True
    users: UserTable = field(default_factory=UserTable)
    classes: dict[int, Course] = field(default_factory=dict)
    enrollments: dict[tuple[int, int], Enrollment] = field(default_factory=dict)
    teachers: dict[int, dict[int, bool]] = field(default_factory=dict)  # class -> {user: coteacher}
    assignments: dict[int, Assignment] = field(default_factory=dict)
    grades: dict[tuple[int, int], Grade] = field(default_factory=dict)  # (assignment, user)
    admin_id: int | None = None
    _next: dict[str, int] = field(default_factory=dict)

    def next_id(self, kind: str, taken: Container[int]) -> int:
        """The next free id of ``kind`` (users and classes start at 1, like the seed's examples)."""
        value = self._next.get(kind, 1)
        while value in taken:
            value += 1
        self._next[kind] = value + 1
        return value

    # -- users -----------------------------------------------------------------------------

    def user(self, user_id: int) -> User:
        """The user or the 400 an unknown id gets (text inferred)."""
        user = self.users.get(user_id)
        if user is None:
            raise bad_request(f"No user with id {user_id}")
        return user

    def match_user(self, attrs: dict[str, str | None], mode: MatchMode) -> User | None:
        """The account ``add_user``/``update_user`` update (seed 000:L170-172).

        The order is userid, student ID, teacher ID, then first name + last name + birth date.
        With ``mode="without_ids"`` (default) the name step is used only when none of the three
        ids was sent; ``"always"`` also uses it when the ids matched nobody.
        """
        for key in ID_KEYS:
            wanted = attrs.get(key)
            if wanted:
                found = self.users.first(key, _norm(wanted))
                if found is not None:
                    return found
        if mode == "without_ids" and any(attrs.get(key) for key in ID_KEYS):
            return None
        first, last, born = attrs.get("first_name"), attrs.get("last_name"), attrs.get("birthdate")
        if first and last and born:
            return self.users.first("name", (_norm(first), _norm(last), born))
        return None

    # -- classes ---------------------------------------------------------------------------

    def course(self, class_id: int, *, trashed: bool = False) -> Course:
        """A live class (or, with ``trashed``, also one in the trash can)."""
        course = self.classes.get(class_id)
        if course is None or (course.trashed and not trashed):
            raise bad_request(f"No class with id {class_id}")
        return course

    def live_classes(self) -> Iterator[Course]:
        """Classes not in the trash, in id order (trashed classes are excluded from reads, A.9.8)."""
        for class_id in sorted(self.classes):
            course = self.classes[class_id]
            if not course.trashed:
                yield course

    def class_enrollments(self, class_id: int) -> list[Enrollment]:
        """Every enrollment of a class, unenrolled ones included, in user-id order."""
        return sorted(
            (e for (cid, _), e in self.enrollments.items() if cid == class_id), key=lambda e: e.user_id
        )

    def class_assignments(self, class_id: int) -> list[Assignment]:
        """A class's assignments in the order they appear (id order)."""
        return sorted((a for a in self.assignments.values() if a.class_id == class_id), key=lambda a: a.id)

    def assignment(self, assignment_id: int) -> Assignment:
        """An assignment of a live class."""
        found = self.assignments.get(assignment_id)
        if found is None or found.class_id not in self.classes or self.classes[found.class_id].trashed:
            raise bad_request(f"No assignment with id {assignment_id}")
        return found

    def delete_user(self, user_id: int) -> None:
        """Remove a user with their enrollments, teaching and grades."""
        self.users.pop(user_id, None)
        for key in [k for k in self.enrollments if k[1] == user_id]:
            del self.enrollments[key]
        for teachers in self.teachers.values():
            teachers.pop(user_id, None)
        for key in [k for k in self.grades if k[1] == user_id]:
            del self.grades[key]

    def counts(self) -> dict[str, int]:
        """Sizes for the state dump."""
        return {
            "users": len(self.users),
            "classes": sum(1 for c in self.classes.values() if not c.trashed),
            "trashed_classes": sum(1 for c in self.classes.values() if c.trashed),
            "enrollments": sum(1 for e in self.enrollments.values() if e.active),
            "unenrolled": sum(1 for e in self.enrollments.values() if not e.active),
            "teachers": sum(len(t) for t in self.teachers.values()),
            "assignments": len(self.assignments),
            "grades": len(self.grades),
        }
