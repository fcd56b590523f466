"""
The AWS audit trail: CloudTrail's trails, where they deliver, and whether their log files can
be trusted after an incident.

`list_trails` reads every trail visible in the scanned regions (organization and shadow trails
included) once per scan, with each trail's logging status read in its home region;
`audit_buckets` and `audit_log_groups` find the stores the audit checks judge: those the trails
deliver to, plus those matching the inventory's `audit_buckets` and `audit_log_groups` patterns
(read through the shared AWS collector's `scope_of`, with its defaults).

`CloudTrailIntegrity` judges each trail: log file validation on (digest files make tampering
detectable) and logging on are required; delivery encrypted with a KMS key is good practice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.aws.collector import (
    REGIONS_OPERATION,
    Scan,
    home_region,
    listing,
    matches,
    scan_regions,
    scope_of,
)
from hipaacheck.checks.aws.s3 import LISTING_RESOURCE, list_buckets
from hipaacheck.clients.aws import AwsSession, classify_error
from hipaacheck.model import (
    CheckMeta,
    EvidenceValue,
    Fact,
    Family,
    Finding,
    FindingBuilder,
    Operation,
    Severity,
    Standard,
    System,
    Target,
    TargetKind,
    Unknown,
    UnknownReason,
)

logger = logging.getLogger(__name__)

DESCRIBE_TRAILS = "cloudtrail:DescribeTrails"
GET_TRAIL_STATUS = "cloudtrail:GetTrailStatus"
DESCRIBE_LOG_GROUPS = "logs:DescribeLogGroups"
TRAILS_RESOURCE = "cloudtrail:trails"
GROUPS_RESOURCE = "logs:log-groups"
AUDIT_CITATIONS = ("164.312(b)", "164.312(c)(1)")


@dataclass(frozen=True)
class Trail:
    """One CloudTrail trail as `DescribeTrails` and `GetTrailStatus` describe it."""

    name: str
    arn: str
    home_region: str
    bucket: str | None
    log_group_arn: str | None
    log_file_validation: bool
    kms_key_id: str | None
    multi_region: bool
    organization: bool
    logging: Fact[bool]


@dataclass(frozen=True)
class TrailListing:
    """Every trail visible from the account's regions, and the regions that could not be read."""

    trails: tuple[Trail, ...]
    failures: tuple[tuple[str, Unknown], ...] = ()


def _status(session: AwsSession, region: str, arn: str) -> Fact[bool]:
    try:
        status = session.client("cloudtrail", region).get_trail_status(Name=arn)
    except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
        return classify_error(exc, GET_TRAIL_STATUS)
    return bool(status.get("IsLogging", False))


def _describe(session: AwsSession, region: str) -> Fact[list[dict[str, object]]]:
    try:
        client = session.client("cloudtrail", region)
        return list(client.describe_trails(includeShadowTrails=True).get("trailList", []))
    except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
        return classify_error(exc, DESCRIBE_TRAILS)


def _read_trails(session: AwsSession, regions: Fact[tuple[str, ...]],
                 fallback_region: str) -> TrailListing:
    if isinstance(regions, Unknown):
        return TrailListing((), (("all regions", regions),))
    seen: dict[str, dict[str, object]] = {}
    failures: list[tuple[str, Unknown]] = []
    for region in regions:
        described = _describe(session, region)
        if isinstance(described, Unknown):
            failures.append((region, described))
            continue
        for raw in described:
            seen.setdefault(str(raw.get("TrailARN")), raw)
    trails = []
    for arn, raw in sorted(seen.items()):
        home = str(raw.get("HomeRegion") or fallback_region)
        trails.append(Trail(
            name=str(raw.get("Name")), arn=arn, home_region=home,
            bucket=_optional(raw.get("S3BucketName")),
            log_group_arn=_optional(raw.get("CloudWatchLogsLogGroupArn")),
            log_file_validation=bool(raw.get("LogFileValidationEnabled", False)),
            kms_key_id=_optional(raw.get("KmsKeyId")),
            multi_region=bool(raw.get("IsMultiRegionTrail", False)),
            organization=bool(raw.get("IsOrganizationTrail", False)),
            logging=_status(session, home, arn)))
    return TrailListing(tuple(trails), tuple(failures))


