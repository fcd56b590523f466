"""
Fixed scan results for report tests: every status, markup in a resource name, a group of
repeated findings, a waived finding and waivers in every state.
"""

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
    Waived,
)
from hipaacheck.result import ScanResult, TargetSummary, WaiverState, WaiverUse

MARKUP = '<script>alert("x")</script>|*bold*'
FORMULA = "=HYPERLINK(\"http://example.invalid\")"

META = CheckMeta(
    id="aws.s3.default_encryption", title="S3 buckets encrypt by default",
    family=Family.ENCRYPTION, standard=Standard.ENCRYPTION, citations=("164.312(a)(2)(iv)",),
    severity=Severity.HIGH, target_kind=TargetKind.AWS, description="d", remediation="Enable it.",
    operations=(Operation(System.AWS, "s3:GetEncryptionConfiguration"),))

TLS_META = CheckMeta(
    id="tls.endpoint.protocols", title="Endpoints accept only TLS 1.2 or later",
    family=Family.TRANSMISSION, standard=Standard.TRANSMISSION, citations=("164.312(e)(1)",
                                                                            "164.312(e)(2)(ii)"),
    severity=Severity.MEDIUM, target_kind=TargetKind.TLS_ENDPOINT,
    description="Offered protocol versions.", remediation="Disable TLS 1.0 and 1.1.",
    operations=(Operation(System.TLS, "TLS handshake (protocol version probes)",
                          "Which versions the endpoint accepts."),))

WAIVER = Waived(id="W-7", justification="Vendor appliance; replacement ordered.",
                approver="CISO", expires="2027-01-31")


def finding(status: Status, resource: str, **kw) -> Finding:
    """A finding of the S3 check on the lab account."""
    return Finding(check_id=META.id, target="aws:lab", resource=resource, status=status,
                   reason=kw.pop("reason", f"{status.value} reason."), severity=META.severity,
                   standard=META.standard, citations=META.citations,
                   remediation=META.remediation, **kw)


def tls_finding(status: Status, n: int, **kw) -> Finding:
    """A finding of the TLS check on endpoint number `n`."""
    return Finding(check_id=TLS_META.id, target=f"tls:ep-{n:02d}", resource=f"ep-{n:02d}:443",
                   status=status, reason=kw.pop("reason", "Only TLS 1.2 and 1.3 accepted."),
                   severity=TLS_META.severity, standard=TLS_META.standard,
                   citations=TLS_META.citations, remediation=TLS_META.remediation, **kw)


def _tls_findings() -> tuple[Finding, ...]:
    passed = tuple(tls_finding(Status.PASS, n, evidence={"lowest": "TLSv1.2"}) for n in range(8))
    failed = (
        tls_finding(Status.FAIL, 8, reason="Accepts TLS 1.0.", evidence={"lowest": "TLSv1.0"}),
        tls_finding(Status.FAIL, 9, reason="Accepts TLS 1.0.", evidence={"lowest": "TLSv1.0"}),
        tls_finding(Status.FAIL, 10, reason="Accepts TLS 1.1.", evidence={"lowest": "TLSv1.1"},
                    waiver=WAIVER),
    )
    timeout = tls_finding(Status.UNVERIFIED, 11, reason="Could not observe: timed out.",
                          needs="network reachability", unknown_reason=UnknownReason.TIMEOUT)
    return passed + failed + (timeout,)


def _waivers() -> tuple[WaiverUse, ...]:
    def use(wid: str, state: WaiverState, matched: int) -> WaiverUse:
        return WaiverUse(id=wid, check_id=TLS_META.id, target_pattern="tls:ep-1*",
                         resource_pattern="*", justification="Vendor appliance.",
                         approver="CISO", expires="2027-01-31", state=state, matched=matched)
    return (use("W-7", WaiverState.ACTIVE, 1), use("W-3", WaiverState.EXPIRED, 0),
            use("W-9", WaiverState.UNMATCHED, 0))


def sample_result() -> ScanResult:
    """Five S3 findings (one per status, one named with markup) and a dozen TLS findings."""
    findings = (
        finding(Status.PASS, "phi-archive", evidence={"algorithm": "aws:kms", "bucket_key": True}),
        finding(Status.FAIL, MARKUP, evidence={"kinds": ("ssn", "mrn")}),
        finding(Status.WARN, FORMULA),
        finding(Status.UNVERIFIED, "locked-bucket", needs="s3:GetEncryptionConfiguration",
                unknown_reason=UnknownReason.ACCESS_DENIED),
        finding(Status.ERROR, "broken"),
    ) + _tls_findings()
    targets = (TargetSummary("aws:lab", TargetKind.AWS, "lab"),) + tuple(
        TargetSummary(f"tls:ep-{n:02d}", TargetKind.TLS_ENDPOINT, f"ep-{n:02d}") for n in range(12))
    return ScanResult(
        tool_version="0.1.0", organization="Example <Health>", started="2026-12-03T10:00:00+00:00",
        finished="2026-12-03T10:00:05+00:00", config_fingerprint="ab" * 32,
        targets=targets, checks=(META, TLS_META), findings=findings, tasks=13,
        waivers=_waivers())
