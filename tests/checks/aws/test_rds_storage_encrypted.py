"""
RDS storage encryption: the pure judgement on hand-built observations, then collect against moto.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.stub import Stubber

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.aws.rds import (
    BackupRetention,
    DbInstance,
    EncryptionObservation,
    RegionEncryption,
    StorageEncrypted,
)
from hipaacheck.config import AwsAccountConfig
from hipaacheck.lab.aws import LabCredentials, seed_rds
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason

CHECK = StorageEncrypted()
TARGET = Target(TargetKind.AWS, "aws:test", "test")
KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
STRICT = Policy(require_customer_managed_keys=True)
DEFAULT = Policy()


def db(encrypted: object = True, key: str | None = KEY, **kw: Any) -> DbInstance:
    fields: dict[str, Any] = {
        "identifier": "db1", "region": "us-east-1",
        "arn": "arn:aws:rds:us-east-1:111122223333:db:db1", "engine": "postgres",
        "cluster_id": None, "replica_source": None, "storage_encrypted": encrypted,
        "kms_key_id": key, "backup_retention_days": 7}
    fields.update(kw)
    return DbInstance(**fields)


def judge(instances: object, managers: dict[str, object] | None = None,
          policy: Policy = DEFAULT) -> list[Finding]:
    obs = EncryptionObservation((RegionEncryption(
        "us-east-1", instances, managers or {}),))  # type: ignore[arg-type]
    return list(CHECK.evaluate(obs, TARGET, policy))


# evaluate(): hand-built observations

def test_encrypted_with_customer_key_passes() -> None:
    [finding] = judge((db(),), {KEY: "CUSTOMER"}, STRICT)
    assert (finding.check_id, finding.status) == ("aws.rds.storage_encrypted", Status.PASS)
    assert finding.resource == "arn:aws:rds:us-east-1:111122223333:db:db1"


def test_unencrypted_fails() -> None:
    [finding] = judge((db(False, None),))
    assert finding.status == Status.FAIL
    assert finding.evidence["storage_encrypted"] is False


def test_aws_managed_key_passes_or_warns_when_policy_requires_customer_keys() -> None:
    assert [f.status for f in judge((db(),), {KEY: "AWS"})] == [Status.PASS]
    assert [f.status for f in judge((db(),), {KEY: "AWS"}, STRICT)] == [Status.WARN]


def test_unknown_encryption_flag_is_unverified() -> None:
    unknown = Unknown(UnknownReason.UNPARSEABLE, "DescribeDBInstances did not report it")
    [finding] = judge((db(unknown),))
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.UNPARSEABLE)


def test_unknown_key_manager_is_unverified_only_when_policy_requires_customer_keys() -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs="kms:DescribeKey")
    assert [f.status for f in judge((db(),), {KEY: denied})] == [Status.PASS]
    [strict] = judge((db(),), {KEY: denied}, STRICT)
    assert (strict.status, strict.needs) == (Status.UNVERIFIED, "kms:DescribeKey")


def test_region_listing_unknown_is_unverified_for_that_region() -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs="rds:DescribeDBInstances")
    [finding] = judge(denied)
    assert (finding.resource, finding.status) == ("rds:us-east-1", Status.UNVERIFIED)
    assert finding.needs == "rds:DescribeDBInstances"


def test_empty_region_passes_because_its_listing_succeeded() -> None:
    [finding] = judge(())
    assert (finding.resource, finding.status) == ("rds:us-east-1", Status.PASS)


def test_instance_without_arn_is_named_region_slash_identifier() -> None:
    [finding] = judge((db(False, None, arn=None),))
    assert finding.resource == "us-east-1/db1"


# collect(): against moto

def test_collect_judges_instances_in_every_region(
        ctx: CheckContext, target: Target, aws_creds: LabCredentials, moto_url: str) -> None:
    # Given an encrypted (customer key) and an unencrypted instance in each region
    for region in ("us-east-1", "eu-west-1"):
        kms = aws_creds.client("kms", region, moto_url)
        key = kms.create_key()["KeyMetadata"]["Arn"]
        seed_rds(aws_creds, moto_url, region, key,
                 {f"{region}-enc": (True, 7), f"{region}-plain": (False, 7)})
    # When the check runs
    findings = CHECK.evaluate(CHECK.collect(ctx, target), target, ctx.policy)
    # Then each instance is judged by its own flag
    by_id = {f.resource.rsplit(":", 1)[-1]: f for f in findings}
    assert {k: f.status for k, f in by_id.items()} == {
        "us-east-1-enc": Status.PASS, "us-east-1-plain": Status.FAIL,
        "eu-west-1-enc": Status.PASS, "eu-west-1-plain": Status.FAIL}
    assert by_id["eu-west-1-enc"].evidence["key_manager"] == "CUSTOMER"


def test_denied_region_is_unverified_and_the_other_region_goes_on(
        ctx: CheckContext, target: Target, account: AwsAccountConfig,
        aws_creds: LabCredentials, moto_url: str, stubbed: Callable[[str, str], Stubber]) -> None:
    seed_rds(aws_creds, moto_url, "us-east-1", "", {"plain": (False, 7)})
    # Given eu-west-1 denies DescribeDBInstances
    stubbed("rds", "eu-west-1").add_client_error("describe_db_instances", "AccessDenied",
                                                 "denied by the test", 403)
    findings = {f.resource: f for f in
                CHECK.evaluate(CHECK.collect(ctx, target), target, ctx.policy)}
    assert findings["rds:eu-west-1"].status == Status.UNVERIFIED
    assert findings["rds:eu-west-1"].needs == "rds:DescribeDBInstances"
    [plain] = [f for r, f in findings.items() if r.endswith(":db:plain")]
    assert plain.status == Status.FAIL


def test_both_rds_checks_share_one_listing_per_region_within_declared_operations(
        ctx: CheckContext, target: Target, account: AwsAccountConfig,
        aws_creds: LabCredentials, moto_url: str) -> None:
    key = aws_creds.client("kms", "us-east-1", moto_url).create_key()["KeyMetadata"]["Arn"]
    seed_rds(aws_creds, moto_url, "us-east-1", key, {"enc": (True, 7)})
    backup = BackupRetention()
    session = ctx.clients.aws(account)
    # When each check collects in turn, through one scan context
    CHECK.collect(ctx, target)
    first = list(session.calls)
    backup.collect(ctx, target)
    second = session.calls[len(first):]
    # Then each check's calls are within its own declared operations
    assert {c.iam_action for c in first} <= {op.action for op in CHECK.meta.operations}
    assert {c.iam_action for c in second} <= {op.action for op in backup.meta.operations}
    assert "kms:DescribeKey" in {c.iam_action for c in first}
    # And the instance listing was made once per region, shared by both checks
    assert [c.operation for c in session.calls].count("DescribeDBInstances") == 2
