"""Does Canvas hold exactly AB Connect's deliverable standards? Compares the two simulators'
``/_sim/state`` dumps, for the demo's summary and the standards-flow tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ConvergenceReport:
    """Differences between AB Connect's deliverable standards and Canvas's managed outcomes."""

    expected: int
    actual: int
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    wrong_text: list[str] = field(default_factory=list)
    misplaced: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when Canvas matches AB Connect exactly."""
        return not (self.missing or self.extra or self.duplicates or self.wrong_text or self.misplaced)

    def summary(self) -> str:
        """One line per kind of difference, or a line saying they match."""
        if self.ok:
            return f"Canvas matches AB Connect: {self.actual} outcomes for {self.expected} deliverable standards"
        parts = [f"expected {self.expected} outcomes, Canvas has {self.actual}"]
        for name in ("missing", "extra", "duplicates", "wrong_text", "misplaced"):
            items: list[str] = getattr(self, name)
            if items:
                parts.append(f"{name}: {len(items)} (e.g. {', '.join(items[:3])})")
        return "; ".join(parts)


def compare(ab_state: dict[str, Any], canvas_state: dict[str, Any], account_id: int = 1) -> ConvergenceReport:
    """Compare AB's ``/_sim/state`` for one partner with Canvas's ``/_sim/state``."""
    expected = {
        s["guid"].lower(): s for s in ab_state["standards"] if not s["deleted"]
    }
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
        if outcome["title"] != std["title"] or (outcome["description"] or "") != std["description"]:
            report.wrong_text.append(guid)
        if section != (std["section_guid"] or "").lower() or (document or "").lower() != std["document_guid"].lower():
            report.misplaced.append(guid)
    report.extra = sorted(g for g in placed if g not in expected)
    report.duplicates += sorted(f"outcome {i}" for i, n in outcome_ids.items() if n > 1)
    return report
