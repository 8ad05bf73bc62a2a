"""How an AB Connect standard becomes a Canvas outcome's text: the standards flow's mapping rule.

The convergence checker (``simulators/standards_convergence.py``) applies the same rule to AB
Connect's raw catalogue to know what Canvas should hold.
"""

from __future__ import annotations

from worker.clients.abconnect_models import Standard

OUTCOME_TITLE_MAX = 255  # Canvas outcome titles are a short string column


def outcome_text(
    *, number: str | None, statement: str | None, combined_statement: str | None = None,
    label: str | None = None,
) -> tuple[str, str]:
    """(title, description) of the Canvas outcome for one standard.

    The title is the human code (``number.enhanced``, AB's recommended display form, abconnect.md
    L13951) or, for standards without a number, the start of the statement; the description is
    the full statement including addenda (``statement.combined_descr``), else ``statement.descr``.
    """
    description = (combined_statement or statement or "").strip()
    title = (number or "").strip()
    if not title:
        title = (statement or label or "").strip()
    if len(title) > OUTCOME_TITLE_MAX:
        title = title[: OUTCOME_TITLE_MAX - 3].rstrip() + "..."
    return title, description


def standard_outcome_text(std: Standard) -> tuple[str, str]:
    """(title, description) the outcome of ``std`` should carry."""
    return outcome_text(number=std.number, statement=std.statement, combined_statement=std.combined_statement,
                        label=std.label)
