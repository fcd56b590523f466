"""
The AWS audit-trail checks against moto: a sound audit store (object-locked bucket, validated
and encrypted trail, protected log group, an application role that cannot touch them) and a
broken one; the simulator's answer where it can be had (botocore's Stubber, since moto does not
implement SimulatePrincipalPolicy), policy analysis where it cannot; read-only, declared calls.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from pydantic import Field

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.aws.audit_bucket import AppRoleAuditBucketAccess, AuditBucketImmutable
from hipaacheck.checks.aws.audit_log_groups import AuditLogGroupProtection
from hipaacheck.checks.aws.audit_trail import CloudTrailIntegrity
from hipaacheck.clients import Clients
from hipaacheck.clients.aws import is_read_operation
from hipaacheck.config import AwsAccountConfig
from hipaacheck.lab.aws import LabCredentials, create_isolated_account, start_moto_server
from hipaacheck.model import Finding, Status, Target, TargetKind, UnknownReason

REGION = "us-east-1"
CHECKS: tuple[Check[Any], ...] = (CloudTrailIntegrity(), AuditBucketImmutable(),
                                  AppRoleAuditBucketAccess(), AuditLogGroupProtection())
_ASSUME = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})


class AuditAccount(AwsAccountConfig):
    """The account entry as it will look with the proposed audit knobs."""

    application_role_arn: str | None = None
    audit_buckets: list[str] = Field(default_factory=list)
    audit_log_groups: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Seeded:
    """What the seeding created: the role's ARN and the account's credentials."""

    creds: LabCredentials
    url: str
    role_arn: str

    @property
    def sound(self) -> str:
        """The sound audit bucket (bucket names are global, so each account has its own)."""
        return f"audit-sound-{self.creds.account_id}"

    @property
    def broken(self) -> str:
        """The broken audit bucket."""
        return f"audit-broken-{self.creds.account_id}"

    def client(self, service: str) -> Any:
        return self.creds.client(service, REGION, self.url)


@pytest.fixture(scope="module")
def audit_moto_url() -> Iterator[str]:
    """A moto server on 127.0.0.1 for this module (one per xdist worker)."""
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    server, url = start_moto_server()
    yield url
    server.stop()


@pytest.fixture
def seeded(audit_moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Seeded:
    """A fresh account holding the sound and the broken audit store, reached via the env."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    creds = create_isolated_account(audit_moto_url)
    for name, value in creds.env(REGION).items():
        monkeypatch.setenv(name, value)
    role = creds.client("iam", REGION, audit_moto_url).create_role(
        RoleName="clinic-app", AssumeRolePolicyDocument=_ASSUME)["Role"]["Arn"]
    seeded = Seeded(creds, audit_moto_url, role)
    seed_sound_store(seeded)
    seed_broken_store(seeded)
    return seeded


def seed_sound_store(seeded: Seeded) -> None:
    """An object-locked bucket behind a validated, KMS-encrypted trail; a guarded log group."""
    s3, trail, bucket = seeded.client("s3"), seeded.client("cloudtrail"), seeded.sound
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 2192}}})
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17",
                                                           "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject*",
        "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    key = seeded.client("kms").create_key(Description="audit trail")["KeyMetadata"]["Arn"]
    trail.create_trail(Name="sound-trail", S3BucketName=bucket,
                       EnableLogFileValidation=True, KmsKeyId=key, IsMultiRegionTrail=True)
    trail.start_logging(Name="sound-trail")
    logs = seeded.client("logs")
    logs.create_log_group(logGroupName="/clinic/audit-sound")
    logs.put_retention_policy(logGroupName="/clinic/audit-sound", retentionInDays=2192)
    seeded.client("iam").put_role_policy(
        RoleName="clinic-app", PolicyName="read-audit", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "logs:GetLogEvents"],
                           "Resource": "*"}]}))


