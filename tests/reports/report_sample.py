"""
Fixed scan results for report tests: every status, markup in a resource name, a group of
repeated findings, a waived finding, waivers in every state, audit store evidence (a
target-wide finding, a target with no named store, an audit finding that names no store),
retention evidence in the shapes the checks emit, and endpoints found in control planes (probed
and passing, probed and failing, probed through connect_to, probing off, plaintext by
configuration, and one that is a configured endpoint, found by two resources).
"""

from __future__ import annotations

from hipaacheck.model import (
    CheckMeta,
    Endpoint,
    EndpointRecord,
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


def _audit_meta(check_id: str, standard: Standard, kind: TargetKind,
                family: Family = Family.AUDIT) -> CheckMeta:
    return CheckMeta(
        id=check_id, title=f"Sample control {check_id.rsplit('.', 1)[-1]}", family=family,
        standard=standard, citations=(standard.value,), severity=Severity.HIGH,
        target_kind=kind, description="An audit store control.", remediation="Isolate it.",
        operations=(Operation(System.POSTGRES if kind is TargetKind.POSTGRES else System.AWS,
                              f"read {check_id}", "Reads the audit store's settings."),))


APPEND_ONLY = _audit_meta("postgres.audit.append_only", Standard.INTEGRITY, TargetKind.POSTGRES)
SHARED = _audit_meta("postgres.audit.shared_credentials", Standard.AUDIT_CONTROLS,
                     TargetKind.POSTGRES)
BREACH = _audit_meta("postgres.audit.breach_queryable", Standard.AUDIT_CONTROLS,
                     TargetKind.POSTGRES)
LOCATION = _audit_meta("postgres.audit.store_location", Standard.AUDIT_CONTROLS,
                       TargetKind.POSTGRES)
BUCKET = _audit_meta("aws.s3.audit_bucket_immutable", Standard.INTEGRITY, TargetKind.AWS)
COVERAGE = _audit_meta("aws.backup.phi_coverage", Standard.CONTINGENCY, TargetKind.AWS,
                       Family.BACKUP)
AUDIT_METAS = (APPEND_ONLY, SHARED, BREACH, LOCATION, BUCKET, COVERAGE)

AUDIT_TABLE = "audit.events"
MARKUP_TABLE = "audit." + MARKUP
RETAINED_DB = "rds:clinic-db"
RETAINED_BUCKET = "s3:phi-archive"


def audit_finding(meta: CheckMeta, target: str, resource: str, status: Status,
                  **kw) -> Finding:
    """A finding of one of the audit or retention checks."""
    return Finding(check_id=meta.id, target=target, resource=resource, status=status,
                   reason=kw.pop("reason", f"{meta.id} {status.value} on {resource}."),
                   severity=meta.severity, standard=meta.standard, citations=meta.citations,
                   remediation=meta.remediation, **kw)


def _audit_findings() -> tuple[Finding, ...]:
    table = {"trail": AUDIT_TABLE, "trail_kind": "postgres_table"}
    return (
        audit_finding(APPEND_ONLY, "postgres:clinic", AUDIT_TABLE, Status.FAIL, evidence={
            **table, "trail_writers": ("clinic_app", "audit_writer"),
            "trail_modifiers": ("clinic_app",), "trail_retention": "not enforced"}),
        audit_finding(BREACH, "postgres:clinic", AUDIT_TABLE, Status.PASS, evidence={
            **table, "trail_breach_query": "answerable: indexed by user and by patient"}),
        audit_finding(APPEND_ONLY, "postgres:clinic", MARKUP_TABLE, Status.PASS, evidence={
            "trail": MARKUP_TABLE, "trail_kind": "postgres_table",
            "trail_writers": (MARKUP,), "trail_modifiers": ()}),
        audit_finding(SHARED, "postgres:clinic", "audit-connection", Status.FAIL, evidence={
            "trail_kind": "postgres_table", "trail_shares_app_credentials": True}),
        audit_finding(LOCATION, "postgres:clinic", AUDIT_TABLE, Status.UNVERIFIED,
                      reason="Could not observe where audit.events lives: permission denied.",
                      needs="CONNECT on the audit database",
                      unknown_reason=UnknownReason.ACCESS_DENIED),
        audit_finding(SHARED, "postgres:billing", "audit-connection", Status.UNVERIFIED,
                      evidence={"trail_kind": "postgres_table",
                                "trail_shares_app_credentials": "unknown"},
                      needs="the audit connection's password",
                      unknown_reason=UnknownReason.ACCESS_DENIED),
        audit_finding(BUCKET, "aws:lab", "audit-trail-bucket", Status.WARN, evidence={
            "trail": "s3://audit-trail-bucket", "trail_kind": "s3_bucket",
            "trail_location": "S3 bucket in us-east-1, scanned account",
            "trail_retention": "Object Lock COMPLIANCE, 365 days", "retention_days": 365,
            "trail_app_can_modify": "unknown"}),
        audit_finding(COVERAGE, "aws:lab", RETAINED_DB, Status.PASS, evidence={
            "copies": ("snapshot:35d", "backup-vault:2192d"), "store": "rds_instance"}),
        audit_finding(COVERAGE, "aws:lab", RETAINED_BUCKET, Status.FAIL, evidence={
            "copies": ("primary", "versions"), "copy_locations": ("us-east-1", "us-east-1"),
            "retention_days": (-1, 30), "copies_incomplete": True, "store": "s3_bucket"}),
    )


def _waivers() -> tuple[WaiverUse, ...]:
    def use(wid: str, state: WaiverState, matched: int) -> WaiverUse:
        return WaiverUse(id=wid, check_id=TLS_META.id, target_pattern="tls:ep-1*",
                         resource_pattern="*", justification="Vendor appliance.",
                         approver="CISO", expires="2027-01-31", state=state, matched=matched)
    return (use("W-7", WaiverState.ACTIVE, 1), use("W-3", WaiverState.EXPIRED, 0),
            use("W-9", WaiverState.UNMATCHED, 0))


def _endpoint(host: str, port: int, source: str, via: str, origin: str, **kw) -> Endpoint:
    return Endpoint(host=host, port=port, source=source, origin=origin, via=via, **kw)


def endpoint_records() -> tuple[EndpointRecord, ...]:
    """
    The endpoints of the sample, as `plan_probes` records them: their TLS targets are the
    sample's configured endpoints, so each probed one has findings.
    """
    portal = _endpoint("portal.example.org", 443, "aws:lab", "ELBv2 listener", "app/portal/0f1e")
    legacy = _endpoint("legacy.example.org", 443, "aws:lab", "CloudFront distribution",
                       "E2LEGACY")
    api = _endpoint("api.internal.example", 8443, "aws:lab", "ELBv2 listener", "app/api/77aa",
                    zone="internal")
    web = _endpoint("web.clinic.example", 443, "k8s:lab", "Ingress host", "clinic/web")
    status = _endpoint("status.example.org", 80, "aws:lab", "ELBv2 listener", "app/portal/0f1e",
                       tls=False)
    ep01 = _endpoint("ep-01", 443, "aws:lab", "API Gateway domain", "ep-01")
    return (
        EndpointRecord(portal, True, "probed", "tls:ep-00",
                       ("aws:lab ELBv2 listener app/portal/0f1e",), "direct"),
        EndpointRecord(legacy, True, "probed", "tls:ep-08",
                       ("aws:lab CloudFront distribution E2LEGACY",
                        "aws:lab ELBv2 listener app/legacy/19cd"), "direct"),
        EndpointRecord(api, True, "probed through 127.0.0.1:8443 (probe_endpoints.connect_to)",
                       "tls:ep-11", ("aws:lab ELBv2 listener app/api/77aa",), "connect_to"),
        EndpointRecord(web, False, "not probed: probing is off for k8s:lab (set probe_endpoints)",
                       None, ("k8s:lab Ingress host clinic/web",), "off"),
        EndpointRecord(status, False, "not probed: plaintext by configuration (judged by the "
                       "configuration checks)", None, ("aws:lab ELBv2 listener app/portal/0f1e",),
                       "plaintext"),
        EndpointRecord(ep01, True, "probed as the configured endpoint tls:ep-01", "tls:ep-01",
                       ("aws:lab API Gateway domain ep-01", "k8s:lab Ingress host clinic/ep-01"),
                       "configured"),
    )


def sample_result() -> ScanResult:
    """
    Five S3 findings (one per status, one named with markup), a dozen TLS findings, the
    audit and retention findings of two PostgreSQL databases and the AWS account, and six
    endpoints found in control planes.
    """
    findings = (
        finding(Status.PASS, "phi-archive", evidence={"algorithm": "aws:kms", "bucket_key": True}),
        finding(Status.FAIL, MARKUP, evidence={"kinds": ("ssn", "mrn")}),
        finding(Status.WARN, FORMULA),
        finding(Status.UNVERIFIED, "locked-bucket", needs="s3:GetEncryptionConfiguration",
                unknown_reason=UnknownReason.ACCESS_DENIED),
        finding(Status.ERROR, "broken"),
    ) + _tls_findings() + _audit_findings()
    targets = (TargetSummary("aws:lab", TargetKind.AWS, "lab"),) + tuple(
        TargetSummary(f"tls:ep-{n:02d}", TargetKind.TLS_ENDPOINT, f"ep-{n:02d}") for n in range(12)
    ) + (TargetSummary("postgres:clinic", TargetKind.POSTGRES, "clinic"),
         TargetSummary("postgres:billing", TargetKind.POSTGRES, "billing"))
    return ScanResult(
        tool_version="0.1.0", organization="Example <Health>", started="2026-12-03T10:00:00+00:00",
        finished="2026-12-03T10:00:05+00:00", config_fingerprint="ab" * 32,
        targets=targets, checks=(META, TLS_META, *AUDIT_METAS), findings=findings, tasks=15,
        waivers=_waivers(), endpoints=endpoint_records())


def without_audit_evidence(result: ScanResult) -> ScanResult:
    """`result` without the findings of the audit and retention checks."""
    ids = {m.id for m in AUDIT_METAS}
    return ScanResult(**{**result.__dict__, "findings": tuple(
        f for f in result.findings if f.check_id not in ids)})
