"""Does Canvas hold exactly AB Connect's deliverable standards, in exactly the right groups?

Compares the two simulators' ``/_sim/state`` dumps, for the demo's summary, the standards-flow
tests and the benchmark. Expected outcome text follows the flow's mapping rule
(``handlers/standards_text.py``); expected groups are one per document with a deliverable, live
standard and one per such section, titled after the document and section.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from handlers.standards_text import outcome_text

_KINDS = ("missing", "extra", "duplicates", "wrong_text", "misplaced", "missing_groups", "extra_groups",
          "wrong_group_titles")


@dataclass
class ConvergenceReport:
    """Differences between AB Connect's deliverable standards and Canvas's managed outcomes and groups."""

    expected: int
    actual: int
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    wrong_text: list[str] = field(default_factory=list)
    misplaced: list[str] = field(default_factory=list)
    missing_groups: list[str] = field(default_factory=list)
    extra_groups: list[str] = field(default_factory=list)
    wrong_group_titles: list[str] = field(default_factory=list)
    groups: int = 0

    @property
    def ok(self) -> bool:
        """True when Canvas matches AB Connect exactly, outcomes and groups."""
        return not any(getattr(self, name) for name in _KINDS)

    def summary(self) -> str:
        """One line per kind of difference, or a line saying they match."""
        if self.ok:
            return (f"Canvas matches AB Connect: {self.actual} outcomes for {self.expected} deliverable standards, "
                    f"{self.groups} groups")
        parts = [f"expected {self.expected} outcomes, Canvas has {self.actual}"]
        for name in _KINDS:
            items: list[str] = getattr(self, name)
            if items:
                parts.append(f"{name}: {len(items)} (e.g. {', '.join(items[:3])})")
        return "; ".join(parts)


def expected_text(std: dict[str, Any]) -> tuple[str, str]:
    """The outcome text AB's raw standard should map to (the simulator's combined statement is
    its statement)."""
    return outcome_text(number=std["number"], statement=std["statement"], combined_statement=std["statement"],
                        label=std["label"])


def compare(ab_state: dict[str, Any], canvas_state: dict[str, Any], account_id: int = 1) -> ConvergenceReport:
    """Compare AB's ``/_sim/state`` for one partner with Canvas's ``/_sim/state``."""
    expected = {s["guid"].lower(): s for s in ab_state["standards"] if not s["deleted"]}
    account = next(a for a in canvas_state["accounts"] if a["id"] == account_id)
    groups = {g["id"]: g for g in account["outcome_groups"]}
    placed: dict[str, list[tuple[dict[str, Any], str | None, str | None]]] = {}
    for group in groups.values():
        parent = groups.get(group["parent_outcome_group_id"] or -1)
        for outcome in group["outcomes"]:
            guid = (outcome.get("vendor_guid") or "").lower()
            if guid:
                placed.setdefault(guid, []).append(
                    (outcome, (group.get("vendor_guid") or "").lower(), (parent or {}).get("vendor_guid"))
                )
    report = ConvergenceReport(expected=len(expected), actual=sum(len(v) for v in placed.values()))
    outcome_ids = Counter(o["id"] for links in placed.values() for o, _, _ in links)
    for guid, std in sorted(expected.items()):
        links = placed.get(guid)
        if not links:
            report.missing.append(guid)
            continue
        if len({o["id"] for o, _, _ in links}) > 1:
            report.duplicates.append(guid)
        outcome, section, document = links[0]
        title, description = expected_text(std)
        if outcome["title"] != title or (outcome["description"] or "") != description:
            report.wrong_text.append(guid)
        if section != (std["section_guid"] or "").lower() or (document or "").lower() != std["document_guid"].lower():
            report.misplaced.append(guid)
    report.extra = sorted(g for g in placed if g not in expected)
    report.duplicates += sorted(f"outcome {i}" for i, n in outcome_ids.items() if n > 1)
    _compare_groups(expected, groups, report)
    return report


def _compare_groups(expected: dict[str, dict[str, Any]], groups: dict[int, dict[str, Any]],
                    report: ConvergenceReport) -> None:
    """Managed groups: one per document with a live standard, one per such section, nothing else."""
    want: dict[str, str] = {}
    for std in expected.values():
        doc = std["document_guid"].lower()
        want[doc] = std["document_descr"] or std["document_guid"]
        if std["section_guid"]:
            want[f"{doc}/{std['section_guid'].lower()}"] = std["section_descr"] or std["section_guid"]
    root = next((g for g in groups.values() if g["parent_outcome_group_id"] is None), None)
    have: dict[str, str] = {}
    for group in groups.values():
        if root is None or not group.get("vendor_guid"):
            continue
        if group["parent_outcome_group_id"] == root["id"]:
            have[group["vendor_guid"].lower()] = group["title"]
        else:
            parent = groups.get(group["parent_outcome_group_id"] or -1) or {}
            if parent.get("parent_outcome_group_id") == root["id"] and parent.get("vendor_guid"):
                have[f"{parent['vendor_guid'].lower()}/{group['vendor_guid'].lower()}"] = group["title"]
    report.groups = len(have)
    report.missing_groups = sorted(k for k in want if k not in have)
    report.extra_groups = sorted(k for k in have if k not in want)
    report.wrong_group_titles = sorted(k for k in want if k in have and have[k] != want[k])
