"""
RDS deletion protection: the pure judgement on hand-built observations, then collect against moto.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.aws.rds import (
    BackupObservation,
    DbCluster,
    DbInstance,
    DeletionProtection,
    RegionBackups,
)
from hipaacheck.lab.aws import LabCredentials, seed_rds
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason

CHECK = DeletionProtection()
TARGET = Target(TargetKind.AWS, "aws:test", "test")


def db(protected: object, identifier: str = "db1", **kw: Any) -> DbInstance:
    fields: dict[str, Any] = {
        "identifier": identifier, "region": "us-east-1", "arn": None, "engine": "postgres",
        "cluster_id": None, "replica_source": None, "storage_encrypted": True, "kms_key_id": None,
        "backup_retention_days": 7, "deletion_protection": protected}
    fields.update(kw)
    return DbInstance(**fields)


def judge(instances: object = (), clusters: object = ()) -> list[Finding]:
    obs = BackupObservation((RegionBackups("us-east-1", instances,  # type: ignore[arg-type]
                                           clusters),))  # type: ignore[arg-type]
    return list(CHECK.evaluate(obs, TARGET, Policy()))


def test_protected_passes_unprotected_fails_replica_warns() -> None:
    findings = judge((db(True, "a"), db(False, "b"), db(False, "r", replica_source="a")))
    assert [(f.resource, f.status) for f in findings] == [
        ("us-east-1/a", Status.PASS), ("us-east-1/b", Status.FAIL), ("us-east-1/r", Status.WARN)]
    assert findings[1].check_id == "aws.rds.deletion_protection"


def test_cluster_members_go_with_their_cluster() -> None:
    cluster = DbCluster("c1", "us-east-1", None, "aurora-postgresql", 7, True, None, False)
    findings = judge((db(False, "member", cluster_id="c1"),), (cluster,))
    assert [(f.resource, f.status) for f in findings] == [("us-east-1/c1", Status.FAIL)]


def test_unknown_flag_and_listings_are_unverified() -> None:
    unknown = Unknown(UnknownReason.UNPARSEABLE, "DescribeDBInstances did not report it")
    assert [f.status for f in judge((db(unknown),))] == [Status.UNVERIFIED]
    denied = Unknown(UnknownReason.ACCESS_DENIED, "d", needs="rds:DescribeDBClusters")
    findings = judge((db(True),), denied)
    assert {(f.resource, f.status) for f in findings} == {
        ("rds:us-east-1:clusters", Status.UNVERIFIED), ("us-east-1/db1", Status.PASS)}


def test_collect_reads_the_flag_from_instances_and_clusters(
        aws_creds: LabCredentials, moto_url: str, make_ctx: Callable[..., CheckContext],
        make_target: Callable[..., Target]) -> None:
    seed_rds(aws_creds, moto_url, "us-east-1", "", {"open": (False, 7)})
    rds = aws_creds.client("rds", "us-east-1", moto_url)
    rds.create_db_cluster(DBClusterIdentifier="guarded", Engine="aurora-postgresql",
                          MasterUsername="labadmin", MasterUserPassword="lab-fake-password-1",
                          DeletionProtection=True)
    target, ctx = make_target(moto_url), make_ctx()
    found = {f.resource.rsplit(":", 1)[-1]: f.status
             for f in CHECK.evaluate(CHECK.collect(ctx, target), target, ctx.policy)}
    assert found == {"open": Status.FAIL, "guarded": Status.PASS, "eu-west-1": Status.PASS}
