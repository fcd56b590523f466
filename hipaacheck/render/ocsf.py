"""
OCSF output: a JSON array of Compliance Finding events (class 2003), schema version 1.6.0.

This is the shape security data lakes and AWS Security Hub ingest. The finding's status maps to
the compliance object's `status_id`: PASS is Pass (1) and FAIL is Fail (3); UNVERIFIED is
Warning (2), which OCSF defines as "the compliance check did not yield a result due to missing
information"; WARN and ERROR, which OCSF has no word for, are Other (99) with hipaacheck's
status in `status`. Evidence, the missing access and the reason code travel in `unmapped`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hipaacheck.model import CheckMeta, Finding, Severity, Status
from hipaacheck.render.sarif import finding_digest
from hipaacheck.render.view import ReportOptions
from hipaacheck.result import ScanResult

OCSF_VERSION = "1.6.0"
CLASS_UID = 2003
CATEGORY_UID = 2
ACTIVITY_CREATE = 1
TYPE_UID = CLASS_UID * 100 + ACTIVITY_CREATE
STANDARD_NAME = "HIPAA Security Rule (45 CFR Part 164, Subpart C)"

COMPLIANCE_STATUS: dict[Status, tuple[int, str]] = {
    Status.PASS: (1, "Pass"), Status.FAIL: (3, "Fail"), Status.UNVERIFIED: (2, "Warning"),
    Status.WARN: (99, "WARN"), Status.ERROR: (99, "ERROR"),
}
"""hipaacheck status to the compliance object's (status_id, status)."""
SEVERITY: dict[Severity, tuple[int, str]] = {
    Severity.LOW: (2, "Low"), Severity.MEDIUM: (3, "Medium"), Severity.HIGH: (4, "High"),
    Severity.CRITICAL: (5, "Critical"),
}
INFORMATIONAL = (1, "Informational")
"""The severity of a PASS finding: nothing to act on."""


def _epoch_ms(timestamp: str) -> int:
    """Milliseconds since the epoch; a timestamp without a zone is read as UTC."""
    moment = datetime.fromisoformat(timestamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _unmapped(finding: Finding) -> dict[str, Any]:
    data: dict[str, Any] = {
        "status": finding.status.value, "target": finding.target,
        "evidence": {k: list(v) if isinstance(v, tuple) else v
                     for k, v in sorted(finding.evidence.items())}}
    if finding.needs:
        data["needs"] = finding.needs
    if finding.unknown_reason:
        data["unknown_reason"] = finding.unknown_reason.value
    return {"hipaacheck": data}


def _event(finding: Finding, meta: CheckMeta | None, result: ScanResult,
           when: int) -> dict[str, Any]:
    status_id, status = COMPLIANCE_STATUS[finding.status]
    severity_id, severity = (INFORMATIONAL if finding.status is Status.PASS
                             else SEVERITY[finding.severity])
    uid = finding_digest(finding)
    return {
        "activity_id": ACTIVITY_CREATE, "activity_name": "Create",
        "category_uid": CATEGORY_UID, "category_name": "Findings",
        "class_uid": CLASS_UID, "class_name": "Compliance Finding",
        "type_uid": TYPE_UID, "type_name": "Compliance Finding: Create",
        "severity_id": severity_id, "severity": severity,
        "status_id": 1, "status": "New", "time": when, "message": finding.reason,
        "metadata": {"version": OCSF_VERSION, "uid": f"{uid}:{when}", "product": {
            "name": "hipaacheck", "vendor_name": "hipaacheck", "version": result.tool_version}},
        "finding_info": {
            "uid": uid, "title": meta.title if meta else finding.check_id,
            "desc": finding.reason, "types": ["HIPAA Security Rule technical safeguard"],
            "created_time": when, "analytic": {"uid": finding.check_id,
                                               "name": finding.check_id, "type_id": 1,
                                               "type": "Rule"}},
        "compliance": {
            "standards": [STANDARD_NAME], "control": finding.check_id,
            "requirements": [f"45 CFR {c}" for c in finding.citations],
            "status_id": status_id, "status": status, "status_details": [finding.reason],
            "desc": meta.description if meta else finding.reason},
        "resources": [{"uid": f"{finding.target}/{finding.resource}", "name": finding.resource,
                       "group": {"name": finding.target}}],
        "remediation": {"desc": finding.remediation},
        "unmapped": _unmapped(finding),
    }


def ocsf_events(result: ScanResult) -> list[dict[str, Any]]:
    """Every finding as an OCSF 1.6.0 Compliance Finding event."""
    metas = {m.id: m for m in result.checks}
    when = _epoch_ms(result.finished)
    return [_event(f, metas.get(f.check_id), result, when) for f in result.findings]


def render_ocsf(result: ScanResult, options: ReportOptions | None = None) -> str:
    """The OCSF events as a JSON array."""
    return json.dumps(ocsf_events(result), separators=(",", ":")) + "\n"
