"""
S3 buckets that hold PHI or audit records: versioning, and lifecycle rules that delete data
earlier than its retention.

The buckets in scope are those of the account's PHI scope (every bucket by default) and the
audit record stores: CloudTrail's buckets (`audit_logs.trail_stores`) and the account's
`audit_buckets` patterns. Each in-scope bucket costs one `GetBucketVersioning`, and its
lifecycle rules one `GetBucketLifecycleConfiguration`, both memoised and shared with the backup
coverage check. Where the account opts in (`use_aws_config`) and AWS Config records S3
continuously in the bucket's region, the lifecycle rules come from Config's recorded item
instead, 100 buckets per call (`config_items`), and every lifecycle finding judged on them,
UNVERIFIED ones included, names the item's capture time (evidence `lifecycle_source`).
Versioning is always read from S3.

Retention thresholds: an audit bucket must keep current and noncurrent versions for
`policy.min_audit_retention_days` (2,192 by default); a PHI bucket must keep noncurrent
versions, its backup copies, for `min_backup_retention_days`, and current versions for
`min_phi_retention_days` where the policy sets one (otherwise their expiry is shown, not
judged). When CloudTrail's trails cannot be read, a bucket whose verdict would differ as an
audit store is UNVERIFIED naming `cloudtrail:DescribeTrails`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.aws.collector import REGIONS_OPERATION, Scan, matches, read
from hipaacheck.checks.aws.config_items import CONFIG_OPERATIONS
from hipaacheck.checks.aws.log_retention import (
    RETENTION_CITATIONS,
    TRAILS_OPERATIONS,
    AuditStores,
    trail_stores,
)
from hipaacheck.checks.aws.s3 import (
    GET_LOCATION,
    LIST_BUCKETS,
    LISTING_RESOURCE,
    BucketRef,
    bucket_listing,
    locate_bucket,
    recorded,
    vanished,
)
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

GET_VERSIONING = "s3:GetBucketVersioning"
GET_LIFECYCLE = "s3:GetLifecycleConfiguration"


@dataclass(frozen=True)
class Versioning:
    """A bucket's versioning: `Enabled`, `Suspended` or `Disabled` (never enabled)."""

    status: str
    mfa_delete: bool = False


@dataclass(frozen=True)
class ExpiryRule:
    """
    One enabled lifecycle rule that deletes data. Days are None when the rule does not expire
    that kind of version; `fixed_date` is set for rules expiring on a calendar date.
    """

    rule_id: str
    scoped: bool
    """The rule applies to a prefix, tag or size range only, not the whole bucket."""
    current_days: int | None = None
    noncurrent_days: int | None = None
    fixed_date: str | None = None


def bucket_versioning(scan: Scan, name: str, region: str) -> Fact[Versioning]:
    """A bucket's versioning, read once per scan."""
    def compute() -> Fact[Versioning]:
        response = read(scan, "s3", region, "get_bucket_versioning", GET_VERSIONING,
                        absent={"NoSuchBucket": None}, Bucket=name)
        if response is None:
            return vanished()
        if isinstance(response, Unknown):
            return response
        return Versioning(str(response.get("Status") or "Disabled"),
                          response.get("MFADelete") == "Enabled")

    return scan.once(("s3.versioning", name), compute)


def bucket_lifecycle(scan: Scan, name: str, region: str) -> Fact[tuple[ExpiryRule, ...]]:
    """
    A bucket's enabled lifecycle rules that expire data, read once per scan: from the bucket's
    AWS Config item where there is a usable one (see `lifecycle_source`), else from S3.
    """
    def compute() -> Fact[tuple[ExpiryRule, ...]]:
        item = recorded(scan, name, region)
        if item is not None and item.lifecycle is not None:
            return expiring(item.lifecycle.value)
        response = read(scan, "s3", region, "get_bucket_lifecycle_configuration",
                        GET_LIFECYCLE, absent={"NoSuchLifecycleConfiguration": {},
                                               "NoSuchBucket": None}, Bucket=name)
        if response is None:
            return vanished()
        if isinstance(response, Unknown):
            return response
        return expiring(response.get("Rules", []))

    return scan.once(("s3.lifecycle", name), compute)


def lifecycle_source(scan: Scan, name: str, region: str) -> str | None:
    """Where `bucket_lifecycle` took the rules from: the Config item, or None for S3."""
    item = recorded(scan, name, region)
    return item.lifecycle.source if item is not None and item.lifecycle is not None else None


def expiring(rules: Sequence[Mapping[str, Any]]) -> tuple[ExpiryRule, ...]:
    """The enabled rules among S3 API lifecycle rules that delete data."""
    found = [_expiry(r) for r in rules if r.get("Status") == "Enabled"]
    return tuple(r for r in found if r is not None)


