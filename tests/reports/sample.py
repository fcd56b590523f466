"""A fixed scan result for report tests: every status, markup in a resource name."""

from __future__ import annotations

from hipaacheck.model import (
    CheckMeta,
    Family,
    Finding,
    Operation,
    Severity,
    Standard,
    Status,
    System,
    TargetKind,
    UnknownReason,
)
from hipaacheck.result import ScanResult, TargetSummary

MARKUP = '<script>alert("x")</script>|*bold*'

META = CheckMeta(
    id="aws.s3.default_encryption", title="S3 buckets encrypt by default",
    family=Family.ENCRYPTION, standard=Standard.ENCRYPTION, citations=("164.312(a)(2)(iv)",),
    severity=Severity.HIGH, target_kind=TargetKind.AWS, description="d", remediation="Enable it.",
    operations=(Operation(System.AWS, "s3:GetEncryptionConfiguration"),))


def finding(status: Status, resource: str, **kw) -> Finding:
    return Finding(check_id=META.id, target="aws:lab", resource=resource, status=status,
                   reason=kw.pop("reason", f"{status.value} reason."), severity=META.severity,
                   standard=META.standard, citations=META.citations,
                   remediation=META.remediation, **kw)


def sample_result() -> ScanResult:
    findings = (
        finding(Status.PASS, "phi-archive", evidence={"algorithm": "aws:kms", "bucket_key": True}),
        finding(Status.FAIL, MARKUP, evidence={"kinds": ("ssn", "mrn")}),
        finding(Status.WARN, "web-assets"),
        finding(Status.UNVERIFIED, "locked-bucket", needs="s3:GetEncryptionConfiguration",
                unknown_reason=UnknownReason.ACCESS_DENIED),
        finding(Status.ERROR, "broken"),
    )
    return ScanResult(
        tool_version="0.1.0", organization="Example <Health>", started="2026-12-03T10:00:00+00:00",
        finished="2026-12-03T10:00:05+00:00", config_fingerprint="ab" * 32,
        targets=(TargetSummary("aws:lab", TargetKind.AWS, "lab"),), checks=(META,),
        findings=findings, tasks=1)
