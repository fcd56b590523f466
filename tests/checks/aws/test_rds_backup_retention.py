"""
RDS backup retention: the pure judgement on hand-built observations, then collect against moto.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.stub import Stubber

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.aws.rds import (
    BackupObservation,
    BackupRetention,
    DbCluster,
    DbInstance,
    RegionBackups,
)
from hipaacheck.config import AwsAccountConfig
from hipaacheck.lab.aws import LabCredentials, seed_rds
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason

CHECK = BackupRetention()
TARGET = Target(TargetKind.AWS, "aws:test", "test")
POLICY = Policy(min_backup_retention_days=7, recommended_backup_retention_days=35)


def db(days: object, identifier: str = "db1", **kw: Any) -> DbInstance:
    fields: dict[str, Any] = {
        "identifier": identifier, "region": "us-east-1", "arn": None, "engine": "postgres",
        "cluster_id": None, "replica_source": None, "storage_encrypted": True, "kms_key_id": None,
        "backup_retention_days": days}
    fields.update(kw)
    return DbInstance(**fields)


def cluster(days: object, identifier: str = "c1") -> DbCluster:
    return DbCluster(identifier, "us-east-1", None, "aurora-postgresql",
                     days)  # type: ignore[arg-type]


def judge(instances: object = (), clusters: object = ()) -> list[Finding]:
    obs = BackupObservation((RegionBackups("us-east-1", instances,  # type: ignore[arg-type]
                                           clusters),))  # type: ignore[arg-type]
    return list(CHECK.evaluate(obs, TARGET, POLICY))


# evaluate(): hand-built observations

@pytest.mark.parametrize(("days", "status"), [
    (0, Status.FAIL), (1, Status.FAIL), (6, Status.FAIL), (7, Status.WARN), (14, Status.WARN),
    (34, Status.WARN), (35, Status.PASS),
])
def test_retention_against_minimum_and_recommendation(days: int, status: Status) -> None:
    [finding] = judge((db(days),))
    assert (finding.check_id, finding.resource, finding.status) == (
        "aws.rds.backup_retention", "us-east-1/db1", status)
    assert finding.evidence["backup_retention_days"] == days


def test_unknown_retention_is_unverified() -> None:
    unknown = Unknown(UnknownReason.UNPARSEABLE, "DescribeDBInstances did not report it")
    [finding] = judge((db(unknown),))
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.UNPARSEABLE)


def test_cluster_members_are_judged_through_their_cluster() -> None:
    findings = judge((db(1, "member", cluster_id="c1"),), (cluster(3),))
    assert [(f.resource, f.status) for f in findings] == [("us-east-1/c1", Status.FAIL)]
    assert findings[0].evidence["cluster"] is True


def test_read_replica_without_backups_warns_rather_than_fails() -> None:
    [finding] = judge((db(0, "replica", replica_source="db1"),))
    assert finding.status == Status.WARN
    assert finding.evidence["read_replica"] is True


def test_denied_instance_listing_is_unverified_for_the_region() -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs="rds:DescribeDBInstances")
    findings = judge(denied, (cluster(35),))
    assert [(f.resource, f.status) for f in findings] == [
        ("rds:us-east-1", Status.UNVERIFIED), ("us-east-1/c1", Status.PASS)]
    assert findings[0].needs == "rds:DescribeDBInstances"


def test_denied_cluster_listing_is_unverified_separately() -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs="rds:DescribeDBClusters")
    findings = judge((db(35),), denied)
    assert {(f.resource, f.status) for f in findings} == {
        ("rds:us-east-1:clusters", Status.UNVERIFIED), ("us-east-1/db1", Status.PASS)}


def test_empty_region_passes_because_both_listings_succeeded() -> None:
    [finding] = judge()
    assert (finding.resource, finding.status) == ("rds:us-east-1", Status.PASS)


# collect(): against moto

def test_collect_judges_retention_in_every_region(
        ctx: CheckContext, target: Target, aws_creds: LabCredentials, moto_url: str) -> None:
    # Given instances kept 0, 1, 14 and 35 days, and an Aurora cluster kept 3 days
    seed_rds(aws_creds, moto_url, "us-east-1", "", {"d1": (False, 1), "d35": (False, 35)})
    seed_rds(aws_creds, moto_url, "eu-west-1", "", {"d0": (False, 0), "d14": (False, 14)})
    rds = aws_creds.client("rds", "eu-west-1", moto_url)
    rds.create_db_cluster(DBClusterIdentifier="aurora", Engine="aurora-postgresql",
                          MasterUsername="labadmin", MasterUserPassword="lab-fake-password-1",
                          BackupRetentionPeriod=3)
    rds.create_db_instance(DBInstanceIdentifier="aurora-1", DBInstanceClass="db.r5.large",
                           Engine="aurora-postgresql", DBClusterIdentifier="aurora")
    # When the check runs
    findings = CHECK.evaluate(CHECK.collect(ctx, target), target, ctx.policy)
    # Then standalone instances and the cluster are judged; the member goes with its cluster
    by_id = {f.resource.rsplit(":", 1)[-1]: f.status for f in findings}
    assert by_id == {"d1": Status.FAIL, "d35": Status.PASS, "d0": Status.FAIL,
                     "d14": Status.WARN, "aurora": Status.FAIL}


def test_denied_cluster_listing_in_one_region_leaves_the_rest_judged(
        ctx: CheckContext, target: Target, account: AwsAccountConfig,
        aws_creds: LabCredentials, moto_url: str, stubbed: Callable[[str, str], Stubber]) -> None:
    seed_rds(aws_creds, moto_url, "us-east-1", "", {"d35": (False, 35)})
    # Given eu-west-1 lists its (no) instances but denies DescribeDBClusters
    eu = stubbed("rds", "eu-west-1")
    eu.add_response("describe_db_instances", {"DBInstances": []})
    eu.add_client_error("describe_db_clusters", "AccessDeniedException", "denied by the test", 400)
    # When the check runs
    findings = {f.resource: f for f in
                CHECK.evaluate(CHECK.collect(ctx, target), target, ctx.policy)}
    # Then eu-west-1's clusters are unverified, naming the action, and us-east-1 is judged
    assert findings["rds:eu-west-1:clusters"].status == Status.UNVERIFIED
    assert findings["rds:eu-west-1:clusters"].needs == "rds:DescribeDBClusters"
    assert "rds:eu-west-1" not in findings
    [d35] = [f for r, f in findings.items() if r.endswith(":db:d35")]
    assert d35.status == Status.PASS
