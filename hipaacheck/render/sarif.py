"""
SARIF 2.1.0 output: one run, one rule per check, one result per finding.

SARIF was made for source code, so each finding is located by a logical location (the target
and the resource inside it) rather than a file. Statuses map to SARIF's `kind`: PASS is `pass`,
FAIL and WARN are `fail` (with a level from the check's severity; WARN is a `note`), and
UNVERIFIED and ERROR are `open`, SARIF's word for "the tool could not tell". A check that broke
is also reported as an error notification of the invocation, and an incomplete scan is never
an invocation that succeeded.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hipaacheck.model import CheckMeta, Finding, Severity, Status
from hipaacheck.render.view import ReportOptions
from hipaacheck.result import ScanResult

SARIF_SCHEMA = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
                "sarif-schema-2.1.0.json")
SARIF_VERSION = "2.1.0"
FINGERPRINT = "hipaacheck/finding/v1"

LEVELS = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning",
          Severity.LOW: "note"}
"""SARIF level of a FAIL by the check's severity."""
SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5",
                     Severity.LOW: "3.0"}
"""The numeric `security-severity` code-scanning dashboards sort rules by."""
KINDS = {Status.PASS: "pass", Status.FAIL: "fail", Status.WARN: "fail",
         Status.UNVERIFIED: "open", Status.ERROR: "open"}


def finding_digest(finding: Finding) -> str:
    """A stable SHA-256 of the finding's identity (check, target, resource)."""
    return hashlib.sha256("\x1f".join(finding.key).encode("utf-8")).hexdigest()


def _rule(meta: CheckMeta) -> dict[str, Any]:
    citations = ", ".join(f"45 CFR {c}" for c in meta.citations)
    return {
        "id": meta.id,
        "name": meta.id.replace(".", "_"),
        "shortDescription": {"text": meta.title},
        "fullDescription": {"text": meta.description},
        "help": {"text": f"{meta.remediation} ({citations})"},
        "defaultConfiguration": {"level": LEVELS[meta.severity]},
        "properties": {
            "tags": ["hipaa", "security", meta.family.value, *meta.citations],
            "security-severity": SECURITY_SEVERITY[meta.severity],
            "precision": "high",
            "hipaa-standard": meta.standard.value,
        },
    }


def _level(finding: Finding) -> str:
    if finding.status is Status.FAIL:
        return LEVELS[finding.severity]
    return "note" if finding.status is Status.WARN else "none"


def _result(finding: Finding, rule_index: dict[str, int]) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "status": finding.status.value, "severity": finding.severity.value,
        "standard": finding.standard.value, "citations": list(finding.citations),
        "target": finding.target,
        "evidence": {k: list(v) if isinstance(v, tuple) else v
                     for k, v in sorted(finding.evidence.items())},
    }
    if finding.needs:
        properties["needs"] = finding.needs
    if finding.unknown_reason:
        properties["unknownReason"] = finding.unknown_reason.value
    result: dict[str, Any] = {
        "ruleId": finding.check_id, "kind": KINDS[finding.status], "level": _level(finding),
        "message": {"text": finding.reason or finding.status.value},
        "locations": [{"logicalLocations": [{
            "name": finding.resource, "fullyQualifiedName": f"{finding.target}/{finding.resource}",
            "kind": "resource"}]}],
        "partialFingerprints": {FINGERPRINT: finding_digest(finding)},
        "properties": properties,
    }
    if finding.check_id in rule_index:
        result["ruleIndex"] = rule_index[finding.check_id]
    return result


def _notifications(result: ScanResult, rule_index: dict[str, int]) -> list[dict[str, Any]]:
    """One error notification per check that broke on a target."""
    notes = []
    for f in result.findings:
        if f.status is Status.ERROR:
            descriptor: dict[str, Any] = {"id": f.check_id}
            if f.check_id in rule_index:
                descriptor["index"] = rule_index[f.check_id]
            notes.append({"level": "error", "message": {"text": f.reason or "check failed"},
                          "associatedRule": descriptor,
                          "locations": [{"logicalLocations": [{
                              "fullyQualifiedName": f"{f.target}/{f.resource}"}]}]})
    return notes


def sarif_document(result: ScanResult) -> dict[str, Any]:
    """The SARIF 2.1.0 log of a scan, as a JSON-ready dict."""
    checks = sorted(result.checks, key=lambda m: m.id)
    rule_index = {m.id: i for i, m in enumerate(checks)}
    errors = any(f.status is Status.ERROR for f in result.findings)
    invocation = {
        "executionSuccessful": result.complete and not errors,
        "startTimeUtc": result.started, "endTimeUtc": result.finished,
        "toolExecutionNotifications": _notifications(result, rule_index),
        "properties": {"complete": result.complete, "interrupted": result.interrupted,
                       "tasks": result.tasks},
    }
    run = {
        "tool": {"driver": {
            "name": "hipaacheck", "version": result.tool_version,
            "semanticVersion": result.tool_version,
            "rules": [_rule(m) for m in checks]}},
        "automationDetails": {"id": f"hipaacheck/{result.config_fingerprint[:16]}/"},
        "invocations": [invocation],
        "results": [_result(f, rule_index) for f in result.findings],
        "properties": {"organization": result.organization,
                       "configFingerprint": result.config_fingerprint,
                       "targets": [t.id for t in result.targets]},
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def render_sarif(result: ScanResult, options: ReportOptions | None = None) -> str:
    """The SARIF 2.1.0 log of a scan, as compact JSON text (large scans stay fast to write)."""
    return json.dumps(sarif_document(result), separators=(",", ":")) + "\n"
