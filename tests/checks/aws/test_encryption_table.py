"""
The table of encryption-at-rest controls: every row judged on hand-built observations, then
every row's collect step against one seeded moto account.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.aws.encryption import (
    ROWS,
    TABLE_CHECKS,
    DefaultsObservation,
    EbsEncryptionByDefault,
    KindObservation,
    RegionDefault,
    StoreEncryptionCheck,
)
from hipaacheck.checks.aws.stores import RegionStores, Store
from hipaacheck.lab.aws import LabCredentials, seed_dynamodb, seed_ebs
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason

TARGET = Target(TargetKind.AWS, "aws:test", "test")
CMK = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
STRICT = Policy(require_customer_managed_keys=True)
DEFAULT = Policy()
DENIED = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs="x:Describe")
CHECKS = {cls.meta.id: cls() for cls in TABLE_CHECKS}


def store(encrypted: object = True, key: str | None = CMK, **details: Any) -> Store:
    return Store("kind", "us-east-1", "res", "arn:aws:x:us-east-1:1:res/res",
                 encrypted, key, tuple(details.items()))  # type: ignore[arg-type]


def judge(check: StoreEncryptionCheck, *stores: Store, managers: dict[str, object] | None = None,
          policy: Policy = DEFAULT, region: object = None) -> list[Finding]:
    regions = (RegionStores("us-east-1", stores if region is None else region),)  # type: ignore
    keyed = {("us-east-1", k): v for k, v in (managers or {}).items()}
    return list(check.evaluate(KindObservation(regions, keyed), TARGET,  # type: ignore[arg-type]
                               policy))


row_ids = pytest.mark.parametrize("check_id", sorted(ROWS))


# metadata

def test_one_check_class_per_row_with_complete_metadata() -> None:
    assert sorted(CHECKS) == sorted(ROWS)
    for check_id, check in CHECKS.items():
        assert check.meta is ROWS[check_id].meta or check.meta == ROWS[check_id].meta
        assert check.meta.problems() == []
        actions = {op.action for op in check.meta.operations}
        assert "kms:DescribeKey" in actions
        assert all(op.action in actions for op in check.row.kind.operations)


# evaluate(): hand-built observations, every row

@row_ids
def test_customer_managed_key_passes(check_id: str) -> None:
    [finding] = judge(CHECKS[check_id], store(), managers={CMK: "CUSTOMER"}, policy=STRICT)
    assert (finding.check_id, finding.status) == (check_id, Status.PASS)
    assert finding.resource == "arn:aws:x:us-east-1:1:res/res"
    assert finding.evidence["key_manager"] == "CUSTOMER"


@row_ids
def test_unencrypted_fails(check_id: str) -> None:
    [finding] = judge(CHECKS[check_id], store(False, None))
    assert finding.status == Status.FAIL
    assert finding.evidence["encrypted"] is False


@row_ids
def test_aws_managed_or_service_key_passes_with_a_note_or_warns_when_strict(check_id: str) -> None:
    for observed, managers in ((store(True, None), {}), (store(), {CMK: "AWS"})):
        assert [f.status for f in judge(CHECKS[check_id], observed, managers=managers)] == [
            Status.PASS]
        assert [f.status for f in judge(CHECKS[check_id], observed, managers=managers,
                                        policy=STRICT)] == [Status.WARN]


@row_ids
def test_unknown_key_manager_is_unverified_only_when_strict(check_id: str) -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs="kms:DescribeKey")
    assert [f.status for f in judge(CHECKS[check_id], store(),
                                    managers={CMK: denied})] == [Status.PASS]
    [strict] = judge(CHECKS[check_id], store(), managers={CMK: denied}, policy=STRICT)
    assert (strict.status, strict.needs) == (Status.UNVERIFIED, "kms:DescribeKey")


@row_ids
def test_unknown_encryption_is_unverified_naming_the_action(check_id: str) -> None:
    [finding] = judge(CHECKS[check_id], store(DENIED))
    assert (finding.status, finding.needs, finding.unknown_reason) == (
        Status.UNVERIFIED, "x:Describe", UnknownReason.ACCESS_DENIED)


@row_ids
def test_denied_region_listing_is_one_unverified_finding(check_id: str) -> None:
    [finding] = judge(CHECKS[check_id], region=DENIED)
    assert finding.status == Status.UNVERIFIED
    assert finding.resource == ROWS[check_id].kind.listing_resource("us-east-1")
    assert finding.needs == "x:Describe"


@row_ids
def test_empty_region_passes_because_its_listing_succeeded(check_id: str) -> None:
    [finding] = judge(CHECKS[check_id], region=())
    assert (finding.status, finding.evidence["count"]) == (Status.PASS, 0)


def test_unknown_regions_are_one_unverified_finding() -> None:
    check = CHECKS["aws.efs.file_system_encrypted"]
    [finding] = check.evaluate(KindObservation(DENIED), TARGET, DEFAULT)
    assert (finding.resource, finding.status) == ("aws:regions", Status.UNVERIFIED)


def test_dynamodb_table_with_an_inaccessible_key_fails() -> None:
    check = CHECKS["aws.dynamodb.table_encrypted"]
    [finding] = judge(check, store(key_inaccessible=True), managers={CMK: "CUSTOMER"})
    assert finding.status == Status.FAIL


# EBS encryption by default

DEFAULTS = EbsEncryptionByDefault()


def judge_default(*regions: RegionDefault, policy: Policy = DEFAULT) -> list[Finding]:
    return list(DEFAULTS.evaluate(DefaultsObservation(regions), TARGET, policy))


def test_ebs_encryption_by_default_off_fails_on_passes() -> None:
    findings = judge_default(RegionDefault("us-east-1", False),
                             RegionDefault("eu-west-1", True, "CUSTOMER"))
    assert [(f.resource, f.status) for f in findings] == [
        ("ec2:us-east-1:ebs-encryption-by-default", Status.FAIL),
        ("ec2:eu-west-1:ebs-encryption-by-default", Status.PASS)]


def test_ebs_default_key_aws_managed_warns_when_strict_and_unknown_setting_is_unverified() -> None:
    assert [f.status for f in judge_default(RegionDefault("r", True, "AWS"),
                                            policy=STRICT)] == [Status.WARN]
    [finding] = judge_default(RegionDefault("r", DENIED))
    assert (finding.status, finding.needs) == (Status.UNVERIFIED, "x:Describe")
    denied_key = Unknown(UnknownReason.ACCESS_DENIED, "d", needs="ec2:GetEbsDefaultKmsKeyId")
    [strict] = judge_default(RegionDefault("r", True, denied_key), policy=STRICT)
    assert strict.needs == "ec2:GetEbsDefaultKmsKeyId"


# collect(): every row against one seeded moto account

def seed_stores(creds: LabCredentials, url: str) -> dict[str, str]:
    """One sound and one broken store of (nearly) every kind; returns labels to names."""
    us, eu = "us-east-1", "eu-west-1"
    key = creds.client("kms", us, url).create_key()["KeyMetadata"]["Arn"]
    seed_dynamodb(creds, url, us, {"t-cmk": (key, True), "t-owned": (None, False)})
    volumes = seed_ebs(creds, url, us, {"cmk": key, "plain": None}, by_default=True)
    efs = creds.client("efs", eu, url)
    encrypted_fs = efs.create_file_system(CreationToken="a", Encrypted=True, KmsKeyId=key)
    plain_fs = efs.create_file_system(CreationToken="b", Encrypted=False)
    logs = creds.client("logs", us, url)
    logs.create_log_group(logGroupName="with-cmk", kmsKeyId=key)
    logs.create_log_group(logGroupName="service-key")
    eks = creds.client("eks", us, url)
    role = f"arn:aws:iam::{creds.account_id}:role/eks"
    eks.create_cluster(name="old", version="1.27", roleArn=role, resourcesVpcConfig={})
    eks.create_cluster(name="new", version="1.29", roleArn=role, resourcesVpcConfig={})
    eks.create_cluster(name="kms", version="1.27", roleArn=role, resourcesVpcConfig={},
                       encryptionConfig=[{"resources": ["secrets"],
                                          "provider": {"keyArn": key}}])
    creds.client("backup", us, url).create_backup_vault(BackupVaultName="v-cmk",
                                                        EncryptionKeyArn=key)
    redshift = creds.client("redshift", us, url)
    for name, encrypted in (("rs-enc", True), ("rs-plain", False)):
        redshift.create_cluster(ClusterIdentifier=name, NodeType="dc2.large",
                                MasterUsername="admin", MasterUserPassword="Lab-fake-pw-1",
                                Encrypted=encrypted, **({"KmsKeyId": key} if encrypted else {}))
    rds = creds.client("rds", eu, url)
    rds.create_db_cluster(DBClusterIdentifier="aurora-enc", Engine="aurora-postgresql",
                          MasterUsername="labadmin", MasterUserPassword="lab-fake-password-1",
                          StorageEncrypted=True, KmsKeyId=key)
    rds.create_db_cluster(DBClusterIdentifier="aurora-plain", Engine="aurora-postgresql",
                          MasterUsername="labadmin", MasterUserPassword="lab-fake-password-1")
    return {"vol-cmk": volumes["cmk"], "vol-plain": volumes["plain"],
            "fs-enc": encrypted_fs["FileSystemId"], "fs-plain": plain_fs["FileSystemId"]}


def short(resource: str) -> str:
    """A finding's resource by its last name: `vol-1` of `us-east-1/vol-1`, `t` of an ARN."""
    if resource.startswith("arn:"):
        return resource.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return resource.rsplit("/", 1)[-1]


