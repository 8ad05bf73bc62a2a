"""The simulated MatrixLMS API 1.0 functions, by name (``/api/<name>``).

Functions the seed documents but the simulator does not implement answer a 400 naming them as
not simulated, so a client test fails loudly instead of reading an invented shape.
"""

from __future__ import annotations

from simulators.matrixlms.functions import classes, grades, members, users, version
from simulators.matrixlms.functions.base import Call, Function

FUNCTIONS: dict[str, Function] = {
    **version.FUNCTIONS, **users.FUNCTIONS, **classes.FUNCTIONS, **members.FUNCTIONS, **grades.FUNCTIONS,
}

# Documented in seed 000 (matrix_class.md A.6) but not simulated.
NOT_SIMULATED = frozenset({
    "get_all_class_completions", "download_certificate", "add_class_from_template", "add_child_class",
    "complete_students_in_class", "uncomplete_students_in_class", "add_class_template", "edit_class_template",
    "get_all_class_templates", "get_class_templates_with_ids", "get_class_templates_for_organization",
    "get_class_templates_that_match", "delete_class_templates", "restore_class_templates",
    "get_classes_for_organization", "get_lessons_for_class", "get_all_organizations",
    "get_organizations_with_ids", "add_organization", "edit_organization", "delete_organizations",
    "get_all_groups", "get_groups_with_ids", "get_groups_that_match", "get_members_for_group",
    "get_admins_for_group", "get_groups_with_member", "get_groups_with_admin", "add_members_to_group",
    "remove_members_from_group", "add_admins_to_group", "remove_admins_from_group", "add_group", "edit_group",
    "delete_groups", "get_all_paths", "get_paths_with_ids", "get_students_for_path", "add_students_to_path",
    "remove_students_from_path", "get_resources", "get_all_certificates", "get_certificates_with_ids",
    "get_all_curricula", "get_curricula_with_ids", "get_proficiencies_for_curriculum", "get_curricula_for_class",
    "get_curricula_for_group", "get_curricula_for_job_title", "get_mastery_for_class",
    "get_mastery_for_class_students", "get_active_curricula_for_user", "get_mastery_for_user",
    "get_session_details", "get_class_report", "get_attendance", "get_all_attendance", "run_report",
    "get_report_status", "download_report", "post_class_announcement", "post_class_message",
    "post_group_announcement", "post_group_message", "post_site_announcement", "post_site_message",
    "get_games_for_site", "get_games_for_class", "get_status_for_all_players", "get_status_for_players",
    "get_all_orders", "get_orders_with_ids", "get_orders_for_organization", "get_orders_for_user",
    "get_orders_that_match", "get_all_job_titles", "get_job_titles_with_ids", "get_job_titles_that_match",
    "add_job_title", "edit_job_title", "delete_job_titles", "begin_sync", "commit_sync", "cancel_sync",
    "sync_status", "sync_teachers", "sync_students", "sync_classes",
})

__all__ = ["FUNCTIONS", "NOT_SIMULATED", "Call", "Function"]