def _optional(value: object) -> str | None:
    return str(value) if value else None


def list_trails(scan: Scan) -> TrailListing:
    """The account's trails in the scanned regions, read once per scan and shared."""
    return scan.once(("audit.cloudtrail.trails",), lambda: _read_trails(
        scan.session, scan_regions(scan), home_region(scan.account)))


@dataclass(frozen=True)
class AuditStore:
    """A bucket or log group that holds the audit trail, and why it counts as one."""

    name: str
    sources: tuple[str, ...]
    """`configured` (matched an `audit_buckets` / `audit_log_groups` pattern) and/or
    `cloudtrail:<trail name>`."""
    region: str | None = None
    details: Any = None
    """For log groups, the raw `DescribeLogGroups` item."""


@dataclass(frozen=True)
class Discovery:
    """The audit stores found, and every listing that could not be read (resource, why)."""

    stores: tuple[AuditStore, ...]
    gaps: tuple[tuple[str, Unknown], ...]


def _trail_gaps(listing: TrailListing) -> list[tuple[str, Unknown]]:
    return [(f"{TRAILS_RESOURCE}:{region}", unknown) for region, unknown in listing.failures]


def audit_buckets(scan: Scan) -> Discovery:
    """
    Every trail's delivery bucket, and every bucket of the account matching the inventory's
    `audit_buckets` patterns (the account's bucket listing is read only when there are some).
    """
    found: dict[str, list[str]] = {}
    listing = list_trails(scan)
    gaps = _trail_gaps(listing)
    for trail in listing.trails:
        if trail.bucket:
            found.setdefault(trail.bucket, []).append(f"cloudtrail:{trail.name}")
    patterns = scope_of(scan.account).audit_buckets
    if patterns:
        buckets = list_buckets(scan.ctx, scan.session, scan.account)
        if isinstance(buckets, Unknown):
            gaps.append((LISTING_RESOURCE, buckets))
        else:
            for bucket in buckets:
                if matches(patterns, [bucket.name]):
                    found.setdefault(bucket.name, []).insert(0, "configured")
    return Discovery(tuple(AuditStore(n, tuple(dict.fromkeys(s)))
                           for n, s in sorted(found.items())), tuple(gaps))


def _log_group_listing(scan: Scan, region: str) -> Fact[tuple[Any, ...]]:
    return listing(scan, "logs", region, "describe_log_groups", "logGroups",
                   DESCRIBE_LOG_GROUPS)


def _trail_log_groups(trails: TrailListing) -> dict[tuple[str, str], list[str]]:
    """(region, group name) to the trails that deliver to it."""
    wanted: dict[tuple[str, str], list[str]] = {}
    for trail in trails.trails:
        if trail.log_group_arn and ":log-group:" in trail.log_group_arn:
            region = trail.log_group_arn.split(":")[3]
            name = trail.log_group_arn.split(":log-group:", 1)[1].removesuffix(":*")
            wanted.setdefault((region, name), []).append(f"cloudtrail:{trail.name}")
    return wanted


def audit_log_groups(scan: Scan) -> Discovery:
    """
    Every trail's CloudWatch Logs group, and every group of the scanned regions matching the
    inventory's `audit_log_groups` patterns (by default `*audit*` and `*cloudtrail*`).
    """
    trails = list_trails(scan)
    gaps = _trail_gaps(trails)
    wanted = _trail_log_groups(trails)
    regions = scan_regions(scan)
    if isinstance(regions, Unknown):
        return Discovery((), (*gaps, (GROUPS_RESOURCE, regions)))
    patterns = scope_of(scan.account).audit_log_groups
    stores: list[AuditStore] = []
    unread: set[str] = set()
    for region in sorted(set(regions) | {r for r, _ in wanted}):
        groups = _log_group_listing(scan, region)
        if isinstance(groups, Unknown):
            gaps.append((f"{GROUPS_RESOURCE}:{region}", groups))
            unread.add(region)
            continue
        for group in groups:
            name = str(group.get("logGroupName"))
            sources = wanted.pop((region, name), [])
            if region in regions and matches(patterns, [name]):
                sources.insert(0, "configured")
            if sources:
                stores.append(AuditStore(name, tuple(sources), region, group))
    for (region, name), sources in sorted(wanted.items()):
        if region not in unread:
            gaps.append((f"logs:{name}", Unknown(
                UnknownReason.NOT_VISIBLE, f"the log group {sources[0]} delivers to was not "
                f"found in {region}", "the trail's log group in the scanned account")))
    return Discovery(tuple(stores), tuple(gaps))