def seed_broken_store(seeded: Seeded) -> None:
    """A plain bucket behind an unvalidated, stopped trail; a log group the app may delete."""
    seeded.client("s3").create_bucket(Bucket=seeded.broken)
    seeded.client("cloudtrail").create_trail(Name="broken-trail", S3BucketName=seeded.broken)
    logs = seeded.client("logs")
    logs.create_log_group(logGroupName="/clinic/audit-broken")
    logs.put_resource_policy(policyName="app-maintenance", policyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": seeded.role_arn},
            "Action": ["logs:DeleteLogGroup", "logs:PutRetentionPolicy"],
            "Resource": "arn:aws:logs:*:*:log-group:/clinic/audit-broken*"}]}))
    iam = seeded.client("iam")
    policy = iam.create_policy(PolicyName="app-writes-audit", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject",
                                                     "s3:PutLifecycleConfiguration"],
                       "Resource": [f"arn:aws:s3:::{seeded.broken}",
                                    f"arn:aws:s3:::{seeded.broken}/*"]}]
    }))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="clinic-app", PolicyArn=policy)


def account(seeded: Seeded, **changes: Any) -> AuditAccount:
    options: dict[str, Any] = {"application_role_arn": seeded.role_arn,
                               "audit_log_groups": ["/clinic/audit*"], **changes}
    return AuditAccount(name="audit", regions=[REGION], endpoint_url=seeded.url, **options)


def target_of(config: AwsAccountConfig) -> Target:
    return Target(TargetKind.AWS, f"aws:{config.name}", config.name, config)


def new_ctx() -> CheckContext:
    return CheckContext(clients=Clients(timeout=5), policy=Policy(),
                        logger=logging.getLogger("test.aws.audit"),
                        clock=lambda: datetime.now(UTC), timeout=5)


def run(check: Check[Any], ctx: CheckContext, target: Target) -> dict[str, Finding]:
    findings = list(check.evaluate(check.collect(ctx, target), target, ctx.policy))
    assert all(f.check_id == check.meta.id and f.target == target.id for f in findings)
    return {f.resource: f for f in findings}


def statuses(findings: dict[str, Finding]) -> dict[str, Status]:
    """Resource to status, trails by their name rather than their ARN."""
    return {resource.rsplit("/", 1)[-1] if resource.startswith("arn:") else resource: f.status
            for resource, f in findings.items()}


def test_sound_and_broken_audit_stores(seeded: Seeded) -> None:
    ctx, target = new_ctx(), target_of(account(seeded))
    assert statuses(run(CloudTrailIntegrity(), ctx, target)) == {
        "sound-trail": Status.PASS, "broken-trail": Status.FAIL}
    assert statuses(run(AuditBucketImmutable(), ctx, target)) == {
        seeded.sound: Status.PASS, seeded.broken: Status.FAIL}
    assert statuses(run(AppRoleAuditBucketAccess(), ctx, target)) == {
        seeded.sound: Status.PASS, seeded.broken: Status.FAIL}
    assert statuses(run(AuditLogGroupProtection(), ctx, target)) == {
        "/clinic/audit-sound": Status.PASS, "/clinic/audit-broken": Status.FAIL}


def test_evidence_for_the_audit_controls_table(seeded: Seeded) -> None:
    ctx, target = new_ctx(), target_of(account(seeded))
    immutable = run(AuditBucketImmutable(), ctx, target)
    sound = immutable[seeded.sound].evidence
    assert sound["trail_retention"] == "Object Lock COMPLIANCE, 2192 days"
    assert sound["policy_denies_delete"] == "everyone"
    assert sound["sources"] == ("cloudtrail:sound-trail",)
    role = run(AppRoleAuditBucketAccess(), ctx, target)
    broken = role[seeded.broken].evidence
    assert broken["method"] == "policy analysis"
    assert broken["simulation_unavailable"] == \
        "iam:SimulatePrincipalPolicy is not implemented by the endpoint"
    assert broken["allowed_actions"] == ("s3:PutLifecycleConfiguration", "s3:DeleteObject",
                                         "s3:PutObject")
    assert broken["trail_app_can_modify"] is True
    groups = run(AuditLogGroupProtection(), ctx, target)
    assert groups["/clinic/audit-broken"].evidence["resource_policies"] == ("app-maintenance",)
    assert groups["/clinic/audit-sound"].evidence["trail_retention"] == \
        "2192 days (log group retention)"


