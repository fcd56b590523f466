"""
CSV output: one row per finding, for spreadsheets and data tools.

Names of resources come from the systems scanned, so a cell that a spreadsheet would read as a
formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage return) is prefixed with an
apostrophe, the usual defence against CSV injection. Evidence is one JSON object per row.
"""

from __future__ import annotations

import csv
import io
import json

from hipaacheck.model import Finding
from hipaacheck.render.view import ReportOptions
from hipaacheck.result import ScanResult

COLUMNS = ("check_id", "title", "status", "severity", "standard", "citations", "target",
           "resource", "reason", "unknown_reason", "needs", "remediation", "evidence")
"""The header row, in order."""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: str) -> str:
    """`value` made safe for a spreadsheet: a leading formula character gets an apostrophe."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _row(finding: Finding, titles: dict[str, str]) -> list[str]:
    evidence = {k: list(v) if isinstance(v, tuple) else v
                for k, v in sorted(finding.evidence.items())}
    values = (
        finding.check_id, titles.get(finding.check_id, finding.check_id), finding.status.value,
        finding.severity.value, finding.standard.value, "; ".join(finding.citations),
        finding.target, finding.resource, finding.reason,
        finding.unknown_reason.value if finding.unknown_reason else "", finding.needs or "",
        finding.remediation, json.dumps(evidence, sort_keys=True, ensure_ascii=False))
    return [cell(v) for v in values]


def render_csv(result: ScanResult, options: ReportOptions | None = None) -> str:
    """Every finding as a CSV row under the `COLUMNS` header (RFC 4180 quoting, CRLF rows)."""
    titles = {m.id: m.title for m in result.checks}
    buffer = io.StringIO()
    writer = csv.writer(buffer, dialect="excel")
    writer.writerow(COLUMNS)
    for finding in result.findings:
        writer.writerow(_row(finding, titles))
    return buffer.getvalue()