@pytest.fixture(scope="module")
def scanned(module_creds: LabCredentials, moto_url: str, make_ctx: Callable[..., CheckContext],
            make_target: Callable[..., Target]
            ) -> Iterator[tuple[dict[str, str], dict[str, dict[str, Finding]], CheckContext]]:
    """Every table check run once, through one scan context, over the seeded account."""
    names = seed_stores(module_creds, moto_url)
    target = make_target(moto_url)
    ctx = make_ctx()
    results = {}
    for check_id, check in CHECKS.items():
        findings = check.evaluate(check.collect(ctx, target), target, ctx.policy)
        results[check_id] = {short(f.resource): f for f in findings}
    yield names, results, ctx


def statuses(results: dict[str, dict[str, Finding]], check_id: str) -> dict[str, Status]:
    return {name: f.status for name, f in results[check_id].items()}


def test_collect_dynamodb_ebs_efs_and_logs(scanned: Any) -> None:
    names, results, _ = scanned
    assert statuses(results, "aws.dynamodb.table_encrypted") == {
        "t-cmk": Status.PASS, "t-owned": Status.PASS, "dynamodb:eu-west-1": Status.PASS}
    assert results["aws.dynamodb.table_encrypted"]["t-cmk"].evidence["key_manager"] == "CUSTOMER"
    assert results["aws.dynamodb.table_encrypted"]["t-owned"].evidence["sse_type"] == "AWS_OWNED"
    volumes = statuses(results, "aws.ec2.ebs_volume_encrypted")
    assert (volumes[names["vol-cmk"]], volumes[names["vol-plain"]]) == (Status.PASS, Status.FAIL)
    [snapshot] = [f for r, f in results["aws.ec2.ebs_snapshot_encrypted"].items()
                  if r.startswith("snap-")]
    assert (snapshot.status, snapshot.evidence["source"]) == (Status.FAIL, names["vol-plain"])
    systems = statuses(results, "aws.efs.file_system_encrypted")
    assert (systems[names["fs-enc"]], systems[names["fs-plain"]]) == (Status.PASS, Status.FAIL)
    groups = results["aws.logs.log_group_encrypted"]
    assert (groups["with-cmk"].evidence["key_manager"], groups["service-key"].evidence[
        "key_manager"]) == ("CUSTOMER", "AWS")


