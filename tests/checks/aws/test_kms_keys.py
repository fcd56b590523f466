"""
The KMS keys PHI stores depend on: state and rotation, judged on hand-built observations, then
found from the stores of a seeded moto account.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.aws.kms import (
    Gap,
    KeysObservation,
    KeyUse,
    KmsKeyRotation,
    KmsKeyState,
    Rotation,
)
from hipaacheck.clients.aws import KeyInfo
from hipaacheck.lab.aws import LabCredentials, seed_dynamodb, seed_ebs
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason

STATE = KmsKeyState()
ROTATION = KmsKeyRotation()
TARGET = Target(TargetKind.AWS, "aws:test", "test")
ARN = "arn:aws:kms:us-east-1:111122223333:key/k1"
DENIED = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs="kms:DescribeKey")


def use(state: str = "Enabled", manager: str = "CUSTOMER", rotation: object = None,
        **info: str) -> KeyUse:
    key = KeyInfo(ARN, manager, state, **info)
    return KeyUse(ARN, "us-east-1", key, ("bucket-a", "db-1"), ("s3_bucket", "rds_instance"),
                  rotation)  # type: ignore[arg-type]


def judge(check: KmsKeyState | KmsKeyRotation, *keys: KeyUse,
          gaps: tuple[Gap, ...] = ()) -> list[Finding]:
    return list(check.evaluate(KeysObservation(keys, gaps), TARGET, Policy()))


# evaluate(): key state

@pytest.mark.parametrize(("state", "status"), [
    ("Enabled", Status.PASS), ("Disabled", Status.FAIL), ("PendingDeletion", Status.FAIL),
    ("PendingReplicaDeletion", Status.FAIL), ("Unavailable", Status.FAIL),
    ("PendingImport", Status.FAIL), ("Creating", Status.WARN),
])
def test_key_state(state: str, status: Status) -> None:
    [finding] = judge(STATE, use(state))
    assert (finding.check_id, finding.resource, finding.status) == ("aws.kms.key_state", ARN,
                                                                   status)
    assert finding.evidence["used_by_count"] == 2
    assert finding.evidence["store_kinds"] == ("rds_instance", "s3_bucket")


def test_undescribable_key_is_unverified_naming_describe_key() -> None:
    for check in (STATE, ROTATION):
        [finding] = judge(check, KeyUse("alias/app", "us-east-1", DENIED, ("b",), ("s3_bucket",)))
        assert (finding.resource, finding.status, finding.needs) == (
            "alias/app", Status.UNVERIFIED, "kms:DescribeKey")


def test_stores_whose_keys_are_unknown_are_unverified_gaps() -> None:
    gap = Gap("dynamodb:eu-west-1", Unknown(UnknownReason.ACCESS_DENIED, "d",
                                            needs="dynamodb:ListTables"), "the tables", 1)
    for check in (STATE, ROTATION):
        [finding] = judge(check, gaps=(gap,))
        assert (finding.resource, finding.status, finding.needs) == (
            "dynamodb:eu-west-1", Status.UNVERIFIED, "dynamodb:ListTables")


def test_no_keys_and_no_gaps_passes() -> None:
    [finding] = judge(STATE)
    assert (finding.resource, finding.status) == ("kms:keys", Status.PASS)


# evaluate(): rotation

def test_rotation_on_passes_off_fails() -> None:
    [on] = judge(ROTATION, use(rotation=Rotation(True, 365)))
    assert (on.status, on.evidence["rotation_period_days"]) == (Status.PASS, 365)
    [off] = judge(ROTATION, use(rotation=Rotation(False)))
    assert off.status == Status.FAIL


def test_aws_managed_keys_rotate_and_pass() -> None:
    [finding] = judge(ROTATION, use(manager="AWS"))
    assert finding.status == Status.PASS


@pytest.mark.parametrize("info", [{"origin": "EXTERNAL"}, {"spec": "RSA_2048"},
                                  {"origin": "AWS_CLOUDHSM", "spec": "HMAC_256"}])
def test_keys_kms_cannot_rotate_warn(info: dict[str, str]) -> None:
    [finding] = judge(ROTATION, use(**info))
    assert finding.status == Status.WARN


def test_unreadable_rotation_is_unverified_naming_the_action() -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "d", needs="kms:GetKeyRotationStatus")
    [finding] = judge(ROTATION, use(rotation=denied))
    assert (finding.status, finding.needs) == (Status.UNVERIFIED, "kms:GetKeyRotationStatus")
    [pending] = judge(ROTATION, use("PendingDeletion"))
    assert (pending.status, pending.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.NOT_VISIBLE)


# collect(): keys found from the stores of a seeded account

def test_collect_finds_each_key_once_from_every_kind_of_store(
        module_creds: LabCredentials, moto_url: str, make_ctx: Callable[..., CheckContext],
        make_target: Callable[..., Target]) -> None:
    # Given a rotating key used by a table and a bucket, and a disabled key used by a volume
    creds, us = module_creds, "us-east-1"
    kms = creds.client("kms", us, moto_url)
    live = kms.create_key()["KeyMetadata"]
    kms.enable_key_rotation(KeyId=live["KeyId"])
    retired = kms.create_key()["KeyMetadata"]
    kms.disable_key(KeyId=retired["KeyId"])
    seed_dynamodb(creds, moto_url, us, {"records": (live["Arn"], True)})
    seed_ebs(creds, moto_url, us, {"old": retired["Arn"]}, by_default=False)
    s3 = creds.client("s3", us, moto_url)
    s3.create_bucket(Bucket=f"k{creds.account_id}")
    s3.put_bucket_encryption(Bucket=f"k{creds.account_id}", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": live["Arn"]}}]})
    target, ctx = make_target(moto_url), make_ctx()
    # When both key checks run through one scan context
    state = {f.resource: f for f in STATE.evaluate(STATE.collect(ctx, target), target,
                                                   ctx.policy)}
    rotation = {f.resource: f for f in ROTATION.evaluate(ROTATION.collect(ctx, target), target,
                                                         ctx.policy)}
    # Then the live key passes both, the retired one fails its state
    assert (state[live["Arn"]].status, rotation[live["Arn"]].status) == (Status.PASS,
                                                                         Status.PASS)
    assert sorted(state[live["Arn"]].evidence["store_kinds"]) == ["dynamodb_table", "s3_bucket"]
    assert state[retired["Arn"]].status == Status.FAIL
    assert state[retired["Arn"]].evidence["key_state"] == "Disabled"
    # And each key was described once, within the declared operations
    calls = ctx.clients.aws_calls()
    assert {c.iam_action for c in calls} <= {op.action for op in ROTATION.meta.operations}
    described = [c.subject for c in calls if c.operation == "DescribeKey"]
    assert len(described) == len(set(described)) == 2
