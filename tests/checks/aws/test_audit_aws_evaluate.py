"""
The AWS audit-trail checks' judgement on hand-built observations: CloudTrail integrity, audit
bucket immutability, the application role's power over buckets and log groups; PASS, FAIL,
WARN and every unknown fact as UNVERIFIED.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from hipaacheck.check import Policy
from hipaacheck.checks.aws.audit_bucket import (
    AppRoleAuditBucketAccess,
    AuditBucketImmutable,
    BucketsObservation,
    ImmutabilityFacts,
    ObjectLock,
    RoleAccessObservation,
    RoleOnBucket,
    Versioning,
    policy_denies_delete,
)
from hipaacheck.checks.aws.audit_log_groups import (
    AuditLogGroupProtection,
    GroupFacts,
    LogGroup,
    LogGroupsObservation,
    resource_policy_grants,
)
from hipaacheck.checks.aws.audit_policy import RoleDecisions, parse_policy
from hipaacheck.checks.aws.audit_trail import (
    CloudTrailIntegrity,
    Discovery,
    Trail,
    TrailListing,
    TrailsObservation,
)
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason

TARGET = Target(TargetKind.AWS, "aws:test", "test")
ROLE = "arn:aws:iam::111122223333:role/clinic-app"
DENIED = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs="s3:GetBucketPolicy")
NOTHING_MISSING = Discovery((), ())


# --- CloudTrail ---

TRAIL = Trail(name="org-audit", arn="arn:aws:cloudtrail:us-east-1:111122223333:trail/org-audit",
              home_region="us-east-1", bucket="trail-bucket", log_group_arn=None,
              log_file_validation=True, kms_key_id="arn:aws:kms:us-east-1:1:key/k",
              multi_region=True, organization=False, logging=True)


def trails(*found: Trail, failures: tuple[tuple[str, Unknown], ...] = ()) -> list[Finding]:
    obs = TrailsObservation(TrailListing(found, failures))
    return list(CloudTrailIntegrity().evaluate(obs, TARGET, Policy()))


@pytest.mark.parametrize(("changes", "status"), [
    ({}, Status.PASS),
    ({"kms_key_id": None}, Status.WARN),
    ({"log_file_validation": False}, Status.FAIL),
    ({"logging": False}, Status.FAIL),
    ({"logging": Unknown(UnknownReason.ACCESS_DENIED, "denied", "cloudtrail:GetTrailStatus")},
     Status.UNVERIFIED),
    ({"logging": Unknown(UnknownReason.ACCESS_DENIED, "denied"), "log_file_validation": False},
     Status.FAIL),
])
def test_trail_integrity(changes: dict[str, object], status: Status) -> None:
    [finding] = trails(replace(TRAIL, **changes))
    assert (finding.check_id, finding.status) == ("aws.cloudtrail.log_integrity", status)
    assert finding.evidence.get("trail_kind", "cloudtrail") == "cloudtrail"


def test_no_trail_fails_only_when_every_region_was_read() -> None:
    [finding] = trails()
    assert (finding.resource, finding.status) == ("cloudtrail:trails", Status.FAIL)
    unknown = Unknown(UnknownReason.ACCESS_DENIED, "denied", "cloudtrail:DescribeTrails")
    [gap] = trails(failures=(("eu-west-1", unknown),))
    assert (gap.status, gap.needs) == (Status.UNVERIFIED, "cloudtrail:DescribeTrails")
    assert gap.resource == "cloudtrail:trails:eu-west-1"


# --- bucket immutability ---

LOCKED = ImmutabilityFacts("audit", ("cloudtrail:org-audit",), "us-east-1",
                           ObjectLock(True, "COMPLIANCE", 2192), Versioning("Enabled", False),
                           "none")


DEFAULT_POLICY = Policy()


def immutable(bucket: ImmutabilityFacts = LOCKED, policy: Policy = DEFAULT_POLICY,
              discovery: Discovery = NOTHING_MISSING) -> list[Finding]:
    obs = BucketsObservation(discovery, (bucket,) if bucket else ())
    return list(AuditBucketImmutable().evaluate(obs, TARGET, policy))


def test_compliance_lock_passes_and_reports_retention() -> None:
    [finding] = immutable()
    assert (finding.check_id, finding.status) == ("aws.s3.audit_bucket_immutable", Status.PASS)
    assert finding.evidence["trail_retention"] == "Object Lock COMPLIANCE, 2192 days"
    assert finding.evidence["retention_meets_policy"] is True
    assert finding.evidence["trail"] == "s3://audit"


def test_compliance_lock_wins_over_unreadable_policy_and_versioning() -> None:
    [finding] = immutable(replace(LOCKED, versioning=DENIED, deny_delete=DENIED))
    assert finding.status is Status.PASS


def test_short_compliance_retention_warns() -> None:
    [finding] = immutable(replace(LOCKED, lock=ObjectLock(True, "COMPLIANCE", 30)))
    assert (finding.status, finding.evidence["retention_meets_policy"]) == (Status.WARN, False)


@pytest.mark.parametrize("changes", [
    {"lock": ObjectLock(True, "GOVERNANCE", 2192)},
    {"lock": ObjectLock(False), "versioning": Versioning("Enabled", True)},
    {"lock": ObjectLock(True), "deny_delete": "everyone"},
])
def test_protections_an_administrator_can_lift_warn(changes: dict[str, object]) -> None:
    [finding] = immutable(replace(LOCKED, **changes))
    assert finding.status is Status.WARN


@pytest.mark.parametrize("changes", [
    {"lock": ObjectLock(False), "versioning": Versioning("Off", False)},
    {"lock": ObjectLock(True), "versioning": Versioning("Enabled", False)},
    {"lock": ObjectLock(False), "versioning": Versioning("Suspended", True)},
    {"lock": ObjectLock(False), "deny_delete": "conditional"},
])
def test_nothing_that_stops_deletion_fails(changes: dict[str, object]) -> None:
    [finding] = immutable(replace(LOCKED, **changes))
    assert finding.status is Status.FAIL


@pytest.mark.parametrize(("changes", "needs"), [
    ({"region": DENIED, "lock": DENIED, "versioning": DENIED, "deny_delete": DENIED},
     "s3:GetBucketPolicy"),
    ({"lock": Unknown(UnknownReason.ACCESS_DENIED, "denied",
                      "s3:GetBucketObjectLockConfiguration")},
     "s3:GetBucketObjectLockConfiguration"),
    ({"lock": ObjectLock(False), "versioning": Unknown(UnknownReason.TIMEOUT, "timed out")},
     None),
    ({"lock": ObjectLock(False), "deny_delete": DENIED}, "s3:GetBucketPolicy"),
])
def test_immutability_unknowns_are_unverified(changes: dict[str, object],
                                              needs: str | None) -> None:
    [finding] = immutable(replace(LOCKED, **changes))
    assert (finding.status, finding.needs) == (Status.UNVERIFIED, needs)


def test_no_audit_bucket_fails_unless_a_listing_failed() -> None:
    obs = BucketsObservation(NOTHING_MISSING, ())
    [finding] = AuditBucketImmutable().evaluate(obs, TARGET, Policy())
    assert (finding.resource, finding.status) == ("s3:audit-buckets", Status.FAIL)
    gap = Discovery((), (("s3:buckets", DENIED),))
    [unverified] = AuditBucketImmutable().evaluate(BucketsObservation(gap, ()), TARGET, Policy())
    assert (unverified.resource, unverified.status) == ("s3:buckets", Status.UNVERIFIED)


@pytest.mark.parametrize(("statement", "result"), [
    ({"Effect": "Deny", "Principal": "*", "Action": "s3:Delete*",
      "Resource": "arn:aws:s3:::audit/*"}, "everyone"),
    ({"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": ["s3:DeleteObject",
                                                              "s3:DeleteObjectVersion"],
      "Resource": "arn:aws:s3:::audit/*"}, "everyone"),
    ({"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
      "Resource": "arn:aws:s3:::audit/*"}, "none"),
    ({"Effect": "Deny", "Principal": "*", "Action": "s3:Delete*",
      "Resource": "arn:aws:s3:::audit/logs/*"}, "none"),
    ({"Effect": "Deny", "Principal": "*", "Action": "s3:Delete*",
      "Resource": "arn:aws:s3:::audit/*",
      "Condition": {"StringNotEquals": {"aws:PrincipalArn": "arn:aws:iam::1:role/breakglass"}}},
     "conditional"),
])
def test_policy_denies_delete(statement: dict[str, object], result: str) -> None:
    assert policy_denies_delete(json.dumps({"Statement": [statement]}), "audit") == result
    assert policy_denies_delete(None, "audit") == "none"


# --- the application role on buckets ---

def role_access(decisions: RoleDecisions | Unknown, role: str | Unknown = ROLE
                ) -> list[Finding]:
    obs = RoleAccessObservation(role, NOTHING_MISSING, (RoleOnBucket("audit", (), decisions),))
    return list(AppRoleAuditBucketAccess().evaluate(obs, TARGET, Policy()))


ALL_DENIED = RoleDecisions({"s3:DeleteObject": "denied", "s3:PutObject": "denied",
                            "s3:PutLifecycleConfiguration": "denied",
                            "s3:PutBucketPolicy": "denied"}, "iam:SimulatePrincipalPolicy")


def test_role_denied_everything_passes_and_names_the_method() -> None:
    [finding] = role_access(ALL_DENIED)
    assert (finding.check_id, finding.status) == ("aws.iam.app_role_audit_bucket", Status.PASS)
    assert finding.evidence["method"] == "iam:SimulatePrincipalPolicy"
    assert finding.evidence["trail_app_can_modify"] is False


@pytest.mark.parametrize("action", ["s3:DeleteObject", "s3:PutObject",
                                    "s3:PutLifecycleConfiguration", "s3:PutBucketPolicy"])
def test_any_allowed_action_fails(action: str) -> None:
    decisions = RoleDecisions({**ALL_DENIED.decisions, action: "allowed"}, "policy analysis",
                              simulation_unavailable="iam:SimulatePrincipalPolicy failed "
                              "(AccessDenied)")
    [finding] = role_access(decisions)
    assert finding.status is Status.FAIL
    assert finding.evidence["allowed_actions"] == (action,)
    assert finding.evidence["method"] == "policy analysis"
    assert finding.evidence["trail_modifiers"] == (ROLE,)


def test_conditional_answer_is_unverified() -> None:
    decisions = RoleDecisions({**ALL_DENIED.decisions, "s3:DeleteObject": "conditional"},
                              "policy analysis", ("aws:SourceIp",))
    [finding] = role_access(decisions)
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.NOT_VISIBLE)
    assert finding.evidence["condition_keys"] == ("aws:SourceIp",)


def test_role_unknowns_are_unverified() -> None:
    [no_role] = role_access(ALL_DENIED, Unknown(UnknownReason.NOT_VISIBLE, "none configured",
                                                "`application_role_arn`"))
    assert (no_role.status, no_role.needs) == (Status.UNVERIFIED, "`application_role_arn`")
    [denied] = role_access(Unknown(UnknownReason.ACCESS_DENIED, "denied", "iam:GetRole"))
    assert (denied.status, denied.needs) == (Status.UNVERIFIED, "iam:GetRole")


def test_no_bucket_for_the_role_is_unverified() -> None:
    obs = RoleAccessObservation(ROLE, NOTHING_MISSING, ())
    [finding] = AppRoleAuditBucketAccess().evaluate(obs, TARGET, Policy())
    assert (finding.resource, finding.status) == ("s3:audit-buckets", Status.UNVERIFIED)


# --- log groups ---

GROUP = LogGroup("/clinic/audit", "us-east-1",
                 "arn:aws:logs:us-east-1:111122223333:log-group:/clinic/audit", 2192)
LOG_DENIED = RoleDecisions({"logs:DeleteLogGroup": "denied", "logs:DeleteLogStream": "denied",
                            "logs:PutRetentionPolicy": "denied",
                            "logs:DeleteRetentionPolicy": "denied"}, "policy analysis")


def groups(facts: GroupFacts, role: str | Unknown = ROLE) -> Finding:
    obs = LogGroupsObservation(role, NOTHING_MISSING, (facts,))
    [finding] = AuditLogGroupProtection().evaluate(obs, TARGET, Policy())
    return finding


SOUND_GROUP = GroupFacts("/clinic/audit", ("configured",), GROUP, (), LOG_DENIED)


def test_log_group_nobody_may_delete_passes_with_retention() -> None:
    finding = groups(SOUND_GROUP)
    assert (finding.check_id, finding.status) == ("aws.logs.audit_log_group_protected",
                                                  Status.PASS)
    assert finding.evidence["trail_retention"] == "2192 days (log group retention)"
    assert finding.evidence["method"] == "policy analysis"


def test_resource_policy_grant_fails_even_without_a_role() -> None:
    finding = groups(replace(SOUND_GROUP, resource_grants=("let-app",), role=None),
                     Unknown(UnknownReason.NOT_VISIBLE, "no role"))
    assert finding.status is Status.FAIL
    assert finding.evidence["resource_policies"] == ("let-app",)


def test_role_allowed_to_delete_the_group_fails() -> None:
    allowed = RoleDecisions({**LOG_DENIED.decisions, "logs:PutRetentionPolicy": "allowed"},
                            "policy analysis")
    assert groups(replace(SOUND_GROUP, role=allowed)).status is Status.FAIL


@pytest.mark.parametrize(("facts", "role"), [
    (replace(SOUND_GROUP, group=DENIED), ROLE),
    (replace(SOUND_GROUP, resource_grants=DENIED), ROLE),
    (replace(SOUND_GROUP, role=None), Unknown(UnknownReason.NOT_VISIBLE, "no role", "x")),
    (replace(SOUND_GROUP, role=Unknown(UnknownReason.ACCESS_DENIED, "denied", "iam:GetRole")),
     ROLE),
])
def test_log_group_unknowns_are_unverified(facts: GroupFacts, role: str | Unknown) -> None:
    assert groups(facts, role).status is Status.UNVERIFIED


def test_resource_policy_grants() -> None:
    policy = parse_policy({"Statement": [
        {"Effect": "Allow", "Principal": {"Service": "delivery.logs.amazonaws.com"},
         "Action": "logs:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "logs:PutLogEvents",
         "Resource": "*"}]})
    assert not isinstance(policy, Unknown)
    assert resource_policy_grants([("delivery", policy)], GROUP.arn, ROLE) == ()
    everyone = parse_policy({"Statement": {"Effect": "Allow", "Principal": "*",
                                           "Action": "logs:Delete*",
                                           "Resource": f"{GROUP.arn}:*"}})
    assert not isinstance(everyone, Unknown)
    assert resource_policy_grants([("open", everyone)], GROUP.arn, None) == ("open",)