def _expiry(rule: Mapping[str, Any]) -> ExpiryRule | None:
    expiration = rule.get("Expiration") or {}
    noncurrent = rule.get("NoncurrentVersionExpiration") or {}
    current_days = expiration.get("Days")
    date = expiration.get("Date")
    noncurrent_days = noncurrent.get("NoncurrentDays")
    if current_days is None and date is None and noncurrent_days is None:
        return None
    scope = rule.get("Filter") or {}
    scoped = bool(rule.get("Prefix") or scope.get("Prefix") or scope.get("Tag")
                  or scope.get("And") or scope.get("ObjectSizeGreaterThan")
                  or scope.get("ObjectSizeLessThan"))
    return ExpiryRule(
        str(rule.get("ID") or ""), scoped,
        current_days if isinstance(current_days, int) else None,
        noncurrent_days if isinstance(noncurrent_days, int) else None,
        date.date().isoformat() if isinstance(date, datetime) else (str(date) if date else None))


@dataclass(frozen=True)
class BucketRetention:
    """
    What was observed of one in-scope bucket. `audit` is whether it holds audit records
    (Unknown when CloudTrail's trails could not be read and no pattern decides it).
    """

    name: str
    region: Fact[str]
    phi: bool
    audit: Fact[bool]
    versioning: Fact[Versioning] | None = None
    lifecycle: Fact[tuple[ExpiryRule, ...]] | None = None
    lifecycle_source: str | None = None
    """The AWS Config item the lifecycle rules came from; None when read from S3."""


@dataclass(frozen=True)
class RetentionObservation:
    """Every in-scope bucket, or why the buckets could not be listed."""

    buckets: Fact[tuple[BucketRetention, ...]]


def in_scope_buckets(scan: Scan) -> Fact[tuple[BucketRetention, ...]]:
    """
    The buckets holding PHI or audit records, with their regions and audit role; versioning
    and lifecycle are left for the caller to read.
    """
    buckets = bucket_listing(scan)
    if isinstance(buckets, Unknown):
        return buckets
    scope = scan.scope
    trails = trail_stores(scan)
    chosen = []
    for bucket in buckets:
        phi = scope.holds_phi(bucket.name, f"arn:aws:s3:::{bucket.name}")
        audit = _audit_role(bucket, trails, scope.audit_buckets)
        if phi or audit is not False:
            chosen.append((bucket, phi, audit))
    return tuple(scan.map(lambda item: BucketRetention(
        item[0].name, locate_bucket(scan, item[0]), item[1], item[2]), chosen))


def _audit_role(bucket: BucketRef, trails: Fact[AuditStores],
                patterns: Sequence[str]) -> Fact[bool]:
    if matches(patterns, (bucket.name,)):
        return True
    if isinstance(trails, Unknown):
        return trails
    return bucket.name in trails.buckets


def _with_reads(scan: Scan, bucket: BucketRetention, versioning: bool,
                lifecycle: bool) -> BucketRetention:
    if isinstance(bucket.region, Unknown):
        return bucket
    return BucketRetention(
        bucket.name, bucket.region, bucket.phi, bucket.audit,
        bucket_versioning(scan, bucket.name, bucket.region) if versioning else None,
        bucket_lifecycle(scan, bucket.name, bucket.region) if lifecycle else None,
        lifecycle_source(scan, bucket.name, bucket.region) if lifecycle else None)


def observe_buckets(scan: Scan, *, versioning: bool, lifecycle: bool) -> RetentionObservation:
    """Every in-scope bucket with the reads asked for, on the session's pool."""
    buckets = in_scope_buckets(scan)
    if isinstance(buckets, Unknown):
        return RetentionObservation(buckets)
    return RetentionObservation(tuple(scan.map(
        lambda b: _with_reads(scan, b, versioning, lifecycle), buckets)))


_LISTING_OPERATIONS = (
    Operation(System.AWS, LIST_BUCKETS, "list the account's buckets"),
    Operation(System.AWS, GET_LOCATION, "find the region of a bucket the listings do not place"),
    *TRAILS_OPERATIONS,
    REGIONS_OPERATION,
)
# NOTE: the backup coverage check (backup.py) declares this tuple and reads lifecycle rules
# through `observe_buckets`, so it carries the AWS Config reads; versioning alone does not.
_BUCKET_OPERATIONS = (*_LISTING_OPERATIONS, *CONFIG_OPERATIONS)


