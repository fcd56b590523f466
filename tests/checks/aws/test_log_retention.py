"""
Retention of CloudWatch audit log groups: the pure judgement on hand-built observations, then
collect against moto with a CloudTrail trail delivering to a log group.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.aws.log_retention import (
    AuditLogObservation,
    AuditLogRetention,
    AuditStores,
    RegionLogGroups,
)
from hipaacheck.checks.aws.stores import Store
from hipaacheck.lab.aws import LabCredentials, seed_audit_trail
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason

CHECK = AuditLogRetention()
TARGET = Target(TargetKind.AWS, "aws:test", "test")
TRAILS = AuditStores(frozenset(), frozenset({("us-east-1", "trail-group")}))
TRAILS_DENIED = Unknown(UnknownReason.ACCESS_DENIED, "d", needs="cloudtrail:DescribeTrails")


def group(name: str, days: int | None) -> Store:
    return Store("log_group", "us-east-1", name, f"arn:aws:logs:us-east-1:1:log-group:{name}",
                 True, None, (("retention_days", days),))


def judge(*groups: Store, trails: object = TRAILS, patterns: tuple[str, ...] = ()
          ) -> list[Finding]:
    obs = AuditLogObservation((RegionLogGroups("us-east-1", groups),), trails,  # type: ignore
                              patterns)
    return list(CHECK.evaluate(obs, TARGET, Policy()))


@pytest.mark.parametrize(("days", "status"), [
    (None, Status.PASS), (30, Status.FAIL), (1827, Status.FAIL), (2192, Status.PASS),
    (3653, Status.PASS)])
def test_trail_log_group_retention(days: int | None, status: Status) -> None:
    [finding] = judge(group("trail-group", days))
    assert (finding.check_id, finding.status) == ("aws.logs.audit_retention", status)
    assert finding.evidence["cloudtrail"] is True
    assert finding.evidence["never_expires"] is (days is None)


def test_named_audit_groups_count_and_other_groups_are_not_judged() -> None:
    findings = judge(group("app-audit", 90), group("app-debug", 3), patterns=("*-audit",))
    assert [(f.resource.rsplit(":", 1)[-1], f.status) for f in findings] == [
        ("app-audit", Status.FAIL)]


def test_unknown_trails_make_only_short_unnamed_groups_unverified() -> None:
    findings = judge(group("maybe-trail", 30), group("kept", None), group("named", 30),
                     trails=TRAILS_DENIED, patterns=("named",))
    by_name = {f.resource.rsplit(":", 1)[-1]: f for f in findings}
    assert set(by_name) == {"maybe-trail", "named"}
    assert (by_name["maybe-trail"].status, by_name["maybe-trail"].needs) == (
        Status.UNVERIFIED, "cloudtrail:DescribeTrails")
    assert by_name["named"].status == Status.FAIL


def test_no_audit_groups_passes_and_unlisted_region_is_unverified() -> None:
    [finding] = judge(group("app-debug", 3))
    assert (finding.resource, finding.status) == ("logs:audit", Status.PASS)
    denied = Unknown(UnknownReason.ACCESS_DENIED, "d", needs="logs:DescribeLogGroups")
    obs = AuditLogObservation((RegionLogGroups("us-east-1", denied),), TRAILS)
    [region] = CHECK.evaluate(obs, TARGET, Policy())
    assert (region.resource, region.status, region.needs) == (
        "logs:us-east-1", Status.UNVERIFIED, "logs:DescribeLogGroups")


def test_collect_finds_cloudtrails_log_group(
        module_creds: LabCredentials, moto_url: str, make_ctx: Callable[..., CheckContext],
        make_target: Callable[..., Target]) -> None:
    trail = seed_audit_trail(module_creds, moto_url, "us-east-1", "alias/aws/s3",
                             f"l{module_creds.account_id}")
    target, ctx = make_target(moto_url), make_ctx()
    findings = list(CHECK.evaluate(CHECK.collect(ctx, target), target, ctx.policy))
    assert [(f.resource.rsplit(":", 1)[-1], f.status) for f in findings] == [
        (trail["log_group"], Status.FAIL)]
    assert findings[0].evidence["retention_days"] == 30
    assert {c.iam_action for c in ctx.clients.aws_calls()} <= {
        op.action for op in CHECK.meta.operations}