def test_simulator_answer_is_used_when_it_can_be_had(seeded: Seeded) -> None:
    ctx, config = new_ctx(), account(seeded)
    iam = ctx.clients.aws(config).client("iam", REGION)
    with Stubber(iam) as stub:
        # Buckets are judged in name order: the broken one, then the sound one.
        for bucket, decision in ((seeded.broken, "allowed"), (seeded.sound, "implicitDeny")):
            stub.add_response("simulate_principal_policy", {"IsTruncated": False,
                              "EvaluationResults": [
                                  {"EvalActionName": action, "EvalResourceName": resource,
                                   "EvalDecision": decision if action == "s3:DeleteObject"
                                   else "implicitDeny"}
                                  for action in ("s3:DeleteObject", "s3:DeleteObjectVersion",
                                                 "s3:PutObject", "s3:PutLifecycleConfiguration",
                                                 "s3:PutBucketPolicy")
                                  for resource in (f"arn:aws:s3:::{bucket}",
                                                   f"arn:aws:s3:::{bucket}/*")]})
        findings = run(AppRoleAuditBucketAccess(), ctx, target_of(config))
    assert statuses(findings) == {seeded.broken: Status.FAIL, seeded.sound: Status.PASS}
    assert {f.evidence["method"] for f in findings.values()} == {"iam:SimulatePrincipalPolicy"}
    assert findings[seeded.broken].evidence["allowed_actions"] == ("s3:DeleteObject",)


def test_denied_trail_listing_is_unverified_and_configured_buckets_still_judged(
        seeded: Seeded) -> None:
    ctx, config = new_ctx(), account(seeded, audit_buckets=["audit-s*"])
    sound = seeded.sound
    cloudtrail = ctx.clients.aws(config).client("cloudtrail", REGION)
    with Stubber(cloudtrail) as stub:
        stub.add_client_error("describe_trails", "AccessDeniedException", "denied by the test")
        findings = run(AuditBucketImmutable(), ctx, target_of(config))
    gap = findings["cloudtrail:trails:us-east-1"]
    assert (gap.status, gap.needs) == (Status.UNVERIFIED, "cloudtrail:DescribeTrails")
    assert findings[sound].status is Status.PASS
    assert findings[sound].evidence["sources"] == ("configured",)
    assert all("denied by the test" not in f.reason for f in findings.values())


def test_unknown_application_role_is_unverified(seeded: Seeded) -> None:
    config = account(seeded, application_role_arn="arn:aws:iam::123456789012:role/elsewhere")
    findings = run(AppRoleAuditBucketAccess(), new_ctx(), target_of(config))
    assert {(f.status, f.unknown_reason) for f in findings.values()} == {
        (Status.UNVERIFIED, UnknownReason.NOT_VISIBLE)}


def test_without_configured_role_only_grants_to_everyone_can_fail(seeded: Seeded) -> None:
    config = account(seeded, application_role_arn=None)
    groups = run(AuditLogGroupProtection(), new_ctx(), target_of(config))
    assert {f.status for f in groups.values()} == {Status.UNVERIFIED}
    [role] = run(AppRoleAuditBucketAccess(), new_ctx(), target_of(config)).values()
    assert (role.resource, role.needs) == (
        "s3:audit-buckets", "`application_role_arn` in this AWS account of the inventory")


def test_empty_account_has_no_audit_bucket(audit_moto_url: str, seeded: Seeded) -> None:
    empty = create_isolated_account(audit_moto_url)
    config = AuditAccount(name="empty", regions=[REGION], endpoint_url=audit_moto_url,
                          application_role_arn=seeded.role_arn)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in empty.env(REGION).items():
            patch.setenv(name, value)
        ctx, target = new_ctx(), target_of(config)
        [trail] = run(CloudTrailIntegrity(), ctx, target).values()
        [bucket] = run(AuditBucketImmutable(), ctx, target).values()
    assert (trail.resource, trail.status) == ("cloudtrail:trails", Status.FAIL)
    assert (bucket.resource, bucket.status) == ("s3:audit-buckets", Status.FAIL)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.meta.id)
def test_only_declared_read_operations_are_made(seeded: Seeded, check: Check[Any]) -> None:
    ctx, config = new_ctx(), account(seeded, audit_buckets=["audit-*"])
    run(check, ctx, target_of(config))
    calls = ctx.clients.aws_calls()
    assert calls and all(is_read_operation(call.operation) for call in calls)
    declared = {op.action for op in check.meta.operations}
    assert {call.iam_action for call in calls} <= declared
