"""
Faults between the scan and AWS, injected by the loopback fault proxy in front of moto: access
denied on one call for one bucket, on a whole service and on a whole region; throttling that
outlasts the retries, and throttling that passes. The rest of the scan goes on; every affected
finding is UNVERIFIED with the missing action; nothing affected is PASS; time stays bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from hipaacheck.check import Check, CheckContext
from hipaacheck.checks.aws.backup import DynamoDbPitr
from hipaacheck.checks.aws.encryption import DynamoDbTableEncrypted, LogGroupEncrypted
from hipaacheck.checks.aws.kms import KmsKeyState
from hipaacheck.checks.aws.s3 import DefaultEncryption
from hipaacheck.checks.aws.s3_retention import S3Versioning
from hipaacheck.lab.aws import LAB_REGIONS, LabCredentials, seed_dynamodb
from hipaacheck.model import Finding, Status, Target, UnknownReason

CHECKS: tuple[Check[Any], ...] = (DefaultEncryption(), S3Versioning(), DynamoDbTableEncrypted(),
                                  DynamoDbPitr(), LogGroupEncrypted(), KmsKeyState())


@pytest.fixture(scope="module")
def seeded(module_creds: LabCredentials, moto_url: str) -> dict[str, str]:
    """In each region: an SSE-KMS bucket, an SSE-S3 bucket, a table and a log group."""
    names = {}
    for region in LAB_REGIONS:
        key = module_creds.client("kms", region, moto_url).create_key()["KeyMetadata"]["Arn"]
        s3 = module_creds.client("s3", region, moto_url)
        where = {} if region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": region}}
        for kind, rule in (("kms", {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}),
                           ("s3", {"SSEAlgorithm": "AES256"})):
            name = f"f{module_creds.account_id}-{region}-{kind}"
            s3.create_bucket(Bucket=name, **where)
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": rule}]})
            names[f"{region}-{kind}"] = name
        seed_dynamodb(module_creds, moto_url, region, {f"t-{region}": (key, True)})
        module_creds.client("logs", region, moto_url).create_log_group(logGroupName=f"g-{region}")
    return names


def scan(target: Target, ctx: CheckContext,
         checks: Sequence[Check[Any]] = CHECKS) -> list[Finding]:
    return [f for check in checks for f in check.evaluate(check.collect(ctx, target), target,
                                                          ctx.policy)]


def in_region(finding: Finding, region: str) -> bool:
    return region in finding.resource or finding.evidence.get("region") == region


def test_access_denied_on_one_operation_for_one_bucket(
        seeded: dict[str, str], faults: Any, make_ctx: Callable[..., CheckContext],
        make_target: Callable[..., Target]) -> None:
    # Given GetBucketEncryption denied for one bucket only
    victim = seeded["us-east-1-kms"]
    faults.deny("s3", "GetBucketEncryption", subject=victim)
    target, ctx = make_target(faults.url), make_ctx()
    findings = scan(target, ctx, (DefaultEncryption(), S3Versioning()))
    by_key = {(f.check_id, f.resource): f for f in findings}
    # Then that bucket's encryption is unverified, naming the action; the rest goes on
    denied = by_key[("aws.s3.default_encryption", victim)]
    assert (denied.status, denied.needs, denied.unknown_reason) == (
        Status.UNVERIFIED, "s3:GetEncryptionConfiguration", UnknownReason.ACCESS_DENIED)
    assert "denied by the test" not in denied.reason
    others = [f for (check, r), f in by_key.items()
              if check == "aws.s3.default_encryption" and r in seeded.values() and r != victim]
    assert len(others) == 3 and all(f.status == Status.PASS for f in others)
    assert by_key[("aws.s3.versioning", victim)].status == Status.FAIL
    assert faults.count(operation="GetBucketEncryption", subject=victim) == 1


def test_access_denied_on_a_whole_service(
        seeded: dict[str, str], faults: Any, make_ctx: Callable[..., CheckContext],
        make_target: Callable[..., Target]) -> None:
    # Given every DynamoDB call denied
    faults.deny("dynamodb", code="AccessDeniedException", status=400)
    target, ctx = make_target(faults.url), make_ctx()
    findings = scan(target, ctx)
    dynamo = [f for f in findings if f.check_id.startswith("aws.dynamodb.")]
    # Then each region's tables are one UNVERIFIED finding naming ListTables, none PASS
    assert sorted((f.check_id, f.resource) for f in dynamo) == [
        ("aws.dynamodb.pitr", "dynamodb:eu-west-1"), ("aws.dynamodb.pitr", "dynamodb:us-east-1"),
        ("aws.dynamodb.table_encrypted", "dynamodb:eu-west-1"),
        ("aws.dynamodb.table_encrypted", "dynamodb:us-east-1")]
    assert {(f.status, f.needs) for f in dynamo} == {(Status.UNVERIFIED, "dynamodb:ListTables")}
    # And the key check says which stores it could not see, while S3 and logs are judged
    gaps = [f for f in findings if f.check_id == "aws.kms.key_state"
            and f.resource.startswith("dynamodb:")]
    assert {f.status for f in gaps} == {Status.UNVERIFIED}
    judged = [f for f in findings if f.check_id in ("aws.s3.default_encryption",
                                                    "aws.logs.log_group_encrypted")]
    assert judged and all(f.status == Status.PASS for f in judged)
    # And the denied listing was asked once per region, shared by the three checks
    assert faults.count(service="dynamodb", operation="ListTables") == 2


def test_access_denied_on_one_region(
        seeded: dict[str, str], faults: Any, make_ctx: Callable[..., CheckContext],
        make_target: Callable[..., Target]) -> None:
    # Given every service denying every call made in eu-west-1
    for service in ("s3", "dynamodb", "logs", "kms"):
        faults.deny(service, region="eu-west-1", code="AccessDenied")
    target, ctx = make_target(faults.url), make_ctx()
    findings = scan(target, ctx)
    affected = [f for f in findings if in_region(f, "eu-west-1")]
    # Then every eu-west-1 finding is UNVERIFIED and names an action; nothing there passes
    assert len(affected) >= 7
    assert {f.status for f in affected} == {Status.UNVERIFIED}
    assert all(f.needs and ":" in f.needs for f in affected)
    # And us-east-1 was judged as usual
    us = [f for f in findings if in_region(f, "us-east-1") and f.check_id != "aws.kms.key_state"]
    assert us and {f.status for f in us} <= {Status.PASS, Status.FAIL, Status.WARN}


def test_throttling_that_outlasts_the_retries_is_unverified_in_bounded_time(
        seeded: dict[str, str], faults: Any, make_ctx: Callable[..., CheckContext],
        make_target: Callable[..., Target]) -> None:
    # Given every DynamoDB call throttled for the whole scan
    faults.throttle("dynamodb")
    target, ctx = make_target(faults.url, regions=("us-east-1",)), make_ctx()
    started = time.monotonic()
    findings = scan(target, ctx, (DynamoDbTableEncrypted(), DynamoDbPitr(), LogGroupEncrypted()))
    spent = time.monotonic() - started
    # Then the listing was tried three times (the bounded attempts), once for both checks,
    # then reported throttled; the log groups, on another service, were judged
    assert faults.count(service="dynamodb", operation="ListTables") == 3
    dynamo = [f for f in findings if f.check_id.startswith("aws.dynamodb.")]
    assert [(f.status, f.unknown_reason) for f in dynamo] == [
        (Status.UNVERIFIED, UnknownReason.THROTTLED)] * 2
    assert all("dynamodb:ListTables" in f.reason for f in dynamo)
    assert {f.status for f in findings if f.check_id == "aws.logs.log_group_encrypted"} == {
        Status.PASS}
    assert spent < 20


def test_throttling_for_a_while_is_retried_and_then_observed(
        seeded: dict[str, str], faults: Any, make_ctx: Callable[..., CheckContext],
        make_target: Callable[..., Target]) -> None:
    # Given the first two calls to DynamoDB and the first call to S3 throttled, then answers
    faults.throttle("dynamodb", times=2)
    faults.throttle("s3", times=1, code="SlowDown")
    target, ctx = make_target(faults.url, regions=("us-east-1",)), make_ctx()
    started = time.monotonic()
    findings = scan(target, ctx, (DefaultEncryption(), DynamoDbTableEncrypted()))
    # Then the retries got through: every store is judged, and nothing is left unverified
    assert {f.status for f in findings} == {Status.PASS}
    assert {f.resource for f in findings} >= {seeded["us-east-1-kms"], seeded["us-east-1-s3"]}
    assert faults.count(service="dynamodb", operation="ListTables") == 3
    assert time.monotonic() - started < 20


def test_an_unusable_region_is_unverified_and_the_others_go_on(
        seeded: dict[str, str], moto_url: str, make_ctx: Callable[..., CheckContext],
        make_target: Callable[..., Target]) -> None:
    # Given an inventory region botocore refuses to build a client for
    target = make_target(moto_url, regions=("us-east-1", "not a region!"))
    findings = scan(target, make_ctx(), (DynamoDbTableEncrypted(), LogGroupEncrypted()))
    bad = [f for f in findings if "not a region!" in f.resource]
    # Then its listings are unverified as not supported, and us-east-1 is judged
    assert len(bad) == 2
    assert {(f.status, f.unknown_reason) for f in bad} == {
        (Status.UNVERIFIED, UnknownReason.NOT_SUPPORTED)}
    assert {f.reason.rsplit(" ", 1)[-1] for f in bad} == {"dynamodb:ListTables",
                                                          "logs:DescribeLogGroups"}
    assert {f.status for f in findings if f not in bad} == {Status.PASS}