def _role_evidence(bucket: BucketRetention, region: str) -> dict[str, EvidenceValue]:
    return {"region": region, "phi": bucket.phi,
            "audit": bucket.audit if isinstance(bucket.audit, bool) else None}


class S3Versioning(Check[RetentionObservation]):
    """
    Buckets holding PHI or audit records keep prior versions of overwritten or deleted objects.
    """

    meta = CheckMeta(
        id="aws.s3.versioning",
        title="S3 buckets with PHI or audit records have versioning on",
        family=Family.BACKUP,
        standard=Standard.CONTINGENCY,
        citations=("164.308(a)(7)(ii)(A)", "164.312(c)(1)"),
        severity=Severity.MEDIUM,
        target_kind=TargetKind.AWS,
        description=(
            "Reads the versioning status of every bucket in the PHI scope and every audit "
            "record bucket (CloudTrail's, and the configured audit buckets). Enabled passes; "
            "suspended or never enabled fails: an overwrite or delete destroys the only copy."),
        remediation=(
            "Enable versioning (PutBucketVersioning Status=Enabled), add a lifecycle rule that "
            "keeps noncurrent versions for the retention period, and consider MFA delete or "
            "Object Lock for audit buckets."),
        operations=(*_LISTING_OPERATIONS,
                    Operation(System.AWS, GET_VERSIONING, "read each bucket's versioning")),
    )

    def collect(self, ctx: CheckContext, target: Target) -> RetentionObservation:
        """Find the in-scope buckets and read their versioning."""
        return observe_buckets(Scan.of(ctx, target), versioning=True, lifecycle=False)

    def evaluate(self, obs: RetentionObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per in-scope bucket."""
        make = self.findings(target)
        return make.each(obs.buckets, LISTING_RESOURCE, "the account's S3 buckets",
                         "No bucket holds PHI or audit records.",
                         lambda b: _judge_versioning(make, b))


def _judge_versioning(make: FindingBuilder[RetentionObservation],
                      bucket: BucketRetention) -> Finding:
    if isinstance(bucket.region, Unknown):
        return make.unverified(bucket.name, bucket.region, "the bucket's region")
    versioning = Unknown(UnknownReason.NOT_VISIBLE, "the versioning was not read") \
        if bucket.versioning is None else bucket.versioning
    if isinstance(versioning, Unknown):
        return make.unverified(bucket.name, versioning, "the bucket's versioning")
    evidence = _role_evidence(bucket, bucket.region)
    evidence.update(versioning=versioning.status, mfa_delete=versioning.mfa_delete)
    if versioning.status == "Enabled":
        return make.passed(bucket.name, "Versioning is on: overwritten and deleted objects "
                           "keep their prior versions.", evidence=evidence)
    if isinstance(bucket.audit, Unknown) and not bucket.phi:
        return make.unverified(bucket.name, bucket.audit, "whether the bucket is CloudTrail's")
    return make.failed(bucket.name, f"Versioning is {versioning.status.lower()}: an overwrite "
                       "or delete destroys the only copy.", evidence=evidence)


@dataclass(frozen=True)
class Thresholds:
    """The shortest lifetimes the bucket's role allows; None where nothing is required."""

    current: int | None
    noncurrent: int | None


def thresholds(phi: bool, audit: bool, policy: Policy) -> Thresholds:
    """The retention a bucket's data needs, by what it holds."""
    if audit:
        return Thresholds(policy.min_audit_retention_days, policy.min_audit_retention_days)
    if not phi:
        return Thresholds(None, None)
    phi_days = getattr(policy, "min_phi_retention_days", None)
    return Thresholds(phi_days if isinstance(phi_days, int) else None,
                      policy.min_backup_retention_days)


def violations(rules: Sequence[ExpiryRule], limits: Thresholds) -> list[str]:
    """Sentences naming each rule that deletes data earlier than `limits` allow."""
    found = []
    for rule in rules:
        name = rule.rule_id or "(unnamed)"
        where = " for part of the bucket" if rule.scoped else ""
        if limits.current is not None and rule.fixed_date:
            found.append(f"rule {name} expires current objects on {rule.fixed_date}{where}")
        if limits.current is not None and rule.current_days is not None \
                and rule.current_days < limits.current:
            found.append(f"rule {name} expires current objects after {rule.current_days} "
                         f"days{where}")
        if limits.noncurrent is not None and rule.noncurrent_days is not None \
                and rule.noncurrent_days < limits.noncurrent:
            found.append(f"rule {name} expires noncurrent versions after "
                         f"{rule.noncurrent_days} days{where}")
    return found


def shortest(rules: Sequence[ExpiryRule], attribute: str) -> int:
    """The fewest days any rule keeps that kind of version; -1 when none expires it."""
    days = [getattr(r, attribute) for r in rules if getattr(r, attribute) is not None]
    return min(days) if days else -1


class S3LifecycleRetention(Check[RetentionObservation]):
    """
    Lifecycle rules never delete PHI or audit records earlier than their retention.
    """

    meta = CheckMeta(
        id="aws.s3.lifecycle_retention",
        title="S3 lifecycle rules keep PHI and audit records long enough",
        family=Family.BACKUP,
        standard=Standard.CONTINGENCY,
        citations=("164.308(a)(7)(ii)(A)", *RETENTION_CITATIONS),
        severity=Severity.HIGH,
        target_kind=TargetKind.AWS,
        description=(
            "Reads the lifecycle rules of every bucket in the PHI scope and every audit "
            "bucket. An enabled rule that expires audit records (current or noncurrent) before "
            "the audit minimum (2,192 days by default), PHI backups (noncurrent versions) "
            "before the backup minimum, or current PHI before min_phi_retention_days where "
            "set, fails. No lifecycle rule passes: nothing is deleted automatically. With "
            "use_aws_config, lifecycle rules come from AWS Config's recorded items where a "
            "continuous, succeeding recorder covers S3 in the bucket's region (the evidence's "
            "lifecycle_source names the capture time), else from S3."),
        remediation=(
            "Lengthen or remove the rule's Expiration and NoncurrentVersionExpiration so audit "
            "records are kept at least six years and backups the policy minimum; move old "
            "data to a colder storage class with a Transition instead of deleting it."),
        operations=(*_BUCKET_OPERATIONS,
                    Operation(System.AWS, GET_LIFECYCLE, "read each bucket's lifecycle rules")),
    )

    def collect(self, ctx: CheckContext, target: Target) -> RetentionObservation:
        """Find the in-scope buckets and read their lifecycle rules."""
        return observe_buckets(Scan.of(ctx, target), versioning=False, lifecycle=True)

    def evaluate(self, obs: RetentionObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per in-scope bucket."""
        make = self.findings(target)
        return make.each(obs.buckets, LISTING_RESOURCE, "the account's S3 buckets",
                         "No bucket holds PHI or audit records.",
                         lambda b: _judge_lifecycle(make, b, policy))


def _judge_lifecycle(make: FindingBuilder[RetentionObservation], bucket: BucketRetention,
                     policy: Policy) -> Finding:
    if isinstance(bucket.region, Unknown):
        return make.unverified(bucket.name, bucket.region, "the bucket's region")
    rules = Unknown(UnknownReason.NOT_VISIBLE, "the lifecycle rules were not read") \
        if bucket.lifecycle is None else bucket.lifecycle
    if isinstance(rules, Unknown):
        return make.unverified(bucket.name, rules, "the bucket's lifecycle rules")
    if isinstance(bucket.audit, Unknown):
        as_audit = violations(rules, thresholds(bucket.phi, True, policy))
        if bool(as_audit) != bool(violations(rules, thresholds(bucket.phi, False, policy))):
            return _with_lifecycle_source(make.unverified(
                bucket.name, bucket.audit, "whether the bucket holds CloudTrail's audit records"),
                bucket)
        audit = False
    else:
        audit = bucket.audit
    limits = thresholds(bucket.phi, audit, policy)
    found = violations(rules, limits)
    evidence = _role_evidence(bucket, bucket.region)
    evidence.update(expiring_rules=len(rules),
                    current_expiry_days=shortest(rules, "current_days"),
                    noncurrent_expiry_days=shortest(rules, "noncurrent_days"),
                    min_current_days=limits.current, min_noncurrent_days=limits.noncurrent)
    if bucket.lifecycle_source:
        evidence["lifecycle_source"] = bucket.lifecycle_source
    what = "audit records" if audit else ("PHI" if bucket.phi else "its records")
    if found:
        return make.failed(bucket.name, f"Lifecycle deletes {what} too early: "
                           + "; ".join(found) + ".", evidence=evidence)
    if not rules:
        return make.passed(bucket.name, "No lifecycle rule deletes objects.", evidence=evidence)
    return make.passed(bucket.name, f"Lifecycle rules keep {what} at least as long as the "
                       "policy requires.", evidence=evidence)


def _with_lifecycle_source(finding: Finding, bucket: BucketRetention) -> Finding:
    """The finding, its evidence naming the Config item when the rules judged came from one."""
    if not bucket.lifecycle_source:
        return finding
    return replace(finding, evidence={**finding.evidence,
                                      "lifecycle_source": bucket.lifecycle_source})
