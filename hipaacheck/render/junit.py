"""
JUnit XML output, for CI dashboards: one test suite per HIPAA standard, one test case per finding.

FAIL is a `failure`, ERROR an `error` and UNVERIFIED `skipped` with the reason (a dashboard must
not count a control nobody could see as passed). PASS and WARN pass; WARN says so in the test
case's `system-out`. A scan that was interrupted or checked nothing adds one errored test case,
so a dashboard never shows such a run as green.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from hipaacheck.exitcodes import verdict
from hipaacheck.model import Finding, Standard, Status
from hipaacheck.render.view import ReportOptions, evidence_text
from hipaacheck.result import ScanResult

# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: object) -> str:
    """`value` as text that XML 1.0 can carry: forbidden control characters become U+FFFD."""
    return _NOT_XML.sub("\ufffd", str(value))


def _seconds(started: str, finished: str) -> str:
    try:
        delta = datetime.fromisoformat(finished) - datetime.fromisoformat(started)
    except ValueError:
        return "0"
    return f"{max(delta.total_seconds(), 0.0):.3f}"


def _detail(finding: Finding) -> str:
    lines = [finding.reason]
    lines += [f"{key}: {evidence_text(value)}" for key, value in sorted(finding.evidence.items())]
    if finding.needs:
        lines.append(f"needs: {finding.needs}")
    lines.append(f"45 CFR {', '.join(finding.citations)}; severity {finding.severity.value}")
    if finding.status is not Status.PASS:
        lines.append(f"Remediation: {finding.remediation}")
    return "\n".join(lines)


def _testcase(parent: ET.Element, finding: Finding) -> None:
    case = ET.SubElement(parent, "testcase", {
        "classname": xml_text(finding.check_id),
        "name": xml_text(f"{finding.target} {finding.resource}"), "time": "0"})
    detail = xml_text(_detail(finding))
    message = xml_text(finding.reason)
    if finding.status is Status.FAIL:
        ET.SubElement(case, "failure", {"message": message, "type": "FAIL"}).text = detail
    elif finding.status is Status.ERROR:
        ET.SubElement(case, "error", {"message": message, "type": "ERROR"}).text = detail
    elif finding.status is Status.UNVERIFIED:
        reason = finding.unknown_reason.value if finding.unknown_reason else "unverified"
        needs = f"; needs {finding.needs}" if finding.needs else ""
        ET.SubElement(case, "skipped", {
            "message": xml_text(f"UNVERIFIED ({reason}): {finding.reason}{needs}")})
    elif finding.status is Status.WARN:
        ET.SubElement(case, "system-out").text = xml_text(f"WARN: {detail}")


def _suite(root: ET.Element, name: str, findings: Sequence[Finding], timestamp: str) -> None:
    counts = Counter(f.status for f in findings)
    suite = ET.SubElement(root, "testsuite", {
        "name": xml_text(name), "tests": str(len(findings)),
        "failures": str(counts[Status.FAIL]), "errors": str(counts[Status.ERROR]),
        "skipped": str(counts[Status.UNVERIFIED]), "time": "0", "timestamp": timestamp})
    for finding in findings:
        _testcase(suite, finding)


def _completeness(root: ET.Element, result: ScanResult, timestamp: str) -> int:
    """An errored test case when the scan is incomplete or checked nothing; 1 if added."""
    if result.complete and result.tasks and result.findings:
        return 0
    suite = ET.SubElement(root, "testsuite", {
        "name": "hipaacheck scan", "tests": "1", "failures": "0", "errors": "1",
        "skipped": "0", "time": "0", "timestamp": timestamp})
    case = ET.SubElement(suite, "testcase", {"classname": "hipaacheck.scan",
                                             "name": "scan completed", "time": "0"})
    ET.SubElement(case, "error", {"message": xml_text(verdict(result)), "type": "INCOMPLETE"})
    return 1


def render_junit(result: ScanResult, options: ReportOptions | None = None) -> str:
    """The scan as a JUnit XML document (the common Jenkins / Ant dialect)."""
    counts = result.counts()
    timestamp = result.started[:19]
    root = ET.Element("testsuites", {
        "name": xml_text(f"hipaacheck {result.organization}"),
        "time": _seconds(result.started, result.finished), "timestamp": timestamp})
    by_standard: dict[Standard, list[Finding]] = result.by_standard()
    for standard, findings in by_standard.items():
        if findings:
            _suite(root, f"45 CFR {standard.value} {standard.title}", findings, timestamp)
    extra = _completeness(root, result, timestamp)
    root.attrib.update({
        "tests": str(len(result.findings) + extra), "failures": str(counts[Status.FAIL]),
        "errors": str(counts[Status.ERROR] + extra), "skipped": str(counts[Status.UNVERIFIED])})
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