def discovery_gaps(f: FindingBuilder[Any], discovery: Discovery, what: str) -> list[Finding]:
    """One UNVERIFIED finding per listing that could not be read."""
    return [f.unverified(resource, unknown, what) for resource, unknown in discovery.gaps]


@dataclass(frozen=True)
class TrailsObservation:
    """The trail listing of the account."""

    listing: TrailListing


class CloudTrailIntegrity(Check[TrailsObservation]):
    """
    Every CloudTrail trail is logging, validates its log files, and encrypts them with KMS.
    """

    meta = CheckMeta(
        id="aws.cloudtrail.log_integrity",
        title="CloudTrail trails log, validate their log files and use KMS",
        family=Family.AUDIT,
        standard=Standard.INTEGRITY,
        citations=("164.312(b)", "164.312(c)(1)", "164.312(c)(2)"),
        severity=Severity.HIGH,
        target_kind=TargetKind.AWS,
        description=(
            "Reads every trail visible from the inventory's regions (organization and "
            "multi-region trails included) and its status in its home region. A trail that is "
            "not logging, or whose log file validation is off (no signed digest files, so a "
            "deleted or edited log file goes unnoticed), fails; delivery encrypted with SSE-S3 "
            "rather than a KMS key is a warning. An account with no trail at all fails."),
        remediation=(
            "Create a multi-region (or organization) trail, turn on log file validation "
            "(UpdateTrail --enable-log-file-validation), set a customer-managed KMS key for "
            "delivery, and deliver to a bucket with Object Lock in compliance mode."),
        operations=(
            REGIONS_OPERATION,
            Operation(System.AWS, DESCRIBE_TRAILS, "list the trails of each region"),
            Operation(System.AWS, GET_TRAIL_STATUS, "whether each trail is logging"),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> TrailsObservation:
        """Read the account's trails (shared with the other audit checks)."""
        return TrailsObservation(list_trails(Scan.of(ctx, target)))

    def evaluate(self, obs: TrailsObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per trail; a fully read account without trails fails."""
        f = self.findings(target)
        gaps = [f.unverified(resource, unknown, "the account's CloudTrail trails")
                for resource, unknown in _trail_gaps(obs.listing)]
        if not obs.listing.trails:
            if gaps:
                return gaps
            return [f.failed(TRAILS_RESOURCE, "No CloudTrail trail records the account's API "
                             "activity.", evidence={"trail_count": 0})]
        return [*gaps, *(_judge_trail(f, trail) for trail in obs.listing.trails)]


def _judge_trail(f: FindingBuilder[Any], trail: Trail) -> Finding:
    evidence: dict[str, EvidenceValue] = {
        "trail": trail.arn, "trail_kind": "cloudtrail", "home_region": trail.home_region,
        "bucket": trail.bucket, "log_group": trail.log_group_arn,
        "log_file_validation": trail.log_file_validation, "kms_encrypted": bool(trail.kms_key_id),
        "multi_region": trail.multi_region, "organization_trail": trail.organization,
        "logging": trail.logging if isinstance(trail.logging, bool) else "unknown"}
    problems = []
    if trail.logging is False:
        problems.append("it is not logging")
    if not trail.log_file_validation:
        problems.append("log file validation is off, so edited or deleted log files go "
                        "undetected")
    if problems:
        return f.failed(trail.arn, f"CloudTrail trail {trail.name}: {'; '.join(problems)}.",
                        evidence=evidence)
    if isinstance(trail.logging, Unknown):
        return f.unverified(trail.arn, trail.logging, f"whether trail {trail.name} is logging")
    if not trail.kms_key_id:
        return f.warned(trail.arn, f"CloudTrail trail {trail.name} logs with validated log "
                        "files, but delivers them with SSE-S3 rather than a KMS key.",
                        evidence=evidence)
    return f.passed(trail.arn, f"CloudTrail trail {trail.name} is logging, validates its log "
                    "files and encrypts them with KMS.", evidence=evidence)
