"""The organisation's data and the look-ups the routes share. Callers hold the simulator's lock."""

from __future__ import annotations

from dataclasses import dataclass, field

from simulators.classroom.errors import class_not_found, not_found
from simulators.classroom.ids import IdFactory
from simulators.classroom.records import ClassRecord, Enrollment, Schedule, Template, UserRecord


@dataclass
class ClassStore:
    """Classes (live and deferred), users, templates and schedules of one organisation."""

    ids: IdFactory = field(default_factory=IdFactory)
    classes: dict[str, ClassRecord] = field(default_factory=dict)  # by class_id, insertion order
    users: dict[int, UserRecord] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)
    deleted_ext_ids: set[str] = field(default_factory=set)

    def find_class(self, name: str, value: object, *, deferred: bool | None = None) -> ClassRecord:
        """The class with ``name`` (class_id, ext_class_id or class_deferred_id) equal to ``value``.

        ``deferred`` True/False restricts to deferred records or to live classes (GET, B.6.3);
        None accepts both (enrollments and schedules "may point to either", B.6.13).
        """
        for record in self.classes.values():
            if deferred is not None and (record.deferred_id is not None) != deferred:
                continue
            if name == "class_id" and record.class_id == value:
                return record
            if name == "ext_class_id" and record.ext_class_id is not None and record.ext_class_id == value:
                return record
            if name == "class_deferred_id" and record.deferred_id is not None and str(record.deferred_id) == str(value):
                return record
        raise class_not_found(str(value))

    def ext_taken(self, ext_class_id: str, *, reuse_deleted: bool) -> bool:
        """Whether a create with ``ext_class_id`` is a duplicate."""
        if any(record.ext_class_id == ext_class_id for record in self.classes.values()):
            return True
        return not reuse_deleted and ext_class_id in self.deleted_ext_ids

    def delete_class(self, record: ClassRecord) -> None:
        """Remove a class with its enrollments and schedules (cascade: DESIGN CHOICE, B.9.11)."""
        del self.classes[record.class_id]
        if record.ext_class_id is not None:
            self.deleted_ext_ids.add(record.ext_class_id)
        for schedule_id in [s.schedule_id for s in self.schedules.values() if s.class_id == record.class_id]:
            del self.schedules[schedule_id]

    def find_enrollment(self, record: ClassRecord, name: str, value: object) -> Enrollment:
        """The enrollment identified by student_id, ext_person_id or email."""
        for enrollment in record.enrollments:
            if getattr(enrollment, name) is not None and getattr(enrollment, name) == value:
                return enrollment
        raise not_found("enrollment", value)

    def find_user(self, name: str, value: object) -> UserRecord:
        """The user with ``name`` (id, ext_user_id or email) equal to ``value``."""
        for user in self.users.values():
            if name == "id" and str(user.id) == str(value):
                return user
            if name != "id" and getattr(user, name) is not None and getattr(user, name) == value:
                return user
        raise not_found("user", value)

    def template(self, template_id: object) -> Template:
        """A template by id."""
        found = self.templates.get(str(template_id))
        if found is None:
            raise not_found("template", template_id)
        return found

    def counts(self) -> dict[str, int]:
        """Sizes for the state dump."""
        live = [c for c in self.classes.values() if c.deferred_id is None]
        return {
            "classes": len(live),
            "deferred_classes": len(self.classes) - len(live),
            "enrollments": sum(len(c.enrollments) for c in self.classes.values()),
            "users": len(self.users),
            "templates": len(self.templates),
            "schedules": len(self.schedules),
        }
