"""
The report's view model: the scan result arranged the way every report format presents it.

Templates only lay this out; ordering, grouping and counting happen here, once.
"""

from __future__ import annotations

from dataclasses import dataclass

from hipaacheck.exitcodes import verdict
from hipaacheck.model import CheckMeta, Finding, Standard, Status
from hipaacheck.result import ScanResult

# Most urgent first: what failed, what broke, what could not be seen, then the rest.
STATUS_ORDER = (Status.FAIL, Status.ERROR, Status.UNVERIFIED, Status.WARN, Status.PASS)


@dataclass(frozen=True)
class Row:
    """One finding with its check's title, ready to print."""

    finding: Finding
    title: str
    evidence: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Section:
    """One HIPAA standard: its findings, most urgent first, and their counts."""

    standard: Standard
    title: str
    counts: dict[str, int]
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class ReportView:
    """Everything a report template reads."""

    result: ScanResult
    verdict: str
    statuses: tuple[str, ...]
    counts: dict[str, int]
    sections: tuple[Section, ...]
    unverified: tuple[Row, ...]
    checks: tuple[CheckMeta, ...]


def _evidence_text(value: object) -> str:
    if isinstance(value, (tuple, list)):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "none" if value is None else str(value)


def _row(finding: Finding, titles: dict[str, str]) -> Row:
    evidence = tuple((k, _evidence_text(v)) for k, v in sorted(finding.evidence.items()))
    return Row(finding, titles.get(finding.check_id, finding.check_id), evidence)


def build_view(result: ScanResult) -> ReportView:
    """Arrange a scan result into sections per standard, most urgent findings first."""
    titles = {m.id: m.title for m in result.checks}
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}
    def urgency(f: Finding) -> tuple[int, str, str, str]:
        return (rank[f.status], f.check_id, f.target, f.resource)

    sections = []
    for standard, findings in result.by_standard().items():
        chosen = sorted(findings, key=urgency)
        counts = {s.value: n for s, n in result.counts(chosen).items()}
        sections.append(Section(standard, standard.label, counts,
                                tuple(_row(f, titles) for f in chosen)))
    unverified = tuple(_row(f, titles) for f in sorted(result.findings, key=urgency)
                       if f.status in (Status.UNVERIFIED, Status.ERROR))
    return ReportView(
        result=result, verdict=verdict(result),
        statuses=tuple(s.value for s in STATUS_ORDER),
        counts={s.value: n for s, n in result.counts().items()},
        sections=tuple(sections), unverified=unverified,
        checks=tuple(sorted(result.checks, key=lambda m: m.id)))
