"""
Retention of audit records: where CloudTrail delivers, and how long CloudWatch log groups
that hold audit records keep them.

45 CFR 164.316(b)(2)(i) asks for six years (2,192 days, `policy.min_audit_retention_days`).
The trails are read through the audit family's `audit_trail.list_trails` (once per scan, shared
with the CloudTrail checks); `trail_stores` reduces them to the buckets and log groups they
deliver to. The S3 retention check uses it for the buckets, `AuditLogRetention` here for the
log groups.

A log group is an audit store when a trail delivers to it or its name matches the account's
`audit_log_groups` (names or glob patterns). When some region's trails cannot be read, a group
that no pattern names is judged only where it would matter: kept shorter than the minimum, it
is UNVERIFIED naming `cloudtrail:DescribeTrails`, since it may be a trail's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.aws.audit_trail import DESCRIBE_TRAILS, GET_TRAIL_STATUS, list_trails
from hipaacheck.checks.aws.collector import REGIONS_OPERATION, Scan, matches, scan_regions
from hipaacheck.checks.aws.rds import REGIONS_RESOURCE
from hipaacheck.checks.aws.stores import LOG_GROUPS, Store
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
)

TRAILS_OPERATIONS = (
    Operation(System.AWS, DESCRIBE_TRAILS, "find the buckets and log groups CloudTrail "
              "delivers to"),
    Operation(System.AWS, GET_TRAIL_STATUS, "read each trail's status (shared trail listing)"),
)
RETENTION_CITATIONS = ("164.316(b)(2)(i)", "164.312(b)")


@dataclass(frozen=True)
class AuditStores:
    """Where the account's CloudTrail trails deliver: bucket names and (region, log group)."""

    buckets: frozenset[str] = frozenset()
    log_groups: frozenset[tuple[str, str]] = frozenset()


def _log_group_of(arn: str | None) -> tuple[str, str] | None:
    """(region, name) from `arn:aws:logs:REGION:ACCOUNT:log-group:NAME:*`."""
    if not arn or ":log-group:" not in arn:
        return None
    return arn.split(":")[3], arn.split(":log-group:", 1)[1].removesuffix(":*")


def trail_stores(scan: Scan) -> Fact[AuditStores]:
    """
    Every bucket and log group a trail of the account delivers to.

    Unknown when any region's trails could not be read: a single-region trail there would go
    unseen.
    """
    trails = list_trails(scan)
    if trails.failures:
        return trails.failures[0][1]
    groups = {g for g in (_log_group_of(t.log_group_arn) for t in trails.trails) if g}
    return AuditStores(frozenset(t.bucket for t in trails.trails if t.bucket),
                       frozenset(groups))


@dataclass(frozen=True)
class RegionLogGroups:
    """One region's log groups, or why they could not be listed."""

    region: str
    groups: Fact[tuple[Store, ...]]


@dataclass(frozen=True)
class AuditLogObservation:
    """Every scanned region's log groups, CloudTrail's stores and the audit name patterns."""

    regions: Fact[tuple[RegionLogGroups, ...]]
    trails: Fact[AuditStores]
    patterns: tuple[str, ...] = ()


class AuditLogRetention(Check[AuditLogObservation]):
    """
    CloudWatch log groups that hold audit records keep them at least six years.
    """

    meta = CheckMeta(
        id="aws.logs.audit_retention",
        title="CloudWatch audit log groups keep records six years",
        family=Family.BACKUP,
        standard=Standard.AUDIT_CONTROLS,
        citations=RETENTION_CITATIONS,
        severity=Severity.HIGH,
        target_kind=TargetKind.AWS,
        description=(
            "Finds the log groups holding audit records (those CloudTrail delivers to, and "
            "those the account's audit_log_groups name) and reads their retention. Never "
            "expire passes; a retention below the policy minimum (2,192 days by default) "
            "fails."),
        remediation=(
            "Set the log group's retention to at least 2,192 days or to never expire "
            "(PutRetentionPolicy, DeleteRetentionPolicy), or export it to an S3 bucket whose "
            "lifecycle keeps objects six years."),
        operations=(*LOG_GROUPS.operations, *TRAILS_OPERATIONS, REGIONS_OPERATION),
    )

    def collect(self, ctx: CheckContext, target: Target) -> AuditLogObservation:
        """List each region's log groups and find CloudTrail's stores."""
        scan = Scan.of(ctx, target)
        regions = scan_regions(scan)
        listed: Fact[tuple[RegionLogGroups, ...]] = regions if isinstance(
            regions, Unknown) else tuple(RegionLogGroups(r, LOG_GROUPS.fetch(scan, r))
                                         for r in regions)
        return AuditLogObservation(listed, trail_stores(scan), scan.scope.audit_log_groups)

    def evaluate(self, obs: AuditLogObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per audit log group, and per region whose groups could not be listed."""
        make = self.findings(target)
        if isinstance(obs.regions, Unknown):
            return [make.unverified(REGIONS_RESOURCE, obs.regions, "the account's regions")]
        findings: list[Finding] = []
        for region in obs.regions:
            if isinstance(region.groups, Unknown):
                findings.append(make.unverified(LOG_GROUPS.listing_resource(region.region),
                                                region.groups,
                                                f"the log groups in {region.region}"))
                continue
            for group in region.groups:
                finding = _judge_group(make, group, obs, policy)
                if finding is not None:
                    findings.append(finding)
        if not findings:
            findings.append(make.passed(
                "logs:audit", "No CloudWatch log group holds audit records (none is "
                "CloudTrail's or named as an audit log).", evidence={"audit_log_group_count": 0}))
        return findings


def _judge_group(make: FindingBuilder[AuditLogObservation], group: Store,
                 obs: AuditLogObservation, policy: Policy) -> Finding | None:
    """The finding for one log group, or None when it holds no audit records."""
    retention = group.detail("retention_days")
    days = retention if isinstance(retention, int) else None
    minimum = policy.min_audit_retention_days
    evidence: dict[str, EvidenceValue] = {
        "region": group.region, "retention_days": -1 if days is None else days,
        "never_expires": days is None, "min_days": minimum}
    named = matches(obs.patterns, (group.name,))
    if isinstance(obs.trails, Unknown) and not named:
        if days is not None and days < minimum:
            return make.unverified(group.resource, obs.trails,
                                   "whether CloudTrail delivers to this log group")
        return None
    trail = isinstance(obs.trails, AuditStores) and (group.region,
                                                     group.name) in obs.trails.log_groups
    if not (trail or named):
        return None
    evidence["cloudtrail"] = trail
    if days is None:
        return make.passed(group.resource, "The audit log group never expires its events.",
                           evidence=evidence)
    if days < minimum:
        return make.failed(group.resource, f"The audit log group keeps events {days} days, "
                           f"less than the {minimum} days audit records must be kept.",
                           evidence=evidence)
    return make.passed(group.resource, f"The audit log group keeps events {days} days.",
                       evidence=evidence)
