"""
S3 default encryption: the pure judgement on hand-built observations, then collect against moto.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from botocore.stub import Stubber

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.aws.s3 import (
    LISTING_RESOURCE,
    BucketEncryption,
    DefaultEncryption,
    DefaultSse,
    S3Observation,
    requires_kms,
)
from hipaacheck.config import AwsAccountConfig
from hipaacheck.lab.aws import LabCredentials
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason

CHECK = DefaultEncryption()
TARGET = Target(TargetKind.AWS, "aws:test", "test")
CMK = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
DENIED = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs="s3:GetEncryptionConfiguration")
STRICT = Policy(require_customer_managed_keys=True)
DEFAULT = Policy()
DENIED_MESSAGE = "denied by the test"


def judge(*buckets: BucketEncryption, policy: Policy = DEFAULT) -> list[Finding]:
    return list(CHECK.evaluate(S3Observation(buckets=buckets), TARGET, policy))


def bucket(encryption: object, manager: object = None,
           requires_kms: object = None) -> BucketEncryption:
    return BucketEncryption("b", "us-east-1", encryption, manager,  # type: ignore[arg-type]
                            requires_kms)  # type: ignore[arg-type]


# evaluate(): hand-built observations

def test_customer_managed_kms_key_passes() -> None:
    [finding] = judge(bucket(DefaultSse("aws:kms", CMK, True), "CUSTOMER"), policy=STRICT)
    assert (finding.check_id, finding.resource, finding.status) == (
        "aws.s3.default_encryption", "b", Status.PASS)
    assert finding.evidence["key_manager"] == "CUSTOMER"


def test_dsse_kms_with_customer_key_passes() -> None:
    [finding] = judge(bucket(DefaultSse("aws:kms:dsse", CMK), "CUSTOMER"), policy=STRICT)
    assert finding.status == Status.PASS


@pytest.mark.parametrize("observed", [
    bucket(DefaultSse("AES256"), requires_kms=False),
    bucket(DefaultSse("aws:kms"), "AWS"),
    bucket(DefaultSse("aws:kms", "alias/aws/s3"), "AWS"),
])
def test_provider_managed_keys_pass_with_a_note_or_warn_when_policy_requires_cmk(
        observed: BucketEncryption) -> None:
    assert [f.status for f in judge(observed)] == [Status.PASS]
    assert [f.status for f in judge(observed, policy=STRICT)] == [Status.WARN]


def test_sse_s3_warns_when_the_bucket_policy_requires_kms() -> None:
    [finding] = judge(bucket(DefaultSse("AES256"), requires_kms=True))
    assert finding.status == Status.WARN
    assert finding.evidence["policy_requires_kms"] is True


def test_sse_s3_with_unreadable_bucket_policy_is_unverified_naming_the_action() -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs="s3:GetBucketPolicy")
    [finding] = judge(bucket(DefaultSse("AES256"), requires_kms=denied))
    assert (finding.status, finding.needs) == (Status.UNVERIFIED, "s3:GetBucketPolicy")
    # Under a policy that requires customer keys the bucket policy cannot change the verdict
    assert [f.status for f in judge(bucket(DefaultSse("AES256"), requires_kms=denied),
                                    policy=STRICT)] == [Status.WARN]


def test_bucket_key_is_noted() -> None:
    [finding] = judge(bucket(DefaultSse("aws:kms", CMK, True), "CUSTOMER"))
    assert finding.evidence["bucket_key_enabled"] is True


@pytest.mark.parametrize(("statement", "required"), [
    ({"Effect": "Deny", "Action": "s3:PutObject", "Principal": "*", "Condition": {
        "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}}, True),
    ({"Effect": "Deny", "Action": ["s3:*"], "Principal": "*", "Condition": {
        "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": ["aws:kms",
                                                                         "aws:kms:dsse"]}}},
     True),
    ({"Effect": "Deny", "Action": "s3:PutObject", "Principal": "*", "Condition": {
        "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "true"}}}, True),
    ({"Effect": "Deny", "Action": "s3:PutObject", "Principal": "*", "Condition": {
        "StringNotEquals": {"s3:x-amz-server-side-encryption": "AES256"}}}, False),
    ({"Effect": "Allow", "Action": "s3:PutObject", "Principal": "*", "Condition": {
        "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}}, False),
    ({"Effect": "Deny", "Action": "s3:GetObject", "Principal": "*", "Condition": {
        "Bool": {"aws:SecureTransport": "false"}}}, False),
])
def test_bucket_policies_that_require_kms_are_recognised(statement: dict[str, object],
                                                         required: bool) -> None:
    assert requires_kms({"Version": "2012-10-17", "Statement": [statement]}) is required


def test_no_default_encryption_fails() -> None:
    [finding] = judge(bucket(None))
    assert finding.status == Status.FAIL
    assert finding.evidence["sse_algorithm"] is None


def test_listing_unknown_is_one_unverified_finding_naming_the_action() -> None:
    unknown = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs="s3:ListAllMyBuckets")
    [finding] = CHECK.evaluate(S3Observation(buckets=unknown), TARGET, Policy())
    assert (finding.resource, finding.status) == (LISTING_RESOURCE, Status.UNVERIFIED)
    assert finding.needs == "s3:ListAllMyBuckets"
    assert finding.unknown_reason == UnknownReason.ACCESS_DENIED


def test_empty_listing_passes_only_because_the_listing_succeeded() -> None:
    [finding] = judge()
    assert (finding.resource, finding.status) == (LISTING_RESOURCE, Status.PASS)
    assert finding.evidence["count"] == 0


def test_unknown_encryption_is_unverified() -> None:
    [finding] = judge(bucket(DENIED))
    assert finding.status == Status.UNVERIFIED
    assert finding.needs == "s3:GetEncryptionConfiguration"


def test_unknown_region_is_unverified() -> None:
    region = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs="s3:GetBucketLocation")
    [finding] = judge(BucketEncryption("b", region, region))
    assert (finding.status, finding.needs) == (Status.UNVERIFIED, "s3:GetBucketLocation")


def test_unknown_key_manager_passes_unless_policy_requires_customer_keys() -> None:
    manager = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs="kms:DescribeKey")
    observed = bucket(DefaultSse("aws:kms", CMK), manager)
    assert [f.status for f in judge(observed)] == [Status.PASS]
    [strict] = judge(observed, policy=STRICT)
    assert (strict.status, strict.needs) == (Status.UNVERIFIED, "kms:DescribeKey")


def test_unrecognised_algorithm_is_unverified_not_pass() -> None:
    [finding] = judge(bucket(DefaultSse("aws:future")))
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.UNPARSEABLE)


# collect(): against moto

def seed_buckets(creds: LabCredentials, moto_url: str) -> dict[str, str]:
    """Buckets in both regions: SSE-S3, customer KMS key, AWS-managed KMS key, none."""
    us = creds.client("s3", "us-east-1", moto_url)
    eu = creds.client("s3", "eu-west-1", moto_url)
    key = creds.client("kms", "eu-west-1", moto_url).create_key()["KeyMetadata"]["Arn"]
    prefix = f"t{creds.account_id}"
    us.create_bucket(Bucket=f"{prefix}-s3")
    us.put_bucket_encryption(Bucket=f"{prefix}-s3", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    us.create_bucket(Bucket=f"{prefix}-awskms")
    us.put_bucket_encryption(Bucket=f"{prefix}-awskms", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/aws/s3"}}]})
    eu.create_bucket(Bucket=f"{prefix}-cmk",
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    eu.put_bucket_encryption(Bucket=f"{prefix}-cmk", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]})
    eu.create_bucket(Bucket=f"{prefix}-none",
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    eu.delete_bucket_encryption(Bucket=f"{prefix}-none")
    return {"s3": f"{prefix}-s3", "awskms": f"{prefix}-awskms", "cmk": f"{prefix}-cmk",
            "none": f"{prefix}-none"}


def scan(ctx: CheckContext, target: Target) -> dict[str, Finding]:
    return {f.resource: f for f in CHECK.evaluate(CHECK.collect(ctx, target), target,
                                                  ctx.policy)}


def test_collect_judges_every_bucket_in_its_region(
        ctx: CheckContext, target: Target, aws_creds: LabCredentials, moto_url: str) -> None:
    # Given four buckets in two regions
    names = seed_buckets(aws_creds, moto_url)
    # When the check runs
    found = scan(ctx, target)
    # Then each bucket gets the status its configuration calls for
    assert {k: found[n].status for k, n in names.items()} == {
        "s3": Status.PASS, "awskms": Status.PASS, "cmk": Status.PASS, "none": Status.FAIL}
    assert found[names["cmk"]].evidence["key_manager"] == "CUSTOMER"
    assert found[names["cmk"]].evidence["region"] == "eu-west-1"
    assert found[names["awskms"]].evidence["key_manager"] == "AWS"


def test_collect_calls_stay_within_declared_operations_and_list_once(
        ctx: CheckContext, target: Target, account: AwsAccountConfig,
        aws_creds: LabCredentials, moto_url: str) -> None:
    seed_buckets(aws_creds, moto_url)
    CHECK.collect(ctx, target)
    CHECK.collect(ctx, target)
    session = ctx.clients.aws(account)
    declared = {op.action for op in CHECK.meta.operations}
    assert session.recorded_actions() <= declared
    assert "s3:GetEncryptionConfiguration" in session.recorded_actions()
    # One account-wide listing, one listing per scanned region to place buckets (moto's
    # listing carries no region), and no read made twice across the two collects
    reads = [c.identity for c in session.calls if not c.continued]
    assert len(reads) == len(set(reads))
    assert [(c.operation, c.subject) for c in session.calls].count(("ListBuckets", "")) == 1
    assert "GetBucketLocation" not in {c.operation for c in session.calls}


def test_strict_policy_warns_on_provider_managed_keys(
        ctx: CheckContext, target: Target, aws_creds: LabCredentials, moto_url: str) -> None:
    names = seed_buckets(aws_creds, moto_url)
    found = {f.resource: f for f in CHECK.evaluate(CHECK.collect(ctx, target), target, STRICT)}
    assert found[names["s3"]].status == Status.WARN
    assert found[names["awskms"]].status == Status.WARN
    assert found[names["cmk"]].status == Status.PASS


def test_denied_encryption_read_is_unverified_and_other_buckets_go_on(
        ctx: CheckContext, target: Target, aws_creds: LabCredentials, moto_url: str,
        stubbed: Callable[[str, str], Stubber]) -> None:
    names = seed_buckets(aws_creds, moto_url)
    # Given the eu-west-1 client answers GetBucketEncryption with AccessDenied
    eu = stubbed("s3", "eu-west-1")
    for _ in range(2):
        eu.add_client_error("get_bucket_encryption", "AccessDenied", DENIED_MESSAGE, 403)
    # When the check runs
    found = scan(ctx, target)
    # Then the two eu-west-1 buckets are unverified, naming the action, and us-east-1 goes on
    for name in (names["cmk"], names["none"]):
        assert found[name].status == Status.UNVERIFIED
        assert found[name].needs == "s3:GetEncryptionConfiguration"
        assert found[name].unknown_reason == UnknownReason.ACCESS_DENIED
        assert DENIED_MESSAGE not in found[name].reason
    assert found[names["s3"]].status == Status.PASS
    assert found[names["awskms"]].status == Status.PASS
    # And the denied calls were made, and recorded, within the declared operations
    actions = ctx.clients.aws_calls()
    assert {c.iam_action for c in actions} <= {op.action for op in CHECK.meta.operations}
    assert [(c.region, c.operation) for c in actions].count(
        ("eu-west-1", "GetBucketEncryption")) == 2


def test_denied_listing_is_one_unverified_finding(
        ctx: CheckContext, target: Target, aws_creds: LabCredentials, moto_url: str,
        stubbed: Callable[[str, str], Stubber]) -> None:
    seed_buckets(aws_creds, moto_url)
    stubbed("s3", "us-east-1").add_client_error("list_buckets", "AccessDenied", DENIED_MESSAGE,
                                                403)
    [finding] = scan(ctx, target).values()
    assert (finding.resource, finding.status) == (LISTING_RESOURCE, Status.UNVERIFIED)
    assert finding.needs == "s3:ListAllMyBuckets"


def test_throttled_listing_is_unverified_throttled(
        ctx: CheckContext, target: Target, aws_creds: LabCredentials,
        stubbed: Callable[[str, str], Stubber]) -> None:
    stubbed("s3", "us-east-1").add_client_error("list_buckets", "SlowDown", DENIED_MESSAGE, 503)
    [finding] = scan(ctx, target).values()
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.THROTTLED)


def test_missing_credentials_are_unverified_never_pass(
        ctx: CheckContext, target: Target, aws_creds: LabCredentials,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    [finding] = scan(ctx, target).values()
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.ACCESS_DENIED)
