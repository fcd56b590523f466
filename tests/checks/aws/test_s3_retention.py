"""
S3 versioning and lifecycle retention for PHI and audit buckets: the pure judgement on
hand-built observations, then collect against moto with CloudTrail's bucket and configured
scopes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from pydantic import Field

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.aws.s3_retention import (
    BucketRetention,
    ExpiryRule,
    RetentionObservation,
    S3LifecycleRetention,
    S3Versioning,
    Versioning,
)
from hipaacheck.config import AwsAccountConfig
from hipaacheck.lab.aws import LAB_REGIONS, LabCredentials, seed_audit_trail
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason

VERSIONING = S3Versioning()
LIFECYCLE = S3LifecycleRetention()
TARGET = Target(TargetKind.AWS, "aws:test", "test")
TRAILS_DENIED = Unknown(UnknownReason.ACCESS_DENIED, "d", needs="cloudtrail:DescribeTrails")


@dataclass(frozen=True)
class PhiPolicy(Policy):
    """The policy with the PHI retention knob that config.py does not have yet."""

    min_phi_retention_days: int | None = 365


class ScopedAccount(AwsAccountConfig):
    """An account config with the scope knobs config.py does not have yet."""

    phi_resources: list[str] = Field(default_factory=lambda: ["*"])
    audit_buckets: list[str] = Field(default_factory=list)


def bucket(phi: bool = True, audit: object = False, versioning: object = None,
           lifecycle: object = None) -> BucketRetention:
    return BucketRetention("b", "us-east-1", phi, audit, versioning, lifecycle)  # type: ignore


def judge(check: S3Versioning | S3LifecycleRetention, *buckets: BucketRetention,
          policy: Policy | None = None) -> list[Finding]:
    return list(check.evaluate(RetentionObservation(buckets), TARGET, policy or Policy()))


# evaluate(): versioning

@pytest.mark.parametrize(("status", "expected"), [
    ("Enabled", Status.PASS), ("Suspended", Status.FAIL), ("Disabled", Status.FAIL)])
def test_versioning(status: str, expected: Status) -> None:
    [finding] = judge(VERSIONING, bucket(versioning=Versioning(status)))
    assert (finding.check_id, finding.resource, finding.status) == (
        "aws.s3.versioning", "b", expected)
    assert finding.evidence["versioning"] == status


def test_unknown_versioning_region_or_listing_is_unverified() -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "d", needs="s3:GetBucketVersioning")
    [finding] = judge(VERSIONING, bucket(versioning=denied))
    assert (finding.status, finding.needs) == (Status.UNVERIFIED, "s3:GetBucketVersioning")
    region = BucketRetention("b", denied, True, False)
    assert judge(VERSIONING, region)[0].status == Status.UNVERIFIED
    [listing] = VERSIONING.evaluate(RetentionObservation(denied), TARGET, Policy())
    assert (listing.resource, listing.status) == ("s3:buckets", Status.UNVERIFIED)


def test_unversioned_bucket_outside_phi_scope_with_unknown_audit_role_is_unverified() -> None:
    [finding] = judge(VERSIONING, bucket(False, TRAILS_DENIED, Versioning("Disabled")))
    assert (finding.status, finding.needs) == (Status.UNVERIFIED, "cloudtrail:DescribeTrails")


# evaluate(): lifecycle

def rule(current: int | None = None, noncurrent: int | None = None, date: str | None = None,
         scoped: bool = False) -> ExpiryRule:
    return ExpiryRule("r1", scoped, current, noncurrent, date)


@pytest.mark.parametrize(("phi", "audit", "rules", "policy", "expected"), [
    (False, True, (rule(365),), Policy(), Status.FAIL),
    (False, True, (rule(2192),), Policy(), Status.PASS),
    (False, True, (rule(noncurrent=90),), Policy(), Status.FAIL),
    (False, True, (rule(date="2027-01-01"),), Policy(), Status.FAIL),
    (False, True, (), Policy(), Status.PASS),
    (True, False, (rule(noncurrent=3),), Policy(), Status.FAIL),
    (True, False, (rule(noncurrent=30),), Policy(), Status.PASS),
    (True, False, (rule(30),), Policy(), Status.PASS),
    (True, False, (rule(30),), PhiPolicy(), Status.FAIL),
    (True, False, (rule(400, scoped=True),), PhiPolicy(), Status.PASS),
    (True, False, (rule(300, scoped=True),), PhiPolicy(), Status.FAIL),
])
def test_lifecycle(phi: bool, audit: bool, rules: tuple[ExpiryRule, ...], policy: Policy,
                   expected: Status) -> None:
    [finding] = judge(LIFECYCLE, bucket(phi, audit, lifecycle=rules), policy=policy)
    assert (finding.check_id, finding.status) == ("aws.s3.lifecycle_retention", expected)


def test_lifecycle_evidence_shows_shortest_expiry_and_thresholds() -> None:
    [finding] = judge(LIFECYCLE, bucket(False, True, lifecycle=(rule(365, 30), rule(900))))
    assert finding.evidence["current_expiry_days"] == 365
    assert finding.evidence["noncurrent_expiry_days"] == 30
    assert finding.evidence["min_current_days"] == 2192
    assert finding.evidence["audit"] is True


def test_unknown_audit_role_is_unverified_only_where_it_changes_the_verdict() -> None:
    [changes] = judge(LIFECYCLE, bucket(True, TRAILS_DENIED, lifecycle=(rule(noncurrent=100),)))
    assert (changes.status, changes.needs) == (Status.UNVERIFIED, "cloudtrail:DescribeTrails")
    [same] = judge(LIFECYCLE, bucket(True, TRAILS_DENIED, lifecycle=()))
    assert same.status == Status.PASS


def test_unknown_lifecycle_is_unverified() -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "d", needs="s3:GetLifecycleConfiguration")
    [finding] = judge(LIFECYCLE, bucket(lifecycle=denied))
    assert (finding.status, finding.needs) == (Status.UNVERIFIED,
                                               "s3:GetLifecycleConfiguration")


# collect(): moto

def test_collect_judges_phi_trail_and_configured_audit_buckets(
        module_creds: LabCredentials, moto_url: str,
        make_ctx: Callable[..., CheckContext]) -> None:
    # Given CloudTrail's bucket (a year), a configured audit bucket, a PHI bucket whose old
    # versions go after 3 days, and a bucket outside the PHI scope
    creds, us = module_creds, "us-east-1"
    prefix = f"r{creds.account_id}"
    trail = seed_audit_trail(creds, moto_url, us, "alias/aws/s3", prefix)
    s3 = creds.client("s3", us, moto_url)
    for name in (f"{prefix}-phi-scans", f"{prefix}-audit-export", f"{prefix}-public-site"):
        s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=f"{prefix}-phi-scans",
                             VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket=f"{prefix}-phi-scans", LifecycleConfiguration={
        "Rules": [{"ID": "old", "Status": "Enabled", "Filter": {"Prefix": ""},
                   "NoncurrentVersionExpiration": {"NoncurrentDays": 3}}]})
    account = ScopedAccount(name="test", regions=list(LAB_REGIONS), endpoint_url=moto_url,
                            phi_resources=["*-phi-*"], audit_buckets=["*-audit-export"])
    target = Target(TargetKind.AWS, "aws:test", "test", account)
    ctx = make_ctx()
    # When both retention checks run
    versioning = {f.resource: f for f in VERSIONING.evaluate(
        VERSIONING.collect(ctx, target), target, ctx.policy)}
    lifecycle = {f.resource: f for f in LIFECYCLE.evaluate(
        LIFECYCLE.collect(ctx, target), target, ctx.policy)}
    # Then the in-scope buckets are judged by their role, and the public site not at all
    assert set(versioning) == set(lifecycle) == {
        trail["bucket"], f"{prefix}-phi-scans", f"{prefix}-audit-export"}
    assert versioning[trail["bucket"]].status == Status.PASS
    assert versioning[f"{prefix}-audit-export"].status == Status.FAIL
    assert lifecycle[trail["bucket"]].status == Status.FAIL
    assert lifecycle[trail["bucket"]].evidence["audit"] is True
    assert lifecycle[f"{prefix}-phi-scans"].status == Status.FAIL
    assert lifecycle[f"{prefix}-audit-export"].status == Status.PASS
    # And each bucket's versioning and lifecycle were read once
    calls = ctx.clients.aws_calls()
    declared = {op.action for c in (VERSIONING, LIFECYCLE) for op in c.meta.operations}
    assert {c.iam_action for c in calls} <= declared
    reads = [c.identity for c in calls if not c.continued]
    assert len(reads) == len(set(reads))