def test_collect_eks_redshift_backup_and_rds_clusters(scanned: Any) -> None:
    _, results, _ = scanned
    eks = results["aws.eks.secrets_encrypted"]
    assert {k: f.status for k, f in eks.items() if not k.startswith("eks")} == {
        "old": Status.FAIL, "new": Status.PASS, "kms": Status.PASS}
    assert eks["new"].evidence["secrets_encryption"] == "aws_owned_default"
    assert statuses(results, "aws.redshift.cluster_encrypted") == {
        "rs-enc": Status.PASS, "rs-plain": Status.FAIL, "redshift:eu-west-1": Status.PASS}
    assert results["aws.backup.vault_encrypted"]["v-cmk"].status == Status.PASS
    clusters = statuses(results, "aws.rds.cluster_storage_encrypted")
    assert (clusters["aurora-enc"], clusters["aurora-plain"]) == (Status.PASS, Status.FAIL)


def test_collect_rds_snapshots_include_automated_ones(scanned: Any) -> None:
    _, results, _ = scanned
    snapshots = results["aws.rds.snapshot_encrypted"].values()
    kinds = {(f.evidence.get("snapshot_type"), f.status) for f in snapshots
             if "snapshot_type" in f.evidence}
    assert ("automated", Status.FAIL) in kinds and ("automated", Status.PASS) in kinds


def test_collect_empty_kinds_pass_per_region_and_calls_stay_declared(scanned: Any) -> None:
    _, results, ctx = scanned
    assert statuses(results, "aws.elasticache.at_rest_encryption") == {
        "elasticache:us-east-1": Status.PASS, "elasticache:eu-west-1": Status.PASS}
    assert statuses(results, "aws.opensearch.domain_encrypted") == {
        "opensearch:us-east-1": Status.PASS, "opensearch:eu-west-1": Status.PASS}
    declared = {op.action for c in CHECKS.values() for op in c.meta.operations}
    calls = ctx.clients.aws_calls()
    assert {c.iam_action for c in calls} <= declared
    reads = [c.identity for c in calls if not c.continued]
    assert len(reads) == len(set(reads)), "a resource was read twice"


def test_collect_ebs_encryption_by_default_per_region(
        moto_url: str, scanned: Any, make_ctx: Callable[..., CheckContext],
        make_target: Callable[..., Target]) -> None:
    target = make_target(moto_url)
    ctx = make_ctx()
    findings = {f.resource: f for f in DEFAULTS.evaluate(DEFAULTS.collect(ctx, target), target,
                                                         ctx.policy)}
    on = findings["ec2:us-east-1:ebs-encryption-by-default"]
    off = findings["ec2:eu-west-1:ebs-encryption-by-default"]
    assert (off.status, on.evidence["encryption_by_default"]) == (Status.FAIL, True)
    # moto does not implement GetEbsDefaultKmsKeyId: the key is unknown, which the default
    # policy tolerates and a strict one does not
    assert on.status == Status.PASS and on.evidence["key_manager"] == "unknown"
    [strict] = [f for f in DEFAULTS.evaluate(DEFAULTS.collect(make_ctx(STRICT), target), target,
                                             STRICT) if f.resource == on.resource]
    assert (strict.status, strict.needs) == (Status.UNVERIFIED, "a healthy AWS endpoint")
