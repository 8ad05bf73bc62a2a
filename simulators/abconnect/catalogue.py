"""The simulated standards catalogue: documents, sections and standards, and a seeded generator.

Records render the attribute shapes of the real ``fields[standards]=*`` example
(seeds/002 L6467-6738): nested ``document`` and ``section`` objects, ``statement``, ``number``,
``education_levels.grades``, ``utilizations``; dates as ``"YYYY-MM-DD HH:MM:SS"``.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

API_ROOT = "https://api.abconnect.instructure.com/rest/v4.1"


def ab_now() -> str:
    """The current UTC time in AB's date format."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def ab_guid(rng: random.Random) -> str:
    """An AB-style GUID: uppercase, hyphenated (L6667)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()


@dataclass
class DocumentRec:
    """A standards document (one subject and adoption year of a publication, L11198)."""

    guid: str
    descr: str
    adopt_year: str
    subject: dict[str, Any]
    publication: dict[str, Any]
    acronym: str
    date_modified_utc: str
    section_guids: list[str] = field(default_factory=list)

    def attribute(self) -> dict[str, Any]:
        """The ``document`` object nested in each standard (L6585-6629)."""
        return {
            "guid": self.guid, "descr": self.descr, "adopt_year": self.adopt_year,
            "revision_year": self.adopt_year, "implementation_year": None, "assessment_year": None,
            "obsolete_year": None, "source_url": None, "date_modified_utc": self.date_modified_utc,
            "disciplines": {"primary_subject": self.subject}, "publication": self.publication,
        }


@dataclass
class SectionRec:
    """A section of a document: typically one grade (L11198)."""

    guid: str
    document_guid: str
    descr: str
    seq: int
    grade: dict[str, Any]
    subject: dict[str, Any]
    adopt_year: str
    date_modified_utc: str
    label: str = "Grade"
    standard_guids: list[str] = field(default_factory=list)

    def attribute(self) -> dict[str, Any]:
        """The ``section`` object nested in each standard (L6633-6652)."""
        return {
            "guid": self.guid, "descr": self.descr, "seq": self.seq, "label": self.label, "number": None,
            "adopt_year": self.adopt_year, "revision_year": self.adopt_year, "implementation_year": None,
            "assessment_year": None, "obsolete_year": None, "date_modified_utc": self.date_modified_utc,
            "disciplines": {"primary_subject": self.subject},
        }


@dataclass
class StandardRec:
    """One standard; ``attributes()`` is cached and must be invalidated on change (``touch``)."""

    guid: str
    document: DocumentRec
    section: SectionRec
    parent_guid: str | None
    ancestors: list[str]
    level: int
    seq: int
    label: str
    standard_type: str
    number_raw: str
    number_enhanced: str
    statement: str
    status: str = "active"
    date_modified_utc: str = field(default_factory=ab_now)
    date_deleted_utc: str | None = None
    children: list[str] = field(default_factory=list)
    _attrs: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def document_guid(self) -> str:
        """GUID of the containing document."""
        return self.document.guid

    @property
    def section_guid(self) -> str:
        """GUID of the containing section."""
        return self.section.guid

    @property
    def deepest(self) -> bool:
        """A leaf of the hierarchy: the alignable learning objective (L13950)."""
        return not self.children

    def touch(self) -> None:
        """Forget the cached attributes after a change."""
        self._attrs = None

    def attributes(self) -> dict[str, Any]:
        """The full attribute set, as ``fields[standards]=*`` would return it."""
        if self._attrs is None:
            self._attrs = self._render()
        return self._attrs

    def _render(self) -> dict[str, Any]:
        subject = self.document.subject
        return {
            "guid": self.guid, "uri": f"{API_ROOT}/standards/{self.guid}", "seq": self.seq,
            "level": self.level, "label": self.label, "status": self.status,
            "standard_type": self.standard_type, "captured_by": "AB",
            "date_modified_utc": self.date_modified_utc, "date_deleted_utc": self.date_deleted_utc,
            "in_list": "N", "has_list": "N", "deepest": "Y" if self.deepest else "N", "topic_organizer": None,
            "statement": {"descr": self.statement, "combined_descr": self.statement, "addendums": []},
            "number": {
                "raw": self.number_raw, "enhanced": self.number_enhanced,
                "prefix_enhanced": self.number_enhanced,
            },
            "legends": [], "extensions": [], "key_ideas": [],
            "utilizations": [{"guid": "3A6BCD99-F093-4782-9708-5E65F2DEC3F2", "type": "alignable"}]
            if self.deepest else [],
            "alt_identifiers": [{"type": "GUID", "id": self.guid.replace("-", ""), "source": "canonical"}],
            "disciplines": {
                "subjects": [subject], "strands": [], "genres": [], "ece_domains": [],
                "_content_connections": [],
            },
            "education_levels": {"grades": [self.section.grade], "ece_ages": []},
            "document": self.document.attribute(),
            "section": self.section.attribute(),
        }


_SUBJECTS = [
    ("MATH", "Mathematics", "Math"), ("LANG", "English Language Arts", "ELA"), ("SCI", "Science", "Sci"),
    ("SOC", "Social Studies", "SS"), ("ART", "Fine Arts", "Art"), ("HLTH", "Health", "Hlth"),
    ("PE", "Physical Education", "PE"), ("TECH", "Technology", "Tech"),
]
_AUTHORITIES = [
    ("KY", "Kentucky DOE"), ("NY", "New York DOE"), ("CA", "California DOE"),
    ("TX", "Texas Education Agency"), ("OH", "Ohio DOE"), ("CC", "NGA Center/CCSSO"),
    ("FL", "Florida DOE"), ("WA", "Washington OSPI"),
]
_GRADES = [
    ("K", "Kindergarten", 20), ("1", "1st Grade", 30), ("2", "2nd Grade", 40), ("3", "3rd Grade", 50),
    ("4", "4th Grade", 60), ("5", "5th Grade", 70), ("6", "6th Grade", 80), ("7", "7th Grade", 90),
    ("8", "8th Grade", 100), ("9", "9th Grade", 110), ("10", "10th Grade", 120), ("11", "11th Grade", 130),
    ("12", "12th Grade", 140),
]
_DOMAINS = [
    "Operations and Algebraic Thinking", "Number and Operations", "Measurement and Data", "Geometry",
    "Reading Literature", "Reading Informational Text", "Writing", "Speaking and Listening", "Language",
    "Physical Science", "Life Science", "Earth and Space Science", "Engineering Design", "Civics",
    "Economics", "Geography", "History", "Creative Process", "Wellness",
]
_VERBS = [
    "Explain", "Describe", "Analyze", "Compare", "Identify", "Solve", "Use", "Construct", "Evaluate",
    "Interpret", "Represent", "Demonstrate", "Apply", "Summarize", "Determine", "Classify", "Model",
]
_OBJECTS = [
    "word problems involving addition and subtraction", "the main idea of a text", "patterns in data",
    "the structure of an argument", "properties of matter", "fractions as numbers on a number line",
    "the causes of historical events", "relationships between variables", "energy transfer in systems",
    "key details in informational texts", "equivalent expressions", "the role of government",
    "geometric shapes and their attributes", "the author's point of view", "measurements in standard units",
    "changes in ecosystems over time", "multi-digit whole numbers", "evidence from multiple sources",
]
_CONTEXTS = [
    "using concrete models or drawings", "with prompting and support", "in real-world situations",
    "citing textual evidence", "within 1000", "using appropriate tools strategically",
    "and justify the reasoning", "across a range of contexts", "with increasing independence",
    "using grade-appropriate vocabulary", "through collaborative discussion", "by drawing on prior knowledge",
]


class CatalogueGenerator:
    """Generates plausible documents, sections and standards from a seeded random generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._doc_count = 0

    def statement(self) -> str:
        """A plausible standard statement."""
        r = self.rng
        return f"{r.choice(_VERBS)} {r.choice(_OBJECTS)} {r.choice(_CONTEXTS)}."

    def document(self, n_sections: int, n_standards: int) -> tuple[DocumentRec, list[SectionRec],
                                                                      list[StandardRec]]:
        """A new document with ``n_sections`` sections sharing ``n_standards`` standards."""
        r = self.rng
        self._doc_count += 1
        code, subject_descr, short = r.choice(_SUBJECTS)
        acronym, authority = r.choice(_AUTHORITIES)
        year = str(r.randint(2010, 2024))
        subject = {"code": code, "descr": subject_descr, "guid": ab_guid(r)}
        publication = {
            "guid": ab_guid(r), "descr": f"{authority} {subject_descr} Standards", "acronym": acronym,
            "extended_descr": None, "source_url": None, "publication_type": "standard",
            "authorities": [{"guid": ab_guid(r), "descr": authority, "acronym": acronym}],
            "regions": [
                {"guid": ab_guid(r), "descr": "United States of America", "type": "country", "code": "US"},
            ],
        }
        doc = DocumentRec(
            guid=ab_guid(r), descr=f"{subject_descr} ({year}) #{self._doc_count}", adopt_year=year,
            subject=subject, publication=publication, acronym=f"{acronym}.{short}",
            date_modified_utc=ab_now(),
        )
        n_sections = max(1, min(n_sections, max(1, n_standards)))
        sections: list[SectionRec] = []
        standards: list[StandardRec] = []
        base, extra = divmod(max(0, n_standards), n_sections)
        for i in range(n_sections):
            section, section_standards = self.section(doc, base + (1 if i < extra else 0))
            sections.append(section)
            standards.extend(section_standards)
        return doc, sections, standards

    def section(self, doc: DocumentRec, n_standards: int) -> tuple[SectionRec, list[StandardRec]]:
        """A new section of ``doc`` (appended to it) with ``n_standards`` standards: domains, objectives."""
        r = self.rng
        index = len(doc.section_guids)
        code, descr, seq = _GRADES[index % len(_GRADES)]
        round_ = index // len(_GRADES)
        section = SectionRec(
            guid=ab_guid(r), document_guid=doc.guid,
            descr=f"Grade {code}" if not round_ else f"Grade {code} ({round_ + 1})",
            seq=(index + 1) * 100, grade={"code": code, "descr": descr, "guid": ab_guid(r), "seq": seq},
            subject=doc.subject, adopt_year=doc.adopt_year, date_modified_utc=ab_now(),
        )
        doc.section_guids.append(section.guid)
        standards: list[StandardRec] = []
        # One organizational "Domain" per ~8 standards; the rest are alignable objectives under them.
        n_domains = max(1, n_standards // 8) if n_standards > 1 else n_standards
        domains: list[StandardRec] = []
        for d in range(n_domains):
            domain = self._standard(doc, section, None, [], level=1, seq=d + 1, label="Domain",
                                    standard_type="organizational", number=f"{code}.{d + 1}",
                                    statement=r.choice(_DOMAINS))
            domains.append(domain)
            standards.append(domain)
        for i in range(n_standards - n_domains):
            standards.append(self.child(domains[i % len(domains)], seq=i // len(domains) + 1))
        return section, standards

    def top_level(self, doc: DocumentRec, section: SectionRec) -> StandardRec:
        """A new level-1 alignable standard directly under ``section``."""
        seq = 1 + sum(1 for _ in section.standard_guids)
        code = section.grade["code"]
        return self._standard(doc, section, None, [], level=1, seq=seq, label="Standard",
                              standard_type="objective", number=f"{code}.{seq}", statement=self.statement())

    def child(self, parent: StandardRec, seq: int | None = None) -> StandardRec:
        """A new alignable objective under ``parent`` (appended to its children and section)."""
        seq = seq if seq is not None else len(parent.children) + 1
        child = self._standard(
            parent.document, parent.section, parent.guid, [*parent.ancestors, parent.guid],
            level=parent.level + 1, seq=seq, label="Standard", standard_type="objective",
            number=f"{parent.number_raw}.{seq}",
            statement=self.statement(),
        )
        parent.children.append(child.guid)
        parent.touch()
        return child

    def _standard(
        self, doc: DocumentRec, section: SectionRec, parent_guid: str | None, ancestors: list[str], *,
        level: int, seq: int, label: str, standard_type: str, number: str, statement: str,
    ) -> StandardRec:
        rec = StandardRec(
            guid=ab_guid(self.rng), document=doc, section=section, parent_guid=parent_guid,
            ancestors=ancestors, level=level, seq=seq, label=label, standard_type=standard_type,
            number_raw=number, number_enhanced=f"{doc.acronym}.{number}", statement=statement,
        )
        section.standard_guids.append(rec.guid)
        return rec
